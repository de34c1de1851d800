/**
 * The resolver process step: consumes `unicop.changes` as consumer group `unicop-resolver`, asks
 * the plugin which roots each batch touches, appends the intents (acks=all), and only then lets the
 * offsets be committed. NetBox unavailable → the batch is retried with backoff and nothing is
 * committed, so no change is skipped. A poison change (invalid, or refused by the plugin with a
 * 4xx) is set aside on `unicop.dead-letter` with the reason and the partition moves on
 * (resolve-changes.ts).
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import type { EventStream } from '../../core/event-log/consumer.js';
import type { EventLog } from '../../core/event-log/port.js';
import { inRecordSpans, tracer } from '../../core/tracing.js';
import { type RootResolver, resolveChanges } from './resolve-changes.js';

export interface ResolverDeps {
  changes: EventStream;
  eventLog: EventLog;
  resolver: RootResolver;
  log: Logger;
  /** Dates what is set aside on unicop.dead-letter; the system clock by default. */
  clock?: Clock;
}

export async function startResolver({ changes, eventLog, resolver, log, clock }: ResolverDeps) {
  const resolverTracer = tracer('resolver');
  // One span per change, ended once its intents are durable; each intent carries its change's trace.
  await changes.start((records) =>
    inRecordSpans(resolverTracer, 'process', records, async (contextOf) => {
      const messages = await resolveChanges(records, resolver, clock, contextOf);
      await eventLog.append(messages);
      log.debug({ changes: records.length, appended: messages.length }, 'changes resolved');
    }),
  );
  return { stop: () => changes.stop() };
}
