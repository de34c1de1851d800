/**
 * The resolver's one step: a batch of changes from `unicop.changes` becomes one intent per affected
 * root on `unicop.intents` (key = root key) plus audit events. Intent ids are derived from change
 * id + root key, so replaying `unicop.changes` yields the same ids. A change that touches no root is
 * recorded as `change.ignored`; a record that is not a valid change event is recorded as
 * `change.invalid` and skipped (a poison message must not stop the partition).
 */
import type { LogRecord } from '../../core/event-log/consumer.js';
import type { EventLogMessage } from '../../core/event-log/port.js';
import { type CloudEvent, cloudEvent, eventTypes, parseEvent } from '../../core/events/catalogue.js';
import { deterministicUuidv7, uuidv7 } from '../../core/ids.js';
import type { ChangeRef } from '../../core/plugin/client.js';

export const resolverSource = 'unicop/resolver';

export interface RootResolver {
  resolve(changes: ChangeRef[]): Promise<string[][]>;
}

function audit(
  action: string,
  key: string,
  outcome: 'ok' | 'ignored' | 'rejected',
  subject: { type: string; id: string },
  correlation: Record<string, string | number | null>,
  metadata: Record<string, unknown> = {},
  reason: string | null = null,
): EventLogMessage {
  const event = cloudEvent('audit', {
    id: uuidv7(),
    source: resolverSource,
    subject: key,
    data: {
      action,
      actor: 'unicop-resolver',
      subjectType: subject.type,
      subjectId: subject.id,
      outcome,
      reason,
      correlation,
      metadata,
    },
  });
  return { topic: eventTypes.audit.topic, key, value: JSON.stringify(event) };
}

export function intentFor(change: CloudEvent<'change'>, rootKey: string): CloudEvent<'intent'> {
  const c = change.data;
  const intentId = deterministicUuidv7(Date.parse(c.occurredAt), c.changeId, rootKey);
  return cloudEvent('intent', {
    id: intentId,
    source: resolverSource,
    subject: rootKey,
    time: c.occurredAt,
    data: {
      intentId,
      rootKey,
      cause: {
        kind: 'change',
        changeId: c.changeId,
        requestId: c.requestId,
        event: c.event,
        objectType: c.objectType,
        objectId: c.objectId,
        actor: c.actor,
        at: c.occurredAt,
      },
    },
  });
}

/** Turns records from unicop.changes into the messages to append; throws if NetBox is unavailable. */
export async function resolveChanges(
  records: LogRecord[],
  resolver: RootResolver,
): Promise<EventLogMessage[]> {
  const out: EventLogMessage[] = [];
  const changes: CloudEvent<'change'>[] = [];
  for (const record of records) {
    const change = parseEvent('change', record.value);
    if (change) {
      changes.push(change);
      continue;
    }
    const where = `${record.topic}/${record.partition}@${record.offset}`;
    out.push(
      audit(
        'change.invalid',
        record.key ?? where,
        'rejected',
        { type: 'kafka-record', id: where },
        { offset: record.offset },
        {},
        'not a valid io.unicop.change.v1 event',
      ),
    );
  }
  if (changes.length === 0) return out;

  const rootKeys = await resolver.resolve(
    changes.map((c) => ({
      object_type: c.data.objectType,
      object_id: c.data.objectId,
      event: c.data.event,
      data: c.data.data,
      prechange: c.data.prechange,
      postchange: c.data.postchange,
    })),
  );
  changes.forEach((change, i) => {
    const keys = [...new Set(rootKeys[i] ?? [])].sort();
    const correlation = { changeId: change.data.changeId, netboxRequestId: change.data.requestId };
    const subject = { type: change.data.objectType, id: String(change.data.objectId) };
    if (keys.length === 0) {
      out.push(
        audit('change.ignored', change.subject, 'ignored', subject, correlation, {}, 'touches no root'),
      );
      return;
    }
    for (const rootKey of keys) {
      const intent = intentFor(change, rootKey);
      out.push({ topic: eventTypes.intent.topic, key: rootKey, value: JSON.stringify(intent) });
      out.push(
        audit(
          'intent.published',
          rootKey,
          'ok',
          { type: 'root', id: rootKey },
          {
            ...correlation,
            intentId: intent.data.intentId,
          },
        ),
      );
    }
  });
  return out;
}
