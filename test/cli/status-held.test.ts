/**
 * `unicop status` lists the roots live gradual rollouts hold (decision 0068): the compiled executable
 * against the real NetBox plugin. This test opens a rollout of three roots of its own, as the
 * resolver's gate does (plan 1,rest: wave 1 released, two roots held), and the status names the two
 * held roots with the rollout and their wave — and not the released one — in JSON and in its text;
 * once the rollout is aborted, neither is held. Other tests' rollouts may be live on the shared stack
 * at the same time: the claims are about this test's own roots.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HeldRoots, heldRootsShown } from '../../core/status/held-roots.js';
import { netbox } from '../support/netbox.js';
import { stack, uniqueName } from '../support/stack.js';
import { assertBuilt, runUnicop } from './run-unicop.js';

describe('unicop status: the roots live rollouts hold', () => {
  const sites: { id: number }[] = [];
  beforeAll(async () => {
    assertBuilt();
    for (const i of [1, 2, 3]) {
      const name = uniqueName(`status-held-${i}`);
      sites.push(await netbox<{ id: number }>('POST', '/api/dcim/sites/', { name, slug: name }));
    }
  });
  afterAll(async () => {
    for (const site of sites) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });

  const env = () => ({
    UNICOP_VAR: '/nonexistent', // nothing from var/stack.env: only what is given here
    UNICOP_NETBOX_URL: stack.netboxUrl(),
    UNICOP_NETBOX_TOKEN: 'env:STATUS_HELD_NETBOX_TOKEN',
    STATUS_HELD_NETBOX_TOKEN: stack.netboxToken(),
    UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
  });

  const heldNow = async () => {
    const ran = await runUnicop(['status', '--json'], env());
    expect(ran.code).toBe(0);
    return (JSON.parse(ran.stdout) as { heldRoots: HeldRoots }).heldRoots;
  };

  it('names the held roots with their rollout and wave, not the released one; none once aborted', async () => {
    const keys = sites.map((s) => `site/${s.id}`).sort();
    const id = uniqueName('status-held-rollout');
    // Not a NetBox request id: the rollout's roots are the intents' (as test/bridge/admin-rollouts does).
    const gate = await netbox<{ rollout: { members: { root_key: string; state: string }[] } | null }>(
      'POST',
      '/api/plugins/unicop/rollouts/',
      {
        rollout_id: id,
        plan: '1,rest',
        failure_threshold: 0.1,
        min_roots: 1,
        change_ids: [],
        actor: 'status-held test',
        intents: keys.map((root_key) => ({ root_key, intent: {} })),
      },
    );
    const members = gate.rollout?.members ?? [];
    const released = members.filter((m) => m.state === 'released').map((m) => m.root_key);
    const held = members.filter((m) => m.state === 'held').map((m) => m.root_key);
    expect([released.length, held.length]).toEqual([1, 2]);
    try {
      const status = await heldNow();
      expect(status.count).toBeGreaterThanOrEqual(2);
      expect(status.rollouts).toBeGreaterThanOrEqual(1);
      expect(status.shown.length).toBeLessThanOrEqual(heldRootsShown);
      const ours = status.shown.filter((r) => r.rolloutId === id);
      // Ours are shown unless other live rollouts fill the first ten (halted ones come first).
      if (status.shown.length < heldRootsShown) {
        expect(ours.map((r) => r.rootKey).sort()).toEqual(held.sort());
      }
      for (const root of ours) expect(root).toMatchObject({ state: 'open', wave: 2, waves: 2 });
      expect(status.shown.map((r) => r.rootKey)).not.toContain(released[0]);

      const text = await runUnicop(['status'], env());
      expect(text.code).toBe(0);
      const line = text.stdout.split('\n')[1] ?? '';
      expect(line).toMatch(/^held roots: \d+ \(\d+ live rollouts?\): /);
      if (ours.length > 0) expect(line).toContain(`${ours[0]?.rootKey} (rollout ${id}, open, wave 2 of 2)`);
    } finally {
      await netbox('POST', `/api/plugins/unicop/rollouts/${id}/abort/`, {
        by: 'status-held test',
        reason: 'test done',
      });
    }
    const after = await heldNow();
    expect(after.shown.filter((r) => r.rolloutId === id)).toEqual([]);
  }, 180_000);
});
