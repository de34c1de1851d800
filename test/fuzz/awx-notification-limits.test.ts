/**
 * AWX notifications are size-checked before Kafka (issue #18, decision 0056), as NetBox's webhooks
 * are (decision 0049): a body over UNICOP_WEBHOOK_MAX_BYTES is 413 `body_too_large`; a field the
 * event copies over its cap (a job's name, url, status, times; an approval's text) is 422
 * `invalid_body` naming it; a large job_metadata body (host summaries of a big inventory) is
 * accepted and its event carries only the capped fields; and an event that would still exceed the
 * record limit is 413 `notification_too_large`, never appended. Every refusal is an
 * `awx_notification.rejected` audit event with its reason, and nothing of a refused notification
 * reaches unicop.awx-events. Real Kafka; the bridge in-process (test/support/bridge.ts), and for the
 * record limit the AWX handler alone in an HTTP server with a small limit (the default, 1,000,000
 * bytes, is out of reach of capped fields: that is the point of the caps).
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditTrail } from '../../bridge/audit.js';
import { createHttpServer } from '../../bridge/http/server.js';
import { awxFieldCaps, awxWebhookHandler } from '../../bridge/ingress/awx-webhook.js';
import { RefusalBudget } from '../../bridge/ingress/refusal-budget.js';
import { createBridgeMetrics } from '../../bridge/metrics.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { topics } from '../../core/events/catalogue.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail, testKafka } from '../support/kafka.js';

const secret = 'awx-limits-secret';
const maxBytes = 64 * 1024;

let bridge: RunningBridge;
let tail: TopicTail;

async function notify(
  url: string,
  body: string,
): Promise<{ status: number; json: Record<string, unknown>; requestId: string }> {
  const res = await fetch(`${url}/webhooks/awx`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-unicop-token': secret },
    body,
  });
  const requestId = res.headers.get('x-request-id');
  expect(requestId).toBeTruthy();
  return {
    status: res.status,
    json: (await res.json()) as Record<string, unknown>,
    requestId: requestId ?? '',
  };
}

const data = (m: TailedMessage) => (m.value as { data: Record<string, unknown> }).data;
/** The audit event of this one refusal: the bridge's request id (X-Request-ID) is its correlation. */
const refusal = (reason: string, requestId: string) => (m: TailedMessage) =>
  m.topic === topics.audit &&
  data(m).action === 'awx_notification.rejected' &&
  data(m).reason === reason &&
  (data(m).correlation as { bridgeRequestId?: string } | undefined)?.bridgeRequestId === requestId;
const jobEvent = (awxJobId: number) => (m: TailedMessage) =>
  m.topic === topics.awxEvents && data(m).awxJobId === awxJobId;

/** An AWX job id no real job has (they count from 1), one per case. */
let nextJobId = 1_900_000_000 + Math.floor(Math.random() * 10_000_000);
const jobId = () => nextJobId++;

beforeAll(async () => {
  tail = await TopicTail.start([topics.awxEvents, topics.audit]);
  bridge = await startBridge({
    UNICOP_AWX_WEBHOOK_SECRET: secret,
    UNICOP_WEBHOOK_MAX_BYTES: String(maxBytes),
  });
});

afterAll(async () => {
  await bridge?.close();
  await tail?.stop();
});

