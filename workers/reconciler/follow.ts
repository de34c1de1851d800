/**
 * A run's AWX side: launch the root's template with `extra_vars.unicop` (idempotent by run id),
 * record the AWX job id before anything waits on it (a crash from there on is adopted, never
 * launched again), then follow the job to its end. Each pass re-reads the job from AWX (the truth)
 * and lets decide() say what it means: a new run state (approvals), the run timeout's cancel, the
 * end, or the next wait — for an AWX notification (awx-notifications.ts) or the poll interval.
 */
import { type AwxJob, type AwxWorkflowJob, terminalStatuses } from '../../core/awx/client.js';
import { AwxError } from '../../core/awx/errors.js';
import type { AuditAction } from '../../core/events/audit.js';
import type { RunState } from '../../core/runs/state-machine.js';
import { transitionEvent } from '../../core/runs/state-machine.js';
import { decide, delayAfterWait, needsApprovals } from './decide.js';
import type { Executor } from './ports.js';
import {
  type ActiveRun,
  audit,
  correlation,
  jobUrl,
  type Leased,
  LeaseLostError,
  note,
  policyOf,
  templateOf,
  viewOf,
  writeRun,
} from './scope.js';
import type { AwxJobRef, AwxRead, RunEnd } from './steps.js';

/**
 * Where following a run got to: its end, or — awaiting approval — handed back to the queue until
 * `at` (sooner when AWX notifies about the workflow job), the run left open (docs/decisions/0044).
 */
export type Followed = { kind: 'ended'; end: RunEnd } | { kind: 'handed-back'; at: Date; awx: AwxJobRef };

const ended = (end: RunEnd): Followed => ({ kind: 'ended', end });

/** Launches the root's template for the run (already `leased`) and follows its job. */
export async function launchAndFollow(scope: Leased, run: ActiveRun, snapshot: unknown): Promise<Followed> {
  const { root, lease, deps, settings } = scope;
  const template = templateOf(root);
  const view = () => viewOf(run, run.cause);
  const approvalRequired = policyOf(root).approval_required === true;
  const step = decide(
    view(),
    {
      kind: 'template',
      rootKind: root.kind,
      template,
      approvalRequired,
      policyError: root.policy_error ?? null,
    },
    settings,
  );
  if (step.kind === 'end') return ended(step.end);
  if (step.kind !== 'launch') throw new Error(`a run about to launch cannot ${step.kind}`);
  const { templateId, awxKind } = step;
  const request = {
    // A check run: the playbook in check mode (AwxClient refuses a template that would ignore it).
    ...(run.mode === 'check' ? { jobType: 'check' as const } : {}),
    unicop: {
      root: root.key,
      snapshot,
      hash: run.snapshotHash,
      fencing_token: lease.fencingToken,
      run_id: run.runId,
    },
    since: new Date(run.startedAt.getTime() - 60_000),
  };
  let answer: { ok: true; id: number; adopted: boolean } | { ok: false; error: unknown };
  try {
    const launched =
      awxKind === 'workflow_job'
        ? await deps.awx.launchWorkflowJobTemplate(templateId, request)
        : await deps.awx.launchJobTemplate(templateId, request);
    answer = { ok: true, id: launched.job.id as number, adopted: launched.adopted };
  } catch (error) {
    answer = { ok: false, error };
  }
  const next = decide(view(), { kind: 'launch', templateId, answer }, settings);
  if (next.kind === 'raise') throw next.error;
  if (next.kind === 'end') return ended(next.end);
  if (next.kind !== 'record-launch') throw new Error(`a launch cannot ${next.kind}`);
  const jobType = awxKind === 'job' ? 'job' : 'workflow';
  run.awx = { kind: awxKind, id: next.id, url: jobUrl(scope, awxKind, next.id) };
  run.log.add(
    scope.clock.now(),
    'info',
    `launched AWX ${jobType === 'workflow' ? 'workflow job template' : 'job template'} ${templateId}${run.mode === 'check' ? ' in check mode' : ''}: ${jobType === 'job' ? 'job' : 'workflow job'} ${next.id}${next.adopted ? ' (an earlier attempt of this run had launched it)' : ''}`,
    { awx_template_id: templateId, awx_job_id: next.id, awx_job_type: jobType },
  );
  // The job id is recorded before anything waits on it: a crash from here on is adopted.
  await writeRun(scope, run, 'launched', {
    awx_job_id: next.id,
    awx_job_type: jobType,
    awx_job_url: run.awx.url,
  });
  await audit(
    scope,
    root.key,
    'run.launched',
    'ok',
    next.adopted ? 'an earlier attempt of this run had launched it' : null,
    { ...correlation(run, lease), awxTemplateId: templateId, awxJobId: next.id },
  );
  return follow(scope, run);
}

/**
 * Follows the run's AWX job to its end, or until it awaits approval when the job is to give its
 * slot back then (settings.approvalRecheckMs). A run handed back before keeps its run timeout.
 */
