/**
 * The reconciler: one reconciliation of one root, given only its key (the job carries nothing else
 * worth trusting; everything is re-read). In order:
 *
 *   lease (fencing token; frozen → parked) → adopt runs a dead worker left open → snapshot →
 *   skip if the hash is already reconciled → change window (wait, visibly) → run record →
 *   launch the AWX template with `extra_vars.unicop` → record the AWX job id → follow the job
 *   (notifications wake the poll; approvals; run timeout → cancel) → outcome: run record + journal
 *   entry on the anchor (one fenced write), `unicop.outcomes`, audit → release the lease →
 *   a retry intent when the failure class says so.
 *
 * Every transition is an audit event keyed by the root, so `unicop.audit` holds each root's
 * timeline in order; each step is also a line of the run's own log, written with the run record
 * (run-log.ts: the run page's Timeline in NetBox). A write refused by the fence means another worker holds the root now: this
 * run stops at once and writes nothing more (guarantee 2). The result tells the queue what to do
 * with the job: done, or come back at a given time (a lease held elsewhere, a closed change window,
 * a retry's backoff, NetBox unavailable).
 */
import type { Logger } from 'pino';
import {
  AwxAuthError,
  type AwxClient,
  AwxError,
  type AwxJob,
  AwxLaunchUnconfirmedError,
  AwxNotFoundError,
  AwxPromptsIgnoredError,
  type AwxWorkflowJob,
  terminalStatuses,
} from '../../core/awx/index.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import { type AuditAction, rootAuditMessage } from '../../core/events/audit.js';
import { cloudEvent, type EventData, eventTypes } from '../../core/events/catalogue.js';
import { intentMessage } from '../../core/events/intent.js';
import { deterministicUuidv7, uuidv7 } from '../../core/ids.js';
import {
  type PluginClient,
  PluginConflictError,
  type PluginRoot,
  type PluginRun,
  type RunLogLine,
  type RunState,
  type RunWrite,
} from '../../core/plugin/client.js';
import { openRunStates, type TerminalRunState, transitionEvent } from '../../core/runs/state-machine.js';
import type { WorkerMetrics } from '../metrics.js';
import type { ReconcileJobData } from '../reconcile-queue.js';
import { type AwxJobKind, type JobWakeups, sleep } from './awx-notifications.js';
import {
  changeWindows,
  type FailureClass,
  failureActions,
  type RetryPolicy,
  retryDelayMs,
  windowState,
} from './policy.js';
import { RootLease } from './root-lease.js';
import { RunLog } from './run-log.js';

export const reconcilerSource = 'unicop/reconciler';

export interface ReconcilerOptions {
  /** This worker's lease holder name (host, pid, a random part): shown in NetBox and audit. */
  holder: string;
  leaseTtlSeconds: number;
  /** When the root's lease is held by another worker, look again after this long (or at its expiry). */
  leaseBusyRetryMs: number;
  retry: RetryPolicy;
  /** Polling of a followed AWX job: first interval, doubling up to the maximum. */
  pollMinMs: number;
  pollMaxMs: number;
  /** AWX's base URL for links in NetBox (the UI's job pages). */
  awxUiUrl: string;
  /** How long after asking AWX to cancel (run timeout) the run waits for the job to stop. */
  cancelGraceMs: number;
}

export interface ReconcilerDeps {
  plugin: PluginClient;
  awx: AwxClient;
  eventLog: EventLog;
  wakeups: JobWakeups;
  log: Logger;
  options: ReconcilerOptions;
  /** The clock; tests move it to cross change windows and run timeouts. */
  now?: () => Date;
  metrics?: WorkerMetrics;
  /** The global freeze switch; jobs wait in the queue while it is on. */
  freezeView?: FreezeView;
}

/** What the queue does with the job: done, or run it again at `at`. */
export type ReconcileResult = { kind: 'done' } | { kind: 'later'; at: Date; reason: string };

/** How a run ended, before it is written anywhere. */
interface RunEnd {
  state: TerminalRunState;
  failureClass: FailureClass | null;
  summary: string;
}

