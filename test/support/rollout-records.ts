/**
 * What the rollout worker's and the resolver gate's tests hand them (workers/rollout): a run's end as a
 * unicop.outcomes record, one NetBox request's intents, and an event log that keeps what is appended.
 */
import type { LogRecord } from '../../core/event-log/consumer.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import { cloudEvent, type EventData, topics } from '../../core/events/catalogue.js';
import { intentMessage } from '../../core/events/intent.js';

/** A run's end of `rootKey` (succeeded unless `extra` says otherwise); its event id derived from `offset`. */
export function outcomeRecord(
  runId: string,
  rootKey: string,
  offset: number,
  extra: Partial<EventData<'outcome'>> = {},
): LogRecord {
  const event = cloudEvent('outcome', {
    id: `0190a000-0000-7000-8000-${String(offset).padStart(12, '0')}`,
    source: 'unicop/reconciler',
    subject: rootKey,
    data: {
      runId,
      rootKey,
      state: 'succeeded',
      failureClass: null,
      snapshotHash: 'a'.repeat(64),
      fencingToken: 3,
      intentId: null,
      awxJobId: null,
      awxJobUrl: null,
      summary: 'test',
      startedAt: '2026-12-02T18:00:00.000Z',
      finishedAt: '2026-12-02T18:01:00.000Z',
      ...extra,
    },
  });
  return {
    topic: topics.outcomes,
    partition: 0,
    offset: String(offset),
    key: rootKey,
    value: JSON.stringify(event),
  };
}

/** The resolver's intents of one NetBox request, one per root key (change ids `<request>-<n>`). */
export function requestIntents(requestId: string, keys: string[]): EventLogMessage[] {
  return keys.map(
    (key, i) =>
      intentMessage('unicop/resolver', key, {
        kind: 'change',
        actor: 'alice',
        requestId,
        changeId: `${requestId}-${i}`,
      }).message,
  );
}

/** An event log that keeps each append (a batch of messages) in `batches`. */
export function keepingEventLog(): { eventLog: EventLog; batches: EventLogMessage[][] } {
  const batches: EventLogMessage[][] = [];
  const eventLog: EventLog = {
    append: async (messages) => {
      batches.push(messages);
    },
    healthy: async () => true,
    close: async () => {},
  };
  return { eventLog, batches };
}
