/**
 * The approver's routes of the admin API (docs/decisions/0057): the runs waiting on an AWX workflow
 * approval, and a person's approve or deny of one. AWX stays the truth — UNICOP launched a workflow
 * template with an approval node, AWX holds the question; these routes read AWX's pending approvals
 * (each names its workflow job, whose `extra_vars.unicop` names the run and the root) and answer it
 * with UNICOP's own AWX token (`POST /api/v2/workflow_approvals/{id}/approve/` or `/deny/`, 204).
 * The reconciler observes the decision as it does any approval decided in AWX (notification or its
 * re-check) and takes the run to its end; nothing here moves the run's state.
 *
 * What is UNICOP's own: who decided. AWX records its own user (UNICOP's token), so the person is
 * recorded here — on `unicop.audit` (`approval.approved` / `approval.denied`, actor = the token's
 * preferred_username, sub in the metadata) and in the run's journal in NetBox: the decision is taken
 * under the root's lease (held for these few requests only; the reconciler meanwhile answers itself
 * `lease held by …` and comes back), and a journal entry naming the person and the reason is written
 * with the run through the fence, then the lease is given back. Once AWX has decided, neither a
 * failed journal write nor a failed audit append turns the answer into an error (a retry would find
 * no pending approval): the 200 says `journaled: false` / `audited: false`, and the error log has it.
 *
 *   GET  /approvals                viewer    the runs waiting, with their AWX approval
 *   POST /runs/{runId}/approve     approver  {reason?}
 *   POST /runs/{runId}/deny        approver  {reason?}
 *
 * The blast-radius gate's approvals (docs/decisions/0065) are UNICOP's own: a run the gate holds waits
 * `awaiting_approval` with no AWX job. GET /approvals lists them too (`kind: "gate"`, with the diff that
 * held the run; AWX's are `kind: "awx"`, listed when an AWX token is configured). Deciding one needs no
 * AWX: under the root's lease the decision — person, sub, reason, time — is written on the run
 * (`gate_decision`, written once: a second decision is 409 `already_decided`) with a journal entry
 * naming the person, then audited; the reconciler's next look at the root launches the same run
 * (approved) or ends it `denied`.
 */
import { z } from 'zod';
import type { Principal } from '../../core/auth/access-token.js';
import type { AwxClient } from '../../core/awx/client.js';
import { AwxApprovalNotPendingError, AwxError } from '../../core/awx/errors.js';
import { runIdPattern } from '../../core/ids.js';
import type { PluginClient, PluginRun } from '../../core/plugin/client.js';
import { NetboxUnavailableError, PluginConflictError } from '../../core/plugin/client.js';
import type { BlastRadiusSummary, WaitingApproval } from '../../core/runs/waiting-approval.js';
import { parseJsonBody } from '../http/body.js';
import { HttpError, NotFoundError, ServiceUnavailableError, ValidationError } from '../http/errors.js';
import type { Route } from '../http/server.js';
import {
  type AdminDeps,
  acting,
  adminRoutes,
  append,
  authorize,
  overrideAudit,
  pluginOf,
} from './admin-api.js';

/** What the approver routes ask of AWX (core/awx/client.ts). */
export type AwxApprovals = Pick<AwxClient, 'listPendingApprovals' | 'getWorkflowJob' | 'approve' | 'deny'>;

export interface ApprovalDeps extends AdminDeps {
  /** AWX with UNICOP's token; without it (no UNICOP_AWX_TOKEN) the routes answer 503. */
  awx?: AwxApprovals | undefined;
  /** How long the root's lease is taken for a decision (the few requests it takes). */
  decisionLeaseSeconds?: number;
}

const decisionBody = z.object({
  reason: z.string().trim().min(3, 'at least 3 characters').max(500).optional(),
});

function awxOf(deps: ApprovalDeps): AwxApprovals {
  if (!deps.awx) throw new ServiceUnavailableError('awx_not_configured', 'no AWX token configured', 60);
  return deps.awx;
}

function awxUnavailable(error: unknown): never {
  throw new ServiceUnavailableError(
    'awx_unavailable',
    `AWX did not answer: ${(error as Error).message}`,
    5,
    error,
  );
}

/** A run whose AWX workflow waits on an approval node: its AWX ids are known. */
type AwxWaiting = WaitingApproval & { kind: 'awx'; awxWorkflowJobId: number; approvalId: number };