/** The run being driven: its record's facts and where its AWX job is. */
interface ActiveRun {
  runId: string;
  snapshotHash: string;
  cause: ReconcileJobData['cause'];
  intentId: string | null;
  startedAt: Date;
  /** When the run took its lease for the work (the run timeout counts from here). */
  leasedAt: Date;
  state: RunState;
  awx: { kind: AwxJobKind; id: number; url: string } | null;
  /** The run's log lines, sent whole with every write of the run record. */
  log: RunLog;
}

class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

export class Reconciler {
  private readonly now: () => Date;

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async reconcile(job: ReconcileJobData): Promise<ReconcileResult> {
    const { plugin, options } = this.deps;
    const log = this.deps.log.child({ rootKey: job.rootKey, intentId: job.intentId });
    const notBefore = job.cause.notBefore ? new Date(job.cause.notBefore) : null;
    if (notBefore && notBefore > this.now()) {
      return { kind: 'later', at: notBefore, reason: 'retry backoff' };
    }
    const freeze = this.deps.freezeView?.globalState();
    if (freeze?.frozen) {
      // Held in the queue while automation is frozen globally (the dispatcher holds new intents).
      return {
        kind: 'later',
        at: new Date(Date.now() + 15_000),
        reason: `frozen globally: ${freeze.reason}`,
      };
    }
    const root = await plugin.findRoot(job.rootKey);
    if (!root) {
      await this.audit(job.rootKey, 'intent.dropped', 'ignored', 'the root no longer exists in NetBox', {
        intentId: job.intentId,
      });
      return { kind: 'done' };
    }
    let token: number;
    try {
      token = (await plugin.acquireLease(root.id, options.holder, options.leaseTtlSeconds)).token;
    } catch (error) {
      if (!(error instanceof PluginConflictError)) throw error;
      if (error.frozen) {
        // Parked, not lost: the sweeper emits an intent for the root once it is unfrozen.
        await this.audit(job.rootKey, 'intent.parked', 'ignored', error.detail, { intentId: job.intentId });
        return { kind: 'done' };
      }
      // Held by another worker: usually released within the run, at the latest when it expires.
      const expires = error.expiresAt ? Date.parse(error.expiresAt) + 500 : Date.now() + 2_000;
      return {
        kind: 'later',
        at: new Date(Math.max(Date.now() + 200, Math.min(expires, Date.now() + options.leaseBusyRetryMs))),
        reason: `lease held by ${error.holder}`,
      };
    }
    const leasedAt = this.now();
    const lease = new RootLease(plugin, root.id, root.key, token, options.leaseTtlSeconds, log);
    try {
      await this.audit(root.key, 'lease.acquired', 'ok', null, {
        intentId: job.intentId,
        fencingToken: token,
      });
      return await this.underLease(root, lease, job, log, leasedAt);
    } catch (error) {
      if (error instanceof LeaseLostError || (error instanceof PluginConflictError && lease.lost)) {
        await this.audit(root.key, 'run.fenced', 'rejected', (error as Error).message, {
          intentId: job.intentId,
          fencingToken: token,
        });
        return { kind: 'done' };
      }
      throw error;
    } finally {
      if (await lease.release()) {
        await this.audit(root.key, 'lease.released', 'ok', null, { fencingToken: token }).catch(
          () => undefined,
        );
      }
    }
  }

