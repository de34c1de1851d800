/**
 * The runs' ends the `failed_roots` trigger counts, read from `unicop.outcomes` under a group of this
 * process's own, positioned at the first record written at or after `from` (Kafka's offsets-for-
 * times: kafkajs `admin.fetchTopicOffsetsByTimestamp`, which gives the end offset for a partition
 * with nothing that recent), so the whole topic is never replayed. The workers pass their start:
 * a new process counts the failures it sees happen, as it counts the lag readings and resolver
 * errors it sees (decision 0055 says why not the window before it). Kafka away at start: the
 * positioning is tried again with the consumers' backoff, not given up (the process does not exit).
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { sleep } from '../../core/clock.js';
import { configDefaults } from '../../core/config.js';
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
  const stopped = new AbortController();
  const position = async (at: number) => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const partitions = await admin.fetchTopicOffsetsByTimestamp(topic, at);
      await admin.setOffsets({ groupId, topic, partitions });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  };
  return {
    async start(onEnd) {
      // Kafka away at start: try again with the consumers' backoff (UNICOP_CONSUMER_RETRY_*) until
      // it answers or the reader is stopped — never a process exit over it.
      const at = from().getTime();
      let backoff = recovery.initialBackoffMs ?? configDefaults.UNICOP_CONSUMER_RETRY_MIN_MS;
      for (;;) {
        try {
          await position(at);
          break;
        } catch (error) {
          if (stopped.signal.aborted) return;
          log.warn(
            { err: error, retryInMs: backoff },
            'fail-safe: could not position on unicop.outcomes; retrying',
          );
          await sleep(backoff, stopped.signal);
          if (stopped.signal.aborted) return;
          backoff = Math.min(
            backoff * 2,
            recovery.maxBackoffMs ?? configDefaults.UNICOP_CONSUMER_RETRY_MAX_MS,
          );
        }
      }
      if (stopped.signal.aborted) return;
      await stream.start(async (records) => {
        for (const record of records) {
          const outcome = parseEvent('outcome', record.value);
          if (!outcome) continue; // not an outcome event: nothing this trigger counts
          const { rootKey, state, failureClass, finishedAt } = outcome.data;
          onEnd({ rootKey, state, failureClass, finishedAt: new Date(finishedAt) });
        }
      });
    },
    stop: () => {
      stopped.abort();
      return stream.stop();
    },
  };
}
