/**
 * openapi/bridge.yaml is kept true: every route the bridge serves is documented (and nothing else
 * is), and every answer the bridge gives here — success and each kind of refusal — has a documented
 * status and a body that validates against the documented schema.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { OpenApiDocument } from '../support/openapi.js';
import { netbox47Body, sign } from '../support/webhooks.js';

const spec = new OpenApiDocument(join(repoRoot, 'openapi', 'bridge.yaml'));
const secret = 'openapi-test-secret-abcdefabcdef';
const awxSecret = 'openapi-awx-secret-123456';

describe('openapi/bridge.yaml', () => {
  let bridge: RunningBridge;
  beforeAll(async () => {
    bridge = await startBridge({ UNICOP_WEBHOOK_SECRETS: secret, UNICOP_AWX_WEBHOOK_SECRET: awxSecret });
  });
  afterAll(async () => bridge?.close());

  it('documents exactly the routes the bridge serves', () => {
    const served = bridge.routes.map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`).sort();
    expect(served).toEqual(spec.operations().sort());
  });

  const netboxPost = (body: string, headers: Record<string, string>) =>
    fetch(`${bridge.url}/webhooks/netbox`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body,
    });
  const awxPost = (body: string, headers: Record<string, string>) =>
    fetch(`${bridge.url}/webhooks/awx`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body,
    });
  const signed = (raw: string) => ({ 'X-Hook-Signature': sign(raw, secret) });
  const body47 = JSON.stringify(netbox47Body());
  const awxBody = JSON.stringify({
    id: 77,
    name: 'unicop-site',
    status: 'successful',
    url: '/#/jobs/playbook/77',
  });
  const basic = (pw: string) => ({ Authorization: `Basic ${Buffer.from(`awx:${pw}`).toString('base64')}` });

  const cases: [string, string, string, () => Promise<Response>, number][] = [
    ['202 accepted', 'POST', '/webhooks/netbox', () => netboxPost(body47, signed(body47)), 202],
    ['200 duplicate', 'POST', '/webhooks/netbox', () => netboxPost(body47, signed(body47)), 200],
    ['401 unsigned', 'POST', '/webhooks/netbox', () => netboxPost(body47, {}), 401],
    ['400 not JSON', 'POST', '/webhooks/netbox', () => netboxPost('nope', signed('nope')), 400],
    [
      '422 wrong shape',
      'POST',
      '/webhooks/netbox',
      () => netboxPost('{"event":1}', signed('{"event":1}')),
      422,
    ],
    ['202 AWX basic auth', 'POST', '/webhooks/awx', () => awxPost(awxBody, basic(awxSecret)), 202],
    [
      '202 AWX header token',
      'POST',
      '/webhooks/awx',
      () => awxPost(awxBody, { 'X-UNICOP-Token': awxSecret }),
      202,
    ],
    ['401 AWX wrong password', 'POST', '/webhooks/awx', () => awxPost(awxBody, basic('wrong')), 401],
    ['422 AWX wrong shape', 'POST', '/webhooks/awx', () => awxPost('{"id":"x"}', basic(awxSecret)), 422],
    ['200 healthz', 'GET', '/healthz', () => fetch(`${bridge.url}/healthz`), 200],
    ['200 metrics', 'GET', '/metrics', () => fetch(`${bridge.url}/metrics`), 200],
  ];
  for (const [what, method, path, call, status] of cases) {
    it(`${method} ${path}: ${what} conforms`, async () => {
      const res = await call();
      expect(res.status).toBe(status);
      const type = res.headers.get('content-type');
      const body = type?.startsWith('application/json') ? await res.json() : await res.text();
      expect(spec.check(method, path, res.status, type, body)).toEqual([]);
    });
  }

  it('GET /readyz conforms, whichever way it answers', async () => {
    const res = await fetch(`${bridge.url}/readyz`);
    expect([200, 503]).toContain(res.status);
    expect(
      spec.check('GET', '/readyz', res.status, res.headers.get('content-type'), await res.json()),
    ).toEqual([]);
  });

  it('a served path asked with another method: 405, Allow, and the rejection body every error has', async () => {
    const res = await fetch(`${bridge.url}/webhooks/netbox`, { method: 'GET' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    const body = await res.json();
    expect(body).toMatchObject({ status: 'rejected', reason: 'method_not_allowed' });
    // The same shape as every documented refusal (components/schemas/Rejection).
    expect(spec.check('POST', '/webhooks/netbox', 401, 'application/json', body)).toEqual([]);
  });

  it('the conformance check is real: an undocumented answer is caught', () => {
    expect(spec.check('POST', '/webhooks/netbox', 202, 'application/json', { status: 'ok' })).not.toEqual([]);
    expect(spec.check('POST', '/webhooks/netbox', 418, 'application/json', {})).not.toEqual([]);
  });

  it('counts what it saw in /metrics', async () => {
    const text = await (await fetch(`${bridge.url}/metrics`)).text();
    expect(text).toMatch(/unicop_webhooks_received_total\{source="netbox"\} [1-9]/);
    expect(text).toMatch(/unicop_webhooks_rejected_total\{source="netbox",reason="missing_signature"\} 1/);
    expect(text).toMatch(/unicop_webhooks_duplicates_total 1/);
    expect(text).toMatch(/unicop_publish_latency_seconds_count 1/);
    expect(text).toMatch(/unicop_resolver_lag_messages \d+/);
  });
});