  private async underLease(
    root: PluginRoot,
    lease: RootLease,
    job: ReconcileJobData,
    log: Logger,
    leasedAt: Date,
  ): Promise<ReconcileResult> {
    const { plugin } = this.deps;
    const { waiting, adopted } = await this.adoptOpenRuns(root, lease, log);
    const current = await plugin.snapshot(root.id);
    const snapshotAt = this.now();
    /** The run's first lines: its lease and the snapshot it converges to. */
    const begin = (run: ActiveRun): ActiveRun => {
      run.log.add(leasedAt, 'info', `lease acquired with fencing token ${lease.fencingToken}`, {
        fencing_token: lease.fencingToken,
        holder: this.deps.options.holder,
      });
      run.log.add(snapshotAt, 'info', `snapshot read: ${current.hash.slice(0, 12)}`, {
        snapshot_hash: current.hash,
      });
      return run;
    };
    const fresh = (await plugin.findRoot(root.key)) ?? root;
    // Drift is flagged by the last run's outcome class (a check-mode run that found the target
    // differing). Not by the root's status: while we hold the lease it reads `reconciling`.
    const drifted = (fresh.last_run as { outcome_class?: string } | null)?.outcome_class === 'drift';
    const forced = job.cause.kind === 'manual' || job.cause.kind === 'retry';
    if (adopted.some((run) => run.state === 'succeeded' && run.snapshotHash === current.hash) && !forced) {
      return { kind: 'done' }; // the adopted run already converged the root to this snapshot
    }
    if (current.hash === fresh.last_reconciled_hash && !drifted && !forced) {
      const run = begin(
        waiting ? { ...waiting, snapshotHash: current.hash } : this.newRun(job, current.hash),
      );
      const end: RunEnd = { state: 'skipped', failureClass: null, summary: 'snapshot already reconciled' };
      await this.writeRun(lease, run, root.key, waiting, 'skipped');
      await this.finish(root, lease, run, end);
      return { kind: 'done' };
    }
    const run = begin(waiting ? { ...waiting, snapshotHash: current.hash } : this.newRun(job, current.hash));
    const window = windowState(changeWindows(policy(root).change_window), this.now());
    if (!window.open) {
      const opensAt = window.opensAt ?? new Date(this.now().getTime() + 24 * 3600_000);
      const summary = `waiting for the change window; opens at ${opensAt.toISOString()}`;
      run.log.add(this.now(), 'info', summary, { opens_at: opensAt.toISOString() });
      await this.writeRun(lease, run, root.key, waiting, 'queued', { summary });
      await this.audit(root.key, 'run.window_wait', 'ok', summary, this.correlation(run, lease));
      return { kind: 'later', at: opensAt, reason: 'change window closed' };
    }
    run.leasedAt = this.now();
    await this.writeRun(lease, run, root.key, waiting, 'leased', { summary: '' });
    await this.audit(root.key, 'run.leased', 'ok', null, {
      ...this.correlation(run, lease),
      cause: job.cause.kind,
    });
    const end = await this.launchAndFollow(root, lease, run, current.snapshot, log);
    await this.finish(root, lease, run, end);
    return { kind: 'done' };
  }

  // ---- adoption ---------------------------------------------------------------------------

  /**
   * Runs of this root still open in NetBox belong to a worker that died (we hold the lease now).
   * One with an AWX job is adopted: the job is followed to its end, never launched again. One that
   * never reached AWX ends `failed`/`lease_lost`, except a run waiting for its change window,
   * which this job continues (returned).
   */
  private async adoptOpenRuns(
    root: PluginRoot,
    lease: RootLease,
    log: Logger,
  ): Promise<{ waiting: ActiveRun | null; adopted: ActiveRun[] }> {
    const { plugin } = this.deps;
    let waiting: ActiveRun | null = null;
    const adopted: ActiveRun[] = [];
    for (const record of await plugin.listRuns(root.key, openRunStates)) {
      const run = activeRunOf(record);
      let jobRef = run.awx;
      if (!jobRef && record.state !== 'queued') {
        jobRef = await this.findLaunched(root, record);
      }
      if (jobRef) {
        run.awx = jobRef;
        run.leasedAt = this.now(); // the run timeout starts again with the new holder
        run.log.add(
          run.leasedAt,
          'warning',
          `adopted by ${this.deps.options.holder} (its worker stopped); following AWX ${jobRef.kind} ${jobRef.id}`,
          { fencing_token: lease.fencingToken, awx_job_id: jobRef.id },
        );
        await this.writeRun(lease, run, root.key, run, record.state, {
          awx_job_id: jobRef.id,
          awx_job_type: jobRef.kind === 'job' ? 'job' : 'workflow',
          awx_job_url: jobRef.url,
        });
        await this.audit(root.key, 'run.adopted', 'ok', `following AWX ${jobRef.kind} ${jobRef.id}`, {
          ...this.correlation(run, lease),
          awxJobId: jobRef.id,
        });
        const end = await this.follow(root, lease, run, log);
        await this.finish(root, lease, run, end);
        adopted.push(run);
      } else if (record.state === 'queued' && !waiting) {
        waiting = run;
      } else {
        const end: RunEnd = {
          state: 'failed',
          failureClass: 'lease_lost',
          summary:
            'no AWX job carries this run (its worker stopped before launching); a new run converges the root',
        };
        await this.finish(root, lease, run, end, { retry: false });
      }
    }
    return { waiting, adopted };
  }

