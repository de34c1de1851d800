/**
 * Durability check of the ingest benchmark: the change ids the bridge answered 202 for are looked
 * up on unicop.changes, read back from the offsets the topic had before the bridge's first point
 * to the offsets it has after its last one (test/support/kafka.ts readBetween).
 */
import type { Kafka } from 'kafkajs';
import { topics } from '../../core/events/catalogue.js';
import { readBetween, type TopicMarks, topicMarks } from '../../test/support/kafka.js';

export type TopicMark = TopicMarks;

export function markEnd(kafka: Kafka, topic: string = topics.changes): Promise<TopicMark> {
  return topicMarks(kafka, topic);
}

/** Every record id on `topic` between the two marks. */
export async function idsBetween(
  kafka: Kafka,
  from: TopicMark,
  to: TopicMark,
  topic: string = topics.changes,
): Promise<Set<string>> {
  const ids = new Set<string>();
  await readBetween(
    kafka,
    topic,
    from,
    to,
    (value) => {
      try {
        const { id } = JSON.parse(value) as { id?: unknown };
        if (typeof id === 'string') ids.add(id);
      } catch {
        // not an event: cannot be one of ours
      }
    },
    120_000,
  );
  return ids;
}
