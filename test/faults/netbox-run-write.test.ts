/**
 * NetBox answering 503 to a fenced run write — the terminal `PATCH runs/{run_id}/` that carries the
 * outcome and the journal entry — which the real NetBox does not do on demand (stopping it refuses
 * connections instead; a proxy or an overloaded gunicorn answers 503). Decision 0006 items 12 and 14
 * and docs/runbooks/netbox-unavailable.md: the write fails with NetboxUnavailableError (retriable),
 * the reconcile job pauses (delayed, neither failed nor completed), nothing is launched again; when
 * the job comes back it adopts the open run and writes its end once.
 *
 * The real reconcile worker (BullMQ queue, workers/reconciler/worker.ts) and reconciler run against
 * the real NetBox plugin, Kafka and the stack's real AWX 24.6.1; nock answers only that one write. Happy path
 * against the real services: test/workers/worker-pause.test.ts, "delays the job while NetBox refuses
 * connections, then runs it when NetBox is back" (and test/workers/reconciler.test.ts for the write).
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.js';
import { createWorkerMetrics } from '../../workers/metrics.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { type BackHalf, createSite, eventually, reconcileJob, startBackHalf } from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';
import { startNock, stopNock } from './nock.js';

const log = createLogger('faults-netbox', process.env.UNICOP_TEST_LOG ?? 'silent');

describe('faults: NetBox answers 503 to a fenced run write', () => {
  let back: BackHalf;
  let nock: ReturnType<typeof startNock>;
  beforeAll(async () => {
    nock = startNock();
    back = await startBackHalf();
  });
  afterAll(async () => {
    await back?.stop();
    stopNock();
  });

  it('the terminal run write answered 503 pauses the job; it comes back, adopts the run and writes the end once', async () => {
    const site = await createSite();
    const refused = nock(stack.netboxUrl(), { allowUnmocked: true })
      .patch(
        /^\/api\/plugins\/unicop\/runs\/[^/]+\/$/,
        (body: { state?: string }) => body.state === 'succeeded',
      )
      .once()
      .reply(503, '<html><body><h1>503 Service Unavailable</h1></body></html>', {
        'Content-Type': 'text/html',
      });
    const queueName = uniqueName('reconcile-faults');
    const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: stack.redisUrl() } });
    const metrics = createWorkerMetrics();
    const worker = startReconcileWorker(
      back.reconciler(),
      { redisUrl: stack.redisUrl(), concurrency: 1, queueName, metrics, pauseMinMs: 500, pauseMaxMs: 1000 },
      log,
    );
    try {
      const job = reconcileJob(site.rootKey);
      await queue.add('reconcile', job, { jobId: job.intentId });
      const [run] = await eventually(
        async () => {
          const runs = await back.plugin.listRuns(site.rootKey);
          return runs[0]?.state === 'succeeded' ? runs : undefined;
        },
        'the run to end succeeded after the paused job came back',
        480_000,
      );
      await eventually(
        async () => ((await queue.getJobCounts('completed')).completed === 1 ? true : undefined),
        'the job to complete',
        60_000,
      );

      // Captured after the act: the 503 was served, the job paused once and was not failed.
      expect(refused.isDone()).toBe(true);
      expect(await queue.getJobCounts('failed', 'completed')).toEqual({ failed: 0, completed: 1 });
      const counted = (await metrics.registry.getSingleMetric('unicop_reconcile_jobs_total')?.get())?.values;
      expect(counted?.find((v) => v.labels.result === 'paused')?.value).toBe(1);
      expect(counted?.find((v) => v.labels.result === 'failed')).toBeUndefined();
      // One run, one AWX job: the returning job adopted the run instead of launching again.
      const runs = await back.plugin.listRuns(site.rootKey);
      expect(runs).toHaveLength(1);
      expect(run?.outcome_class).toBe('');
      const jobs = await back.awx.jobsOf(site.rootKey);
      expect(jobs).toHaveLength(1);
      expect(jobs[0]?.run_id).toBe(run?.run_id);
      const root = await back.plugin.findRoot(site.rootKey);
      expect(root?.status).toBe('in_sync');
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  }, 600_000);
});