  /** An open run whose AWX job id was never recorded: AWX is asked for a job carrying its run id. */
  private async findLaunched(root: PluginRoot, record: PluginRun): Promise<ActiveRun['awx']> {
    const template = templateOf(root);
    if (template.id === null) return null;
    const since = new Date(Date.parse(record.started) - 60_000);
    const found =
      template.type === 'workflow'
        ? await this.deps.awx.findWorkflowJobByRunId(template.id, record.run_id, since)
        : await this.deps.awx.findJobByRunId(template.id, record.run_id, since);
    if (!found) return null;
    const kind: AwxJobKind = template.type === 'workflow' ? 'workflow_job' : 'job';
    return { kind, id: found.id as number, url: this.jobUrl(kind, found.id as number) };
  }

  // ---- launch and follow ------------------------------------------------------------------

  private async launchAndFollow(
    root: PluginRoot,
    lease: RootLease,
    run: ActiveRun,
    snapshot: unknown,
    log: Logger,
  ): Promise<RunEnd> {
    const template = templateOf(root);
    const approval = policy(root).approval_required === true;
    if (template.id === null) {
      return misconfigured(`root kind ${root.kind} has no AWX template configured`);
    }
    if (approval && template.type !== 'workflow') {
      return misconfigured(
        `policy asks for approval but template ${template.id} is a job template; approvals need a workflow with an approval node`,
      );
    }
    const request = {
      unicop: {
        root: root.key,
        snapshot,
        hash: run.snapshotHash,
        fencing_token: lease.fencingToken,
        run_id: run.runId,
      },
      since: new Date(run.startedAt.getTime() - 60_000),
    };
    const kind: AwxJobKind = template.type === 'workflow' ? 'workflow_job' : 'job';
    let launched: { id: number; adopted: boolean };
    try {
      const answer =
        kind === 'workflow_job'
          ? await this.deps.awx.launchWorkflowJobTemplate(template.id, request)
          : await this.deps.awx.launchJobTemplate(template.id, request);
      launched = { id: answer.job.id as number, adopted: answer.adopted };
    } catch (error) {
      // Sent, answer lost, job not found yet: keep the run open; the job comes back and adoption
      // looks the run id up in AWX again (docs/decisions/0011), so a late job is never launched twice.
      if (error instanceof AwxLaunchUnconfirmedError) throw error;
      return launchFailure(error, template.id);
    }
    run.awx = { kind, id: launched.id, url: this.jobUrl(kind, launched.id) };
    run.log.add(
      this.now(),
      'info',
      `launched AWX ${template.type === 'workflow' ? 'workflow job template' : 'job template'} ${template.id}: ${kind === 'job' ? 'job' : 'workflow job'} ${launched.id}${launched.adopted ? ' (an earlier attempt of this run had launched it)' : ''}`,
      {
        awx_template_id: template.id,
        awx_job_id: launched.id,
        awx_job_type: kind === 'job' ? 'job' : 'workflow',
      },
    );
    // The job id is recorded before anything waits on it: a crash from here on is adopted.
    await this.writeRun(lease, run, root.key, run, 'launched', {
      awx_job_id: launched.id,
      awx_job_type: kind === 'job' ? 'job' : 'workflow',
      awx_job_url: run.awx.url,
    });
    await this.audit(
      root.key,
      'run.launched',
      'ok',
      launched.adopted ? 'an earlier attempt of this run had launched it' : null,
      { ...this.correlation(run, lease), awxTemplateId: template.id, awxJobId: launched.id },
    );
    return this.follow(root, lease, run, log);
  }

