/**
 * POST /webhooks/netbox — the front door. In order: read the body (size limit), verify the
 * signature, parse, validate, recognise echoes and duplicates, append the change to
 * `unicop.changes`, and answer 202 only once Kafka acknowledged it (acks=all). No NetBox call is
 * made on this path; working out which roots a change touches happens behind the log (resolver).
 * One awaited append per webhook: the change and its `change.received` audit event go in the same
 * acknowledged write; `change.published` follows in the producer's next batch, not waited for
 * (docs/decisions/0035-ingest-throughput.md).
 */
import type { Logger } from 'pino';
import type { EventLog } from '../../core/event-log/port.js';
import { EventLogUnavailableError, maxWebhookRecordBytes } from '../../core/event-log/port.js';
import { type CloudEvent, cloudEvent, type EventData, eventTypes } from '../../core/events/catalogue.js';
import { netboxWebhookSchema, normaliseDelivery } from '../../core/events/netbox-webhook.js';
import { deterministicUuidv7 } from '../../core/ids.js';
import { contextFrom, inSpan, SpanKind, traceHeaders, tracer } from '../../core/tracing.js';
import { type AuditTrail, auditMessage, bridgeSource } from '../audit.js';
import { parseJsonBody, readRawBody } from '../http/body.js';
import { HttpError, ServiceUnavailableError, UnauthorizedError } from '../http/errors.js';
import type { Handler, Reply } from '../http/server.js';
import type { BridgeMetrics } from '../metrics.js';
import type { DeliveryMemory } from './delivery-memory.js';
import { auditedWebhook } from './refusals.js';
import { checkHookSignature } from './signature.js';

export interface NetboxWebhookDeps {
  eventLog: EventLog;
  memory: DeliveryMemory;
  audit: AuditTrail;
  metrics: BridgeMetrics;
  secrets: readonly string[];
  maxBytes: number;
  /** UNICOP's own NetBox user: its changes are echoes of our writes. */
  ownUsername: string;
}

const bridgeTracer = tracer('bridge');

export function netboxWebhookHandler(deps: NetboxWebhookDeps): Handler {
  const handle = auditedWebhook('netbox', deps, ({ req, log, requestId }) =>
    accept(deps, req, log, requestId, process.hrtime.bigint()),
  );
  // The receipt is the root of the change's trace (or continues one the request carries).
  const attributes = { 'http.request.method': 'POST', 'http.route': '/webhooks/netbox' };
  return (ctx) =>
    inSpan(
      bridgeTracer,
      'POST /webhooks/netbox',
      { kind: SpanKind.SERVER, parent: contextFrom(ctx.req.headers), attributes },
      async (span) => {
        const reply = await handle(ctx);
        span.setAttribute('http.response.status_code', reply.status);
        return reply;
      },
    );
}

/**
 * The change event, validated by the change schema — without walking the object and its two
 * snapshots a second time: the webhook's schema already required each to be an object (or null),
 * which is all the change schema asks of them, so they are checked as empty stand-ins and put back
 * as they are. Walking (and copying) them again was most of the change event's cost (decision 0059).
 */
function changeEvent(data: EventData<'change'>, objectKey: string): CloudEvent<'change'> {
  const standIn = (snapshot: Record<string, unknown> | null) => (snapshot === null ? null : {});
  const checked = cloudEvent('change', {
    id: data.changeId,
    source: bridgeSource,
    subject: objectKey,
    time: data.occurredAt,
    data: { ...data, data: {}, prechange: standIn(data.prechange), postchange: standIn(data.postchange) },
  });
  return {
    ...checked,
    data: { ...checked.data, data: data.data, prechange: data.prechange, postchange: data.postchange },
  };
}

