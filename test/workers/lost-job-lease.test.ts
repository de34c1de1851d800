/**
 * A lease whose job Redis lost (issue #14 item 2, observation 6; decision 0038), on the real stack:
 * NetBox's plugin, Kafka, real AWX, and Redis — where the loss is this test's own queue being
 * obliterated (never a FLUSHALL of the shared Redis). The first holder launches an AWX job and then
 * stops (its NetBox calls never return: no renewal, no write), holding a 600 s lease. The queue
 * loses the job. The sweeper for that queue frees the lease at once (it is held for this queue and
 * the root has no job in it), emits an intent marked `openRun`, and the next holder adopts the run —
 * the same run, the same AWX job — long before the old lease would have expired; the old token is
 * fenced. A lease whose job is still in the queue, or that another queue's holder holds, is left.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient, PluginConflictError, type PluginRoot } from '../../core/plugin/client.js';
import { dispatchIntents } from '../../workers/dispatcher/dispatcher.js';
import {
  holderFor,
  queueTag,
  type ReconcileJobData,
  reconcileJobName,
  reconcileJobOptions,
  reconcilePriority,
  rootJobsOf,
} from '../../workers/reconcile-queue.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { Sweeper } from '../../workers/sweeper/sweeper.js';
import { startControlView } from '../support/freeze.js';
import { TopicTail } from '../support/kafka.js';
import { type BackHalf, createSite, eventually, reconcileJob, startBackHalf } from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

const log = createLogger('lost-job-lease-test', process.env.UNICOP_TEST_LOG ?? 'silent');
/** The plugin with a long timeout: on a loaded stack NetBox may take over 10 s to answer. */
const patient = new PluginClient({
  baseUrl: stack.netboxUrl(),
  token: stack.netboxToken(),
  timeoutMs: 60_000,
});
const terminal = ['succeeded', 'failed', 'canceled', 'timed_out', 'denied', 'skipped'];

