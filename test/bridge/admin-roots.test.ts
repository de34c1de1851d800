/**
 * The admin API's per-root operations against the real NetBox plugin and Kafka: a root's state,
 * a manual reconcile (an intent with cause manual on unicop.intents), freeze and resume of one root
 * (recorded on the root in NetBox, audited; resume emits an intent with cause resume), and a clear
 * 404 for a root NetBox does not have. Every answer conforms to openapi/bridge.yaml.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { adminCall } from '../support/admin-api.js';
import { startBreakGlassBridge } from '../support/break-glass-bridge.js';
import type { RunningBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { uniqueName } from '../support/stack.js';

const adminToken = 'admin-roots-token-0123456789abcdef';

describe('admin API: one root', () => {
  let bridge: RunningBridge;
  let tail: TopicTail;
  let site: { id: number };
  let key: string;

  beforeAll(async () => {
    const name = uniqueName('admin-site');
    site = await netbox('POST', '/api/dcim/sites/', { name, slug: name });
    key = `site/${site.id}`;
    tail = await TopicTail.start([topics.intents, topics.audit]);
    bridge = await startBreakGlassBridge(adminToken); // the shared token stands in for a person
  });
  afterAll(async () => {
    await bridge?.close();
    await tail?.stop();
    await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });

  /** The admin API as the break-glass token (answers checked against openapi/bridge.yaml). */
  const call = (method: string, path: string, specPath: string, body?: unknown) =>
    adminCall(bridge, method, path, specPath, adminToken, body);
  const intentsFor = (kind: string) => (m: TailedMessage) =>
    m.topic === topics.intents &&
    (m.value.data as { rootKey: string }).rootKey === key &&
    (m.value.data as { cause: { kind: string } }).cause.kind === kind;

  it("shows a root's state from NetBox", async () => {
    const res = await call('GET', `/roots/${key}`, '/roots/{kind}/{id}');
    expect(res.status).toBe(200);
    expect(res.body.root).toMatchObject({ key, kind: 'site', frozen: false });
  });

  it('answers 404 for a root NetBox does not have', async () => {
    const res = await call('GET', '/roots/site/999999999', '/roots/{kind}/{id}');
    expect(res.status).toBe(404);
    expect(res.body.reason).toBe('not_found');
  });

  it('a manual reconcile puts an intent with cause manual on unicop.intents', async () => {
    const res = await call('POST', `/roots/${key}/reconcile`, '/roots/{kind}/{id}/reconcile', {
      reason: 'operator asked',
    });
    expect(res.status).toBe(202);
    const [intent] = await tail.waitFor(intentsFor('manual'));
    expect(intent?.key).toBe(key);
    expect(intent?.value.data).toMatchObject({ intentId: res.body.intentId });
  });

  it('freezes one root in NetBox, audited; resuming it unfreezes it in NetBox, audited, and emits an intent with cause resume', async () => {
    const frozen = await call('POST', '/freeze', '/freeze', { rootKey: key, reason: 'vendor maintenance' });
    expect(frozen.body).toMatchObject({ scope: 'root', rootKey: key, frozen: true });
    const inNetbox = await netbox<{ results: { frozen: boolean; frozen_reason: string }[] }>(
      'GET',
      `/api/plugins/unicop/roots/?key=${encodeURIComponent(key)}`,
    );
    expect(inNetbox.results[0]).toMatchObject({ frozen: true, frozen_reason: 'vendor maintenance' });
    await tail.waitFor(
      (m) =>
        m.topic === topics.audit &&
        (m.value.data as { action: string; subjectId: string }).action === 'automation.frozen' &&
        (m.value.data as { subjectId: string }).subjectId === key,
    );

    const resumed = await call('POST', '/resume', '/resume', { rootKey: key, reason: 'maintenance done' });
    expect(resumed.body).toMatchObject({ scope: 'root', frozen: false });
    const [intent] = await tail.waitFor(intentsFor('resume'));
    expect(intent?.value.data).toMatchObject({ intentId: resumed.body.intentId });
    // The resume is in NetBox and audited too, with its reason.
    const afterResume = await netbox<{ results: { frozen: boolean }[] }>(
      'GET',
      `/api/plugins/unicop/roots/?key=${encodeURIComponent(key)}`,
    );
    expect(afterResume.results[0]).toMatchObject({ frozen: false });
    const [audit] = await tail.waitFor(
      (m) =>
        m.topic === topics.audit &&
        (m.value.data as { action: string }).action === 'automation.resumed' &&
        (m.value.data as { subjectId: string }).subjectId === key,
    );
    expect(audit?.value.data).toMatchObject({ reason: 'maintenance done', outcome: 'ok' });
  });

  it('refuses a malformed root key with 422 naming the field', async () => {
    const res = await call('POST', '/freeze', '/freeze', { rootKey: 'Site 3', reason: 'x-y-z' });
    expect(res.status).toBe(422);
    expect(res.body.issues).toEqual([expect.objectContaining({ field: 'rootKey' })]);
  });
});
