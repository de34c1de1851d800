/**
 * The workers' rollout gauges (workers/metrics.ts, docs/decisions/0069), read when scraped from the real
 * NetBox plugin (rollouts/live/): a rollout of three of this test's own sites, opened through the plugin's
 * gate with waves [1, 2], adds one `open` rollout, two `held` roots and one `released` root; its first
 * wave failing above the threshold moves it to `halted`; aborted, it counts nowhere. Compared with the
 * reading before it (other live rollouts on the shared NetBox count too), each reading polled until it
 * shows (cap 60 s).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RolloutStore } from '../../core/rollout/store.js';
import { createWorkerMetrics } from '../../workers/metrics.js';
import { netbox } from '../support/netbox.js';
import { createSite } from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

type Counts = Record<string, number>;

describe('rollout gauges', () => {
  const store = new RolloutStore({
    baseUrl: stack.netboxUrl(),
    token: stack.netboxToken(),
    timeoutMs: 60_000,
  });
  const metrics = createWorkerMetrics();
  metrics.readFrom({ rollouts: store });
  const sites: { id: number }[] = [];
  const id = uniqueName('rollout-gauges');
  afterAll(async () => {
    await netbox('POST', `/api/plugins/unicop/rollouts/${id}/abort/`, {
      by: 'test',
      reason: 'cleanup',
    }).catch(() => undefined);
    for (const site of sites) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });

  const scrape = async (): Promise<{ rollouts: Counts; roots: Counts }> => {
    const all = await metrics.registry.getMetricsAsJSON();
    const of = (name: string): Counts =>
      Object.fromEntries(
        (all.find((m) => m.name === name)?.values ?? []).map((v) => [String(v.labels.state), v.value]),
      );
    return { rollouts: of('unicop_rollouts'), roots: of('unicop_rollout_roots') };
  };
  const delta = (now: Counts, before: Counts) =>
    Object.fromEntries(Object.keys(now).map((k) => [k, (now[k] ?? 0) - (before[k] ?? 0)]));
  /** Scrapes until the gauges moved by `expected` from `before` (cap 60 s), then asserts it. */
  const moved = async (
    before: { rollouts: Counts; roots: Counts },
    expected: { rollouts: Counts; roots: Counts },
  ) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const now = await scrape();
      const seen = { rollouts: delta(now.rollouts, before.rollouts), roots: delta(now.roots, before.roots) };
      if (JSON.stringify(seen) === JSON.stringify(expected) || Date.now() > deadline) {
        expect(seen).toEqual(expected);
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  it('count live rollouts by state and their held and released roots', async () => {
    const before = await scrape();
    expect(Object.keys(before.rollouts).sort()).toEqual(['halted', 'open']);
    expect(Object.keys(before.roots).sort()).toEqual(['held', 'released']);
    for (let i = 0; i < 3; i++) sites.push(await createSite());
    const keys = sites.map((s) => `site/${s.id}`).sort();
    await store.gate({
      rollout_id: id,
      plan: '1,rest',
      failure_threshold: 0.4,
      min_roots: 2,
      change_ids: [],
      actor: 'test',
      intents: keys.map((root_key) => ({ root_key, intent: {} })),
    });
    await moved(before, { rollouts: { open: 1, halted: 0 }, roots: { held: 2, released: 1 } });
    // Its first wave's run failed: halted, the first root no longer released.
    await store.outcome({
      root_key: keys[0] as string,
      run_id: uniqueName('run'),
      state: 'failed',
      outcome_class: 'job_failed',
      started_at: new Date().toISOString(),
    });
    await moved(before, { rollouts: { open: 0, halted: 1 }, roots: { held: 2, released: 0 } });
    await store.decide(id, 'abort', 'test', 'counted');
    await moved(before, { rollouts: { open: 0, halted: 0 }, roots: { held: 0, released: 0 } });
  }, 240_000);
});
