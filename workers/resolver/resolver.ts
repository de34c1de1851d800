/**
 * The resolver process step: consumes `unicop.changes` as consumer group `unicop-resolver`, asks
 * the plugin which roots each batch touches, appends the intents (acks=all), and only then lets the
 * offsets be committed. NetBox unavailable → the batch is retried with backoff and nothing is
 * committed, so no change is skipped. A poison change (invalid, or refused by the plugin with a
 * 4xx) is set aside on `unicop.dead-letter` with the reason and the partition moves on
 * (resolve-changes.ts). A request touching more roots than UNICOP_ROLLOUT_MIN_ROOTS opens a rollout
 * and only its first wave's intents are appended (workers/rollout/rollout.ts).
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import type { EventStream } from '../../core/event-log/consumer.js';
import type { EventLog } from '../../core/event-log/port.js';
import type { RolloutStore } from '../../core/rollout/store.js';
import { inRecordSpans, tracer } from '../../core/tracing.js';
import { gateIntents, type RolloutSettings } from '../rollout/rollout.js';
import { type RootResolver, resolveChanges } from './resolve-changes.js';

export interface ResolverDeps {
  changes: EventStream;
  eventLog: EventLog;
  resolver: RootResolver;
  log: Logger;
  /** Dates what is set aside on unicop.dead-letter; the system clock by default. */
  clock?: Clock;
  /** Gradual rollout (docs/decisions/0061): a request touching many roots opens a rollout; absent: none. */
  rollouts?: { store: Pick<RolloutStore, 'gate' | 'gateMany'>; settings: RolloutSettings };
}

export async function startResolver({ changes, eventLog, resolver, log, clock, rollouts }: ResolverDeps) {
  const resolverTracer = tracer('resolver');
  const noRollout = new Set<string>(); // requests the rollout gate found with too few roots
  // One span per change, ended once its intents are durable; each intent carries its change's trace.
  await changes.start((records) =>
    inRecordSpans(resolverTracer, 'process', records, async (contextOf) => {
      const resolved = await resolveChanges(records, resolver, clock, contextOf);
      const messages = rollouts
        ? await gateIntents(resolved, rollouts.store, rollouts.settings, clock, noRollout, log)
        : resolved;
      await eventLog.append(messages);
      log.debug({ changes: records.length, appended: messages.length }, 'changes resolved');
    }),
  );
  return { stop: () => changes.stop() };
}
