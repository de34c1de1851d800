/**
 * The BullMQ side of the reconciler: a Worker on the reconcile queue whose processor maps the job's
 * result (result.ts: done | later | terminal) to the queue action, the metric and the log line in
 * ONE switch — done completes the job; `later` moves it to the delayed set until the given time (a
 * lease held elsewhere, a closed change window, a retry backoff, a global freeze), or, when a
 * retriable error paused it — NetBox unavailable, a lost AWX launch answer, Kafka briefly away —
 * with a delay growing per consecutive pause (the workers pause, nothing is lost: the run is
 * adopted when the job comes back); terminal is a programming error and fails the job, visibly.
 * Audit per branch: `done` and a decided `later` were audited where the decision was taken, with
 * the run's correlation (reconcile.ts: run outcomes, intent.parked, run.window_wait, …); a pause
 * and a terminal error are audited here (`job.paused`, `job.failed`), as nothing else saw them. A
 * job handed back with `later` is raised to the in-flight priority first, so when it is due it goes
 * ahead of fresh intents (decision 0038). A job handed back because its run awaits approval is
 * promoted early when AWX notifies about the run's workflow job (decision 0044). A worker killed mid-job leaves the
 * job stalled; BullMQ hands it to another worker, whose reconciler adopts the open run
 * (maxStalledCount is high on purpose).
 */