/** The `unicop` variables UNICOP launched a workflow job with, or null for a job it did not launch. */
function unicopVarsOf(extraVars: unknown): { run_id: string; root: string } | null {
  try {
    const vars = JSON.parse(String(extraVars ?? '{}')) as { unicop?: { run_id?: unknown; root?: unknown } };
    const { run_id, root } = vars.unicop ?? {};
    return typeof run_id === 'string' && typeof root === 'string' ? { run_id, root } : null;
  } catch {
    return null;
  }
}

/**
 * Every run of UNICOP's whose AWX workflow waits on an approval now: AWX's pending approvals, each
 * joined to its workflow job's `unicop` variables (approvals of workflows UNICOP did not launch are
 * not listed).
 */
export async function waitingApprovals(awx: AwxApprovals): Promise<AwxWaiting[]> {
  const pending = await awx.listPendingApprovals().catch(awxUnavailable);
  const joined = await Promise.all(
    pending.map(async (approval): Promise<AwxWaiting | null> => {
      const workflowJobId = (approval.summary_fields?.source_workflow_job as { id?: unknown } | undefined)
        ?.id;
      if (typeof workflowJobId !== 'number') return null;
      const job = await awx.getWorkflowJob(workflowJobId).catch(awxUnavailable);
      const vars = unicopVarsOf(job.extra_vars);
      if (!vars) return null;
      return {
        kind: 'awx',
        runId: vars.run_id,
        rootKey: vars.root,
        awxWorkflowJobId: workflowJobId,
        approvalId: approval.id,
        approvalName: approval.name ?? 'approval',
        requestedAt: approval.created ?? null,
        expiresAt: approval.approval_expiration ?? null,
      };
    }),
  );
  return joined.filter((w): w is AwxWaiting => w !== null);
}

/** A run the blast-radius gate holds (0065): awaiting approval with no AWX job. */
function heldByGate(run: PluginRun | null): boolean {
  return run?.state === 'awaiting_approval' && !run.awx_job_id;
}

/** The runs the blast-radius gate holds now, newest first (one page of NetBox's runs awaiting approval). */
export async function gateApprovals(plugin: PluginClient): Promise<WaitingApproval[]> {
  const runs = await plugin.runsInStates(['awaiting_approval']).catch(netboxUnavailable);
  // A run decided but not taken up by the reconciler yet waits on no one.
  return runs
    .filter((run) => heldByGate(run) && !run.gate_decision)
    .map((run) => ({
      kind: 'gate',
      runId: run.run_id,
      rootKey: run.root.key,
      awxWorkflowJobId: null,
      approvalId: null,
      approvalName: 'blast radius',
      requestedAt: run.last_updated ?? null,
      expiresAt: null,
      blastRadius: (run.blast_radius as BlastRadiusSummary | null) ?? null,
    }));
}

function netboxUnavailable(error: unknown): never {
  if (error instanceof NetboxUnavailableError) {
    throw new ServiceUnavailableError('netbox_unavailable', 'NetBox is unreachable', 10, error);
  }
  throw error;
}

/** The journal entry that names who decided (NetBox shows it on the root's anchor object). */
function journalComment(
  waiting: AwxWaiting,
  decision: Decision,
  principal: Principal,
  reason: string | null,
) {
  const verb = decision === 'approve' ? 'approved' : 'denied';
  return (
    `Approval "${waiting.approvalName}" of run ${waiting.runId} (AWX workflow job ${waiting.awxWorkflowJobId}) ` +
    `${verb} by ${principal.name} through UNICOP's admin API${reason ? `: ${reason}` : ''}`
  );
}

type Decision = 'approve' | 'deny';

