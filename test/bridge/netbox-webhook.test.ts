/**
 * POST /webhooks/netbox against the real Kafka and Redis: what is accepted becomes exactly one
 * change on unicop.changes, and the 202 waits for Kafka's acknowledgement (held back in one test); what is refused gets the right status, names its reason
 * (and field), and leaves an audit event; duplicates and echoes are recognised; no secret is logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { uuidv7Pattern } from '../../core/ids.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox44Body, netbox47Body, postWebhook } from '../support/webhooks.js';

const secret = 'current-webhook-secret-0123456789';
const oldSecret = 'previous-webhook-secret-9876543210';

describe('POST /webhooks/netbox', () => {
  let bridge: RunningBridge;
  let tail: TopicTail;

  beforeAll(async () => {
    tail = await TopicTail.start([topics.changes, topics.audit]);
    bridge = await startBridge({
      UNICOP_WEBHOOK_SECRETS: `${secret},${oldSecret}`,
      UNICOP_NETBOX_USERNAME: 'unicop-automation',
    });
  });
  afterAll(async () => {
    await bridge?.close();
    await tail?.stop();
  });

  const changesFor = (objectId: number) => (m: TailedMessage) =>
    m.topic === topics.changes && (m.value.data as { objectId: number }).objectId === objectId;
  const auditWhere =
    (action: string, pred: (d: Record<string, unknown>) => boolean = () => true) =>
    (m: TailedMessage) =>
      m.topic === topics.audit &&
      (m.value.data as { action: string }).action === action &&
      pred(m.value.data as Record<string, unknown>);

  it('accepts a signed 4.7 delivery: 202 only after Kafka acknowledged the change on unicop.changes', async () => {
    // A bridge whose Kafka acknowledgements are held back from it until the test releases them:
    // the change is on the broker, but until the bridge learns so it must not answer.
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const held = await startBridge(
      { UNICOP_WEBHOOK_SECRETS: secret, UNICOP_PUBLISH_TIMEOUT_MS: '60000' },
      { holdAcks: () => released },
    );
    const body = netbox47Body();
    let answered = false;
    const response = postWebhook(held.url, body, secret).finally(() => {
      answered = true;
    });
    let res: Awaited<typeof response>;
    try {
      await tail.waitFor(changesFor(body.data.id)); // on the broker …
      await new Promise((r) => setTimeout(r, 1500));
      expect(answered).toBe(false); // … and no answer while the acknowledgement is held
      release();
      res = await response;
    } finally {
      release();
      await response.catch(() => undefined);
      await held.close();
    }
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'accepted' });
    expect(res.body.changeId).toMatch(uuidv7Pattern);
    const [change] = await tail.waitFor(changesFor(body.data.id));
    expect(change?.key).toBe(`dcim.site:${body.data.id}`);
    expect(change?.value).toMatchObject({
      specversion: '1.0',
      id: res.body.changeId,
      type: 'io.unicop.change.v1',
      subject: `dcim.site:${body.data.id}`,
      datacontenttype: 'application/json',
      data: {
        changeId: res.body.changeId,
        event: 'updated',
        objectType: 'dcim.site',
        objectId: body.data.id,
        requestId: body.request.id,
        actor: 'alice',
      },
    });
    // The object and both snapshots as NetBox sent them (the change schema checks them without
    // walking them again: decision 0059).
    const written = change?.value.data as Record<string, unknown>;
    expect(written.data).toEqual(body.data);
    expect(written.prechange).toEqual(body.snapshots.prechange);
    expect(written.postchange).toEqual(body.snapshots.postchange);
    await tail.waitFor(auditWhere('change.received', (d) => d.subjectId === String(body.data.id)));
    // DESIGN §4's "published" transition, recorded once the change is durable.
    await tail.waitFor(auditWhere('change.published', (d) => d.subjectId === String(body.data.id)));
  });

  it('accepts a 4.4 delivery (model, username, request_id, null prechange) signed with the previous secret', async () => {
    const body = netbox44Body();
    const res = await postWebhook(bridge.url, body, oldSecret);
    expect(res.status).toBe(202);
    const [change] = await tail.waitFor(changesFor(body.data.id));
    expect(change?.value.data).toMatchObject({
      event: 'created',
      objectType: 'dcim.site',
      requestId: body.request_id,
      actor: 'bob',
      prechange: null,
    });
  });

  it('turns the same delivery sent twice into one change', async () => {
    const body = netbox47Body();
    const first = await postWebhook(bridge.url, body, secret);
    const second = await postWebhook(bridge.url, body, secret);
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ status: 'duplicate', changeId: first.body.changeId });
    expect(await tail.settle(changesFor(body.data.id))).toHaveLength(1);
    await tail.waitFor(auditWhere('change.duplicate', (d) => d.subjectId === String(body.data.id)));
  });

  it("recognises UNICOP's own writes as echoes and does not turn them into work", async () => {
    const body = netbox47Body({
      request: { id: crypto.randomUUID(), user: 'unicop-automation', method: 'POST', path: '/api/x/' },
    });
    const res = await postWebhook(bridge.url, body, secret);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ignored', reason: 'echo' });
    await tail.waitFor(auditWhere('change.echo_suppressed', (d) => d.subjectId === String(body.data.id)));
    expect(await tail.settle(changesFor(body.data.id), 500)).toHaveLength(0);
  });

  const refusals: [string, () => Promise<Awaited<ReturnType<typeof postWebhook>>>, number, string][] = [
    ['a missing signature', () => postWebhook(bridge.url, netbox47Body(), null), 401, 'missing_signature'],
    [
      'a wrong signature',
      () => postWebhook(bridge.url, netbox47Body(), 'not-the-secret'),
      401,
      'invalid_signature',
    ],
    [
      'a body over the limit',
      () => postWebhook(bridge.url, netbox47Body({ data: { id: 1, blob: 'x'.repeat(1024 * 1024) } }), secret),
      413,
      'body_too_large',
    ],
    [
      'a body that is not JSON',
      () => postWebhook(bridge.url, '{"event": "updated",', secret),
      400,
      'malformed_json',
    ],
  ];
  for (const [what, send, status, reason] of refusals) {
    it(`refuses ${what} with ${status} ${reason} and audits it`, async () => {
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.body).toMatchObject({ status: 'rejected', reason });
      await tail.waitFor(auditWhere('webhook.rejected', (d) => d.reason === reason));
    });
  }

  it('refuses a wrong shape with 422 naming the field path', async () => {
    const body = netbox47Body({ event: 'renamed', data: { id: 'seven' } });
    const res = await postWebhook(bridge.url, body, secret);
    expect(res.status).toBe(422);
    expect(res.body.reason).toBe('invalid_body');
    const fields = (res.body.issues as { field: string }[]).map((i) => i.field);
    expect(fields).toEqual(expect.arrayContaining(['event', 'data.id']));
    await tail.waitFor(auditWhere('webhook.rejected', (d) => d.reason === 'invalid_body'));
  });

  it('never writes a secret or a signature into its logs', async () => {
    // Its own deliveries (accepted, signed with the old secret, wrongly signed), logs read after.
    const accepted = await postWebhook(bridge.url, netbox47Body(), secret);
    await postWebhook(bridge.url, netbox44Body(), oldSecret);
    await postWebhook(bridge.url, netbox47Body(), 'not-the-secret');
    const all = bridge.logs.join('');
    expect(all).toContain(String(accepted.body.changeId)); // its 'change accepted' line is there
    expect(all).not.toContain(secret);
    expect(all).not.toContain(oldSecret);
    expect(all).not.toMatch(/[0-9a-f]{128}/); // no HMAC-SHA512 signature
  });
});
