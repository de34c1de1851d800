/**
 * The blast-radius gate (docs/decisions/0065) on the real stack: NetBox with the plugin (a `site` root
 * given `blast_radius` by its own override, decision 0062; its VLANs are members), Kafka, the stack's
 * real AWX 24.6.1 running the real site playbook, Keycloak (the people's tokens) and the compiled bridge
 * and CLI.
 *
 * - the root's first run has no baseline: never held, it launches and records its member digests (a root
 *   without a limit records none);
 * - above the limit (two VLANs added, limit one member): the run is held `awaiting_approval` with no AWX
 *   job, the diff (counts, keys) on the run, in its summary and the root's journal, `approval.requested`
 *   audited; the job gave the lease back and comes back later without taking it; GET /approvals lists
 *   it as `kind: gate` with the diff; an operator may not approve it (403); an approver approves it
 *   through the admin API (a second decision: 409) → the same run launches in AWX and succeeds, the
 *   journal and `approval.approved` name the person;
 * - denied with `unicop deny` (the compiled CLI, signed in as the approver): the run ends `denied`, no AWX
 *   job is launched;
 * - approved after NetBox changed again: the approved run ends `skipped` (an approval covers what was shown)
 *   and a new run is held for the new snapshot;
 * - within the limit: no wait, the run launches and succeeds.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenFile } from '../../core/auth/device-flow.js';
import { repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import type { PluginRun } from '../../core/plugin/client.js';
import type { Reconciler } from '../../workers/reconciler/reconcile.js';
import { assertBuilt, runUnicop } from '../cli/run-unicop.js';
import { adminCall } from '../support/admin-api.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { TopicTail } from '../support/kafka.js';
import { keycloak, keycloakUsers, userToken } from '../support/keycloak.js';
import { netbox } from '../support/netbox.js';
import { type BackHalf, createSite, journalOf, reconcileJob, startBackHalf } from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

type Json = Record<string, unknown>;

describe('blast radius: a run changing too many members waits for a person', () => {
  let back: BackHalf;
  let bridge: RunningBridge;
  let tail: TopicTail;
  let reconciler: Reconciler;

  beforeAll(async () => {
    assertBuilt();
    // The override's custom field, made by the plugin's command (idempotent; unicop_bootstrap runs it too).
    execFileSync(join(repoRoot, 'scripts', 'stack.d', 'netbox.sh'), [
      'exec',
      'netbox',
      'unicop_policy_field',
    ]);
    back = await startBackHalf();
    tail = await TopicTail.start([topics.audit]);
    // No AWX token: a gate approval is UNICOP's own (GET /approvals lists it, a decision needs no AWX).
    bridge = await startBridge({ ...keycloak.env(), UNICOP_NETBOX_TOKEN: stack.netboxToken() });
    reconciler = back.reconciler({ approvalRecheckMs: 1_000 });
  });
  afterAll(async () => {
    await bridge?.close();
    await tail?.stop();
    await back?.stop();
  });

  const call = (method: string, path: string, specPath: string, token: string | null, body?: Json) =>
    adminCall(bridge, method, path, specPath, token, body);
  const runsOf = (rootKey: string): Promise<PluginRun[]> => back.plugin.listRuns(rootKey);
  const auditOf = (rootKey: string, action: string) =>
    tail.waitFor(
      (m) =>
        m.key === rootKey &&
        m.topic === topics.audit &&
        (m.value.data as { action: string }).action === action,
    );

  async function addVlans(siteId: number, count: number): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const vlan = await netbox<{ id: number }>('POST', '/api/ipam/vlans/', {
        vid: 2 + Math.floor(Math.random() * 4000),
        name: uniqueName('br-vlan'),
        site: siteId,
        status: 'active',
      });
      ids.push(vlan.id);
    }
    return ids;
  }

  /** The job taken again until it is done (what its queue does at each `later`). */
  async function untilDone(job: ReturnType<typeof reconcileJob>): Promise<void> {
    const deadline = Date.now() + 600_000;
    while ((await reconciler.reconcile(job)).kind !== 'done') {
      if (Date.now() > deadline) throw new Error('the job was not done within 600 s');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }

  /** A site root with `limit` as its blast radius and one VLAN, reconciled once (its baseline). */
  async function reconciledSite(limit: Json) {
    const site = await createSite();
    await netbox('PATCH', `/api/dcim/sites/${site.id}/`, {
      custom_fields: { unicop_policy: { blast_radius: limit } },
    });
    expect((await back.plugin.findRoot(site.rootKey))?.policy).toMatchObject({ blast_radius: limit });
    const [vlan] = await addVlans(site.id, 1);
    expect(await reconciler.reconcile(reconcileJob(site.rootKey))).toEqual({ kind: 'done' });
    const [first] = await runsOf(site.rootKey);
    // No baseline: never held; its digests are the next run's baseline.
    expect(first).toMatchObject({ state: 'succeeded' });
    expect(Object.keys(first?.member_digests as Json)).toEqual([`ipam.vlan/${vlan}`]);
    expect(JSON.stringify(first?.log_lines)).toContain('no baseline run with member digests; not held');
    return { ...site, baselineRunId: first?.run_id as string };
  }

  /** Two VLANs added to a site whose limit is one member: the next run is held. */
  async function heldRun() {
    const site = await reconciledSite({ max_changed_members: 1 });
    const added = await addVlans(site.id, 2);
    const job = reconcileJob(site.rootKey);
    const result = await reconciler.reconcile(job);
    expect(result.kind).toBe('later');
    const [run] = await runsOf(site.rootKey);
    expect(run).toMatchObject({ state: 'awaiting_approval', awx_job_id: null, gate_decision: null });
    return { site, added, job, run: run as PluginRun };
  }

  it('above the limit: held with the diff and no AWX job; an approver approves through the admin API and the same run succeeds in AWX', async () => {
    const { site, added, job, run } = await heldRun();
    const keys = added.map((id) => `ipam.vlan/${id}`).sort();
    expect(run.blast_radius).toEqual({
      baseline_run_id: site.baselineRunId,
      added: 2,
      removed: 0,
      changed: 0,
      members: 3,
      share: 0.6667,
      limit: { max_changed_members: 1 },
      keys,
    });
    expect(run.summary).toContain('blast radius above the limit, waiting for approval');
    expect(run.summary).toContain(keys.join(', '));
    const journal = await journalOf('dcim.site', site.id);
    expect(journal[0]).toMatchObject({ kind: { value: 'warning' } });
    expect(journal[0]?.comments).toContain(`Run ${run.run_id} held: blast radius above the limit`);
    const [requested] = await auditOf(site.rootKey, 'approval.requested');
    expect(requested?.value.data).toMatchObject({ correlation: { runId: run.run_id, approvalKind: 'gate' } });
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(1);
    // No slot and no lease while it waits: the job comes back later without taking the lease.
    expect((await back.plugin.findRoot(site.rootKey))?.lease.live).toBe(false);
    expect((await reconciler.reconcile(job)).kind).toBe('later');
    expect((await runsOf(site.rootKey))[0]).toMatchObject({ run_id: run.run_id, state: 'awaiting_approval' });

    const viewer = await userToken(keycloakUsers.viewer);
    const listed = await call('GET', '/approvals', '/approvals', viewer);
    expect(listed.status).toBe(200);
    expect(listed.body.approvals).toContainEqual(
      expect.objectContaining({
        kind: 'gate',
        runId: run.run_id,
        rootKey: site.rootKey,
        awxWorkflowJobId: null,
        blastRadius: expect.objectContaining({ added: 2, keys }),
      }),
    );
    const operator = await userToken(keycloakUsers.operator);
    const refused = await call('POST', `/runs/${run.run_id}/approve`, '/runs/{runId}/approve', operator, {});
    expect(refused).toMatchObject({ status: 403, body: { reason: 'role_required' } });

    const approver = await userToken(keycloakUsers.approver);
    const approved = await call('POST', `/runs/${run.run_id}/approve`, '/runs/{runId}/approve', approver, {
      reason: 'planned VLAN roll-out',
    });
    expect(approved).toMatchObject({
      status: 200,
      body: { kind: 'gate', runId: run.run_id, decision: 'approved', by: 'abby-approver', journaled: true },
    });
    const twice = await call('POST', `/runs/${run.run_id}/deny`, '/runs/{runId}/deny', approver, {});
    expect(twice).toMatchObject({ status: 409, body: { reason: 'already_decided' } });

    await untilDone(job);
    const runs = await runsOf(site.rootKey);
    expect(runs).toHaveLength(2);
    expect(runs[0]).toMatchObject({ run_id: run.run_id, state: 'succeeded' });
    expect(runs[0]?.gate_decision).toMatchObject({ decision: 'approved', by: 'abby-approver' });
    expect(runs[0]?.awx_job_id).toEqual(expect.any(Number));
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(2);
    const comments = (await journalOf('dcim.site', site.id)).map((e) => e.comments);
    expect(comments).toContainEqual(
      expect.stringContaining(`Blast radius of run ${run.run_id} approved by abby-approver`),
    );
    const [audit] = await auditOf(site.rootKey, 'approval.approved');
    expect(audit?.value.data).toMatchObject({
      actor: 'abby-approver',
      reason: 'planned VLAN roll-out',
      correlation: { runId: run.run_id, approvalKind: 'gate' },
    });
  }, 1_200_000);

  it('denied with `unicop deny`: the held run ends denied and nothing reaches AWX', async () => {
    const { site, job, run } = await heldRun();
    const dir = mkdtempSync(join(tmpdir(), 'unicop-br-deny-'));
    const tokenFile = join(dir, 'tokens.json');
    new TokenFile(tokenFile).write({
      accessToken: await userToken(keycloakUsers.approver),
      accessUntil: Date.now() + 240_000,
      refreshToken: null,
    });
    const env = {
      UNICOP_ADMIN_URL: bridge.url,
      UNICOP_OIDC_ISSUER: keycloak.issuer(),
      UNICOP_OIDC_TOKEN_FILE: tokenFile,
    };
    const listed = await runUnicop(['approvals'], env);
    expect(listed.stdout).toContain(`${run.run_id}  ${site.rootKey}`);
    expect(listed.stdout).toContain('blast radius: 2 added, 0 removed, 0 changed of 3');
    const denied = await runUnicop(['deny', run.run_id, '--reason', 'too wide for today'], env);
    expect(denied.stderr).toBe('');
    expect(denied.code).toBe(0);
    expect(denied.stdout).toContain(`run ${run.run_id} of ${site.rootKey} denied by abby-approver`);

    await untilDone(job);
    const runs = await runsOf(site.rootKey);
    expect(runs).toHaveLength(2);
    expect(runs[0]).toMatchObject({
      run_id: run.run_id,
      state: 'denied',
      outcome_class: 'denied',
      awx_job_id: null,
    });
    expect(runs[0]?.summary).toContain('blast radius denied by abby-approver: too wide for today');
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(1);
    const [audit] = await auditOf(site.rootKey, 'approval.denied');
    expect(audit?.value.data).toMatchObject({ actor: 'abby-approver', reason: 'too wide for today' });
  }, 1_200_000);

  it('approved, but NetBox changed since: the approved run ends skipped and a new run is held for the new snapshot', async () => {
    const { site, job, run } = await heldRun();
    await addVlans(site.id, 1);
    const approver = await userToken(keycloakUsers.approver);
    const approved = await call('POST', `/runs/${run.run_id}/approve`, '/runs/{runId}/approve', approver, {});
    expect(approved.status).toBe(200);

    expect((await reconciler.reconcile(job)).kind).toBe('later');
    const [newer, approvedRun] = await runsOf(site.rootKey);
    expect(approvedRun).toMatchObject({ run_id: run.run_id, state: 'skipped', awx_job_id: null });
    expect(approvedRun?.summary).toContain('which changed since');
    expect(newer).toMatchObject({ state: 'awaiting_approval', awx_job_id: null, gate_decision: null });
    expect(newer?.blast_radius).toMatchObject({ added: 3, baseline_run_id: site.baselineRunId });
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(1);
    // Leave nothing waiting: denied, the root's job ends.
    const denied = await call('POST', `/runs/${newer?.run_id}/deny`, '/runs/{runId}/deny', approver, {});
    expect(denied.status).toBe(200);
    await untilDone(job);
    expect((await runsOf(site.rootKey))[0]).toMatchObject({ run_id: newer?.run_id, state: 'denied' });
  }, 1_200_000);

  it('a root without a limit: its runs store no digests and are never held', async () => {
    const site = await createSite();
    await addVlans(site.id, 3);
    expect(await reconciler.reconcile(reconcileJob(site.rootKey))).toEqual({ kind: 'done' });
    const [run] = await runsOf(site.rootKey);
    expect(run).toMatchObject({ state: 'succeeded', member_digests: null, blast_radius: null });
  }, 1_200_000);

  it('within the limit: no wait, the run launches and succeeds', async () => {
    const site = await reconciledSite({ max_changed_members: 2 });
    await addVlans(site.id, 1);
    expect(await reconciler.reconcile(reconcileJob(site.rootKey))).toEqual({ kind: 'done' });
    const [run] = await runsOf(site.rootKey);
    expect(run).toMatchObject({ state: 'succeeded', blast_radius: null, gate_decision: null });
    expect(JSON.stringify(run?.log_lines)).toContain(
      `blast radius within the limit: 1 member(s) differ from run ${site.baselineRunId}`,
    );
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(2);
  }, 1_200_000);
});
