/**
 * The admin API's Idempotency-Key, over HTTP against the real stack (Redis, Kafka, NetBox's plugin),
 * each answer checked against openapi/bridge.yaml: the same key and request again gets the first
 * answer, replayed, and acts once; the same key for another request is 422; a request whose first
 * try is still in flight is 409; a refused request keeps nothing under its key; without a key every
 * request acts. And POST /sweep with GET /sweeps/{id} while no sweeper takes the request.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { OpenApiDocument } from '../support/openapi.js';
import { stack, uniqueName } from '../support/stack.js';

const spec = new OpenApiDocument(join(repoRoot, 'openapi', 'bridge.yaml'));
const adminToken = 'cli-idempotency-token-0123456789abcdef';

type Json = Record<string, unknown>;

describe('admin API: Idempotency-Key', () => {
  let bridge: RunningBridge;
  let tail: TopicTail;
  let site: { id: number };
  let key: string;
  // While set, Kafka's acknowledgements are held back: a request stays in flight.
  let gate: Promise<void> | null = null;

  beforeAll(async () => {
    const name = uniqueName('cli-idem-site');
    site = await netbox('POST', '/api/dcim/sites/', { name, slug: name });
    key = `site/${site.id}`;
    tail = await TopicTail.start([topics.intents]);
    bridge = await startBridge(
      // The shared token, break-glass on (decision 0051): what is tested here is the key, not who.
      {
        UNICOP_ADMIN_TOKEN: adminToken,
        UNICOP_ADMIN_BREAK_GLASS: 'true',
        UNICOP_NETBOX_TOKEN: stack.netboxToken(),
      },
      { holdAcks: () => gate ?? Promise.resolve() },
    );
  });
  afterAll(async () => {
    gate = null;
    await bridge?.close();
    await tail?.stop();
    if (site) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });

  async function call(method: string, path: string, specPath: string, body?: unknown, idemKey?: string) {
    const res = await fetch(`${bridge.url}${path}`, {
      method,
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${adminToken}`,
        ...(idemKey ? { 'Idempotency-Key': idemKey } : {}),
      },
      body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const json = (await res.json()) as Json;
    expect(spec.check(method, specPath, res.status, res.headers.get('content-type'), json)).toEqual([]);
    return { status: res.status, body: json, replayed: res.headers.get('idempotent-replayed') };
  }
  const manual = (m: TailedMessage) =>
    m.topic === topics.intents &&
    m.key === key &&
    (m.value.data as { cause: { kind: string } }).cause.kind === 'manual';
  const reconcilePath = () => `/roots/${key}/reconcile`;
  const spec_ = '/roots/{kind}/{id}/reconcile';

  it('the same key and request again: the first answer, replayed, and one intent; another request under it: 422', async () => {
    const idem = uniqueName('idem');
    const first = await call('POST', reconcilePath(), spec_, { reason: 'same' }, idem);
    expect(first.status).toBe(202);
    expect(first.replayed).toBeNull();
    // The same object with its keys in another order is the same request.
    const again = await call('POST', reconcilePath(), spec_, '{ "reason" : "same" }', idem);
    expect(again.status).toBe(202);
    expect(again.replayed).toBe('true');
    expect(again.body).toEqual(first.body);
    const [intent] = await tail.waitFor(manual);
    expect((intent?.value.data as Json | undefined)?.intentId).toBe(first.body.intentId);
    expect(await tail.settle(manual, 3000)).toHaveLength(1);

    const other = await call('POST', reconcilePath(), spec_, { reason: 'other' }, idem);
    expect(other.status).toBe(422);
    expect(other.body.reason).toBe('idempotency_key_reused');
    // Another route under the key is another request too.
    const elsewhere = await call('POST', '/freeze', '/freeze', { reason: 'same', rootKey: key }, idem);
    expect(elsewhere.status).toBe(422);
    expect(await tail.settle(manual, 2000)).toHaveLength(1);
  });

  it('a request whose first try is still in flight is answered 409 with Retry-After; after it, replayed', async () => {
    const idem = uniqueName('idem');
    let open: () => void = () => undefined;
    gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const before = tail.messages.length;
    const firstTry = call('POST', reconcilePath(), spec_, { reason: 'slow' }, idem);
    // Wait until the first try's intent is on Kafka (its acknowledgement is what is held back).
    await tail.waitFor((m) => tail.messages.indexOf(m) >= before && m.key === key);
    const second = await call('POST', reconcilePath(), spec_, { reason: 'slow' }, idem);
    expect(second.status).toBe(409);
    expect(second.body.reason).toBe('idempotency_in_flight');
    gate = null;
    open();
    const first = await firstTry;
    expect(first.status).toBe(202);
    const third = await call('POST', reconcilePath(), spec_, { reason: 'slow' }, idem);
    expect(third).toMatchObject({ status: 202, replayed: 'true', body: first.body });
  });

  it('a refused request keeps nothing under its key; without a key every request acts', async () => {
    const idem = uniqueName('idem');
    const refused = await call('POST', '/freeze', '/freeze', { reason: 'x' }, idem);
    expect(refused.status).toBe(422);
    expect(refused.body.reason).toBe('invalid_body');
    // Not idempotency_key_reused: the refusal was not kept.
    const unknown = await call('POST', '/roots/site/999999999/reconcile', spec_, {}, idem);
    expect(unknown.status).toBe(404);

    const before = tail.messages.length;
    const a = await call('POST', reconcilePath(), spec_, { reason: 'keyless' });
    const b = await call('POST', reconcilePath(), spec_, { reason: 'keyless' });
    expect(a.body.intentId).not.toBe(b.body.intentId);
    const ids = [a.body.intentId, b.body.intentId];
    await tail.waitFor(
      (m) => tail.messages.indexOf(m) >= before && ids.includes((m.value.data as Json).intentId),
      2,
    );
  });

  it('refuses a key that is not 1 to 255 printable ASCII characters (422 naming the header)', async () => {
    const res = await call('POST', reconcilePath(), spec_, {}, 'x'.repeat(256));
    expect(res.status).toBe(422);
    expect(res.body.issues).toEqual([expect.objectContaining({ field: 'Idempotency-Key' })]);
  });

  it('POST /sweep queues a request GET /sweeps/{id} reports as requested; an unknown id is 404', async () => {
    const queued = await call('POST', '/sweep', '/sweep', { reason: 'idempotency test' }, uniqueName('idem'));
    expect(queued.status).toBe(202);
    const id = String(queued.body.requestId);
    const state = await call('GET', `/sweeps/${id}`, '/sweeps/{id}');
    expect(state.status).toBe(200);
    // A sweeper elsewhere on the stack may already have taken and answered it.
    expect(['requested', 'done']).toContain(state.body.state);
    expect(state.body.requestId).toBe(id);
    const unknown = await call('GET', '/sweeps/not-a-request', '/sweeps/{id}');
    expect(unknown.status).toBe(404);
  });
});
