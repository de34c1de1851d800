/**
 * The approver's commands, through the bridge's admin API (docs/decisions/0057):
 *   unicop approvals                        the runs whose AWX workflow waits on an approval (viewer)
 *   unicop approve <run> [--reason TEXT]    approve it in AWX as you (approver)
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
  const lines = approvals.map(
    (a) =>
      `${a.runId}  ${a.rootKey.padEnd(16)} "${a.approvalName}" (AWX workflow job ${a.awxWorkflowJobId}) since ${a.requestedAt ?? '?'}${a.expiresAt ? `, expires ${a.expiresAt}` : ''}`,
  );
  out.result(
    { approvals },
    approvals.length === 0
      ? 'no run waits on an approval'
      : [`${approvals.length} waiting:`, ...lines].join('\n'),
  );
  return 0;
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
    `run ${runId} of ${String(b.rootKey)} ${String(b.decision)} by ${String(b.by)} (AWX approval ${String(b.awxApprovalId)}); ${journal}${audit}${answer.replayed ? ' (replayed: nothing was done again)' : ''}`,
  );
  return 0;
}
