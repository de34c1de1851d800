/**
 * The sweeper against the real plugin listing, Kafka and Redis: a root changed while no webhook
 * reached UNICOP gets an intent (cause `sweep`), an in-sync or frozen root does not; once
 * reconciled, the root is left alone. When Redis loses its data (FLUSHDB here), the next tick
 * notices the missing epoch key, sweeps, and the dispatcher puts the lost root's job back. A global
 * freeze set at the admin API (a real bridge → unicop.control → the sweeper's freeze view) holds
 * the owed sweep; lifting it sweeps with cause `resume`.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { startDispatcher } from '../../workers/dispatcher/dispatcher.js';
import { createWorkerMetrics } from '../../workers/metrics.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { redisEpochKey, Sweeper, type SweptRoot, sweepReason } from '../../workers/sweeper/sweeper.js';
import { GlobalSwitch, startControlView, untilGlobal } from '../support/freeze.js';
import { positionGroupAtEnd, TopicTail } from '../support/kafka.js';
import {
  type BackHalf,
  createSite,
  eventually,
  reconcileJob,
  startBackHalf,
  startDispatchAndReconcile,
} from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

const log = createLogger('sweeper-test', process.env.UNICOP_TEST_LOG ?? 'silent');

describe('sweeper: the net under lost webhooks, and the rebuild after Redis lost its data', () => {
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

  it('decides per root from the listing alone', () => {
    const root = (fields: Partial<SweptRoot>): SweptRoot => ({
      frozen: false,
      current_hash: '',
      last_reconciled_hash: '',
      lease: { live: false },
      last_run: null,
      ...fields,
    });
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    expect(sweepReason(root({ current_hash: a, last_reconciled_hash: a }))).toBeNull();
    expect(sweepReason(root({ current_hash: a, last_reconciled_hash: b }))).toMatch(/differs/);
    expect(sweepReason(root({ current_hash: a, last_reconciled_hash: '' }))).toMatch(/differs/);
    expect(sweepReason(root({ current_hash: a, frozen: true }))).toBeNull();
    // Held in a rollout wave not opened yet: its lease is refused, an intent would only be parked.
    expect(sweepReason(root({ current_hash: a, status: 'held' }))).toBeNull();
    expect(sweepReason(root({ current_hash: a, status: 'pending' }))).toMatch(/differs/);
    expect(sweepReason(root({ current_hash: a, lease: { live: true } }))).toBeNull();
    // A terminal failure at this very hash waits for a human or a new change.
    expect(
      sweepReason(root({ current_hash: a, last_run: { state: 'failed', snapshot_hash: a } })),
    ).toBeNull();
    // An open run nobody leases: a worker died and its job was lost.
    expect(
      sweepReason(
        root({ current_hash: a, last_reconciled_hash: a, last_run: { state: 'running', snapshot_hash: a } }),
      ),
    ).toMatch(/open/);
  });

  it('emits a sweep intent for a root whose webhook never came, not for in-sync or frozen roots', async () => {
    const missed = await createSite(); // no event rule points at UNICOP here: the change went unseen
    const inSync = await createSite();
    await back.reconciler().reconcile(reconcileJob(inSync.rootKey));
    const frozen = await createSite();
    await back.plugin.setFrozen(frozen.root.id, true, 'sweeper test');
    const sweeper = new Sweeper({ plugin: back.plugin, eventLog: back.eventLog, log, intervalMs: 3_600_000 });
    try {
      const report = await sweeper.sweep();
      expect(report.emitted).toContain(missed.rootKey);
      expect(report.emitted).not.toContain(inSync.rootKey);
      expect(report.emitted).not.toContain(frozen.rootKey);
      expect(report.scanned).toBeGreaterThanOrEqual(3);
      const [intent] = await tail.waitFor((m) => m.topic === topics.intents && m.key === missed.rootKey);
      expect((intent?.value.data as { cause?: { kind: string } } | undefined)?.cause?.kind).toBe('sweep');

      // That swept intent goes round the loop (dispatcher → queue → reconciler → AWX): in sync.
      // (Handed to the dispatcher directly: the sweep also emitted intents for every other root of
      // this development NetBox that is out of sync, which this test does not wait for.)
      const loop = await startDispatchAndReconcile(back, 1, { fromKafka: false });
      try {
        await loop.dispatch([
          {
            topic: intent?.topic ?? topics.intents,
            partition: intent?.partition ?? 0,
            offset: intent?.offset ?? '0',
            key: missed.rootKey,
            value: JSON.stringify(intent?.value),
          },
        ]);
        await eventually(
          async () => {
            const root = await back.plugin.findRoot(missed.rootKey);
            return root?.status === 'in_sync' ? root : undefined;
          },
          'the swept root reconciled',
          // A real AWX job: a container per job, 10–40 s, more when other files load the stack.
          300_000,
        );
      } finally {
        await loop.stop();
      }
      expect((await sweeper.sweep()).emitted).not.toContain(missed.rootKey);
    } finally {
      await back.plugin.setFrozen(frozen.root.id, false, 'sweeper test done');
    }
  }, 600_000);

  it('sweeps with cause resume when a global freeze set at the admin API is lifted, and not while it holds', async () => {
    const pending = await createSite();
    // As a workers process: the sweeper reads the switch from unicop.control, set by POST /freeze.
    const freezeView = await startControlView(back.kafka, log);
    const global = await GlobalSwitch.start();
    const reason = uniqueName('sweeper freeze test');
    const metrics = createWorkerMetrics();
    // A sweep is owed at once (on start, as in production), so only the freeze keeps it back.
    const sweeper = new Sweeper({
      plugin: back.plugin,
      eventLog: back.eventLog,
      log,
      freezeView,
      metrics,
      intervalMs: 3_600_000,
      checkMs: 100,
      sweepOnStart: true,
    });
    const forPending = (m: { topic: string; key: string | null }) =>
      m.topic === topics.intents && m.key === pending.rootKey;
    const swept = async () => (await metrics.swept.get()).values.reduce((sum, v) => sum + v.value, 0);
    try {
      await global.freeze(reason);
      await untilGlobal(freezeView, true, reason);
      sweeper.start();
      // Held: no intent for any root (the counter moves with each root a walk emits for).
      expect(await tail.settle(forPending, 3000)).toHaveLength(0);
      expect(await swept()).toBe(0);
      await global.resume(`${reason} over`);
      const [intent] = await tail.waitFor(forPending, 1, 60_000);
      expect((intent?.value.data as { cause?: { kind: string } } | undefined)?.cause?.kind).toBe('resume');
    } finally {
      sweeper.stop();
      await global.close(); // resumes if the test left automation frozen
      await freezeView.stop();
    }
  }, 120_000);

  it('Redis lost its data: the next tick sweeps and the dispatcher queues the lost root again', async () => {
    // A Redis database of its own, so FLUSHDB touches nothing else on the stack.
    const url = `${stack.redisUrl()}/7`;
    const redis = new Redis(url, { maxRetriesPerRequest: null });
    const queue = new Queue<ReconcileJobData>(uniqueName('reconcile-rebuild'), { connection: { url } });
    const kafka = back.kafka;
    const groupId = uniqueName('dispatcher');
    await positionGroupAtEnd(kafka, groupId, topics.intents);
    const freezeView = await startControlView(kafka, log);
    const intents = await startDispatcher(
      { queue, freezeView, eventLog: back.eventLog },
      { kafka, log, groupId },
    );
    const pending = await createSite(); // out of sync, no worker on this queue: its job just waits
    const sweeper = new Sweeper({
      plugin: back.plugin,
      eventLog: back.eventLog,
      log,
      redis,
      intervalMs: 3_600_000,
      checkMs: 200,
    });
    const queuedFor = async (rootKey: string) =>
      (await queue.getJobs(['waiting', 'prioritized', 'delayed'])).some((j) => j.data.rootKey === rootKey);
    try {
      sweeper.start();
      await eventually(
        () => queuedFor(pending.rootKey).then((q) => q || undefined),
        'first queued job',
        60_000,
      );
      expect(await redis.exists(redisEpochKey)).toBe(1);

      await redis.flushdb();
      expect(await queuedFor(pending.rootKey)).toBe(false);
      await eventually(() => queuedFor(pending.rootKey).then((q) => q || undefined), 'job rebuilt', 60_000);
      expect(await redis.exists(redisEpochKey)).toBe(1);
    } finally {
      sweeper.stop();
      await intents.stop();
      await freezeView.stop();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      redis.disconnect();
    }
  }, 180_000);
});