describe('POST /webhooks/awx size limits', () => {
  it('refuses a body over UNICOP_WEBHOOK_MAX_BYTES with 413 body_too_large, audited', async () => {
    const id = jobId();
    const body = JSON.stringify({ id, status: 'success', hosts: { big: 'x'.repeat(maxBytes) } });
    const answer = await notify(bridge.url, body);
    expect(answer.status).toBe(413);
    expect(answer.json.reason).toBe('body_too_large');
    await tail.waitFor(refusal('body_too_large', answer.requestId));
    expect(await tail.settle(jobEvent(id), 500)).toEqual([]);
  });

  it.each([
    ['name', { name: 'n'.repeat(awxFieldCaps.name + 1) }],
    ['url', { url: `https://awx.example.net/#/jobs/playbook/1?${'u'.repeat(awxFieldCaps.url)}` }],
    ['status', { status: 's'.repeat(awxFieldCaps.status + 1) }],
    ['started', { started: '2'.repeat(awxFieldCaps.time + 1) }],
    ['finished', { finished: '2'.repeat(awxFieldCaps.time + 1) }],
  ])(
    'refuses job metadata whose %s is over its cap: 422 invalid_body naming it, audited, not published',
    async (field, over) => {
      const id = jobId();
      const answer = await notify(bridge.url, JSON.stringify({ id, status: 'success', ...over }));
      expect(answer.status).toBe(422);
      expect(answer.json.reason).toBe('invalid_body');
      expect((answer.json.issues as { field: string }[]).map((i) => i.field)).toEqual([field]);
      await tail.waitFor(refusal('invalid_body', answer.requestId));
      expect(await tail.settle(jobEvent(id), 300)).toEqual([]);
    },
  );

  it('refuses an approval text over its cap: 422 invalid_body naming body', async () => {
    const name = 'a'.repeat(awxFieldCaps.approvalText);
    const text = `The approval node "${name}" needs review. This node can be viewed at: https://awx.example.net/#/jobs/workflow/7`;
    const answer = await notify(bridge.url, JSON.stringify({ body: text }));
    expect(answer.status).toBe(422);
    expect((answer.json.issues as { field: string }[]).map((i) => i.field)).toEqual(['body']);
  });

  it('accepts a large job_metadata body (host summaries) and publishes only the capped fields', async () => {
    const id = jobId();
    const hosts = Object.fromEntries(
      Array.from({ length: 400 }, (_, i) => [`host-${i}.example.net`, { failed: false, changed: 1, ok: 3 }]),
    );
    const name = 'n'.repeat(awxFieldCaps.name);
    const body = JSON.stringify({
      id,
      name,
      status: 'success',
      url: `https://awx/#/jobs/playbook/${id}`,
      hosts,
    });
    expect(Buffer.byteLength(body)).toBeGreaterThan(20_000);
    const answer = await notify(bridge.url, body);
    expect(answer.status).toBe(202);
    const [event] = await tail.waitFor(jobEvent(id));
    const value = JSON.stringify(event?.value);
    expect(Buffer.byteLength(value)).toBeLessThan(4_000);
    expect(value).not.toContain('host-1.example.net');
    expect(data(event as TailedMessage).name).toBe(name);
  });
});

describe('the record limit behind the caps', () => {
  it('refuses a notification whose event would exceed the limit: 413 notification_too_large, audited, never appended', async () => {
    const kafka = testKafka();
    const eventLog = new KafkaEventLog(kafka);
    const logger = pino({ level: 'silent' }, new Writable({ write: (_c, _e, done) => done() }));
    const metrics = createBridgeMetrics();
    const audit = new AuditTrail(eventLog, logger, undefined, {
      budget: new RefusalBudget({ burst: 10, perMinute: 10, maxSources: 10 }),
      summaryEveryMs: 60_000,
      onSuppressed: () => undefined,
    });
    const maxEventBytes = 600;
    const server = createHttpServer(
      [
        {
          method: 'POST',
          path: '/webhooks/awx',
          handler: awxWebhookHandler({
            eventLog,
            audit,
            metrics,
            secrets: [secret],
            maxBytes,
            maxEventBytes,
          }),
        },
      ],
      logger,
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const small = jobId();
      expect((await notify(url, JSON.stringify({ id: small, status: 'success' }))).status).toBe(202);
      await tail.waitFor(jobEvent(small));

      const big = jobId();
      const answer = await notify(url, JSON.stringify({ id: big, status: 'success', name: 'n'.repeat(500) }));
      expect(answer.status).toBe(413);
      expect(answer.json.reason).toBe('notification_too_large');
      const [audited] = await tail.waitFor(refusal('notification_too_large', answer.requestId));
      expect((data(audited as TailedMessage).metadata as Record<string, unknown>).status).toBe(413);
      expect(await tail.settle(jobEvent(big), 1000)).toEqual([]);
    } finally {
      server.close();
      await audit.close();
      await eventLog.close();
    }
  });
});
