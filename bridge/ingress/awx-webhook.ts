/**
 * POST /webhooks/awx — AWX notification webhooks. AWX can authenticate a webhook notification with
 * HTTP basic auth or with a custom header; both carry the configured secret. Two bodies arrive:
 *
 * - a job's or workflow job's status (`started`, `success`, `error`): AWX's default `job_metadata`
 *   body (id, name, url, status, started, finished, …), published as an awx-job-status event;
 * - a workflow approval node's (`approvals`): AWX's default webhook body for it is only
 *   `{"body": "The approval node \"NAME\" needs review. This node can be viewed at: URL"}` (or
 *   `was approved.`, `was denied.`, `has timed out.` then the URL), published as an awx-approval
 *   event keyed like the workflow job's own status events (docs/decisions/0031).
 *
 * A body with an `id` is job metadata (a workflow's job_metadata has a `body` too: its summary).
 * Either body is only a signal: the workers, which own run state, re-read AWX.
 *
 * Size (issue #18, decision 0056): the body is read under UNICOP_WEBHOOK_MAX_BYTES (413
 * `body_too_large`) — job metadata carries a summary per host, so a large inventory's is large — but
 * the event copies only a few of its fields, each capped (422 naming the field, as NetBox's are:
 * decision 0049), so an event is a few KiB whatever the body; and an event over
 * `maxEventBytes` (below Kafka's message.max.bytes) is refused for good, 413 `notification_too_large`,
 * never handed to Kafka to fail the batch it would share. Every refusal is counted and audited per
 * peer, rate-limited, by auditedWebhook.
 */
import { z } from 'zod';
import { type Clock, systemClock } from '../../core/clock.js';
import type { EventLog } from '../../core/event-log/port.js';
import { EventLogUnavailableError, maxWebhookRecordBytes } from '../../core/event-log/port.js';
import { type CloudEvent, cloudEvent, type EventName, eventTypes } from '../../core/events/catalogue.js';
import { uuidv7 } from '../../core/ids.js';
import { sameSecret } from '../../core/same-secret.js';
import { type AuditTrail, bridgeSource } from '../audit.js';
import { parseJsonBody, readRawBody, validateBody } from '../http/body.js';
import { HttpError, ServiceUnavailableError, UnauthorizedError, ValidationError } from '../http/errors.js';
import type { Handler } from '../http/server.js';
import type { BridgeMetrics } from '../metrics.js';
import { auditedWebhook } from './refusals.js';

/**
 * Caps of the fields an event copies: AWX's own limits with room to spare — a template's (and so a
 * job's) name is at most 512 characters (UnifiedJobTemplate.name), a status one of a dozen words, a
 * time an ISO 8601 string; a job's address is TOWER_URL_BASE plus `/#/jobs/…/ID`.
 */
export const awxFieldCaps = { name: 512, url: 2048, status: 64, time: 64, approvalText: 4096 } as const;

export const awxJobMetadataSchema = z.looseObject({
  id: z.number().int().positive(),
  name: z.string().max(awxFieldCaps.name).nullable().optional(),
  url: z.string().max(awxFieldCaps.url).nullable().optional(),
  status: z.string().min(1).max(awxFieldCaps.status),
  started: z.string().max(awxFieldCaps.time).nullable().optional(),
  finished: z.string().max(awxFieldCaps.time).nullable().optional(),
});

/**
 * AWX's default webhook body for an approval notification (WebhookBackend's workflow_approval
 * messages): the node's name (≤ 512) and the workflow job's address in one sentence.
 */
export const awxApprovalBodySchema = z.looseObject({ body: z.string().max(awxFieldCaps.approvalText) });

const approvalWords = {
  'needs review': 'pending',
  'was approved': 'approved',
  'was denied': 'denied',
  'has timed out': 'timed_out',
} as const;
const approvalText =
  /^The approval node "(?<name>.+)" (?<words>needs review|was approved|was denied|has timed out)\.(?: This node can be viewed at:)? (?<url>\S*\/#\/jobs\/workflow\/(?<id>\d+)\/?)$/s;
const expectedApprovalText =
  'expected AWX\'s approval text: The approval node "<name>" needs review|was approved|was denied|has timed out. <…/#/jobs/workflow/<id>>';

export interface AwxApproval {
  workflowJobId: number;
  approvalName: string;
  status: (typeof approvalWords)[keyof typeof approvalWords];
  workflowUrl: string;
  message: string;
}

/** Reads AWX's approval notification text; null when it is not that text. */
export function parseApprovalText(text: string): AwxApproval | null {
  const match = approvalText.exec(text.trim());
  const groups = match?.groups;
  if (!groups?.name || !groups.words || !groups.url || !groups.id) return null;
  return {
    workflowJobId: Number(groups.id),
    approvalName: groups.name,
    status: approvalWords[groups.words as keyof typeof approvalWords],
    workflowUrl: groups.url,
    message: text,
  };
}

export interface AwxWebhookDeps {
  eventLog: EventLog;
  audit: AuditTrail;
  metrics: BridgeMetrics;
  /**
   * The secrets accepted now (several during a rotation's grace), checked on every request: a list
   * kept current in place (core/secrets/runtime-config.ts acceptedAwxWebhookSecrets). Empty: every
   * notification is refused.
   */
  secrets: readonly string[];
  /** Largest body read (UNICOP_WEBHOOK_MAX_BYTES); 413 body_too_large above. */
  maxBytes: number;
  /**
   * Largest event appended; 413 notification_too_large above. By default maxWebhookRecordBytes, as
   * for NetBox's changes.
   */
  maxEventBytes?: number;
  /** Dates each notification's `receivedAt`; the system clock by default. */
  clock?: Clock;
}

/**
 * Accepts `Authorization: Basic base64(user:secret)` or `X-UNICOP-Token: secret`, each compared by
 * digest (core/same-secret.ts): a wrong value of any length takes the same time.
 */
export function awxNotificationAuthenticated(
  headers: Record<string, string | string[] | undefined>,
  secret: string,
): boolean {
  const token = headers['x-unicop-token'];
  if (typeof token === 'string' && sameSecret(token, secret)) return true;
  const auth = headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const password = decoded.slice(decoded.indexOf(':') + 1);
    return decoded.includes(':') && sameSecret(password, secret);
  }
  return false;
}