import { DelayedError, type Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { configDefaults } from '../../core/config.js';
import type { EventLog } from '../../core/event-log/port.js';
import { type AuditAction, rootAuditMessage } from '../../core/events/audit.js';
import { reconcileQueueName } from '../../core/queues.js';
import { contextFrom, failed, inSpan, SpanKind, tracer } from '../../core/tracing.js';
import type { WorkerMetrics } from '../metrics.js';
import { type ReconcileJobData, reconcilePriority } from '../reconcile-queue.js';
import { reconcileQueueTiming } from '../timing.js';
import type { JobWakeups } from './awx-notifications.js';
import type { Reconciler } from './reconcile.js';
import { settle } from './result.js';
import { reconcilerSource } from './scope.js';
import type { AwxJobRef } from './steps.js';

export interface ReconcileWorkerOptions {
  redisUrl: string;
  concurrency: number;
  /** Pause after a retriable error: first delay, doubling per consecutive pause, capped (UNICOP_PAUSE_*). */
  pauseMinMs?: number;
  pauseMaxMs?: number;
  queueName?: string;
  metrics?: WorkerMetrics;
  /** Where the pause and terminal branches are audited (unicop.audit); none: not audited. */
  eventLog?: EventLog;
  /** The audit events' actor (the reconciler's holder name). */
  actor?: string;
  /** The lease TTL: a killed worker's job is back before its lease expires (workers/timing.ts). None: BullMQ's defaults. */
  leaseTtlSeconds?: number;
  /**
   * AWX's notifications: a job handed back while its run awaits approval is promoted (due at once)
   * when one about its workflow job arrives. None: it comes back at its re-check time only.
   */
  wakeups?: JobWakeups;
}

type JobData = ReconcileJobData & { pauses?: number };

export function startReconcileWorker(
  reconciler: Reconciler,
  options: ReconcileWorkerOptions,
  log: Logger,
): Worker<JobData> {
  const pauseMin = options.pauseMinMs ?? configDefaults.UNICOP_PAUSE_MIN_MS;
  const pauseMax = options.pauseMaxMs ?? configDefaults.UNICOP_PAUSE_MAX_MS;
  // Best effort: a pause may be Kafka being away; the log line is the record then.
  const audit = (job: JobData, action: AuditAction, reason: string, extra: Record<string, number>) =>
    options.eventLog
      ?.append([
        rootAuditMessage(
          reconcilerSource,
          options.actor ?? 'unicop-reconciler',
          job.rootKey,
          action,
          'failed',
          reason,
          { intentId: job.intentId, ...extra },
        ),
      ])
      .catch((error: unknown) =>
        log.warn({ err: error, rootKey: job.rootKey, action }, 'audit event not written'),
      );
  const closing = new AbortController(); // ends the waits for notifications of handed-back jobs
  const worker = new Worker<JobData>(
    options.queueName ?? reconcileQueueName,
    async (job, token) => {
      const pauses = job.data.pauses ?? 0;
      const pauseMs = Math.min(pauseMax, pauseMin * 2 ** pauses);
      const result = await reconcileTraced(reconciler, job.data, job.attemptsStarted, pauseMs);
      const rootKey = job.data.rootKey;
      switch (result.kind) {
        case 'done':
          if (pauses) await job.updateData({ ...job.data, pauses: 0 });
          options.metrics?.jobs.inc({ result: 'done' });
          return;
        case 'later':
          if (result.pausedBy !== undefined) {
            await job.updateData({ ...job.data, pauses: pauses + 1 });
            options.metrics?.jobs.inc({ result: 'paused' });
            log.warn({ rootKey, delayMs: pauseMs, err: result.pausedBy }, 'job paused on a retriable error');
            void audit(job.data, 'job.paused', result.why, { delayMs: pauseMs, pauses: pauses + 1 });
          } else {
            if (pauses) await job.updateData({ ...job.data, pauses: 0 });
            options.metrics?.jobs.inc({ result: 'later' });
            log.info({ rootKey, at: result.at, reason: result.why }, 'job delayed');
          }
          // Taken once, handed back: it goes ahead of fresh intents when it is due (reconcile-queue.ts).
          if (job.priority !== reconcilePriority.inFlight) {
            await job.changePriority({ priority: reconcilePriority.inFlight });
          }
          await job.moveToDelayed(result.at.getTime(), token);
          if (result.wakeOn) wakeOnNotification(job, result.wakeOn, result.at);
          throw new DelayedError();
        case 'terminal':
          options.metrics?.jobs.inc({ result: 'failed' });
          await audit(
            job.data,
            'job.failed',
            `${result.class}: the job failed (a programming error, not retried)`,
            {},
          );
          throw result.error;
      }
    },
    {
      connection: { url: options.redisUrl },
      concurrency: options.concurrency,
      ...(options.leaseTtlSeconds === undefined ? {} : reconcileQueueTiming(options.leaseTtlSeconds)),
      maxStalledCount: 1000,
      autorun: true,
    },
  );
  // A hint, like every AWX notification: the job comes back at its time anyway (decision 0044).
  worker.on('closing', () => closing.abort());
  function wakeOnNotification(job: Job<JobData>, awx: AwxJobRef, at: Date) {
    const wakeups = options.wakeups;
    if (!wakeups) return;
    void wakeups
      .wait(awx.kind, awx.id, Math.max(0, at.getTime() - Date.now()), closing.signal)
      .then(async (woken) => {
        if (!woken || closing.signal.aborted) return;
        // Refused when the job is no longer delayed (due already, or taken): nothing to do then.
        await job.promote().then(
          () => log.info({ rootKey: job.data.rootKey, awxJob: awx }, 'job woken by an AWX notification'),
          () => undefined,
        );
      });
  }
  worker.on('failed', (job, error) => {
    if (!(error instanceof DelayedError)) {
      log.error({ err: error, rootKey: job?.data.rootKey }, 'reconcile job failed');
    }
  });
  return worker;
}

const reconcilerTracer = tracer('reconciler');

/**
 * One reconciliation in a span of the trace the job carries (its intent's dispatch): the NetBox and
 * AWX calls made meanwhile are its children; the span says the queue result and why.
 */
function reconcileTraced(reconciler: Reconciler, data: JobData, attempt: number, pauseMs: number) {
  const attributes = {
    'unicop.root_key': data.rootKey,
    'unicop.intent_id': data.intentId,
    'unicop.attempt': attempt,
  };
  return inSpan(
    reconcilerTracer,
    `reconcile ${data.rootKey.split('/')[0]}`,
    { kind: SpanKind.CONSUMER, parent: contextFrom({ traceparent: data.traceparent }), attributes },
    async (span) => {
      const result = await settle(() => reconciler.reconcile(data), pauseMs);
      span.setAttribute('unicop.result', result.kind);
      if (result.kind === 'later') span.setAttribute('unicop.later', result.why);
      if (result.kind === 'terminal') failed(span, result.error);
      return result;
    },
  );
}