  /**
   * Follows the run's AWX job to its end. Each pass re-reads the job from AWX (the truth), moves
   * the run's state when AWX's did, and then waits for a notification or the poll interval.
   */
  private async follow(root: PluginRoot, lease: RootLease, run: ActiveRun, log: Logger): Promise<RunEnd> {
    const { options } = this.deps;
    const awxJob = run.awx;
    if (!awxJob) throw new Error('follow() needs an AWX job');
    const timeoutMs = (Number(policy(root).run_timeout_seconds) || 3600) * 1000;
    const deadline = run.leasedAt.getTime() + timeoutMs;
    let delay = options.pollMinMs;
    let cancelAskedAt: number | null = null;
    let unreachableSince: number | null = null;
    let awxStatus: string | null = null;
    const what = `AWX ${awxJob.kind === 'job' ? 'job' : 'workflow job'} ${awxJob.id}`;
    for (;;) {
      if (lease.lost) throw new LeaseLostError(String(lease.signal.reason ?? 'lease lost'));
      let job: AwxJob | AwxWorkflowJob;
      let next: RunState;
      try {
        job =
          awxJob.kind === 'job'
            ? await this.deps.awx.getJob(awxJob.id)
            : await this.deps.awx.getWorkflowJob(awxJob.id);
        next = terminalStatuses.includes(job.status as never) ? run.state : await this.stateOf(awxJob, job);
        unreachableSince = null;
        if (job.status !== awxStatus) {
          awxStatus = job.status as string;
          run.log.add(this.now(), 'info', `${what} is ${awxStatus}`, { awx_status: awxStatus });
        }
      } catch (error) {
        if (!(error instanceof AwxError)) throw error;
        if (!error.retriable) {
          return {
            state: 'failed',
            failureClass: error instanceof AwxNotFoundError ? 'job_error' : 'executor_unavailable',
            summary: `AWX refused to show ${awxJob.kind} ${awxJob.id}: ${error.message}`,
          };
        }
        if (unreachableSince === null) {
          run.log.add(this.now(), 'warning', `AWX unreachable while following ${what}; polling on`, {
            error: error.name,
          });
        }
        unreachableSince ??= Date.now();
        if (Date.now() - unreachableSince > Math.max(timeoutMs, 60_000)) {
          return {
            state: 'failed',
            failureClass: 'executor_unavailable',
            summary: `AWX unreachable while following ${awxJob.kind} ${awxJob.id}: ${error.message}`,
          };
        }
        log.warn({ err: error }, 'AWX unreachable while following the job; polling on');
        await sleep(Math.min(delay * 2, options.pollMaxMs), lease.signal);
        continue;
      }
      if (terminalStatuses.includes(job.status as never)) {
        return this.endOf(awxJob, job, cancelAskedAt !== null);
      }
      if (next !== run.state) {
        const previous = run.state;
        if (next === 'awaiting_approval') {
          run.log.add(this.now(), 'info', 'approval requested: the workflow waits on its approval node');
        } else if (previous === 'awaiting_approval') {
          run.log.add(this.now(), 'info', 'approval given: the workflow goes on');
        }
        await this.writeRun(lease, run, root.key, run, next);
        await this.audit(root.key, transitionAudit(previous, next), 'ok', null, this.correlation(run, lease));
        delay = options.pollMinMs;
      }
      if (cancelAskedAt === null && this.now().getTime() >= deadline) {
        cancelAskedAt = Date.now();
        run.log.add(
          this.now(),
          'warning',
          `run timeout of ${timeoutMs / 1000} s reached; asking AWX to cancel`,
        );
        await this.audit(
          root.key,
          'run.cancel_requested',
          'ok',
          `run timeout of ${timeoutMs / 1000} s reached; asking AWX to cancel`,
          this.correlation(run, lease),
        );
        await (awxJob.kind === 'job'
          ? this.deps.awx.cancelJob(awxJob.id)
          : this.deps.awx.cancelWorkflowJob(awxJob.id)
        ).catch((error: unknown) => log.warn({ err: error }, 'AWX cancel failed'));
      }
      if (cancelAskedAt !== null && Date.now() - cancelAskedAt > options.cancelGraceMs) {
        return {
          state: 'timed_out',
          failureClass: 'timed_out',
          summary: `run timeout reached; AWX ${awxJob.kind} ${awxJob.id} did not stop after the cancel request`,
        };
      }
      const woken = await this.deps.wakeups.wait(awxJob.kind, awxJob.id, delay, lease.signal);
      delay = woken ? options.pollMinMs : Math.min(delay * 2, options.pollMaxMs);
    }
  }

  /** The run state an unfinished AWX job means. */
  private async stateOf(
    awxJob: NonNullable<ActiveRun['awx']>,
    job: AwxJob | AwxWorkflowJob,
  ): Promise<RunState> {
    if (awxJob.kind === 'workflow_job') {
      const approvals = await this.deps.awx.approvalsOfWorkflowJob(awxJob.id);
      if (approvals.some((a) => a.status === 'pending')) return 'awaiting_approval';
    }
    return job.status === 'running' ? 'running' : 'launched';
  }

