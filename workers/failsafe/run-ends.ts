/**
 * The runs' ends the `failed_roots` trigger counts, read from `unicop.outcomes` under a group of this
 * process's own, positioned at the first record written at or after `from` (Kafka's offsets-for-
 * times: kafkajs `admin.fetchTopicOffsetsByTimestamp`, which gives the end offset for a partition
 * with nothing that recent), so the whole topic is never replayed. The workers pass their start:
 * a new process counts the failures it sees happen, as it counts the lag readings and resolver
 * errors it sees (decision 0055 says why not the window before it).
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { KafkaEventStream, type KafkaEventStreamOptions } from '../../core/event-log/consumer.js';
import { parseEvent, topics } from '../../core/events/catalogue.js';
import type { RunEnd } from './triggers.js';

export interface RunEndsReader {
  start(onEnd: (end: RunEnd) => void): Promise<void>;
  stop(): Promise<void>;
}

/** Positions `groupId` on unicop.outcomes at `from`, then follows it. */
export function runEndsFrom(
  kafka: Kafka,
  groupId: string,
  from: () => Date,
  log: Logger,
  recovery: Pick<KafkaEventStreamOptions, 'initialBackoffMs' | 'maxBackoffMs' | 'sessionTimeoutMs'> = {},
): RunEndsReader {
  const topic = topics.outcomes;
  const stream = new KafkaEventStream(kafka, { topic, groupId, fromBeginning: true, ...recovery }, log);
  return {
    async start(onEnd) {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const partitions = await admin.fetchTopicOffsetsByTimestamp(topic, from().getTime());
        await admin.setOffsets({ groupId, topic, partitions });
      } finally {
        await admin.disconnect();
      }
      await stream.start(async (records) => {
        for (const record of records) {
          const outcome = parseEvent('outcome', record.value);
          if (!outcome) continue; // not an outcome event: nothing this trigger counts
          const { rootKey, state, finishedAt } = outcome.data;
          onEnd({ rootKey, state, finishedAt: new Date(finishedAt) });
        }
      });
    },
    stop: () => stream.stop(),
  };
}