async function accept(
  deps: NetboxWebhookDeps,
  req: Parameters<Handler>[0]['req'],
  log: Logger,
  requestId: string,
  started: bigint,
): Promise<Reply> {
  const raw = await readRawBody(req, deps.maxBytes);
  const signature = checkHookSignature(raw, req.headers['x-hook-signature'], deps.secrets);
  if (signature === 'missing')
    throw new UnauthorizedError('missing_signature', 'X-Hook-Signature is required');
  if (signature === 'invalid')
    throw new UnauthorizedError('invalid_signature', 'X-Hook-Signature does not match');

  const delivery = normaliseDelivery(parseJsonBody(raw, netboxWebhookSchema));
  const correlation = {
    bridgeRequestId: requestId,
    netboxRequestId: delivery.requestId,
    objectType: delivery.objectType,
    objectId: delivery.objectId,
  };
  const objectKey = `${delivery.objectType}:${delivery.objectId}`;
  // A child logger costs as much as a log line; only the rare paths need one.
  const changeLog = () => log.child(correlation);

  if (delivery.actor !== null && delivery.actor === deps.ownUsername) {
    deps.metrics.echoes.inc();
    deps.audit.record(
      {
        action: 'change.echo_suppressed',
        actor: delivery.actor,
        subjectType: delivery.objectType,
        subjectId: String(delivery.objectId),
        outcome: 'ignored',
        reason: 'made by UNICOP itself',
        correlation,
        metadata: { event: delivery.event },
      },
      objectKey,
    );
    changeLog().debug('echo of our own write, not turned into work');
    return { status: 200, body: { status: 'ignored', reason: 'echo' } };
  }

  const identity = [
    delivery.requestId,
    delivery.objectType,
    delivery.objectId,
    delivery.event,
    delivery.lastUpdated,
  ] as const;
  const changeId = deterministicUuidv7(Date.parse(delivery.occurredAt), ...identity.map((v) => v ?? ''));
  // Built before the delivery is claimed: whatever they refuse is refused without leaving a claim.
  const change = changeEvent({ changeId, ...delivery }, objectKey);
  const received = auditMessage(
    {
      action: 'change.received',
      actor: delivery.actor ?? 'unknown',
      subjectType: delivery.objectType,
      subjectId: String(delivery.objectId),
      outcome: 'ok',
      reason: null,
      correlation: { ...correlation, changeId },
      metadata: { event: delivery.event },
    },
    objectKey,
  );
  const value = JSON.stringify(change);
  if (Buffer.byteLength(value) + Buffer.byteLength(objectKey) > maxWebhookRecordBytes) {
    throw new HttpError(
      413,
      'change_too_large',
      `the change would exceed ${maxWebhookRecordBytes} bytes on Kafka`,
    );
  }
  const memoryKey = deps.memory.key([...identity]);
  const claim = await deps.memory.claim(memoryKey).catch((error: unknown) => {
    // Without Redis we cannot tell duplicates apart; the change id is deterministic, so accepting
    // a duplicate here yields the same change id and no second intent downstream.
    changeLog().warn({ err: error }, 'delivery memory unavailable; accepting without de-duplication');
    return 'unavailable' as const;
  });
  if (claim === 'done') {
    deps.metrics.duplicates.inc();
    deps.audit.record(
      {
        action: 'change.duplicate',
        actor: delivery.actor ?? 'unknown',
        subjectType: delivery.objectType,
        subjectId: String(delivery.objectId),
        outcome: 'ignored',
        reason: 'delivery already accepted',
        correlation: { ...correlation, changeId },
        metadata: { event: delivery.event },
      },
      objectKey,
    );
    return { status: 200, body: { status: 'duplicate', changeId } };
  }
  if (claim === 'in_flight') {
    throw new ServiceUnavailableError(
      'delivery_in_flight',
      'the same delivery is being accepted right now',
      1,
    );
  }

  try {
    const topic = eventTypes.change.topic;
    const attributes = {
      'messaging.system': 'kafka',
      'messaging.destination.name': topic,
      'unicop.change_id': changeId,
    };
    // The change carries its trace on: `traceparent` in the record's headers (none when tracing is off).
    await inSpan(bridgeTracer, `${topic} publish`, { kind: SpanKind.PRODUCER, attributes }, () =>
      deps.eventLog.append([{ topic, key: objectKey, value, ...traceHeaders() }, received]),
    );
  } catch (error) {
    if (claim === 'claimed') await deps.memory.release(memoryKey).catch(() => undefined);
    if (error instanceof EventLogUnavailableError) {
      throw new ServiceUnavailableError(
        'event_log_unavailable',
        'Kafka did not acknowledge the change',
        5,
        error,
      );
    }
    throw error;
  }
  if (claim === 'claimed') {
    // Not waited for: see DeliveryMemory (in order with every later claim on the connection).
    deps.memory.remember(memoryKey).catch((error: unknown) => {
      changeLog().warn({ err: error }, 'could not remember the delivery for de-duplication');
    });
  }
  deps.metrics.published.inc({ type: eventTypes.change.type });
  deps.metrics.publishLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
  // DESIGN §4 names "published" among the audit transitions: recorded once the change is durable,
  // not waited for (it rides the producer's next batch; the 202 does not wait for it).
  deps.audit.record(
    {
      action: 'change.published',
      actor: 'unicop-bridge',
      subjectType: delivery.objectType,
      subjectId: String(delivery.objectId),
      outcome: 'ok',
      reason: null,
      correlation: { ...correlation, changeId },
      metadata: { topic: eventTypes.change.topic },
    },
    objectKey,
  );
  log.info({ ...correlation, changeId, event: delivery.event }, 'change accepted');
  return { status: 202, body: { status: 'accepted', changeId } };
}
