/**
 * The whole loop on the real services, from a NetBox edit to the outcome: NetBox's event rule →
 * signed webhook → bridge → unicop.changes → resolver → unicop.intents → dispatcher → BullMQ →
 * reconciler → the stack's real AWX 24.6.1 → run, journal and root status in NetBox, outcome on
 * Kafka. Then coalescing (guarantee 3): fifty edits of one root while its run is going cause at
 * most two runs (one active, one waiting) and launches in all, the last one at the final snapshot.
 *
 * The root is a tenant, whose kind launches the approval workflow (`unicop-site-with-approval`):
 * the run that the first edit starts stays at AWX's approval node until the test approves it, so
 * "during its next run" holds by construction — the other 49 edits are made, and the dispatcher has
 * queued or coalesced every one of them, before that run may go on. (With a plain job template the
 * premise depended on whether NetBox took the burst faster than AWX ran a container.)
 *
 * On a shared stack the loop takes only its own work: its bridge keeps its delivery memory in a
 * Redis database of its own (other tests' bridges, sent the same NetBox events, would answer its
 * deliveries as duplicates), and its dispatcher takes only the intents of the changes that bridge
 * accepted for this test's tenant (OwnIntents), one per change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { NetboxUnavailableError } from '../../core/netbox/rest.js';
import { TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { type FrontHalf, OwnIntents, startFrontHalf } from '../support/pipeline.js';
import {
  type BackHalf,
  createTenant,
  eventually,
  startBackHalf,
  startDispatchAndReconcile,
} from '../support/reconciler.js';
import { redisDatabaseUrl, testRedisDatabases } from '../support/stack.js';

// Caps, not budgets: a real AWX workflow and its job start containers; minutes under load.
const runCapMs = 420_000;

describe('the reconcile loop, NetBox edit to outcome', () => {
  let front: FrontHalf;
  let back: BackHalf;
  let loop: Awaited<ReturnType<typeof startDispatchAndReconcile>>;
  let tail: TopicTail;
  let own: OwnIntents;

  beforeAll(async () => {
    // stepMs slows the double's jobs (UNICOP_TEST_AWX=double); real AWX ignores it. The approvals
    // never expire: the test holds a run at one while it edits (real AWX's template is set so for the
    // test and put back after: a cut-short run of another test once left it at 2 s).
    back = await startBackHalf({ stepMs: 1500, approvalTimeoutSeconds: 0 });
    front = await startFrontHalf(['tenancy.tenant'], {
      UNICOP_REDIS_URL: redisDatabaseUrl(testRedisDatabases.loop),
    });
    own = new OwnIntents(front.bridge);
    loop = await startDispatchAndReconcile(back, 2, { onlyIntents: own.accepts });
    tail = await TopicTail.start([topics.outcomes, topics.audit]);
  }, 120_000);
  afterAll(async () => {
    await tail?.stop();
    await loop?.stop();
    await front?.stop();
    await back?.stop();
  });

  /** The root's workflow job waiting at its approval node, once there is one. */
  async function pendingApproval(rootKey: string, after = 0) {
    return eventually(
      async () => {
        const workflows = (await back.awx.jobsOf(rootKey)).filter(
          (j) => j.type === 'workflow_job' && j.id > after && !j.finished,
        );
        for (const wf of workflows) {
          const pending = (await back.awx.client.approvalsOfWorkflowJob(wf.id)).find(
            (a) => a.status === 'pending',
          );
          if (pending) return { workflowJobId: wf.id, approvalId: pending.id };
        }
        return undefined;
      },
      `a pending approval of ${rootKey}'s workflow`,
      runCapMs,
    );
  }

  const workflowsOf = async (rootKey: string) =>
    (await back.awx.jobsOf(rootKey)).filter((j) => j.type === 'workflow_job');

  it('a created tenant is reconciled; fifty edits during its next run (held at its approval) cause at most two runs and launches, the last at the final hash', async () => {
    const tenant = await createTenant({ created: (rootKey) => own.roots.add(rootKey) });
    const creation = await pendingApproval(tenant.rootKey);
    await back.awx.client.approve(creation.approvalId);
    const first = await eventually(
      async () => {
        const [run] = await back.plugin.listRuns(tenant.rootKey);
        return run?.state === 'succeeded' ? run : undefined;
      },
      'the creation reconciled',
      runCapMs,
    );
    expect(await workflowsOf(tenant.rootKey)).toHaveLength(1);
    await tail.waitFor((m) => m.topic === topics.outcomes && m.key === tenant.rootKey);

    // A PATCH is idempotent: one sent on a connection NetBox's gunicorn had just closed is sent again.
    const edit = (i: number) => {
      const patch = () => netbox('PATCH', `/api/tenancy/tenants/${tenant.id}/`, { description: `edit ${i}` });
      return patch().catch((error) => {
        if (error instanceof NetboxUnavailableError) return patch();
        throw error;
      });
    };
    /**
     * The intents this loop took that a dispatcher queued or joined to the waiting job, each once (a
     * dispatcher elsewhere on the stack taking every intent audits the same intent again).
     */
    const dispatched = () => {
      const ids = new Set<string>();
      for (const m of tail.messages) {
        const data = m.value.data as { action?: string; correlation?: { intentId?: string } } | undefined;
        const intentId = data?.correlation?.intentId ?? '';
        if (
          m.topic === topics.audit &&
          m.key === tenant.rootKey &&
          (data?.action === 'intent.queued' || data?.action === 'intent.coalesced') &&
          own.taken(intentId)
        )
          ids.add(intentId);
      }
      return ids.size;
    };
    const dispatchedBefore = dispatched();

    // The first edit starts the next run, which stops at AWX's approval node.
    await edit(1);
    const held = await pendingApproval(tenant.rootKey, creation.workflowJobId);
    // The other 49 while it is held, seven at a time; then every edit's intent has reached the
    // dispatcher (one change, one intent per edit) before the held run may go on.
    for (let i = 2; i <= 50; i += 7) {
      await Promise.all(Array.from({ length: Math.min(7, 51 - i) }, (_, k) => edit(i + k)));
    }
    await eventually(
      async () => dispatched() >= dispatchedBefore + 50,
      "every edit's intent dispatched",
      runCapMs,
    );
    const final = await back.plugin.snapshot(tenant.root.id);
    expect((await back.awx.client.getWorkflowJob(held.workflowJobId)).status).not.toMatch(
      /successful|failed|error|canceled/,
    );
    await back.awx.client.approve(held.approvalId);

    // The waiting job (the burst, coalesced) runs next, at the final snapshot: its approval too.
    const followUp = await pendingApproval(tenant.rootKey, held.workflowJobId);
    await back.awx.client.approve(followUp.approvalId);
    const root = await eventually(
      async () => {
        const r = await back.plugin.findRoot(tenant.rootKey);
        return r?.status === 'in_sync' && r.last_reconciled_hash === final.hash ? r : undefined;
      },
      'the root in sync at the final hash',
      runCapMs,
    );
    expect(root.last_reconciled_hash).toBe(final.hash);

    const after = (await workflowsOf(tenant.rootKey)).length - 1;
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(2);
    const runs = await back.plugin.listRuns(tenant.rootKey);
    // One active and one waiting job per root: the burst made at most two runs, not fifty (without
    // coalescing the rest would each run and end skipped at the same hash).
    const later = runs.filter((r) => r.run_id !== first.run_id);
    expect(later.length).toBeLessThanOrEqual(2);
    const launched = later.filter((r) => r.awx_job_id !== null);
    expect(launched).toHaveLength(after);
    expect(launched[0]?.snapshot_hash).toBe(final.hash);
    expect(runs.every((r) => ['succeeded', 'skipped'].includes(r.state))).toBe(true);
  }, 1_800_000);
});
