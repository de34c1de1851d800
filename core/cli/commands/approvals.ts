/**
 * The approver's commands, through the bridge's admin API (docs/decisions/0057):
 *   unicop approvals                        the runs waiting on an approval (viewer): AWX workflow
 *                                           approvals, and runs the blast-radius gate holds (0065)
 *   unicop approve <run> [--reason TEXT]    approve it as you (approver): in AWX, or the gate's hold
 *   unicop deny <run> [--reason TEXT]       deny it (approver)
 * The decision is audited with the person signed in (`unicop login`) or the client the CLI signs in
 * as, and the run's journal in NetBox names them. Each decision carries an `Idempotency-Key`.
 */
import { uuidv7 } from '../../ids.js';
import type { WaitingApproval } from '../../runs/waiting-approval.js';
import type { AdminClient } from './admin-client.js';
import type { Output } from './output.js';

export async function listApprovals(admin: AdminClient, out: Output): Promise<number> {
  const { body } = await admin.call('GET', '/approvals');
  const approvals = (Array.isArray(body.approvals) ? body.approvals : []) as WaitingApproval[];
  const lines = approvals.map((a) =>
    a.kind === 'gate'
      ? `${a.runId}  ${a.rootKey.padEnd(16)} blast radius: ${gateLine(a)} since ${a.requestedAt ?? '?'}`
      : `${a.runId}  ${a.rootKey.padEnd(16)} "${a.approvalName}" (AWX workflow job ${a.awxWorkflowJobId}) since ${a.requestedAt ?? '?'}${a.expiresAt ? `, expires ${a.expiresAt}` : ''}`,
  );
  out.result(
    { approvals },
    approvals.length === 0
      ? 'no run waits on an approval'
      : [`${approvals.length} waiting:`, ...lines].join('\n'),
  );
  return 0;
}

/** What held a gate approval's run: its counts against the baseline run and the first member keys. */
function gateLine(a: WaitingApproval): string {
  const b = a.blastRadius;
  if (!b) return 'held before launch';
  const keys = b.keys.slice(0, 5).join(', ');
  return `${b.added} added, ${b.removed} removed, ${b.changed} changed of ${b.members} (share ${b.share}) vs run ${b.baseline_run_id}${keys ? `: ${keys}${b.keys.length > 5 ? ', …' : ''}` : ''}`;
}

export async function decideApproval(
  admin: AdminClient,
  out: Output,
  decision: 'approve' | 'deny',
  runId: string,
  reason: string | undefined,
  key = uuidv7(),
): Promise<number> {
  const answer = await admin.call('POST', `/runs/${runId}/${decision}`, reason ? { reason } : {}, key);
  const b = answer.body;
  const audited = b.audited !== false;
  const journal =
    b.journaled === true
      ? "the run's journal names you"
      : `the run's journal could not be written${audited ? ' (the audit event has it)' : ''}`;
  const audit = audited ? '' : "; the audit event could not be written (the bridge's error log has it)";
  out.result(
    { ...b, idempotencyKey: key, replayed: answer.replayed },
    `run ${runId} of ${String(b.rootKey)} ${String(b.decision)} by ${String(b.by)} (${b.kind === 'gate' ? "blast-radius hold: the run launches or ends at the reconciler's next look" : `AWX approval ${String(b.awxApprovalId)}`}); ${journal}${audit}${answer.replayed ? ' (replayed: nothing was done again)' : ''}`,
  );
  return 0;
}
