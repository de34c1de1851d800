/**
 * The whole loop on the real services, from a NetBox edit to the outcome: NetBox's event rule →
 * signed webhook → bridge → unicop.changes → resolver → unicop.intents → dispatcher → BullMQ →
 * reconciler → the stack's real AWX 24.6.1 → run, journal and root status in NetBox, outcome on
 * Kafka. Then coalescing (guarantee 3): fifty edits of one root while its run is going cause at
 * most two launches in all, the last one at the final snapshot. A real AWX job (a container per
 * job, tens of seconds) outlasts the burst of edits; the test checks that it did.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { NetboxUnavailableError } from '../../core/netbox/rest.js';
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
    // stepMs slows the double's jobs (UNICOP_TEST_AWX=double) to a real AWX job's pace; real AWX
    // ignores it.
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
      300_000,
    );
    const launchesBefore = (await back.awx.jobsOf(site.rootKey)).length;
    expect(launchesBefore).toBe(1);
    await tail.waitFor((m) => m.key === site.rootKey);

    // A PATCH is idempotent: one sent on a connection NetBox's gunicorn had just closed is sent again.
    const edit = (i: number) => {
      const patch = () => netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description: `edit ${i}` });
      return patch().catch((error) => {
        if (error instanceof NetboxUnavailableError) return patch();
        throw error;
      });
    };
    // The first edit starts the next run; the rest follow at once, seven at a time: one after
    // another, NetBox under the other files' load takes a second or more per edit, and the burst
    // could outlast a real AWX job (the check below says when it did).
    await edit(1);
    for (let i = 2; i <= 50; i += 7) {
      await Promise.all(Array.from({ length: Math.min(7, 51 - i) }, (_, k) => edit(i + k)));
    }
    const lastEditAt = Date.now();
    const final = await back.plugin.snapshot(site.root.id);
    const root = await eventually(
      async () => {
        const r = await back.plugin.findRoot(site.rootKey);
        return r?.status === 'in_sync' && r.last_reconciled_hash === final.hash ? r : undefined;
      },
      'the root in sync at the final hash',
      420_000,
    );
    expect(root.last_reconciled_hash).toBe(final.hash);

    const jobs = await back.awx.jobsOf(site.rootKey);
    const after = jobs.length - launchesBefore;
    // The edits came during the next run: its AWX job was still going when the last one landed
    // (else the premise failed, not coalescing: a burst slower than the run may launch a third).
    const nextJob = jobs[launchesBefore];
    expect(nextJob?.finished).toBeTruthy();
    expect(Date.parse(nextJob?.finished ?? '')).toBeGreaterThan(lastEditAt);
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(2);
    const runs = await back.plugin.listRuns(site.rootKey);
    const launched = runs.filter((r) => r.awx_job_id !== null && r.run_id !== first.run_id);
    expect(launched).toHaveLength(after);
    expect(launched[0]?.snapshot_hash).toBe(final.hash);
    expect(runs.every((r) => ['succeeded', 'skipped'].includes(r.state))).toBe(true);
  }, 900_000);
});