export async function follow(scope: Leased, run: ActiveRun): Promise<Followed> {
  const { root, lease, deps, settings, clock } = scope;
  // While verifying, the run's verify job (docs/decisions/0066, verify.ts), else its own.
  const awxJob = run.verifying && run.verify ? ({ kind: 'job', id: run.verify.id } as const) : run.awx;
  if (!awxJob) throw new Error('follow() needs an AWX job');
  const timeoutMs = (Number(policyOf(root).run_timeout_seconds) || 3600) * 1000;
  run.follow = {
    deadline: run.timeoutAt ?? new Date(run.leasedAt.getTime() + timeoutMs),
    timeoutMs,
    delayMs: settings.pollMinMs,
    cancelAskedAt: null,
    unreachableSince: null,
    awxStatus: null,
  };
  for (;;) {
    if (lease.lost) {
      const step = decide(
        viewOf(run, run.cause),
        { kind: 'fence', reason: String(lease.signal.reason ?? 'lease lost') },
        settings,
      );
      throw new LeaseLostError(step.kind === 'fenced' ? step.why : 'lease lost');
    }
    const read = await readJob(deps.awx, awxJob);
    const step = decide(viewOf(run, run.cause), { kind: 'awx-job', at: clock.now(), read }, settings);
    if (step.kind === 'end') {
      note(run, clock.now(), step.lines);
      return ended(step.end);
    }
    if (step.kind !== 'poll') throw new Error(`a followed run cannot ${step.kind}`);
    note(run, clock.now(), step.lines);
    run.follow = step.follow;
    if (step.transition) {
      const previous = run.state;
      await writeRun(scope, run, step.transition);
      await audit(
        scope,
        root.key,
        transitionAudit(previous, step.transition),
        'ok',
        null,
        correlation(run, lease),
      );
    }
    if (step.cancel) {
      note(run, clock.now(), [step.cancel]);
      await audit(
        scope,
        root.key,
        'run.cancel_requested',
        'ok',
        step.cancel.message,
        correlation(run, lease),
      );
      await (awxJob.kind === 'job'
        ? deps.awx.cancelJob(awxJob.id)
        : deps.awx.cancelWorkflowJob(awxJob.id)
      ).catch((error: unknown) => scope.log.warn({ err: error }, 'AWX cancel failed'));
    }
    if (step.after.kind === 'end') return ended(step.after.end);
    if (step.after.kind === 'hand-back') {
      // Its hand-back line is on the record (with the transition's write, or on its own): whoever
      // takes the run up reads its run timeout there.
      if (!step.transition) await writeRun(scope, run, run.state);
      return { kind: 'handed-back', at: step.after.at, awx: { kind: awxJob.kind, id: awxJob.id } };
    }
    const { wait } = step.after;
    if (!read.ok) {
      scope.log.warn({ err: read.error }, step.warn ?? 'AWX unreachable while following the job');
    }
    if (wait.notifications) {
      const woken = await deps.wakeups.wait(awxJob.kind, awxJob.id, wait.ms, lease.signal);
      run.follow = { ...run.follow, delayMs: delayAfterWait(run.follow.delayMs, woken, settings) };
    } else {
      await clock.sleep(wait.ms, lease.signal);
    }
  }
}

/** One read of the AWX job, and of a workflow's approvals when its status needs them. */
export async function readJob(awx: Executor, awxJob: AwxJobRef): Promise<AwxRead> {
  let job: AwxJob | AwxWorkflowJob;
  let pendingApproval = false;
  try {
    job = awxJob.kind === 'job' ? await awx.getJob(awxJob.id) : await awx.getWorkflowJob(awxJob.id);
    if (!isTerminalStatus(job.status) && needsApprovals(awxJob.kind, job.status as string)) {
      pendingApproval = (await awx.approvalsOfWorkflowJob(awxJob.id)).some((a) => a.status === 'pending');
    }
  } catch (error) {
    if (!(error instanceof AwxError)) throw error;
    return { ok: false, error };
  }
  const status = job.status as string;
  let refusedApproval: { name: string; timedOut: boolean } | null = null;
  if (isTerminalStatus(job.status) && needsApprovals(awxJob.kind, status)) {
    // Why a workflow failed: an approval denied or expired (a read error here is no answer).
    const approvals = await awx.approvalsOfWorkflowJob(awxJob.id).catch(() => []);
    const refused = approvals.find((a) => a.status === 'failed');
    if (refused) refusedApproval = { name: String(refused.name), timedOut: Boolean(refused.timed_out) };
  }
  const artifacts = (job as { artifacts?: unknown }).artifacts;
  return {
    ok: true,
    status,
    explanation: (job as { job_explanation?: string }).job_explanation || '',
    pendingApproval,
    refusedApproval,
    ...(artifacts === undefined ? {} : { artifacts }),
  };
}

const isTerminalStatus = (status: AwxJob['status']) => terminalStatuses.includes(status as never);

/** The audit action of a followed run's state change: the one the run state machine declares. */
function transitionAudit(from: RunState, to: RunState): AuditAction {
  const event = transitionEvent(from, to);
  if (event === null) throw new Error(`the run state machine has no transition ${from} -> ${to}`);
  return event;
}
