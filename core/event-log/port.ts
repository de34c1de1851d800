/**
 * The event-log port: everything UNICOP appends to its event spine goes through this interface, so
 * the Kafka client (kafkajs today, no longer actively maintained) can be swapped without touching
 * the bridge or the workers. `append` resolves only once every message is durable.
 */
export interface EventLogMessage {
  topic: string;
  key: string;
  value: string;
  headers?: Record<string, string>;
}

/**
 * Largest record (key and value) the bridge appends for one webhook: below Kafka's default
 * message.max.bytes (1,048,588) with room for the record batch around it. A signed NetBox body just
 * under the 1 MiB body limit made a change Kafka refused, answered 503 on every retry, failing the
 * webhooks that shared its batch too (found by the fuzz suite, decision 0049); a larger record is
 * refused for good instead (413).
 */
export const maxWebhookRecordBytes = 1_000_000;

export interface EventLog {
  /** Appends the messages; resolves when the log acknowledged all of them as durable. */
  append(messages: EventLogMessage[]): Promise<void>;
  /** True when the last attempt to reach the log succeeded (for /readyz). */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

/** The log could not confirm durability: the caller must not acknowledge what it was given. */
export class EventLogUnavailableError extends Error {
  override readonly name = 'EventLogUnavailableError';
  readonly retriable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
