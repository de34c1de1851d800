/**
 * POST /webhooks/awx — AWX notification webhooks (its default `job_metadata` body: id, name, url,
 * status, started, finished, …). AWX can authenticate a webhook notification with HTTP basic auth
 * or with a custom header; both carry the configured secret. The body is only a signal: it is
 * published as an awx-job-status event and the workers, which own run state, decide what it means.
 */
import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { EventLog } from '../../core/event-log/port.js';
import { EventLogUnavailableError } from '../../core/event-log/port.js';
import { cloudEvent, eventTypes } from '../../core/events/catalogue.js';
import { uuidv7 } from '../../core/ids.js';
import { type AuditTrail, bridgeSource } from '../audit.js';
import { parseJsonBody, readRawBody } from '../http/body.js';
import { ServiceUnavailableError, UnauthorizedError } from '../http/errors.js';
import type { Handler } from '../http/server.js';
import type { BridgeMetrics } from '../metrics.js';
import { auditedWebhook } from './refusals.js';

export const awxJobMetadataSchema = z.looseObject({
  id: z.number().int().positive(),
  name: z.string().nullable().optional(),
  url: z.string().nullable().optional(),
  status: z.string().min(1),
  started: z.string().nullable().optional(),
  finished: z.string().nullable().optional(),
});

export interface AwxWebhookDeps {
  eventLog: EventLog;
  audit: AuditTrail;
  metrics: BridgeMetrics;
  secret: string | undefined;
  maxBytes: number;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Accepts `Authorization: Basic base64(user:secret)` or `X-UNICOP-Token: secret`. */
function authenticated(headers: Record<string, string | string[] | undefined>, secret: string): boolean {
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

export function awxWebhookHandler(deps: AwxWebhookDeps): Handler {
  return auditedWebhook('awx', deps, async ({ req, log }) => {
    if (!deps.secret || !authenticated(req.headers, deps.secret)) {
      throw new UnauthorizedError('invalid_credentials', 'AWX notification credentials missing or wrong');
    }
    const raw = await readRawBody(req, deps.maxBytes);
    const job = parseJsonBody(raw, awxJobMetadataSchema);
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
        receivedAt: new Date().toISOString(),
      },
    });
    try {
      await deps.eventLog.append([
        { topic: eventTypes.awxJobStatus.topic, key: `${kind}/${job.id}`, value: JSON.stringify(event) },
      ]);
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
    deps.metrics.published.inc({ type: eventTypes.awxJobStatus.type });
    log.info({ awxJobId: job.id, status: job.status }, 'AWX notification accepted');
    return { status: 202, body: { status: 'accepted', eventId: event.id } };
  });
}
