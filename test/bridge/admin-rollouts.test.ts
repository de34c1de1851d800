/**
 * A person's rollout decision the plugin refuses is audited (docs/decisions/0061, review-A #12), against
 * the real NetBox plugin and Kafka: a resume or abort of a rollout NetBox does not have answers 404, and
 * a second abort of a rollout answers 409 — each with a `rollout.resumed` / `rollout.aborted` audit event,
 * outcome `rejected`, naming the person, their reason and the refusal. The accepted abort is audited `ok`.
 * Every answer conforms to openapi/bridge.yaml.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { adminCall } from '../support/admin-api.js';
import { startBreakGlassBridge } from '../support/break-glass-bridge.js';
import type { RunningBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { uniqueName } from '../support/stack.js';

const adminToken = 'admin-rollouts-token-0123456789abcdef';

describe('admin API: refused rollout decisions are audited', () => {
  let bridge: RunningBridge;
  let tail: TopicTail;
  const sites: { id: number }[] = [];

  beforeAll(async () => {
    tail = await TopicTail.start([topics.audit]);
    bridge = await startBreakGlassBridge(adminToken); // the shared token stands in for a person
  });
  afterAll(async () => {
    await bridge?.close();
    await tail?.stop();
    for (const site of sites) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });

  const call = (path: string, specPath: string, reason: string) =>
    adminCall(bridge, 'POST', path, specPath, adminToken, { reason });
  const audited = (action: string, id: string, outcome: string) => (m: TailedMessage) => {
    const data = m.value.data as EventData<'audit'>;
    return data.action === action && data.subjectId === id && data.outcome === outcome;
  };
  const auditOf = async (action: string, id: string, outcome: string) =>
    (await tail.waitFor(audited(action, id, outcome)))[0]?.value.data as EventData<'audit'>;

  it('a resume and an abort of a rollout NetBox does not have: 404, audited rejected', async () => {
    const id = uniqueName('no-such-rollout');
    const resumed = await call(`/rollouts/${id}/resume`, '/rollouts/{id}/resume', 'try it again');
    expect(resumed.status).toBe(404);
    const aborted = await call(`/rollouts/${id}/abort`, '/rollouts/{id}/abort', 'stop it now');
    expect(aborted.status).toBe(404);
    const resumeAudit = await auditOf('rollout.resumed', id, 'rejected');
    expect(resumeAudit.actor).not.toBe('');
    expect(resumeAudit.reason).toContain('try it again');
    expect(resumeAudit.reason).toContain('refused');
    expect(resumeAudit.correlation).toMatchObject({ rolloutId: id, status: 404 });
    const abortAudit = await auditOf('rollout.aborted', id, 'rejected');
    expect(abortAudit.reason).toContain('stop it now');
  });

  it('a second abort: 409 rollout_not_live, audited rejected with the plugin’s reason', async () => {
    for (const i of [1, 2]) {
      const name = uniqueName(`rollout-refused-${i}`);
      sites.push(await netbox<{ id: number }>('POST', '/api/dcim/sites/', { name, slug: name }));
    }
    const keys = sites.map((s) => `site/${s.id}`).sort();
    const id = uniqueName('refused-rollout');
    // A rollout of this test's own two roots, opened as the resolver's gate does (not a NetBox request
    // id, so its roots are the intents'); wave 1 released, wave 2 held.
    const gate = await netbox<{ rollout: { rollout_id: string } | null }>(
      'POST',
      '/api/plugins/unicop/rollouts/',
      {
        rollout_id: id,
        plan: '1,rest',
        failure_threshold: 0.1,
        min_roots: 1,
        change_ids: [],
        actor: 'test',
        intents: keys.map((root_key) => ({ root_key, intent: {} })),
      },
    );
    expect(gate.rollout?.rollout_id).toBe(id);
    const first = await call(`/rollouts/${id}/abort`, '/rollouts/{id}/abort', 'first abort');
    expect(first.status).toBe(200);
    expect((await auditOf('rollout.aborted', id, 'ok')).reason).toBe('first abort');
    const again = await call(`/rollouts/${id}/abort`, '/rollouts/{id}/abort', 'second abort');
    expect(again.status).toBe(409);
    expect(again.body.reason).toBe('rollout_not_live');
    const refused = await auditOf('rollout.aborted', id, 'rejected');
    expect(refused.reason).toContain('second abort');
    expect(refused.reason).toContain('aborted: nothing to abort');
    expect(refused.correlation).toMatchObject({ rolloutId: id, status: 409 });
  });
});