function decide(deps: ApprovalDeps, decision: Decision) {
  return acting(deps, 'approver', async (ctx, raw, principal) => {
    const runId = ctx.params.runId ?? '';
    if (!runIdPattern.test(runId)) {
      throw new ValidationError([{ field: 'runId', message: 'expected a run id (a UUID)' }]);
    }
    const { reason } = parseJsonBody(raw, decisionBody);
    const plugin = pluginOf(deps);
    // A run the blast-radius gate holds is decided in UNICOP, without AWX (0065).
    const held = deps.plugin ? await plugin.findRun(runId).catch(netboxUnavailable) : null;
    if (held && heldByGate(held)) return decideGate(deps, decision, held, principal, reason ?? null);
    const awx = awxOf(deps);
    const waiting = (await waitingApprovals(awx)).find((w) => w.runId === runId);
    if (!waiting) throw new NotFoundError(`a pending AWX approval of run ${runId}`);
    const netbox = async <T>(call: () => Promise<T>): Promise<T> =>
      call().catch((error: unknown) => {
        if (error instanceof NetboxUnavailableError) {
          throw new ServiceUnavailableError('netbox_unavailable', 'NetBox is unreachable', 10, error);
        }
        throw error;
      });
    const run = (await netbox(() => plugin.listRuns(waiting.rootKey))).find((r) => r.run_id === runId);
    if (run?.state !== 'awaiting_approval') {
      throw new HttpError(
        409,
        'run_not_awaiting_approval',
        `run ${runId} is ${run ? run.state : 'not recorded in NetBox'}, not awaiting_approval: its approval is not UNICOP's to answer now`,
      );
    }
    const root = await netbox(() => plugin.findRoot(waiting.rootKey));
    if (!root) throw new NotFoundError(`root ${waiting.rootKey}`);
    let token: number;
    try {
      const lease = await netbox(() =>
        plugin.acquireLease(
          root.id,
          `approval by ${principal.name.slice(0, 150)} (admin API)`,
          deps.decisionLeaseSeconds ?? 60,
        ),
      );
      token = lease.token;
    } catch (error) {
      if (!(error instanceof PluginConflictError)) throw error;
      if (error.frozen)
        throw new HttpError(409, 'root_frozen', `root ${root.key} is frozen: ${error.detail}`);
      throw new HttpError(
        409,
        'root_busy',
        `root ${root.key}'s lease is held by ${error.holder ?? 'another holder'}`,
        {
          headers: { 'Retry-After': '2' },
        },
      );
    }
    let journaled = false;
    try {
      try {
        await (decision === 'approve' ? awx.approve(waiting.approvalId) : awx.deny(waiting.approvalId));
      } catch (error) {
        if (error instanceof AwxApprovalNotPendingError) {
          throw new HttpError(
            409,
            'approval_not_pending',
            `AWX no longer waits on this approval: ${error.message}`,
          );
        }
        if (error instanceof AwxError && error.retriable) awxUnavailable(error);
        throw error;
      }
      // Decided in AWX: the journal names the person. Its failure does not undo the decision (the
      // audit event below still records it); the answer says the journal was not written.
      journaled = await plugin
        .updateRun(runId, {
          fencing_token: token,
          journal: {
            kind: decision === 'approve' ? 'info' : 'warning',
            comments: journalComment(waiting, decision, principal, reason ?? null),
          },
        })
        .then(
          () => true,
          (error: unknown) => {
            deps.log?.error({ err: error, runId }, 'admin API: the approver could not be journaled');
            return false;
          },
        );
    } finally {
      await plugin.releaseLease(root.id, token).catch((error: unknown) => {
        deps.log?.warn(
          { err: error, rootKey: root.key },
          'admin API: lease not released; it expires by itself',
        );
      });
    }
    const action = decision === 'approve' ? 'approval.approved' : 'approval.denied';
    // Decided in AWX: a failed audit append does not undo it, and an error answer would send the
    // person to retry a decision AWX no longer waits on (404). The answer says `audited: false`; the
    // error log keeps who decided.
    const audited = await append(deps, [
      overrideAudit(
        principal,
        action,
        waiting.rootKey,
        reason ?? `${decision === 'approve' ? 'approved' : 'denied'} without a reason`,
        {
          runId,
          awxWorkflowJobId: waiting.awxWorkflowJobId,
          awxApprovalId: waiting.approvalId,
        },
      ),
    ]).then(
      () => true,
      (error: unknown) => {
        deps.log?.error(
          {
            err: error,
            runId,
            action,
            actor: principal.name,
            awxWorkflowJobId: waiting.awxWorkflowJobId,
            awxApprovalId: waiting.approvalId,
          },
          'admin API: the decision was taken in AWX but its audit event could not be appended',
        );
        return false;
      },
    );
    return {
      status: 200,
      body: {
        kind: 'awx',
        runId,
        rootKey: waiting.rootKey,
        decision: decision === 'approve' ? 'approved' : 'denied',
        by: principal.name,
        reason: reason ?? null,
        awxWorkflowJobId: waiting.awxWorkflowJobId,
        awxApprovalId: waiting.approvalId,
        journaled,
        audited,
      },
    };
  });
}

