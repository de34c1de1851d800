/**
 * The decision of a followed run, one read of its AWX job at a time (decide()'s `awx-job`): AWX's
 * status ends the run (classified by policy.ts's `classify`), moves its state (approvals), or lets
 * it wait on — for a notification or, while AWX is unreachable, plainly; the run timeout asks AWX to
 * cancel once and gives the job `cancelGraceMs` to stop. Pure, like decide().
 */
import { terminalStatuses } from '../../core/awx/client.js';
import type { RunState } from '../../core/runs/state-machine.js';
import { checkRunEnd, driftSummary, type EndCause, reapedByAwx, runEnd } from './policy.js';
import type {
  AwxRead,
  DecideSettings,
  FollowState,
  LogNote,
  Observation,
  RunEnd,
  RunView,
  Step,
} from './steps.js';

export function followStep(run: RunView, at: Date, read: AwxRead, settings: DecideSettings): Step {
  const job = run.awx;
  const follow = run.follow;
  if (!job || !follow || !run.state) throw new Error('following needs a run with an AWX job');
  const what = `AWX ${job.kind === 'job' ? 'job' : 'workflow job'} ${job.id}`;
  if (!read.ok) {
    const { error } = read;
    if (!error.retriable) {
      return endStep(
        runEnd({ kind: 'read-error', error }, `AWX refused to show ${job.kind} ${job.id}: ${error.message}`),
      );
    }
    const since = follow.unreachableSince ?? at;
    if (at.getTime() - since.getTime() > Math.max(follow.timeoutMs, 60_000)) {
      return endStep(
        runEnd(
          { kind: 'unreachable' },
          `AWX unreachable while following ${job.kind} ${job.id}: ${error.message}`,
        ),
      );
    }
    const lines: LogNote[] =
      follow.unreachableSince === null
        ? [
            {
              level: 'warning',
              message: `AWX unreachable while following ${what}; polling on`,
              meta: { error: error.name },
            },
          ]
        : [];
    return {
      kind: 'poll',
      lines,
      warn: 'AWX unreachable while following the job; polling on',
      transition: null,
      cancel: null,
      follow: { ...follow, unreachableSince: since },
      after: {
        kind: 'wait',
        wait: { ms: Math.min(follow.delayMs * 2, settings.pollMaxMs), notifications: false },
      },
    };
  }
  const lines: LogNote[] = [];
  const next: FollowState = { ...follow, unreachableSince: null };
  if (read.status !== follow.awxStatus) {
    next.awxStatus = read.status;
    lines.push({ level: 'info', message: `${what} is ${read.status}`, meta: { awx_status: read.status } });
  }
  const cancelAsked = follow.cancelAskedAt !== null;
  if ((terminalStatuses as readonly string[]).includes(read.status)) {
    const refused = job.kind === 'workflow_job' ? read.refusedApproval : null;
    const approval = refused ? (refused.timedOut ? 'expired' : 'denied') : null;
    if (run.verifying) {
      // The run's verify job (docs/decisions/0066): its end is the verification's.
      const cause: EndCause = {
        kind: 'verify',
        status: read.status,
        cancelAsked,
        reaped: reapedByAwx(read.explanation),
      };
      return endStep(runEnd(cause, verifySummary(what, read, cancelAsked)), lines);
    }
    if (run.mode === 'check' && read.status === 'successful') {
      // A check run's end is what its playbook found (docs/decisions/0054): in sync, drift, or unknown.
      return endStep(checkRunEnd(driftSummary(read.artifacts), what), lines);
    }
    const reaped = reapedByAwx(read.explanation);
    const cause: EndCause = { kind: 'status', status: read.status, cancelAsked, approval, reaped };
    return endStep(runEnd(cause, statusSummary(what, read, cancelAsked, refused)), lines);
  }
  // A verify job moves no run state: the run stays where its apply job left it (docs/decisions/0066).
  const state: RunState = run.verifying
    ? run.state
    : read.pendingApproval
      ? 'awaiting_approval'
      : read.status === 'running'
        ? 'running'
        : 'launched';
  let transition: RunState | null = null;
  if (state !== run.state) {
    transition = state;
    if (state === 'awaiting_approval') {
      lines.push({ level: 'info', message: 'approval requested: the workflow waits on its approval node' });
    } else if (run.state === 'awaiting_approval') {
      lines.push({ level: 'info', message: 'approval given: the workflow goes on' });
    }
    next.delayMs = settings.pollMinMs;
  }
  let cancel: LogNote | null = null;
  if (!cancelAsked && at >= follow.deadline) {
    cancel = {
      level: 'warning',
      message: `run timeout of ${follow.timeoutMs / 1000} s reached; asking AWX to cancel`,
    };
    next.cancelAskedAt = at;
  }
  const askedAt = next.cancelAskedAt;
  let after: Extract<Step, { kind: 'poll' }>['after'] =
    askedAt !== null && at.getTime() - askedAt.getTime() > settings.cancelGraceMs
      ? {
          kind: 'end',
          end: runEnd(
            { kind: 'cancel-ignored' },
            `run timeout reached; AWX ${job.kind} ${job.id} did not stop after the cancel request`,
          ),
        }
      : { kind: 'wait', wait: { ms: next.delayMs, notifications: true } };
  if (state === 'awaiting_approval' && askedAt === null && settings.approvalRecheckMs !== undefined) {
    // A human may take days: the job gives its worker slot back (docs/decisions/0044).
    const recheckAt = new Date(
      Math.min(at.getTime() + settings.approvalRecheckMs, follow.deadline.getTime()),
    );
    lines.push(handBackLine(settings.approvalRecheckMs, follow.deadline));
    after = { kind: 'hand-back', at: recheckAt };
  }
  return { kind: 'poll', lines, warn: null, transition, cancel, follow: next, after };
}

