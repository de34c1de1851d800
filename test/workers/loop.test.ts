/**
 * The whole loop on the real services, from a NetBox edit to the outcome: NetBox's event rule →
 * signed webhook → bridge → unicop.changes → resolver → unicop.intents → dispatcher → BullMQ →
 * reconciler → AWX double (ansible-runner) → run, journal and root status in NetBox, outcome on
 * Kafka. Then coalescing (guarantee 3): fifty edits of one root while its run is going cause at
 * most two launches in all, the last one at the final snapshot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { type FrontHalf, startFrontHalf } from '../support/pipeline.js';
import {
  type BackHalf,
  createSite,
  eventually,
  startBackHalf,
  startDispatchAndReconcile,
} from '../support/reconciler.js';

describe('the reconcile loop, NetBox edit to outcome', () => {
  let front: FrontHalf;
  let back: BackHalf;
  let loop: Awaited<ReturnType<typeof startDispatchAndReconcile>>;
  let tail: TopicTail;

  beforeAll(async () => {
    // Slow AWX steps (pending → waiting → running) so a run outlasts a burst of edits.
    back = await startBackHalf({ stepMs: 1500 });
    front = await startFrontHalf(['dcim.site']);
    loop = await startDispatchAndReconcile(back, 2);
    tail = await TopicTail.start([topics.outcomes]);
  }, 120_000);
  afterAll(async () => {
    await tail?.stop();
    await loop?.stop();
    await front?.stop();
    await back?.stop();
  });

  it('a created site is reconciled; fifty edits during its next run cause at most two launches, the last at the final hash', async () => {
    const site = await createSite();
    const first = await eventually(
      async () => {
        const [run] = await back.plugin.listRuns(site.rootKey);
        return run?.state === 'succeeded' ? run : undefined;
      },
      'the creation reconciled',
      120_000,
    );
    const launchesBefore = (await back.awx.jobsOf(site.rootKey)).length;
    expect(launchesBefore).toBe(1);
    await tail.waitFor((m) => m.key === site.rootKey);

    for (let i = 1; i <= 50; i++) {
      await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description: `edit ${i}` });
    }
    const final = await back.plugin.snapshot(site.root.id);
    const root = await eventually(
      async () => {
        const r = await back.plugin.findRoot(site.rootKey);
        return r?.status === 'in_sync' && r.last_reconciled_hash === final.hash ? r : undefined;
      },
      'the root in sync at the final hash',
      180_000,
    );
    expect(root.last_reconciled_hash).toBe(final.hash);

    const jobs = await back.awx.jobsOf(site.rootKey);
    const after = jobs.length - launchesBefore;
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(2);
    const runs = await back.plugin.listRuns(site.rootKey);
    const launched = runs.filter((r) => r.awx_job_id !== null && r.run_id !== first.run_id);
    expect(launched).toHaveLength(after);
    expect(launched[0]?.snapshot_hash).toBe(final.hash);
    expect(runs.every((r) => ['succeeded', 'skipped'].includes(r.state))).toBe(true);
  }, 300_000);
});
