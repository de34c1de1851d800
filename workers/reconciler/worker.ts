/**
 * The BullMQ side of the reconciler: a Worker on the reconcile queue whose processor maps the
 * reconciler's result to queue actions in one place — done completes the job; `later` moves it to
 * the delayed set until the given time (a lease held elsewhere, a closed change window, a retry
 * backoff, a global freeze); a retriable error — NetBox unavailable, a lost AWX launch answer,
 * Kafka briefly away — pauses the job with a growing delay (the workers pause, nothing is lost: the
 * run is adopted when the job comes back). Anything else is a programming error and fails the
 * job, visibly. A worker killed mid-job leaves the job stalled; BullMQ hands it to another worker,
 * whose reconciler adopts the open run (maxStalledCount is high on purpose).
 */
import { DelayedError, type Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { isRetriable } from '../../core/errors.js';
import type { WorkerMetrics } from '../metrics.js';
import { type ReconcileJobData, reconcileQueueName } from '../reconcile-queue.js';
import type { Reconciler } from './reconciler.js';

export interface ReconcileWorkerOptions {
  redisUrl: string;
  concurrency: number;
  /** Pause after NetBox was unavailable: first delay, doubling per consecutive pause, capped. */
  pauseMinMs?: number;
  pauseMaxMs?: number;
  queueName?: string;
  metrics?: WorkerMetrics;
}

type JobData = ReconcileJobData & { pauses?: number };

export function startReconcileWorker(
  reconciler: Reconciler,
  options: ReconcileWorkerOptions,
  log: Logger,
): Worker<JobData> {
  const pauseMin = options.pauseMinMs ?? 2_000;
  const pauseMax = options.pauseMaxMs ?? 60_000;
  const later = async (job: Job<JobData>, token: string | undefined, at: number) => {
    await job.moveToDelayed(at, token);
    throw new DelayedError();
  };
  const worker = new Worker<JobData>(
    options.queueName ?? reconcileQueueName,
    async (job, token) => {
      let result: Awaited<ReturnType<Reconciler['reconcile']>>;
      try {
        result = await reconciler.reconcile(job.data);
      } catch (error) {
        if (!isRetriable(error)) {
          options.metrics?.jobs.inc({ result: 'failed' });
          throw error;
        }
        options.metrics?.jobs.inc({ result: 'paused' });
        const pauses = (job.data.pauses ?? 0) + 1;
        const delay = Math.min(pauseMax, pauseMin * 2 ** (pauses - 1));
        log.warn(
          { rootKey: job.data.rootKey, delayMs: delay, err: error },
          'job paused on a retriable error',
        );
        await job.updateData({ ...job.data, pauses });
        return later(job, token, Date.now() + delay);
      }
      if (job.data.pauses) await job.updateData({ ...job.data, pauses: 0 });
      options.metrics?.jobs.inc({ result: result.kind });
      if (result.kind === 'later') {
        log.info({ rootKey: job.data.rootKey, at: result.at, reason: result.reason }, 'job delayed');
        return later(job, token, result.at.getTime());
      }
    },
    {
      connection: { url: options.redisUrl },
      concurrency: options.concurrency,
      maxStalledCount: 1000,
      autorun: true,
    },
  );
  worker.on('failed', (job, error) => {
    if (!(error instanceof DelayedError)) {
      log.error({ err: error, rootKey: job?.data.rootKey }, 'reconcile job failed');
    }
  });
  return worker;
}