/** Takes the root's lease for a decision: its fencing token, or 409 (frozen, busy). */
async function decisionLease(deps: ApprovalDeps, root: { id: number; key: string }, principal: Principal) {
  try {
    const lease = await pluginOf(deps)
      .acquireLease(
        root.id,
        `approval by ${principal.name.slice(0, 150)} (admin API)`,
        deps.decisionLeaseSeconds ?? 60,
      )
      .catch(netboxUnavailable);
    return lease.token;
  } catch (error) {
    if (!(error instanceof PluginConflictError)) throw error;
    if (error.frozen) throw new HttpError(409, 'root_frozen', `root ${root.key} is frozen: ${error.detail}`);
    throw new HttpError(
      409,
      'root_busy',
      `root ${root.key}'s lease is held by ${error.holder ?? 'another holder'}`,
      {
        headers: { 'Retry-After': '2' },
      },
    );
  }
}

/**
 * A decision on a run the blast-radius gate holds (0065): under the root's lease, the decision and a
 * journal entry naming the person are written on the run through the fence (in one transaction: both
 * or neither), then `approval.approved|denied` is audited. Decided already → 409 `already_decided`.
 * Unlike an AWX decision, nothing is decided until NetBox has it: a failed write is an error answer
 * (retrying it is safe), a failed audit append is not (the decision stands; `audited: false`).
 */
async function decideGate(
  deps: ApprovalDeps,
  decision: Decision,
  run: PluginRun,
  principal: Principal,
  reason: string | null,
) {
  const plugin = pluginOf(deps);
  const decided = decision === 'approve' ? 'approved' : 'denied';
  const alreadyDecided = () =>
    new HttpError(409, 'already_decided', `run ${run.run_id} was decided already: a decision is taken once`);
  if (run.gate_decision) throw alreadyDecided();
  const token = await decisionLease(deps, run.root, principal);
  try {
    const fresh = await plugin.findRun(run.run_id).catch(netboxUnavailable);
    if (fresh?.gate_decision) throw alreadyDecided();
    if (!heldByGate(fresh)) {
      throw new HttpError(
        409,
        'run_not_awaiting_approval',
        `run ${run.run_id} is ${fresh?.state ?? 'gone'}, not held by the blast-radius gate`,
      );
    }
    await plugin
      .updateRun(run.run_id, {
        fencing_token: token,
        gate_decision: {
          decision: decided,
          by: principal.name,
          sub: principal.subject,
          reason,
          at: new Date().toISOString(),
        },
        journal: {
          kind: decision === 'approve' ? 'info' : 'warning',
          comments: `Blast radius of run ${run.run_id} ${decided} by ${principal.name} through UNICOP's admin API${reason ? `: ${reason}` : ''}`,
        },
      })
      .catch(netboxUnavailable);
  } finally {
    await plugin.releaseLease(run.root.id, token).catch((error: unknown) => {
      deps.log?.warn(
        { err: error, rootKey: run.root.key },
        'admin API: lease not released; it expires by itself',
      );
    });
  }
  const action = decision === 'approve' ? 'approval.approved' : 'approval.denied';
  const audited = await append(deps, [
    overrideAudit(principal, action, run.root.key, reason ?? `${decided} without a reason`, {
      runId: run.run_id,
      approvalKind: 'gate',
    }),
  ]).then(
    () => true,
    (error: unknown) => {
      deps.log?.error(
        { err: error, runId: run.run_id, action, actor: principal.name },
        'admin API: the blast-radius decision was written on the run but its audit event could not be appended',
      );
      return false;
    },
  );
  return {
    status: 200,
    body: {
      kind: 'gate',
      runId: run.run_id,
      rootKey: run.root.key,
      decision: decided,
      by: principal.name,
      reason,
      awxWorkflowJobId: null,
      awxApprovalId: null,
      journaled: true,
      audited,
    },
  };
}

export function approvalRoutes(deps: ApprovalDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/approvals',
      handler: async (ctx) => {
        await authorize(deps, ctx, 'viewer');
        // AWX's when an AWX token is configured, the blast-radius gate's whenever NetBox is (0065).
        const awx = deps.awx ? await waitingApprovals(deps.awx) : [];
        const gate = deps.plugin ? await gateApprovals(deps.plugin) : [];
        if (!deps.awx && !deps.plugin) awxOf(deps);
        return { status: 200, body: { approvals: [...awx, ...gate] } };
      },
    },
    { method: 'POST', path: '/runs/:runId/approve', handler: decide(deps, 'approve') },
    { method: 'POST', path: '/runs/:runId/deny', handler: decide(deps, 'deny') },
  ];
}

/** The admin API's routes with the approver's (what bridge/app.ts serves). */
export function adminAndApprovalRoutes(deps: ApprovalDeps): Route[] {
  return [...adminRoutes(deps), ...approvalRoutes(deps)];
}
