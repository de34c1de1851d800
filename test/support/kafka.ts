/**
 * Reading what the code under test wrote to Kafka. A TopicTail remembers each partition's end
 * offset when it starts and collects only messages written after that, so tests see their own
 * messages however long the topics already are.
 */
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { type LogRecord, stringHeaders } from '../../core/event-log/consumer.js';
import { topics } from '../../core/events/catalogue.js';
import { stack, uniqueName } from './stack.js';

export interface TailedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Record<string, unknown>;
  /** The record's headers as strings (a `traceparent`), when it has any. */
  headers?: Record<string, string>;
}

export function testKafka(): Kafka {
  return new Kafka({
    clientId: uniqueName('test'),
    brokers: stack.kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
}

function parseObject(raw: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export class TopicTail {
  readonly messages: TailedMessage[] = [];
  /**
   * Records whose value is not a JSON object (a poison record another test wrote on purpose). Kept
   * apart: parsing them in the consumer threw, and kafkajs then redelivered the same record for
   * ever, so the tail saw nothing later on that partition.
   */
  readonly unparsed: LogRecord[] = [];
  private consumer: Consumer | undefined;

  private constructor(private readonly kafka: Kafka) {}

  static async start(topics: string[], kafka = testKafka()): Promise<TopicTail> {
    const tail = new TopicTail(kafka);
    await tail.begin(topics);
    return tail;
  }

  private async begin(topics: string[]): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    const groupId = uniqueName('tail');
    const starts = new Map<string, bigint>();
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      for (const p of ends) starts.set(`${topic}/${p.partition}`, BigInt(p.high));
      // Position the new group before it starts (no seek after run: kafkajs races on that).
      await admin.setOffsets({
        groupId,
        topic,
        partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
      });
    }
    await admin.disconnect();
    const consumer = this.kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const start = starts.get(`${topic}/${partition}`) ?? 0n;
        if (BigInt(message.offset) < start) return;
        const raw = String(message.value);
        const value = parseObject(raw);
        const key = message.key ? message.key.toString() : null;
        const headers = stringHeaders(message.headers);
        if (!value) {
          this.unparsed.push({ topic, partition, offset: message.offset, key, value: raw, ...headers });
          return;
        }
        this.messages.push({
          topic,
          partition,
          offset: message.offset,
          key,
          value,
          ...headers,
        });
      },
    });
  }

  /** Messages matching `match`, waiting until there are at least `count` of them (a cap, not a budget). */
  async waitFor(
    match: (m: TailedMessage) => boolean,
    count = 1,
    timeoutMs = 120_000,
  ): Promise<TailedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.filter(match);
      if (found.length >= count) return found;
      if (Date.now() > deadline) {
        throw new Error(`expected ${count} matching message(s) within ${timeoutMs} ms, saw ${found.length}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits `ms` and returns every match: for asserting that nothing more arrived. */
  async settle(match: (m: TailedMessage) => boolean, ms = 1500): Promise<TailedMessage[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.messages.filter(match);
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

/** Commits `groupId`'s offsets at the current end of `topic`, so a new consumer starts from now. */
export async function positionGroupAtEnd(kafka: Kafka, groupId: string, topic: string): Promise<void> {
  await positionGroup(kafka, groupId, topic, await topicEnds(kafka, topic));
}

/** Each partition's end offset now, to position another group at the same place later. */
export async function topicEnds(kafka: Kafka, topic: string) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high }));
  } finally {
    await admin.disconnect();
  }
}

export async function positionGroup(
  kafka: Kafka,
  groupId: string,
  topic: string,
  partitions: { partition: number; offset: string }[],
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.setOffsets({ groupId, topic, partitions });
  } finally {
    await admin.disconnect();
  }
}

/** The offset `groupId` has committed on one partition of `topic` (-1: nothing committed). */
export async function committedOffset(groupId: string, topic: string, partition: number): Promise<bigint> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return BigInt(offsets?.partitions.find((p) => p.partition === partition)?.offset ?? '-1');
  } finally {
    await admin.disconnect();
  }
}

/** An edit of a NetBox object, as a test waits for its change and the intent naming it. */
export interface EditOf {
  objectType: string;
  objectId: number;
  event: 'created' | 'updated' | 'deleted';
  /** The root whose intent is waited for. */
  rootKey: string;
}

/**
 * The change published for `edit` on unicop.changes and the first intent for its root naming that
 * change on unicop.intents (the tail follows both; each waited for up to `capMs`, a cap). `own`
 * narrows both to a test's own loop (OwnIntents in ./pipeline.ts): the change its bridge accepted
 * (other tests' bridges publish theirs for the same edit) and the intent its loop took.
 */
export async function waitForEditIntent(
  tail: TopicTail,
  edit: EditOf,
  capMs: number,
  own?: { changeAccepted(changeId: string): boolean; taken(intentId: string): boolean },
): Promise<{ change: Record<string, unknown>; intent: Record<string, unknown> }> {
  const dataOf = (m: TailedMessage) => m.value.data as Record<string, unknown>;
  const [changeRecord] = await tail.waitFor(
    (m) =>
      m.topic === topics.changes &&
      dataOf(m).objectType === edit.objectType &&
      dataOf(m).objectId === edit.objectId &&
      dataOf(m).event === edit.event &&
      (!own || own.changeAccepted(String(dataOf(m).changeId))),
    1,
    capMs,
  );
  const change = dataOf(changeRecord as TailedMessage);
  const [intentRecord] = await tail.waitFor(
    (m) =>
      m.topic === topics.intents &&
      dataOf(m).rootKey === edit.rootKey &&
      (dataOf(m).cause as { changeId?: unknown } | undefined)?.changeId === change.changeId &&
      (!own || own.taken(String(dataOf(m).intentId))),
    1,
    capMs,
  );
  return { change, intent: dataOf(intentRecord as TailedMessage) };
}

/** Each partition's end offset at one moment (topicMarks), to read what came after it. */
export type TopicMarks = Map<number, bigint>;

export async function topicMarks(kafka: Kafka, topic: string): Promise<TopicMarks> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Calls `each` with every record value of `topic` between the two marks (a throwaway consumer group
 * positioned at `from`); gives up after `capMs` (a cap, not a budget).
 */
export async function readBetween(
  kafka: Kafka,
  topic: string,
  from: TopicMarks,
  to: TopicMarks,
  each: (value: string) => void,
  capMs = 600_000,
): Promise<void> {
  const remaining = new Set([...to].filter(([p, end]) => end > (from.get(p) ?? 0n)).map(([p]) => p));
  if (remaining.size === 0) return;
  const groupId = uniqueName('readback');
  const admin = kafka.admin();
  await admin.connect();
  await admin.setOffsets({
    groupId,
    topic,
    partitions: [...from].map(([partition, offset]) => ({ partition, offset: String(offset) })),
  });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200, maxBytes: 20 * 2 ** 20 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => {
    done = r;
  });
  await consumer.run({
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      const end = to.get(batch.partition) ?? 0n;
      for (const message of batch.messages) {
        if (BigInt(message.offset) >= end) break;
        each(String(message.value));
        resolveOffset(message.offset);
      }
      await heartbeat();
      const last = batch.messages.at(-1);
      if (last && BigInt(last.offset) + 1n >= end) remaining.delete(batch.partition);
      if (remaining.size === 0) done();
    },
  });
  const cap = setTimeout(done, capMs);
  await finished;
  clearTimeout(cap);
  await consumer.disconnect();
}
