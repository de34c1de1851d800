/**
 * NetBox answering 503 to a fenced run write — the terminal `POST runs/{run_id}/write/` (decision 0064) that carries the
 * outcome and the journal entry — which the real NetBox does not do on demand (stopping it refuses
 * connections instead; a proxy or an overloaded gunicorn answers 503). Decision 0006 items 12 and 14
 * and docs/runbooks/netbox-unavailable.md: the write fails with NetboxUnavailableError (retriable);
 * the reconciler reads the run back (still open: written again; already ended: the write landed and
 * its answer was lost) before appending the outcome, so the end is written once and exactly one
 * outcome reaches Kafka; nothing is launched again. NetBox away for longer pauses the job, which
 * adopts the open run when it comes back (test/workers/worker-pause.test.ts).
 *
 * The real reconcile worker (BullMQ queue, workers/reconciler/worker.ts) and reconciler run against
 * the real NetBox plugin, Kafka and the stack's real AWX 24.6.1; nock answers only that one write. Happy path
 * against the real services: test/workers/worker-pause.test.ts, "delays the job while NetBox refuses
 * connections, then runs it when NetBox is back" (and test/workers/reconciler.test.ts for the write).
 */
import { execFile } from 'node:child_process';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { createWorkerMetrics } from '../../workers/metrics.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { TopicTail } from '../support/kafka.js';
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

  it('the terminal run write answered 503 is read back and written again when NetBox answers: the end written once, nothing launched again', async () => {
    const site = await createSite();
    const refused = nock(stack.netboxUrl(), { allowUnmocked: true })
      .post(
        /^\/api\/plugins\/unicop\/runs\/[^/]+\/write\/$/,
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
      // Manual: run even if another worker on the shared stack reconciled the new site first.
      const job = reconcileJob(site.rootKey, 'manual');
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

      // Captured after the act: the 503 was served; the job neither paused nor failed (the write
      // was tried again in place, after reading the run back still open).
      expect(refused.isDone()).toBe(true);
      expect(await queue.getJobCounts('failed', 'completed')).toEqual({ failed: 0, completed: 1 });
      const counted = (await metrics.registry.getSingleMetric('unicop_reconcile_jobs_total')?.get())?.values;
      expect(counted?.find((v) => v.labels.result === 'done')?.value).toBe(1);
      expect(counted?.find((v) => v.labels.result === 'paused')).toBeUndefined();
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
  it('a terminal run write NetBox applied but whose answer was lost still puts exactly one outcome on Kafka', async () => {
    const site = await createSite();
    const tail = await TopicTail.start([topics.outcomes, topics.audit]);
    // The write reaches the real NetBox (through curl, a process nock does not see); its answer is
    // replaced by a connection reset, as when the client gave up waiting on a loaded NetBox.
    const applied: string[] = [];
    let candidate = '';
    let written: { path: string; body: string } | null = null;
    const lost = nock(stack.netboxUrl(), { allowUnmocked: true })
      .post(
        (path: string) => {
          if (!/^\/api\/plugins\/unicop\/runs\/[^/]+\/write\/$/.test(path)) return false;
          candidate = path;
          return true;
        },
        (body: { state?: string }) => {
          if (body.state !== 'succeeded') return false;
          written = { path: candidate, body: JSON.stringify(body) };
          return true;
        },
      )
      .once()
      .reply(
        () =>
          // The answer: a connection reset once the write has landed (nock destroys the request
          // with the error a reply function's promise rejects with).
          new Promise<[number, string]>((_resolve, reject) => {
            const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST'];
            args.push('-H', 'Content-Type: application/json');
            args.push('-H', `Authorization: Bearer ${stack.netboxToken()}`);
            args.push('--data-binary', written?.body ?? '', `${stack.netboxUrl()}${written?.path ?? ''}`);
            execFile('curl', args, (error, status) => {
              // The exit code only: curl's message would repeat its command line, token included.
              applied.push(error ? `curl exited ${String(error.code)}` : status);
              reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
            });
          }),
      );
    const queueName = uniqueName('reconcile-faults');
    const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: stack.redisUrl() } });
    const worker = startReconcileWorker(
      back.reconciler(),
      { redisUrl: stack.redisUrl(), concurrency: 1, queueName, pauseMinMs: 500, pauseMaxMs: 1000 },
      log,
    );
    try {
      const job = reconcileJob(site.rootKey);
      await queue.add('reconcile', job, { jobId: job.intentId });
      const [outcome] = await tail.waitFor(
        (m) => m.topic === topics.outcomes && m.key === site.rootKey,
        1,
        480_000,
      );
      await eventually(
        async () => ((await queue.getJobCounts('completed')).completed === 1 ? true : undefined),
        'the job to complete',
        60_000,
      );
      const outcomes = await tail.settle((m) => m.topic === topics.outcomes && m.key === site.rootKey, 3000);
      const ends = tail.messages.filter(
        (m) =>
          m.topic === topics.audit &&
          m.key === site.rootKey &&
          (m.value.data as { action: string }).action === 'run.succeeded',
      );

      // Captured after the act: NetBox applied the write whose answer was lost (curl saw 200).
      expect(lost.isDone()).toBe(true);
      expect(applied).toEqual(['200']);
      const runs = await back.plugin.listRuns(site.rootKey);
      expect(runs).toHaveLength(1);
      expect(runs[0]?.state).toBe('succeeded');
      // Exactly one outcome and one terminal audit event for that run, none lost, none doubled.
      expect(outcomes).toHaveLength(1);
      expect(outcome?.value.data).toMatchObject({ runId: runs[0]?.run_id, state: 'succeeded' });
      expect(ends).toHaveLength(1);
      expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(1);
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
      await tail.stop();
    }
  }, 600_000);
});
