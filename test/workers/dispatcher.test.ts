/**
 * The dispatcher against real Kafka and Redis: intents become BullMQ jobs with at most one active
 * and one waiting job per root (coalescing, guarantee 3), the follow-up job after an active one
 * carries the newest intent, an intent's offset is committed only after its job is in Redis (the
 * queue write held at a gate meanwhile), and a dispatcher restarted while automation is frozen
 * globally (POST /freeze on a real bridge → unicop.control) holds every intent — audited, nothing
 * queued — until resume, even when its replay of unicop.control is slow.
 */
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FreezeView } from '../../core/control/freeze-view.js';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import { cloudEvent, eventTypes, topics } from '../../core/events/catalogue.js';
import { uuidv7 } from '../../core/ids.js';
import { createLogger } from '../../core/logger.js';
import { startDispatcher } from '../../workers/dispatcher/dispatcher.js';
import { type ReconcileJobData, reconcilePriority } from '../../workers/reconcile-queue.js';
import { eventually } from '../awx/support.js';
import { controlStream, GlobalSwitch, slowReplay, startControlView, untilGlobal } from '../support/freeze.js';
import { committedOffset, positionGroupAtEnd, TopicTail } from '../support/kafka.js';
import { stack, uniqueName } from '../support/stack.js';

const log = createLogger('dispatcher-test', 'silent');

function intent(rootKey: string) {
  const intentId = uuidv7();
  const at = new Date().toISOString();
  const event = cloudEvent('intent', {
    id: intentId,
    source: 'test',
    subject: rootKey,
    data: {
      intentId,
      rootKey,
      cause: {
        kind: 'manual',
        changeId: null,
        requestId: null,
        event: null,
        objectType: null,
        objectId: null,
        actor: 'test',
        at,
      },
    },
  });
  return {
    intentId,
    message: { topic: eventTypes.intent.topic, key: rootKey, value: JSON.stringify(event) },
  };
}

