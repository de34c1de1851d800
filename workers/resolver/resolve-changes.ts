/**
 * The resolver's one step: a batch of changes from `unicop.changes` becomes one intent per affected
 * root on `unicop.intents` (key = root key) plus audit events. Intent ids are derived from change
 * id + root key, so replaying `unicop.changes` yields the same ids. A change that touches no root is
 * recorded as `change.ignored`.
 *
 * A poison message must not stop the partition: a record that is not a valid change event
 * (`change.invalid`) and a change the plugin refuses with a 4xx about its content (`change.refused`:
 * 400, 413, 422) are set aside on `unicop.dead-letter` with the reason, audited, and the batch goes
 * on. When the plugin refuses a batch, it is split in halves until the refused changes stand alone,
 * so the others in the batch are still resolved. Other errors are not about one change and are
 * thrown: NetBox unavailable is retriable (the batch comes again), and a refusal of every request
 * (401, 403: the token or its permissions) stops the resolver loudly rather than setting every
 * change aside.
 */
import { type Context, ROOT_CONTEXT } from '@opentelemetry/api';
import { type Clock, systemClock } from '../../core/clock.js';
import type { LogRecord } from '../../core/event-log/consumer.js';
import type { EventLogMessage } from '../../core/event-log/port.js';
import { type AuditAction, auditMessage } from '../../core/events/audit.js';
import {
  type CloudEvent,
  cloudEvent,
  eventTypes,
  maxDeadLetterValue,
  parseEvent,
} from '../../core/events/catalogue.js';
import { deterministicUuidv7, uuidv7 } from '../../core/ids.js';
import type { ChangeRef } from '../../core/plugin/client.js';
import { traceHeaders } from '../../core/tracing.js';

export const resolverSource = 'unicop/resolver';
const consumerName = 'unicop-resolver';

/** HTTP statuses by which the plugin refuses what a change says (not who asks, not its own state). */
const refusalStatuses = [400, 413, 422];

export interface RootResolver {
  resolve(changes: ChangeRef[]): Promise<string[][]>;
}

/** The resolver's audit events through the one builder (core/events/audit.ts). */
function audit(
  action: AuditAction,
  key: string,
  outcome: 'ok' | 'ignored' | 'rejected',
  subject: { type: string; id: string },
  correlation: Record<string, string | number | null>,
  metadata: Record<string, unknown> = {},
  reason: string | null = null,
): EventLogMessage {
  return auditMessage(
    resolverSource,
    {
      action,
      actor: 'unicop-resolver',
      subjectType: subject.type,
      subjectId: subject.id,
      outcome,
      reason,
      correlation,
      metadata,
    },
    key,
  );
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

/** A record set aside on unicop.dead-letter (keyed as the original), with the reason. */
function deadLetter(
  record: LogRecord,
  kind: 'invalid' | 'refused',
  reason: string,
  status: number | null,
  eventId: string | null,
  at: Date,
): EventLogMessage {
  const where = `${record.topic}/${record.partition}@${record.offset}`;
  const event = cloudEvent('deadLetter', {
    id: uuidv7(),
    source: resolverSource,
    subject: where,
    data: {
      consumer: consumerName,
      kind,
      reason,
      status,
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      key: record.key,
      eventId,
      value: record.value.slice(0, maxDeadLetterValue),
      valueTruncated: record.value.length > maxDeadLetterValue,
      at: at.toISOString(),
    },
  });
  return { topic: eventTypes.deadLetter.topic, key: record.key ?? where, value: JSON.stringify(event) };
}

/** The status of a plugin refusal of a change's content, or null for any other error. */
function refusalStatus(error: unknown): number | null {
  const { status, retriable } = (error ?? {}) as { status?: unknown; retriable?: unknown };
  return typeof status === 'number' && retriable !== true && refusalStatuses.includes(status) ? status : null;
}

type Resolution = { rootKeys: string[] } | { refused: { status: number; reason: string } };

/** Resolves the changes; a refused batch is halved until each refused change stands alone. */
async function resolveIsolating(
  changes: CloudEvent<'change'>[],
  resolver: RootResolver,
): Promise<Resolution[]> {
  try {
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
    return changes.map((_, i) => ({ rootKeys: rootKeys[i] ?? [] }));
  } catch (error) {
    const status = refusalStatus(error);
    if (status === null) throw error;
    if (changes.length === 1) return [{ refused: { status, reason: (error as Error).message } }];
    const half = Math.ceil(changes.length / 2);
    return [
      ...(await resolveIsolating(changes.slice(0, half), resolver)),
      ...(await resolveIsolating(changes.slice(half), resolver)),
    ];
  }
}

/**
 * Turns records from unicop.changes into the messages to append; throws if NetBox is unavailable.
 * The clock dates what is set aside on unicop.dead-letter; `contextOf` gives the trace context each
 * change's intents carry on (core/tracing.ts; none by default).
 */
export async function resolveChanges(
  records: LogRecord[],
  resolver: RootResolver,
  clock: Clock = systemClock,
  contextOf: (record: LogRecord) => Context = () => ROOT_CONTEXT,
): Promise<EventLogMessage[]> {
  const out: EventLogMessage[] = [];
  const changes: { change: CloudEvent<'change'>; record: LogRecord }[] = [];
  for (const record of records) {
    const change = parseEvent('change', record.value);
    if (change) {
      changes.push({ change, record });
      continue;
    }
    const where = `${record.topic}/${record.partition}@${record.offset}`;
    const reason = 'not a valid io.unicop.change.v1 event';
    out.push(
      deadLetter(record, 'invalid', reason, null, null, clock.now()),
      audit(
        'change.invalid',
        record.key ?? where,
        'rejected',
        { type: 'kafka-record', id: where },
        { offset: record.offset },
        { deadLetterTopic: eventTypes.deadLetter.topic },
        reason,
      ),
    );
  }
  if (changes.length === 0) return out;

  const resolutions = await resolveIsolating(
    changes.map((c) => c.change),
    resolver,
  );
  changes.forEach(({ change, record }, i) => {
    const resolution = resolutions[i] ?? { rootKeys: [] };
    const correlation = { changeId: change.data.changeId, netboxRequestId: change.data.requestId };
    const subject = { type: change.data.objectType, id: String(change.data.objectId) };
    if ('refused' in resolution) {
      const { status, reason } = resolution.refused;
      out.push(
        deadLetter(record, 'refused', reason, status, change.id, clock.now()),
        audit(
          'change.refused',
          change.subject,
          'rejected',
          subject,
          { ...correlation, offset: record.offset },
          { status, deadLetterTopic: eventTypes.deadLetter.topic },
          reason,
        ),
      );
      return;
    }
    const keys = [...new Set(resolution.rootKeys)].sort();
    if (keys.length === 0) {
      out.push(
        audit('change.ignored', change.subject, 'ignored', subject, correlation, {}, 'touches no root'),
      );
      return;
    }
    for (const rootKey of keys) {
      const intent = intentFor(change, rootKey);
      out.push({
        topic: eventTypes.intent.topic,
        key: rootKey,
        value: JSON.stringify(intent),
        ...traceHeaders(contextOf(record)),
      });
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
