/**
 * The admin API's global overrides against the real Kafka: a bearer token is required, a reason is
 * required, a body over UNICOP_ADMIN_BODY_LIMIT_BYTES is refused (413) before anything acts,
 * freeze/resume are written to the compacted unicop.control topic and audited, and a
 * bridge started later rebuilds the same state from the log. Every answer conforms to
 * openapi/bridge.yaml. (Per-root overrides and manual reconcile go through the NetBox plugin and
 * are tested with it.)
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { TopicTail } from '../support/kafka.js';
import { OpenApiDocument } from '../support/openapi.js';

const spec = new OpenApiDocument(join(repoRoot, 'openapi', 'bridge.yaml'));
const adminToken = 'admin-test-token-0123456789abcdef';
// Small enough that a long reason exceeds it; the other tests' bodies fit (the default is 64 KiB).
const bodyLimitBytes = 256;

describe('admin API: global freeze and resume', () => {
  let bridge: RunningBridge;
  let tail: TopicTail;
  beforeAll(async () => {
    tail = await TopicTail.start([topics.control, topics.audit]);
    bridge = await startBridge({
      UNICOP_ADMIN_TOKEN: adminToken,
      UNICOP_ADMIN_BREAK_GLASS: 'true', // the shared token stands in for a person here (decision 0051)
      UNICOP_ADMIN_BODY_LIMIT_BYTES: String(bodyLimitBytes),
    });
  });
  afterAll(async () => {
    // never leave automation frozen for whoever runs next
    await fetch(`${bridge.url}/resume`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ reason: 'test teardown' }),
    }).catch(() => undefined);
    await bridge?.close();
    await tail?.stop();
  });

  async function call(method: string, path: string, body?: unknown, token: string | null = adminToken) {
    const res = await fetch(`${bridge.url}${path}`, {
      method,
      headers: {
        'Content-Type': 'application/json',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    expect(spec.check(method, path, res.status, res.headers.get('content-type'), json)).toEqual([]);
    return { status: res.status, body: json };
  }

  it('refuses without the admin token, and with a wrong one', async () => {
    expect((await call('POST', '/freeze', { reason: 'maintenance' }, null)).status).toBe(401);
    expect((await call('POST', '/freeze', { reason: 'maintenance' }, 'wrong-token')).status).toBe(401);
    expect((await call('GET', '/freeze', undefined, null)).status).toBe(401);
  });

  it('refuses a body over UNICOP_ADMIN_BODY_LIMIT_BYTES with 413 and acts on nothing; a body of the limit is read', async () => {
    const tooLong = { reason: 'x'.repeat(bodyLimitBytes) };
    const res = await call('POST', '/freeze', tooLong);
    expect(res).toMatchObject({ status: 413, body: { reason: 'body_too_large' } });
    expect((await call('GET', '/freeze')).body).not.toMatchObject({ state: { reason: tooLong.reason } });
    // Exactly the limit, with a rootKey that is not one: read and validated (422 naming it), no action.
    const fits = { reason: '', rootKey: 'not a root key' };
    fits.reason = 'f'.repeat(bodyLimitBytes - JSON.stringify(fits).length);
    expect(JSON.stringify(fits).length).toBe(bodyLimitBytes);
    const read = await call('POST', '/freeze', fits);
    expect(read.status).toBe(422);
    expect(read.body.issues).toEqual([expect.objectContaining({ field: 'rootKey' })]);
  });

  it('refuses an override without a reason, naming the field', async () => {
    const res = await call('POST', '/freeze', {});
    expect(res.status).toBe(422);
    expect(res.body.issues).toEqual([expect.objectContaining({ field: 'reason' })]);
  });

  it('freezes globally: on unicop.control and audited, visible at GET /freeze', async () => {
    const reason = `change freeze ${Date.now()}`;
    const res = await call('POST', '/freeze', { reason });
    expect(res).toEqual({
      status: 200,
      body: { scope: 'global', rootKey: null, frozen: true, reason, intentId: null },
    });
    const [control] = await tail.waitFor(
      (m) => m.topic === topics.control && (m.value.data as { reason: string }).reason === reason,
    );
    expect(control?.key).toBe('global');
    await tail.waitFor(
      (m) =>
        m.topic === topics.audit && (m.value.data as { reason: string; action: string }).reason === reason,
    );
    expect((await call('GET', '/freeze')).body).toMatchObject({ frozen: true, state: { reason } });
  });

  it('a bridge started later serves the freeze state rebuilt from the log from its first answer', async () => {
    const later = await startBridge({ UNICOP_ADMIN_TOKEN: adminToken, UNICOP_ADMIN_BREAK_GLASS: 'true' });
    try {
      // No polling: a bridge that served before replaying unicop.control would answer frozen=false.
      const res = await fetch(`${later.url}/freeze`, { headers: { Authorization: `Bearer ${adminToken}` } });
      expect(await res.json()).toMatchObject({ frozen: true });
    } finally {
      await later.close();
    }
  });

  it('resumes globally', async () => {
    const res = await call('POST', '/resume', { reason: 'freeze over' });
    expect(res.body).toMatchObject({ scope: 'global', frozen: false });
    expect((await call('GET', '/freeze')).body).toMatchObject({ frozen: false });
  });
});
