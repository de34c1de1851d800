/**
 * A NetBox token without the plugin's rollout permission (decision 0068): the bridge's admin API answers
 * a person's rollout resume or abort with 502 `netbox_permission_denied` naming the permission NetBox
 * wants — not 500 — and audits the decision `rejected` with the same words; the token itself is in no
 * answer and no audit event. Against the real NetBox and plugin: this file makes a NetBox user allowed to
 * view rollouts and not to change them, and a token of it (a real 403, no HTTP double), and removes both
 * at its end. Every answer conforms to openapi/bridge.yaml.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { adminCall } from '../support/admin-api.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { stack, uniqueName } from '../support/stack.js';

const adminToken = 'admin-rollouts-permission-token-0123456789';

describe('admin API: a NetBox token without the rollout permission', () => {
  let bridge: RunningBridge;
  let tail: TopicTail;
  let user: { id: number } | undefined;
  let permission: { id: number } | undefined;
  let viewOnlyToken = '';
  let rolloutId = '';
  const sites: { id: number }[] = [];

  beforeAll(async () => {
    // A NetBox user who may view rollouts, not change them, and a token of its own (provisioned with
    // its password, as an operator would for the bridge).
    const username = uniqueName('rollout-viewer');
    const password = randomBytes(18).toString('base64url');
    user = await netbox<{ id: number }>('POST', '/api/users/users/', { username, password, is_active: true });
    permission = await netbox<{ id: number }>('POST', '/api/users/permissions/', {
      name: username,
      object_types: ['unicop.rollout'],
      actions: ['view'],
      users: [user.id],
      enabled: true,
    });
    const res = await fetch(`${stack.netboxUrl()}/api/users/tokens/provision/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ username, password, description: 'admin-rollouts-permission test' }),
    });
    expect(res.status).toBe(201);
    const made = (await res.json()) as { key: string; token: string };
    viewOnlyToken = `nbt_${made.key}.${made.token}`;

    // A live rollout of this test's own two sites (wave 2 held), opened with the stack's token.
    for (const i of [1, 2]) {
      const name = uniqueName(`rollout-perm-${i}`);
      sites.push(await netbox<{ id: number }>('POST', '/api/dcim/sites/', { name, slug: name }));
    }
    rolloutId = uniqueName('rollout-perm');
    await netbox('POST', '/api/plugins/unicop/rollouts/', {
      rollout_id: rolloutId,
      plan: '1,rest',
      failure_threshold: 0.1,
      min_roots: 1,
      change_ids: [],
      actor: 'test',
      intents: sites.map((s) => ({ root_key: `site/${s.id}`, intent: {} })),
    });

    tail = await TopicTail.start([topics.audit]);
    bridge = await startBridge({
      UNICOP_ADMIN_TOKEN: adminToken,
      UNICOP_ADMIN_BREAK_GLASS: 'true',
      UNICOP_NETBOX_TOKEN: viewOnlyToken,
    });
  }, 120_000);
  afterAll(async () => {
    await bridge?.close();
    await tail?.stop();
    if (rolloutId) {
      await netbox('POST', `/api/plugins/unicop/rollouts/${rolloutId}/abort/`, {
        by: 'test',
        reason: 'done',
      }).catch(() => undefined);
    }
    for (const site of sites) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
    if (permission) await netbox('DELETE', `/api/users/permissions/${permission.id}/`).catch(() => undefined);
    if (user) await netbox('DELETE', `/api/users/users/${user.id}/`).catch(() => undefined);
  });

  const audited = (action: string, id: string) => (m: TailedMessage) => {
    const data = m.value.data as EventData<'audit'>;
    return data.action === action && data.subjectId === id && data.outcome === 'rejected';
  };

  it('the token may read the rollout: the permission missing is only the change one', async () => {
    const read = await adminCall(bridge, 'GET', `/rollouts/${rolloutId}`, '/rollouts/{id}', adminToken);
    expect(read.status).toBe(200);
    expect((read.body.rollout as { state: string }).state).toBe('open');
  });

  it('resume and abort: 502 netbox_permission_denied naming unicop.change_rollout, audited rejected, no token', async () => {
    for (const decision of ['resume', 'abort'] as const) {
      const answer = await adminCall(
        bridge,
        'POST',
        `/rollouts/${rolloutId}/${decision}`,
        `/rollouts/{id}/${decision}`,
        adminToken,
        { reason: `try ${decision}` },
      );
      expect(answer.status).toBe(502);
      expect(answer.body.reason).toBe('netbox_permission_denied');
      expect(answer.body.message).toContain('needs the permission unicop.change_rollout');
      expect(answer.body.message).toContain('HTTP 403');
      const action = decision === 'resume' ? 'rollout.resumed' : 'rollout.aborted';
      const [event] = await tail.waitFor(audited(action, rolloutId), 1, 60_000);
      const audit = event?.value.data as EventData<'audit'>;
      expect(audit.reason).toContain(`try ${decision}`);
      expect(audit.reason).toContain('unicop.change_rollout');
      expect(audit.correlation).toMatchObject({ rolloutId, status: 502 });
      for (const text of [JSON.stringify(answer.body), JSON.stringify(event?.value)]) {
        expect(text).not.toContain(viewOnlyToken.split('.')[1]);
      }
    }
    // Nothing was decided: the rollout is still open, its second wave held.
    const rollout = await netbox<{ state: string; counts: Record<string, number> }>(
      'GET',
      `/api/plugins/unicop/rollouts/${rolloutId}/`,
    );
    expect(rollout.state).toBe('open');
    expect(rollout.counts.held).toBe(1);
  });
});
