/**
 * Kafka adapter of the event-log port, with group commit. kafkajs sends one produce request per
 * `send()`; an idempotent producer allows one request in flight, so a request per webhook would cap
 * throughput at one round trip per change. Instead, appends that arrive while a batch is being
 * written are gathered into the next single `sendBatch`, written as soon as the one in flight is
 * acknowledged (they have waited a round trip already), and every caller in that batch is answered
 * when the broker acknowledges it with acks=all. Only an append to an idle producer lingers
 * (`lingerMs`; 0: until the current turn of the event loop has queued what it will).
 */
import { type Kafka, Partitioners, type Producer, type TopicMessages } from 'kafkajs';
import { type EventLog, type EventLogMessage, EventLogUnavailableError } from './port.js';

export interface KafkaEventLogOptions {
  /** How long an append to an idle producer waits for more before it is written; 2 ms by default. */
  lingerMs?: number;
  /** Upper bound on messages in one produce request. */
  maxBatchMessages?: number;
  /** Give up on a batch (and fail its callers) after this long; the caller answers 503. */
  ackTimeoutMs?: number;
  /** Largest produce request; half of Kafka's default message.max.bytes leaves room for overhead. */
  maxRequestBytes?: number;
}

/** Splits messages, in order, into runs whose keys and values add up to at most `limit` bytes. */
export function chunksOf(messages: EventLogMessage[], limit: number): EventLogMessage[][] {
  const chunks: EventLogMessage[][] = [];
  let current: EventLogMessage[] = [];
  let size = 0;
  for (const m of messages) {
    const bytes = Buffer.byteLength(m.value) + Buffer.byteLength(m.key) + 64;
    if (current.length > 0 && size + bytes > limit) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(m);
    size += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

interface Pending {
  messages: EventLogMessage[];
  resolve: () => void;
  reject: (error: Error) => void;
}

export class KafkaEventLog implements EventLog {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private queue: Pending[] = [];
  private writing = false;
  private lingerTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private lastOk = false;
  private readonly lingerMs: number;
  private readonly maxBatchMessages: number;
  private readonly ackTimeoutMs: number;
  private readonly maxRequestBytes: number;

  constructor(
    private readonly kafka: Kafka,
    options: KafkaEventLogOptions = {},
  ) {
    this.lingerMs = options.lingerMs ?? 2;
    this.maxBatchMessages = options.maxBatchMessages ?? 1000;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    this.maxRequestBytes = options.maxRequestBytes ?? 512 * 1024;
  }

  append(messages: EventLogMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ messages, resolve, reject });
      this.schedule();
    });
  }

  async healthy(): Promise<boolean> {
    if (this.lastOk) return true;
    try {
      await this.connect();
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.cancelLinger();
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  /** Called on every append: an idle producer lingers; a busy one picks the append up when acknowledged. */
  private schedule(): void {
    if (this.writing || this.lingerTimer) return;
    const write = () => {
      this.lingerTimer = undefined;
      void this.writeNextBatch();
    };
    this.lingerTimer = this.lingerMs === 0 ? setImmediate(write) : setTimeout(write, this.lingerMs);
  }

  private cancelLinger(): void {
    if (this.lingerTimer === undefined) return;
    if (this.lingerMs === 0) clearImmediate(this.lingerTimer as NodeJS.Immediate);
    else clearTimeout(this.lingerTimer as NodeJS.Timeout);
    this.lingerTimer = undefined;
  }

  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let count = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as Pending;
      if (batch.length > 0 && count + next.messages.length > this.maxBatchMessages) break;
      batch.push(next);
      count += next.messages.length;
      this.queue.shift();
    }
    return batch;
  }

  private async writeNextBatch(): Promise<void> {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    this.writing = true;
    try {
      await this.withTimeout(this.send(batch.flatMap((p) => p.messages)));
      this.lastOk = true;
      for (const p of batch) p.resolve();
    } catch (error) {
      this.lastOk = false;
      await this.reset();
      const failure =
        error instanceof EventLogUnavailableError
          ? error
          : new EventLogUnavailableError('Kafka did not acknowledge the batch', { cause: error });
      for (const p of batch) p.reject(failure);
    } finally {
      this.writing = false;
      // What queued up meanwhile has waited a whole round trip: write it now, without lingering.
      if (this.queue.length > 0) void this.writeNextBatch();
    }
  }

  /**
   * Writes the messages in produce requests of at most `maxRequestBytes` each, in order. Kafka
   * refuses a record batch over `message.max.bytes` (1 MiB by default), and one append can hold
   * thousands of messages for one key (one partition), so large appends are split.
   */
  private async send(messages: EventLogMessage[]): Promise<void> {
    const producer = await this.connect();
    for (const chunk of chunksOf(messages, this.maxRequestBytes)) {
      const byTopic = new Map<string, TopicMessages>();
      for (const m of chunk) {
        let entry = byTopic.get(m.topic);
        if (!entry) {
          entry = { topic: m.topic, messages: [] };
          byTopic.set(m.topic, entry);
        }
        entry.messages.push(
          m.headers ? { key: m.key, value: m.value, headers: m.headers } : { key: m.key, value: m.value },
        );
      }
      await producer.sendBatch({
        acks: -1,
        timeout: this.ackTimeoutMs,
        topicMessages: [...byTopic.values()],
      });
    }
  }

  private withTimeout<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EventLogUnavailableError(`no acknowledgement within ${this.ackTimeoutMs} ms`)),
        this.ackTimeoutMs,
      );
    });
    work.catch(() => undefined); // a late failure after the timeout has nobody left to tell
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  private connect(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        // Kafka's own partitioner (murmur2), so keys land where Java clients would put them.
        createPartitioner: Partitioners.DefaultPartitioner,
        // Few retries: a batch that cannot be acknowledged quickly is answered 503 and re-sent by
        // NetBox; the deterministic change id makes a late duplicate harmless downstream.
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      });
      try {
        await this.withTimeout(producer.connect());
      } catch (error) {
        await producer.disconnect().catch(() => undefined);
        throw error instanceof EventLogUnavailableError
          ? error
          : new EventLogUnavailableError('cannot connect to Kafka', { cause: error });
      }
      this.producer = producer;
      return producer;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** After a failure the producer is rebuilt on the next append (kafkajs may leave it wedged). */
  private async reset(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }
}