  /** The terminal state an ended AWX job means (AWX's statuses: successful, failed, error, canceled). */
  private async endOf(
    awxJob: NonNullable<ActiveRun['awx']>,
    job: AwxJob | AwxWorkflowJob,
    cancelAsked: boolean,
  ): Promise<RunEnd> {
    const what = `AWX ${awxJob.kind === 'job' ? 'job' : 'workflow job'} ${awxJob.id}`;
    const explanation = (job as { job_explanation?: string }).job_explanation || '';
    switch (job.status) {
      case 'successful':
        return { state: 'succeeded', failureClass: null, summary: `${what} successful` };
      case 'canceled':
        return cancelAsked
          ? {
              state: 'timed_out',
              failureClass: 'timed_out',
              summary: `run timeout reached; ${what} canceled`,
            }
          : { state: 'canceled', failureClass: 'canceled', summary: `${what} canceled in AWX` };
      case 'error':
        return {
          state: 'failed',
          failureClass: 'job_error',
          summary: `${what} error: ${explanation}`.trim(),
        };
      default: {
        if (awxJob.kind === 'workflow_job') {
          const approvals = await this.deps.awx.approvalsOfWorkflowJob(awxJob.id).catch(() => []);
          const refused = approvals.find((a) => a.status === 'failed');
          if (refused?.timed_out) {
            return {
              state: 'timed_out',
              failureClass: 'timed_out',
              summary: `approval "${refused.name}" expired`,
            };
          }
          if (refused)
            return { state: 'denied', failureClass: 'denied', summary: `approval "${refused.name}" denied` };
        }
        return {
          state: 'failed',
          failureClass: 'job_failed',
          summary: `${what} failed ${explanation}`.trim(),
        };
      }
    }
  }

  // ---- outcome ----------------------------------------------------------------------------

  /**
   * Writes the end of a run: the run record and the journal entry on the anchor in one fenced
   * write, then `unicop.outcomes` and the audit trail; then, if its failure class says so, the
   * retry intent (a new run, visible in the timeline).
   */
  private async finish(
    root: PluginRoot,
    lease: RootLease,
    run: ActiveRun,
    end: RunEnd,
    options: { retry?: boolean } = {},
  ): Promise<void> {
    const finishedAt = this.now();
    run.log.add(finishedAt, outcomeLevel(end.state), `${end.state}: ${end.summary}`, {
      state: end.state,
      failure_class: end.failureClass,
    });
    await this.writeRun(lease, run, root.key, run, end.state, {
      outcome_class: end.failureClass ?? '',
      summary: end.summary,
      journal: { kind: journalKind(end.state), comments: this.journalText(run, end) },
    });
    const outcome = cloudEvent('outcome', {
      id: deterministicUuidv7(finishedAt.getTime(), run.runId, 'outcome'),
      source: reconcilerSource,
      subject: root.key,
      data: {
        runId: run.runId,
        rootKey: root.key,
        state: end.state,
        failureClass: end.failureClass,
        snapshotHash: run.snapshotHash,
        fencingToken: lease.fencingToken,
        intentId: run.intentId,
        awxJobId: run.awx?.id ?? null,
        awxJobUrl: run.awx?.url ?? null,
        summary: end.summary,
        startedAt: run.startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
      },
    });
    const messages: EventLogMessage[] = [
      { topic: eventTypes.outcome.topic, key: root.key, value: JSON.stringify(outcome) },
      this.auditEvent(root.key, `run.${end.state}`, end.failureClass ? 'failed' : 'ok', end.summary, {
        ...this.correlation(run, lease),
        failureClass: end.failureClass,
        awxJobId: run.awx?.id ?? null,
      }),
    ];
    const retry = options.retry !== false ? this.retryIntent(root.key, run, end, finishedAt) : null;
    if (retry) messages.push(...retry);
    await this.appendPersistently(messages);
    this.deps.metrics?.runs.inc({ state: end.state, failure_class: end.failureClass ?? 'none' });
    this.deps.metrics?.runDuration.observe(
      { state: end.state },
      Math.max(0, finishedAt.getTime() - run.startedAt.getTime()) / 1000,
    );
  }