/** The plugin until `stop()`; after it, every call hangs, as in a process that froze. */
function stoppable(plugin: PluginClient): { plugin: PluginClient; stop(): void } {
  let stopped = false;
  const proxy = new Proxy(plugin, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        stopped ? new Promise(() => undefined) : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
  return { plugin: proxy, stop: () => (stopped = true) };
}

/** The sweeper's view of NetBox narrowed to one root: the others on this NetBox are other tests'. */
function oneRoot(plugin: PluginClient, rootKey: string) {
  return {
    async *allRoots(): AsyncGenerator<PluginRoot> {
      const root = await plugin.findRoot(rootKey);
      if (root) yield root;
    },
    releaseLease: (rootId: number, token: number) => plugin.releaseLease(rootId, token),
  };
}

describe('a lease whose job Redis lost is freed by the sweeper, not waited out', () => {
  let back: BackHalf;
  let tail: TopicTail;
  beforeAll(async () => {
    back = await startBackHalf();
    tail = await TopicTail.start([topics.intents, topics.audit]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  /** The root's runs; none while NetBox does not answer (a loaded stack), so a wait looks again. */
  const runsOf = (rootKey: string) => patient.listRuns(rootKey).catch(() => []);

  it('frees the lost job’s lease at once; the next holder adopts the run long before the lease would expire', async () => {
    const site = await createSite();
    const queueName = uniqueName('reconcile-lost');
    const connection = { url: stack.redisUrl() };
    const queue = new Queue<ReconcileJobData>(queueName, { connection });
    const tag = queueTag(stack.redisUrl(), queueName);
    const frozen = stoppable(
      new PluginClient({ baseUrl: stack.netboxUrl(), token: stack.netboxToken(), timeoutMs: 60_000 }),
    );
    const first = startReconcileWorker(
      back.reconciler(
        { holder: holderFor(uniqueName('worker'), tag), leaseTtlSeconds: 600 },
        { plugin: frozen.plugin },
      ),
      { redisUrl: stack.redisUrl(), concurrency: 1, queueName },
      log,
    );
    const freezeView = await startControlView(back.kafka, log);
    const sweeper = new Sweeper({
      plugin: oneRoot(patient, site.rootKey),
      eventLog: back.eventLog,
      log,
      intervalMs: 3_600_000,
      jobs: rootJobsOf(queue, tag),
    });
    let second: ReturnType<typeof startReconcileWorker> | undefined;
    try {
      const job = reconcileJob(site.rootKey);
      await queue.add(reconcileJobName, job, reconcileJobOptions(job));
      const launched = await eventually(
        async () => {
          const [run] = await runsOf(site.rootKey);
          return run?.awx_job_id ? run : undefined;
        },
        'the first holder launched its AWX job',
        180_000,
      );
      frozen.stop(); // the first holder stops: no renewal, no write, no release
      const held = (await patient.findRoot(site.rootKey))?.lease;
      expect(held?.live).toBe(true);
      // While the job is in the queue (active), the lease is its holder's: left alone.
      expect((await sweeper.sweep()).freed).toEqual([]);
      // Another queue's sweeper never judges this queue's leases.
      const otherQueue = new Queue<ReconcileJobData>(uniqueName('reconcile-other'), { connection });
      const other = new Sweeper({
        plugin: oneRoot(patient, site.rootKey),
        eventLog: back.eventLog,
        log,
        intervalMs: 3_600_000,
        jobs: rootJobsOf(otherQueue, queueTag(stack.redisUrl(), otherQueue.name)),
      });
      expect((await other.sweep()).freed).toEqual([]);
      await otherQueue.close();

      // Redis loses the queue (this queue's keys only), the active job with it.
      await first.close(true);
      await queue.obliterate({ force: true });
      expect(await queue.getDeduplicationJobId(site.rootKey)).toBeNull();
      const report = await sweeper.sweep();
      expect(report.freed).toEqual([site.rootKey]);
      expect(report.emitted).toEqual([site.rootKey]);
      const freedAudits = await tail.waitFor((m) => {
        const d = m.value.data as { action?: string; subjectId?: string };
        return m.topic === topics.audit && d.action === 'lease.freed' && d.subjectId === site.rootKey;
      });
      const freedAudit = freedAudits[0]?.value.data as EventData<'audit'> | undefined;
      expect(freedAudit?.correlation.fencingToken).toBe(held?.token);
      const [intent] = await tail.waitFor((m) => m.topic === topics.intents && m.key === site.rootKey);
      if (!intent) throw new Error('no intent');
      const { intentId, cause } = intent.value.data as EventData<'intent'>;
      expect(cause.kind).toBe('sweep');
      expect(cause.openRun).toBe(true);

      // The rest of the loop on the same queue: the dispatcher queues the intent ahead of fresh
      // ones, and a healthy holder takes it.
      await dispatchIntents(
        [
          {
            topic: intent.topic,
            partition: intent.partition,
            offset: intent.offset,
            key: site.rootKey,
            value: JSON.stringify(intent.value),
          },
        ],
        { queue, freezeView, eventLog: back.eventLog },
      );
      expect((await queue.getJob(intentId))?.priority).toBe(reconcilePriority.inFlight);
      second = startReconcileWorker(
        back.reconciler({}, { plugin: patient }),
        { redisUrl: stack.redisUrl(), concurrency: 1, queueName },
        log,
      );
      const [ended] = await eventually(
        async () => {
          const runs = await runsOf(site.rootKey);
          return runs.length > 0 && runs.every((r) => terminal.includes(r.state)) ? runs : undefined;
        },
        'the adopted run ended',
        // A real AWX job: a container per job, 10–40 s, more when other files load the stack.
        300_000,
      );
      // The same run, adopted (not launched again), ended while the old lease would still be live.
      expect(ended?.run_id).toBe(launched.run_id);
      expect(ended?.state).toBe('succeeded');
      expect(ended?.awx_job_id).toBe(launched.awx_job_id);
      expect(ended?.log_lines.some((l) => /adopted by/.test(l.message))).toBe(true);
      expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(1);
      expect(Date.parse(ended?.finished ?? '')).toBeLessThan(Date.parse(held?.expires_at ?? ''));
      // The old holder is fenced: its token renews nothing.
      const renewal = await patient
        .renewLease(site.root.id, held?.token ?? -1, 60)
        .catch((error: unknown) => error);
      expect(renewal).toBeInstanceOf(PluginConflictError);
    } finally {
      await first.close(true);
      await second?.close();
      await freezeView.stop();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  }, 600_000);
});
