/**
 * The dispatcher against real Kafka and Redis: intents become BullMQ jobs with at most one active
 * and one waiting job per root (coalescing, guarantee 3), the follow-up job after an active one
 * carries the newest intent, a global freeze holds intents (audited, nothing queued), and offsets
 * are committed once the jobs are in Redis.
 */
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FreezeView } from '../../core/control/freeze-view.js';
import { consumerGroupLag, KafkaEventStream } from '../../core/event-log/consumer.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { cloudEvent, type EventData, eventTypes, topics } from '../../core/events/catalogue.js';
import { uuidv7 } from '../../core/ids.js';
import { createLogger } from '../../core/logger.js';
import { dispatchIntents, type ReconcileJobData } from '../../workers/dispatcher/dispatcher.js';
import { positionGroupAtEnd, TopicTail } from '../support/kafka.js';
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
  const stream = new KafkaEventStream(kafka, { topic: topics.intents, groupId }, log);
  let tail: TopicTail;
  let worker: Worker<ReconcileJobData> | undefined;
  const id = Math.floor(Math.random() * 1e9);
  const rootA = `site/${id}`;
  const rootB = `site/${id + 1}`;

  beforeAll(async () => {
    tail = await TopicTail.start([topics.audit]);
    await freezeView.start();
    await positionGroupAtEnd(kafka, groupId, topics.intents);
    await stream.start((records) => dispatchIntents(records, { queue, freezeView, eventLog }));
    await events.waitUntilReady();
  });
  afterAll(async () => {
    await worker?.close();
    await stream.stop();
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
    const waiting = await queue.getJobs(['waiting']);
    expect(waiting.map((j) => j.data.rootKey).sort()).toEqual([rootA, rootB]);
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

  it('holds intents while automation is frozen globally: audited, nothing queued', async () => {
    const freeze: EventData<'freeze'> = {
      scope: 'global',
      rootKey: null,
      frozen: true,
      reason: 'test freeze',
      actor: 'test',
      at: new Date().toISOString(),
    };
    freezeView.apply(freeze); // this process's own view; the bridge writes the same to unicop.control
    try {
      const held = intent(`site/${id + 2}`);
      await eventLog.append([held.message]);
      await tail.waitFor(auditFor('intent.held', held.intentId));
      expect(await queue.getJob(held.intentId)).toBeUndefined();
    } finally {
      freezeView.apply({ ...freeze, frozen: false, reason: 'test over' });
    }
  });

  it('commits its offsets once the jobs are in Redis', async () => {
    let lag = -1;
    for (let i = 0; i < 50 && lag !== 0; i++) {
      lag = await consumerGroupLag(kafka, groupId, topics.intents);
      if (lag !== 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(lag).toBe(0);
  });
});
