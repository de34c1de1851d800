/**
 * The consuming side of the event-log port, and its Kafka adapter. A consumer hands batches of
 * records (one partition at a time, in log order) to a handler; the offsets are committed only
 * after the handler returned, so whatever it wrote before returning is durable before the input is
 * marked done. A handler that throws a retriable error gets the same batch again after a backoff
 * (the consumer keeps its group membership meanwhile); a programming error stops the consumer.
 */
import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../clock.js';
import { configDefaults, type UnicopConfig } from '../config.js';
import { isRetriable } from '../errors.js';

export interface LogRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string;
  /** The record's string headers (a `traceparent`: core/tracing.ts); absent when it has none. */
  headers?: Record<string, string>;
}

export type BatchHandler = (records: LogRecord[]) => Promise<void>;

export interface EventStream {
  start(handler: BatchHandler): Promise<void>;
  stop(): Promise<void>;
  /** Messages in the subscribed topics not yet committed by this group. */
  lag(): Promise<number>;
}

export interface KafkaEventStreamOptions {
  topic: string;
  groupId: string;
  /** First retry delay after a retriable failure; doubles up to maxBackoffMs (UNICOP_CONSUMER_RETRY_*). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Where the retry waits are timed; the system clock by default. */
  clock?: Clock;
  fromBeginning?: boolean;
  /**
   * Partitions whose batches are handled at the same time (kafkajs `partitionsConsumedConcurrently`);
   * 1 by default: one batch at a time. A partition's own batches are always handled in order, one at
   * a time, and each is committed after its handler returned.
   */
  partitionsConcurrently?: number;
  /** Called when the consumer stopped for good (a non-retriable error); the process should exit. */
  onFatal?: (error: Error) => void;
  /**
   * How long Kafka keeps a silent member in the group (UNICOP_KAFKA_SESSION_TIMEOUT_MS). A member
   * that vanished without leaving — its process killed, or its broker restarted under it (kafkajs
   * rejoins as a new member after a crash) — holds its partitions, and the group's next rebalance
   * waits for it, until this expires. Heartbeats go every third of it, also while a handler runs.
   */
  sessionTimeoutMs?: number;
}

/** How a consumer recovers, from the configuration (core/config.ts documents the settings). */
export function consumerRecovery(
  config: Pick<
    UnicopConfig,
    'UNICOP_CONSUMER_RETRY_MIN_MS' | 'UNICOP_CONSUMER_RETRY_MAX_MS' | 'UNICOP_KAFKA_SESSION_TIMEOUT_MS'
  >,
): Pick<KafkaEventStreamOptions, 'initialBackoffMs' | 'maxBackoffMs' | 'sessionTimeoutMs'> {
  return {
    initialBackoffMs: config.UNICOP_CONSUMER_RETRY_MIN_MS,
    maxBackoffMs: config.UNICOP_CONSUMER_RETRY_MAX_MS,
    sessionTimeoutMs: config.UNICOP_KAFKA_SESSION_TIMEOUT_MS,
  };
}

/** kafkajs's wait before it restarts a crashed consumer (its broker gone) is at most this. */
const crashRestartMaxMs = 2_000;

export class KafkaEventStream implements EventStream {
  private consumer: Consumer | undefined;
  /** Aborted by stop(): a retry wait under way ends at once. */
  private readonly stopped = new AbortController();

  constructor(
    private readonly kafka: Kafka,
    private readonly options: KafkaEventStreamOptions,
    private readonly log: Logger,
  ) {}

