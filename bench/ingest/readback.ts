/**
 * Durability check of the ingest benchmark: the change ids the bridge answered 202 for are looked
 * up on unicop.changes, read back from the offsets the topic had before the bridge's first point
 * to the offsets it has after its last one.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { topics } from '../../core/events/catalogue.js';

export type TopicMark = Map<number, string>;

export async function markEnd(kafka: Kafka, topic = topics.changes): Promise<TopicMark> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
  } finally {
    await admin.disconnect();
  }
}

/** Every record id on `topic` between the two marks. */
export async function idsBetween(
  kafka: Kafka,
  from: TopicMark,
  to: TopicMark,
  topic = topics.changes,
): Promise<Set<string>> {
  const ids = new Set<string>();
  const remaining = new Set(
    [...to].filter(([p, end]) => BigInt(end) > BigInt(from.get(p) ?? '0')).map(([p]) => p),
  );
  if (remaining.size === 0) return ids;
  const groupId = `bench-ingest-readback-${randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.setOffsets({
    groupId,
    topic,
    partitions: [...from].map(([partition, offset]) => ({ partition, offset })),
  });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, maxBytes: 50 * 2 ** 20 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => {
    done = r;
  });
  await consumer.run({
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      const end = BigInt(to.get(batch.partition) ?? '0');
      for (const message of batch.messages) {
        if (BigInt(message.offset) >= end) break;
        try {
          const { id } = JSON.parse(String(message.value)) as { id?: unknown };
          if (typeof id === 'string') ids.add(id);
        } catch {
          // not an event: cannot be one of ours
        }
      }
      const last = batch.messages.at(-1);
      if (last && BigInt(last.offset) + 1n >= end) remaining.delete(batch.partition);
      if (remaining.size === 0) done();
    },
  });
  const timeout = setTimeout(done, 120_000);
  await finished;
  clearTimeout(timeout);
  await consumer.disconnect();
  return ids;
}
