/**
 * The reconcile worker when NetBox cannot be reached (DESIGN §3.7, "NetBox down → workers pause"):
 * the job is neither failed nor dropped but delayed with a growing pause, nothing is launched, and
 * once NetBox answers again the same job runs to a succeeded run.
 */
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient } from '../../core/plugin/client.js';
import { createWorkerMetrics } from '../../workers/metrics.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { TopicTail } from '../support/kafka.js';
import { type BackHalf, createSite, eventually, reconcileJob, startBackHalf } from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

const lines: string[] = [];
const log = createLogger(
  'pause-test',
  'warn',
  new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  }),
);
/** The delays the worker logged for this root's pauses, in order. */
const pauseDelays = (rootKey: string) =>
  lines
    .map((line) => JSON.parse(line) as { msg?: string; rootKey?: string; delayMs?: number })
    .filter((l) => l.msg === 'job paused on a retriable error' && l.rootKey === rootKey)
    .map((l) => l.delayMs as number);

describe('reconcile worker: NetBox unavailable pauses the job, nothing is lost', () => {
  let back: BackHalf;
  let tail: TopicTail;
  beforeAll(async () => {
    back = await startBackHalf();
    tail = await TopicTail.start([topics.audit]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  it('delays the job while NetBox refuses connections, then runs it when NetBox is back', async () => {
    const site = await createSite();
    const queueName = uniqueName('reconcile-pause');
    const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: stack.redisUrl() } });
    const metrics = createWorkerMetrics();
    // NetBox "down": nothing listens on this port, every call is refused.
    const unreachable = new PluginClient({ baseUrl: 'http://127.0.0.1:9', token: 'unused', timeoutMs: 2000 });
    const paused = startReconcileWorker(
      back.reconciler({}, { plugin: unreachable }),
      {
        redisUrl: stack.redisUrl(),
        concurrency: 1,
        queueName,
        metrics,
        pauseMinMs: 500,
        pauseMaxMs: 1000,
        eventLog: back.eventLog,
      },
      log,
    );
    try {
      const job = reconcileJob(site.rootKey);
      await queue.add('reconcile', job, { jobId: job.intentId });
      const pauses = await eventually(
        async () => {
          const stored = await queue.getJob(job.intentId);
          const count = (stored?.data as { pauses?: number } | undefined)?.pauses ?? 0;
          return count >= 2 ? count : undefined;
        },
        'two pauses',
        30_000,
      );
      expect(pauses).toBeGreaterThanOrEqual(2);
      // A growing pause: pauseMinMs first, doubled per consecutive pause, capped at pauseMaxMs.
      const delays = pauseDelays(site.rootKey);
      expect(delays.slice(0, 2)).toEqual([500, 1000]);
      expect(delays.every((d) => d <= 1000)).toBe(true);
      expect(await queue.getJobCounts('failed', 'completed')).toEqual({ failed: 0, completed: 0 });
      expect(await back.plugin.listRuns(site.rootKey)).toHaveLength(0);
      expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(0);
      const counted = (await metrics.registry.getSingleMetric('unicop_reconcile_jobs_total')?.get())?.values;
      expect(counted?.find((v) => v.labels.result === 'paused')?.value).toBeGreaterThanOrEqual(2);
      // Each pause is on the root's timeline too (job.paused, with the delay and the job's intent).
      const audited = await tail.waitFor((m) => {
        const d = m.value.data as { action?: string; subjectId?: string };
        return m.topic === topics.audit && d.action === 'job.paused' && d.subjectId === site.rootKey;
      }, 2);
      // The first two (more pauses may have come meanwhile on a loaded stack; each is audited).
      expect(
        audited
          .slice(0, 2)
          .map((m) => (m.value.data as { correlation: { delayMs: number } }).correlation.delayMs),
      ).toEqual(delays.slice(0, 2));

      // NetBox is back (a worker that reaches it): the same job completes with a succeeded run.
      await paused.close();
      const healthy = startReconcileWorker(
        back.reconciler(),
        { redisUrl: stack.redisUrl(), concurrency: 1, queueName },
        log,
      );
      try {
        const [run] = await eventually(
          async () => {
            const runs = await back.plugin.listRuns(site.rootKey);
            return runs[0]?.state === 'succeeded' ? runs : undefined;
          },
          'the paused job to run',
          // A real AWX job: a container per job, 10–40 s, more when other files load the stack.
          240_000,
        );
        expect(run?.state).toBe('succeeded');
        // ... run by this very job, which the queue now holds as completed (not failed, not dropped).
        expect(
          await eventually(
            async () => ((await queue.getJobState(job.intentId)) === 'completed' ? 'completed' : undefined),
            'the paused job completed',
            30_000,
          ),
        ).toBe('completed');
        expect(await queue.getJobCounts('failed')).toEqual({ failed: 0 });
      } finally {
        await healthy.close();
      }
    } finally {
      await paused.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  }, 360_000);
});