  /** The retry intent and its audit event when the failure class retries and attempts remain. */
  private retryIntent(rootKey: string, run: ActiveRun, end: RunEnd, at: Date): EventLogMessage[] | null {
    if (!end.failureClass || failureActions[end.failureClass].action !== 'retry') return null;
    const attempt = (run.cause.attempt ?? 1) + 1;
    const { retry } = this.deps.options;
    const correlation = { runId: run.runId, failureClass: end.failureClass };
    if (attempt > retry.maxAttempts) {
      return [
        this.auditEvent(
          rootKey,
          'run.retries_exhausted',
          'failed',
          `${retry.maxAttempts} attempts failed`,
          correlation,
        ),
      ];
    }
    const notBefore = new Date(at.getTime() + retryDelayMs(retry, attempt));
    const { intentId, message } = intentMessage(
      reconcilerSource,
      rootKey,
      {
        kind: 'retry',
        changeId: run.cause.changeId,
        requestId: run.cause.requestId,
        event: run.cause.event,
        objectType: run.cause.objectType,
        objectId: run.cause.objectId,
        actor: 'unicop-reconciler',
        retryOf: run.runId,
        attempt,
        notBefore: notBefore.toISOString(),
      },
      // Derived from the failed run: publishing it again (after a crash) queues nothing new.
      { intentId: deterministicUuidv7(at.getTime(), run.runId, 'retry'), at },
    );
    return [
      message,
      this.auditEvent(rootKey, 'run.retry_scheduled', 'ok', failureActions[end.failureClass].why, {
        ...correlation,
        intentId,
        attempt,
        notBefore: notBefore.toISOString(),
      }),
    ];
  }

  private journalText(run: ActiveRun, end: RunEnd): string {
    const job = run.awx
      ? ` — [AWX ${run.awx.kind === 'job' ? 'job' : 'workflow job'} ${run.awx.id}](${run.awx.url})`
      : '';
    const why = end.failureClass ? ` (${end.failureClass})` : '';
    return (
      `UNICOP run \`${run.runId}\` **${end.state}**${why}${job}\n\n` +
      `${end.summary}\n\nSnapshot \`${run.snapshotHash.slice(0, 12)}\`, cause ${run.cause.kind}.`
    );
  }

  // ---- writes -----------------------------------------------------------------------------

  private newRun(job: ReconcileJobData, snapshotHash: string): ActiveRun {
    return {
      runId: uuidv7(),
      snapshotHash,
      cause: job.cause,
      intentId: job.intentId,
      startedAt: this.now(),
      leasedAt: this.now(),
      state: 'queued',
      awx: null,
      log: new RunLog(),
    };
  }

  /**
   * One fenced write of the run record: created the first time (`existing` null), patched after.
   * A refusal by the fence marks the lease lost and throws LeaseLostError.
   */
  private async writeRun(
    lease: RootLease,
    run: ActiveRun,
    rootKey: string,
    existing: ActiveRun | null,
    state: RunState,
    fields: Omit<RunWrite, 'fencing_token' | 'state'> = {},
  ): Promise<void> {
    const write: RunWrite = {
      fencing_token: lease.fencingToken,
      state,
      snapshot_hash: run.snapshotHash,
      log_lines: run.log.lines(),
      ...fields,
    };
    try {
      if (existing) {
        await this.deps.plugin.updateRun(run.runId, write);
      } else {
        await this.deps.plugin.createRun({
          ...write,
          run_id: run.runId,
          root: rootKey,
          snapshot_hash: run.snapshotHash,
          cause: run.cause.kind,
        });
      }
    } catch (error) {
      // A 409 on a run write is the fence (this lease is no longer ours) or the run state machine,
      // whose refusal names the `allowed` next states; never told apart by the message's words.
      if (error instanceof PluginConflictError && error.allowed === null) {
        lease.markLost(error.detail);
        throw new LeaseLostError(error.detail);
      }
      throw error;
    }
    run.state = state;
  }