/**
 * Which kind of AWX job a notification is about, from its `url`: AWX's job_metadata carries the
 * job's UI address (`TOWER_URL_BASE/#/jobs/workflow/ID` for a workflow job,
 * `/#/jobs/playbook/ID` for a job — UnifiedJob.get_ui_url); an API address
 * (`/api/v2/workflow_jobs/ID/`) is accepted too.
 */
export function jobKindOf(url: string | null | undefined): 'job' | 'workflow_job' {
  return url && /\/jobs\/workflow\/\d+|\/workflow_jobs\/\d+/.test(url) ? 'workflow_job' : 'job';
}

/** The event a notification body becomes, with its Kafka key; a 4xx naming the field when it is neither kind. */
function eventOf(
  raw: Buffer,
  receivedAt: string,
): { event: CloudEvent<EventName>; key: string; ids: Record<string, unknown> } {
  const json = parseJsonBody(raw, z.unknown());
  const looksLikeApproval =
    json !== null && typeof json === 'object' && !Array.isArray(json) && 'body' in json && !('id' in json);
  if (looksLikeApproval) {
    const { body } = validateBody(json, awxApprovalBodySchema);
    const approval = parseApprovalText(body);
    if (!approval) throw new ValidationError([{ field: 'body', message: expectedApprovalText }]);
    const key = `workflow_job/${approval.workflowJobId}`;
    const event = cloudEvent('awxApproval', {
      id: uuidv7(),
      source: bridgeSource,
      subject: `awx/${key}/approval`,
      data: { ...approval, receivedAt },
    });
    return { event, key, ids: { workflowJobId: approval.workflowJobId, approval: approval.status } };
  }
  const job = validateBody(json, awxJobMetadataSchema);
  const kind = jobKindOf(job.url);
  const event = cloudEvent('awxJobStatus', {
    id: uuidv7(),
    source: bridgeSource,
    subject: `awx/${kind}/${job.id}`,
    data: {
      awxJobId: job.id,
      kind,
      status: job.status,
      name: job.name ?? null,
      url: job.url ?? null,
      started: job.started ?? null,
      finished: job.finished ?? null,
      receivedAt,
    },
  });
  return { event, key: `${kind}/${job.id}`, ids: { awxJobId: job.id, status: job.status } };
}

export function awxWebhookHandler(deps: AwxWebhookDeps): Handler {
  return auditedWebhook('awx', deps, async ({ req, log }) => {
    // Every accepted secret is compared, so timing does not tell which (or whether one) matched.
    let authenticated = false;
    for (const secret of deps.secrets) {
      if (awxNotificationAuthenticated(req.headers, secret)) authenticated = true;
    }
    if (!authenticated) {
      throw new UnauthorizedError('invalid_credentials', 'AWX notification credentials missing or wrong');
    }
    const raw = await readRawBody(req, deps.maxBytes);
    const { event, key, ids } = eventOf(raw, (deps.clock ?? systemClock).now().toISOString());
    const topic = eventTypes.awxJobStatus.topic; // both kinds live on unicop.awx-events
    const value = JSON.stringify(event);
    const maxEventBytes = deps.maxEventBytes ?? maxWebhookRecordBytes;
    if (Buffer.byteLength(value) + Buffer.byteLength(key) > maxEventBytes) {
      throw new HttpError(
        413,
        'notification_too_large',
        `the notification's event would exceed ${maxEventBytes} bytes on Kafka`,
      );
    }
    try {
      await deps.eventLog.append([{ topic, key, value }]);
    } catch (error) {
      if (error instanceof EventLogUnavailableError) {
        throw new ServiceUnavailableError(
          'event_log_unavailable',
          'Kafka did not acknowledge the event',
          5,
          error,
        );
      }
      throw error;
    }
    deps.metrics.published.inc({ type: event.type });
    log.info(ids, 'AWX notification accepted');
    return { status: 202, body: { status: 'accepted', eventId: event.id } };
  });
}