describe('dispatcher: intents → one active + one waiting job per root', () => {
  const kafka = new Kafka({
    clientId: uniqueName('dispatcher'),
    brokers: stack.kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const connection = { url: stack.redisUrl() };
  const queueName = uniqueName('reconcile');
  const queue = new Queue<ReconcileJobData>(queueName, { connection });
  const events = new QueueEvents(queueName, { connection });
  const eventLog = new KafkaEventLog(kafka);
  const groupId = uniqueName('dispatcher');
  const freezeView = new FreezeView(
    new KafkaEventStream(kafka, { topic: topics.control, groupId: uniqueName('control') }, log),
  );
  let dispatcher: { stop(): Promise<void> } | undefined;
  let tail: TopicTail;
  let worker: Worker<ReconcileJobData> | undefined;
  const id = Math.floor(Math.random() * 1e9);
  const rootA = `site/${id}`;
  const rootB = `site/${id + 1}`;

  beforeAll(async () => {
    tail = await TopicTail.start([topics.audit]);
    await freezeView.start();
    await positionGroupAtEnd(kafka, groupId, topics.intents);
    dispatcher = await startDispatcher({ queue, freezeView, eventLog }, { kafka, log, groupId });
    await events.waitUntilReady();
  });
  afterAll(async () => {
    await worker?.close();
    await dispatcher?.stop();
    await freezeView.stop();
    await eventLog.close();
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
    await tail?.stop();
  });

  const auditFor = (action: string, intentId: string) => (m: { value: Record<string, unknown> }) =>
    (m.value.data as { action: string }).action === action &&
    (m.value.data as { correlation: { intentId?: string } }).correlation.intentId === intentId;

  it('coalesces intents for a root into one waiting job; another root gets its own', async () => {
    const a1 = intent(rootA);
    const a2 = intent(rootA);
    const a3 = intent(rootA);
    const b1 = intent(rootB);
    await eventLog.append([a1.message, a2.message, a3.message, b1.message]);
    await tail.waitFor(auditFor('intent.queued', b1.intentId));
    await tail.waitFor(auditFor('intent.coalesced', a3.intentId));
    // Fresh intents wait at the fresh priority (BullMQ's `prioritized` state, decision 0038).
    const waiting = await queue.getJobs(['waiting', 'prioritized']);
    expect(waiting.map((j) => j.data.rootKey).sort()).toEqual([rootA, rootB]);
    expect(waiting.map((j) => j.priority)).toEqual([reconcilePriority.fresh, reconcilePriority.fresh]);
    expect(waiting.find((j) => j.data.rootKey === rootA)?.id).toBe(a1.intentId);
  });

  it('intents arriving while a run is active cause one follow-up job, carrying the newest intent', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const seen: ReconcileJobData[] = [];
    const active = new Promise<void>((resolveActive) => {
      worker = new Worker<ReconcileJobData>(
        queueName,
        async (job) => {
          seen.push(job.data);
          if (job.data.rootKey === rootA && seen.filter((d) => d.rootKey === rootA).length === 1) {
            resolveActive();
            await gate;
          }
        },
        { connection, concurrency: 4 },
      );
    });
    await active; // root A's first job is running
    const later = [intent(rootA), intent(rootA), intent(rootA)];
    await eventLog.append(later.map((l) => l.message));
    await tail.waitFor(auditFor('intent.coalesced', (later[2] as { intentId: string }).intentId));
    release();
    for (let i = 0; i < 100 && seen.filter((d) => d.rootKey === rootA).length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1000)); // nothing else may follow
    const runsOfA = seen.filter((d) => d.rootKey === rootA);
    expect(runsOfA).toHaveLength(2);
    expect(runsOfA[1]?.intentId).toBe((later[2] as { intentId: string }).intentId);
  });

  it("commits an intent's offset only after its job is in Redis", async () => {
    // A dispatcher of its own whose queue writes for one root wait at a gate: the real BullMQ
    // queue, reached only when the test opens the gate, so "job not yet in Redis" lasts as long as
    // the test likes (other roots' jobs, from other tests on the stack, pass).
    const gatedRoot = `site/${id + 3}`;
    const gatedName = uniqueName('reconcile-gated');
    const gated = new Queue<ReconcileJobData>(gatedName, { connection });
    let open: () => void = () => undefined;
    const opened = new Promise<void>((r) => {
      open = r;
    });
    let reached: () => void = () => undefined;
    const reachedGate = new Promise<void>((r) => {
      reached = r;
    });
    const behindGate = new Proxy(gated, {
      get(target, prop, receiver) {
        if (prop === 'add') {
          return async (...args: Parameters<typeof target.add>) => {
            if (args[1].rootKey === gatedRoot) {
              reached();
              await opened;
            }
            return target.add(...args);
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const gatedGroup = uniqueName('dispatcher-gated');
    await positionGroupAtEnd(kafka, gatedGroup, topics.intents);
    const dispatcher = await startDispatcher(
      { queue: behindGate, freezeView, eventLog },
      { kafka, log, groupId: gatedGroup },
    );
    const intentTail = await TopicTail.start([topics.intents]);
    const committed = (partition: number) => committedOffset(gatedGroup, topics.intents, partition);
    try {
      const one = intent(gatedRoot);
      await eventLog.append([one.message]);
      const [record] = await intentTail.waitFor((m) => m.key === gatedRoot);
      if (!record) throw new Error('the intent is not on unicop.intents');
      const offset = BigInt(record.offset);
      await reachedGate; // the dispatcher has the intent and is writing its job
      await new Promise((r) => setTimeout(r, 2000));
      expect(await gated.getJob(one.intentId)).toBeUndefined();
      expect(await committed(record.partition)).toBeLessThanOrEqual(offset); // not committed yet

      open();
      const after = await eventually(
        async () => {
          const at = await committed(record.partition);
          return at > offset ? at : undefined;
        },
        'the offset committed once the job is stored',
        30_000,
      );
      expect(after).toBeGreaterThan(offset);
      expect((await gated.getJob(one.intentId))?.data.rootKey).toBe(gatedRoot);
    } finally {
      open();
      await intentTail.stop();
      await dispatcher.stop();
      await gated.obliterate({ force: true }).catch(() => undefined);
      await gated.close();
    }
  });

  it('restarted during a global freeze set at the admin API, it queues nothing until resume', async () => {
    const restartQueue = new Queue<ReconcileJobData>(uniqueName('reconcile-restart'), { connection });
    const group = uniqueName('dispatcher-restart');
    await positionGroupAtEnd(kafka, group, topics.intents);
    // What this dispatcher appends (the describe's own dispatcher audits the same intents too).
    const appended: EventLogMessage[] = [];
    const recording: EventLog = {
      append: async (messages) => {
        await eventLog.append(messages);
        appended.push(...messages);
      },
      healthy: () => eventLog.healthy(),
      close: async () => undefined,
    };
    const heldHere = (intentId: string) =>
      appended.some((m) => auditFor('intent.held', intentId)({ value: JSON.parse(m.value) }));
    const deps = (view: FreezeView) => ({ queue: restartQueue, freezeView: view, eventLog: recording });
    // First life, as workers/main.ts starts it: the freeze view replayed, then the dispatcher.
    const firstView = await startControlView(kafka, log);
    const first = await startDispatcher(deps(firstView), { kafka, log, groupId: group });
    const global = await GlobalSwitch.start();
    const reason = uniqueName('dispatcher restart freeze');
    const root = `site/${id + 4}`;
    let second: { stop(): Promise<void> } | undefined;
    let secondView: FreezeView | undefined;
    try {
      await global.freeze(reason); // POST /freeze → unicop.control
      await untilGlobal(firstView, true, reason);
      await first.stop(); // the workers process goes down …
      await firstView.stop();
      const waiting = [intent(root), intent(root)];
      await eventLog.append(waiting.map((w) => w.message)); // … intents arrive meanwhile …

      // … and it comes back. Its replay of unicop.control is slowed (2 s per batch), so a
      // dispatcher that read intents before the replay finished would queue them.
      secondView = new FreezeView(slowReplay(controlStream(kafka, log), 2000));
      await secondView.start();
      second = await startDispatcher(deps(secondView), { kafka, log, groupId: group });
      await eventually(
        async () => waiting.every((w) => heldHere(w.intentId)) || undefined,
        'the restarted dispatcher holding both intents',
        60_000,
      );
      expect(await restartQueue.getJobs(['waiting', 'delayed', 'prioritized', 'active'])).toEqual([]);
      expect(secondView.globalState()).toMatchObject({ frozen: true, reason });

      await global.resume(`${reason} over`);
      await untilGlobal(secondView, false, `${reason} over`);
      const next = intent(root);
      await eventLog.append([next.message]);
      await eventually(
        async () =>
          appended.some((m) => auditFor('intent.queued', next.intentId)({ value: JSON.parse(m.value) })) ||
          undefined,
        'the intent after resume queued',
        60_000,
      );
      expect((await restartQueue.getJob(next.intentId))?.data.rootKey).toBe(root);
    } finally {
      await global.close(); // resumes if the test left automation frozen
      await second?.stop();
      await secondView?.stop();
      await restartQueue.obliterate({ force: true }).catch(() => undefined);
      await restartQueue.close();
    }
  }, 180_000);
});