  /**
   * The outcome is already in NetBox when its events are appended: a Kafka hiccup must not lose
   * them, so the append is tried again with backoff for up to about a minute before giving up loudly.
   */
  private async appendPersistently(messages: EventLogMessage[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.deps.eventLog.append(messages);
        return;
      } catch (error) {
        if (attempt >= 6) throw error;
        this.deps.log.warn({ err: error, attempt }, 'outcome events not yet on Kafka; trying again');
        await sleep(500 * 2 ** attempt);
      }
    }
  }

  private correlation(run: ActiveRun, lease: RootLease): Record<string, string | number | null> {
    return {
      runId: run.runId,
      intentId: run.intentId,
      fencingToken: lease.fencingToken,
      snapshotHash: run.snapshotHash,
    };
  }

  private auditEvent(
    rootKey: string,
    action: AuditAction,
    outcome: EventData<'audit'>['outcome'],
    reason: string | null,
    correlation: Record<string, string | number | null>,
  ): EventLogMessage {
    return rootAuditMessage(
      reconcilerSource,
      this.deps.options.holder,
      rootKey,
      action,
      outcome,
      reason,
      correlation,
    );
  }

  private audit(
    rootKey: string,
    action: AuditAction,
    outcome: EventData<'audit'>['outcome'],
    reason: string | null,
    correlation: Record<string, string | number | null>,
  ): Promise<void> {
    return this.deps.eventLog.append([this.auditEvent(rootKey, action, outcome, reason, correlation)]);
  }

  private jobUrl(kind: AwxJobKind, id: number): string {
    const base = this.deps.options.awxUiUrl.replace(/\/+$/, '');
    return `${base}/#/jobs/${kind === 'job' ? 'playbook' : 'workflow'}/${id}/output`;
  }
}

// ---- small pure pieces ------------------------------------------------------------------------

function policy(root: PluginRoot): Record<string, unknown> {
  return (root.policy ?? {}) as Record<string, unknown>;
}

function templateOf(root: PluginRoot): { type: 'job' | 'workflow'; id: number | null } {
  const template = (root.awx_template ?? {}) as { type?: string; id?: number | null };
  return { type: template.type === 'workflow' ? 'workflow' : 'job', id: template.id ?? null };
}

function activeRunOf(record: PluginRun): ActiveRun {
  const kind: AwxJobKind = record.awx_job_type === 'workflow' ? 'workflow_job' : 'job';
  return {
    runId: record.run_id,
    snapshotHash: record.snapshot_hash,
    cause: {
      kind: record.cause as ReconcileJobData['cause']['kind'],
      changeId: null,
      requestId: null,
      event: null,
      objectType: null,
      objectId: null,
      actor: null,
      at: record.started,
    },
    intentId: null,
    startedAt: new Date(record.started),
    leasedAt: new Date(record.started),
    state: record.state,
    awx: record.awx_job_id ? { kind, id: record.awx_job_id, url: record.awx_job_url } : null,
    log: new RunLog((record as { log_lines?: RunLogLine[] }).log_lines ?? []),
  };
}

function misconfigured(summary: string): RunEnd {
  return { state: 'failed', failureClass: 'template_misconfigured', summary };
}

/** A launch that did not happen, classified once. */
function launchFailure(error: unknown, templateId: number): RunEnd {
  if (error instanceof AwxPromptsIgnoredError) {
    return misconfigured(`AWX template ${templateId} ignored launch fields: ${error.message}`);
  }
  if (error instanceof AwxNotFoundError) return misconfigured(`AWX template ${templateId} does not exist`);
  if (error instanceof AwxAuthError || (error instanceof AwxError && error.retriable)) {
    return {
      state: 'failed',
      failureClass: 'executor_unavailable',
      summary: `launch failed: ${error.message}`,
    };
  }
  if (error instanceof AwxError) return misconfigured(`AWX refused the launch: ${error.message}`);
  throw error;
}

function outcomeLevel(state: TerminalRunState): RunLogLine['level'] {
  if (state === 'succeeded' || state === 'skipped') return 'info';
  if (state === 'canceled' || state === 'denied') return 'warning';
  return 'error';
}

function journalKind(state: TerminalRunState): 'info' | 'success' | 'warning' | 'danger' {
  if (state === 'succeeded') return 'success';
  if (state === 'skipped') return 'info';
  if (state === 'canceled' || state === 'denied') return 'warning';
  return 'danger';
}

/** The audit action of a followed run's state change: the one the run state machine declares. */
function transitionAudit(from: RunState, to: RunState): AuditAction {
  const event = transitionEvent(from, to);
  if (event === null) throw new Error(`the run state machine has no transition ${from} -> ${to}`);
  return event;
}