/** The meta key of the line a run is handed back with: its run timeout, kept by whoever takes it up. */
export const runTimeoutAtMeta = 'run_timeout_at';

function handBackLine(recheckMs: number, deadline: Date): LogNote {
  return {
    level: 'info',
    message: `waiting for the approval without holding a worker: looked at again every ${recheckMs / 1000} s and when AWX notifies; the run times out at ${deadline.toISOString()}`,
    meta: { [runTimeoutAtMeta]: deadline.toISOString() },
  };
}

/**
 * Before any lease, a run handed back awaiting approval (decide()'s `approval-wait`): still pending
 * in AWX and within its run timeout, the job goes back to the queue untouched — no lease, no write;
 * anything else (approved, denied, expired, ended, the timeout reached, AWX not answering) and the
 * job takes the lease and adopts the run, as after a crash, to follow it to its end.
 */
export function approvalWaitStep(
  seen: Extract<Observation, { kind: 'approval-wait' }>,
  settings: DecideSettings,
): Step {
  const { read, at, deadline } = seen;
  const pending =
    read.ok && read.pendingApproval && !(terminalStatuses as readonly string[]).includes(read.status);
  if (!pending || settings.approvalRecheckMs === undefined || at >= deadline)
    return { kind: 'acquire-lease' };
  return {
    kind: 'later',
    at: new Date(Math.min(at.getTime() + settings.approvalRecheckMs, deadline.getTime())),
    why: `awaiting approval of AWX workflow job ${seen.workflowJobId}`,
    wakeOn: { kind: 'workflow_job', id: seen.workflowJobId },
  };
}

function statusSummary(
  what: string,
  read: Extract<AwxRead, { ok: true }>,
  cancelAsked: boolean,
  refused: { name: string; timedOut: boolean } | null,
): string {
  switch (read.status) {
    case 'successful':
      return `${what} successful`;
    case 'canceled':
      return cancelAsked ? `run timeout reached; ${what} canceled` : `${what} canceled in AWX`;
    case 'error':
      return `${what} error: ${read.explanation}`.trim();
    default:
      if (refused) return `approval "${refused.name}" ${refused.timedOut ? 'expired' : 'denied'}`;
      return `${what} failed ${read.explanation}`.trim();
  }
}

/** How a run's verify job ended, in words (verify.ts puts the apply job's summary before them). */
function verifySummary(what: string, read: Extract<AwxRead, { ok: true }>, cancelAsked: boolean): string {
  const explanation = read.explanation ? `: ${read.explanation}` : '';
  switch (read.status) {
    case 'successful':
      return `verified: ${what} (verify) passed`;
    case 'failed':
      return `verification failed: ${what} (verify) failed${explanation}: the target does not hold what the snapshot renders`;
    case 'canceled':
      return cancelAsked
        ? `run timeout reached during verification; ${what} (verify) canceled`
        : `${what} (verify) canceled in AWX`;
    default:
      return `${what} (verify) ${read.status}${explanation}`;
  }
}

/** The retry a failed run leads to, when its failure class retries and attempts remain. */

function endStep(end: RunEnd, lines: LogNote[] = []): Step {
  return { kind: 'end', end, lines, retryAllowed: true };
}