  async start(handler: BatchHandler): Promise<void> {
    const { topic, groupId } = this.options;
    const sessionTimeout = this.options.sessionTimeoutMs ?? configDefaults.UNICOP_KAFKA_SESSION_TIMEOUT_MS;
    const heartbeatEveryMs = Math.max(1_000, Math.floor(sessionTimeout / 3));
    const consumer = this.kafka.consumer({
      groupId,
      maxWaitTimeInMs: 200,
      sessionTimeout,
      heartbeatInterval: heartbeatEveryMs,
      // A crash (the broker went away) is followed by a restart after kafkajs's retry wait; capped so
      // the consumer is back within seconds of its broker, not after a growing backoff.
      retry: { maxRetryTime: crashRestartMaxMs },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) this.options.onFatal?.(payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: this.options.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: this.options.partitionsConcurrently ?? 1,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, heartbeat, resolveOffset, isRunning, isStale }) => {
        const records: LogRecord[] = batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key ? m.key.toString() : null,
          value: m.value ? m.value.toString() : '',
          ...stringHeaders(m.headers),
        }));
        if (records.length === 0) return;
        let backoff = this.options.initialBackoffMs ?? configDefaults.UNICOP_CONSUMER_RETRY_MIN_MS;
        for (;;) {
          try {
            await this.whileHeartbeating(handler(records), heartbeat, heartbeatEveryMs);
            break;
          } catch (error) {
            if (!isRetriable(error)) throw error;
            this.log.warn(
              { err: error, topic, partition: batch.partition, retryInMs: backoff },
              'batch not handled; retrying after backoff',
            );
            await this.sleepWithHeartbeat(backoff, heartbeat);
            // Not committed: redelivered later.
            if (!isRunning() || isStale() || this.stopped.signal.aborted) return;
            backoff = Math.min(
              backoff * 2,
              this.options.maxBackoffMs ?? configDefaults.UNICOP_CONSUMER_RETRY_MAX_MS,
            );
          }
        }
        const last = records[records.length - 1]?.offset as string;
        resolveOffset(last);
        // Explicit commit: with autoCommit off, kafkajs's commitOffsetsIfNecessary never commits.
        await consumer.commitOffsets([
          { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() },
        ]);
        await heartbeat();
      },
    });
  }

  /**
   * Waits for a handler's work, heartbeating meanwhile: a slow batch (NetBox taking its time) must
   * not look like a dead member to a group whose session timeout is short.
   */
  private async whileHeartbeating<T>(
    work: Promise<T>,
    heartbeat: () => Promise<void>,
    everyMs: number,
  ): Promise<T> {
    const timer = setInterval(() => void heartbeat().catch(() => undefined), everyMs);
    try {
      return await work;
    } finally {
      clearInterval(timer);
    }
  }

  /** Waits `ms` (cut short by stop()), heartbeating about every second so the group keeps it. */
  private async sleepWithHeartbeat(ms: number, heartbeat: () => Promise<void>): Promise<void> {
    const clock = this.options.clock ?? systemClock;
    const until = clock.now().getTime() + ms;
    for (let left = ms; left > 0 && !this.stopped.signal.aborted; left = until - clock.now().getTime()) {
      await clock.sleep(Math.min(1000, left), this.stopped.signal);
      await heartbeat().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await this.consumer?.disconnect();
  }

  lag(): Promise<number> {
    return consumerGroupLag(this.kafka, this.options.groupId, this.options.topic);
  }

  /** Each partition's first offset and end offset now (for knowing when a replay is complete). */
  async offsets(): Promise<{ partition: number; low: string; high: string }[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(this.options.topic)).map(({ partition, low, high }) => ({
        partition,
        low,
        high,
      }));
    } finally {
      await admin.disconnect();
    }
  }
}

/** A record's headers as strings (the first of a repeated one), or {} when it has none. */
export function stringHeaders(headers: IHeaders | undefined): { headers?: Record<string, string> } {
  if (!headers) return {};
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = first.toString();
  }
  return Object.keys(out).length > 0 ? { headers: out } : {};
}

/** Messages in `topic` that `groupId` has not committed yet (all of them for a group with no commits). */
export async function consumerGroupLag(kafka: Kafka, groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, committed] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId, topics: [topic] }),
    ]);
    const done = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? []);
    return ends.reduce(
      (sum, p) => sum + Math.max(0, Number(p.high) - Math.max(Number(p.low), done.get(p.partition) ?? -1)),
      0,
    );
  } finally {
    await admin.disconnect();
  }
}
