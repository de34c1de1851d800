/**
 * The approver's endpoints (decision 0057) on the real stack: AWX 24.6.1 (a tenant's run launches the
 * stack's approval workflow, `unicop-site-with-approval`, and waits on its approval node, handed back
 * as the workers do), NetBox with the plugin (the run, its journal) and Keycloak (the people's
 * tokens). A viewer lists the waiting run but an operator may not approve it (403, the approval still
 * pending in AWX); an approver approves through the admin API — AWX's approval is approved with
 * UNICOP's token, the run is taken up and ends succeeded, `approval.approved` on unicop.audit and the
 * journal name the approver. An approver denies with `unicop deny` (the compiled CLI, signed in as
 * the person) — the run ends denied, the reason and the person in the journal and on unicop.audit.
 * Every answer conforms to openapi/bridge.yaml.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import type { Reconciler } from '../../workers/reconciler/reconcile.js';
import { assertBuilt, runUnicop } from '../cli/run-unicop.js';
import { adminCall } from '../support/admin-api.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { TopicTail } from '../support/kafka.js';
import { keycloak, keycloakUsers, userToken } from '../support/keycloak.js';
import {
  type BackHalf,
  createTenant,
  journalOf,
  reconcileJob,
  startBackHalf,
} from '../support/reconciler.js';
import { signedInCliEnv } from '../support/signed-in-cli.js';
import { stack } from '../support/stack.js';

type Json = Record<string, unknown>;

describe('approver endpoints: AWX approvals answered by a person', () => {
  let back: BackHalf;
  let bridge: RunningBridge;
  let tail: TopicTail;
  const workflows: number[] = [];

  beforeAll(async () => {
    assertBuilt();
    back = await startBackHalf();
    tail = await TopicTail.start([topics.audit]);
    bridge = await startBridge({
      ...keycloak.env(),
      UNICOP_NETBOX_TOKEN: stack.netboxToken(),
      UNICOP_AWX_URL: back.awx.url,
      UNICOP_AWX_TOKEN: back.awx.token,
    });
  });
  afterAll(async () => {
    // Never leave a workflow waiting on the shared AWX.
    for (const id of workflows) {
      const job = await back.awx.client.getWorkflowJob(id).catch(() => null);
      if (job && !['successful', 'failed', 'error', 'canceled'].includes(String(job.status))) {
        await back.awx.client.cancelWorkflowJob(id).catch(() => undefined);
      }
    }
    await bridge?.close();
    await tail?.stop();
    await back?.stop();
  });

  /** The admin API of this file's bridge (answers checked against openapi/bridge.yaml). */
  const call = (method: string, path: string, specPath: string, token: string | null, body?: Json) =>
    adminCall(bridge, method, path, specPath, token, body);

  /** A tenant's run waiting on its approval, handed back as the workers' reconciler does. */
  async function waitingRun() {
    const tenant = await createTenant();
    const reconciler = back.reconciler({ approvalRecheckMs: 2_000 });
    const job = reconcileJob(tenant.rootKey);
    const first = await reconciler.reconcile(job);
    expect(first.kind).toBe('later');
    const [run] = await back.plugin.listRuns(tenant.rootKey);
    expect(run?.state).toBe('awaiting_approval');
    workflows.push(run?.awx_job_id as number);
    return {
      tenant,
      reconciler,
      job,
      runId: run?.run_id as string,
      workflowJobId: run?.awx_job_id as number,
    };
  }

  /** The handed-back job taken again until it is done (what its queue does on AWX's notification). */
  async function finish(reconciler: Reconciler, job: ReturnType<typeof reconcileJob>): Promise<void> {
    const deadline = Date.now() + 600_000;
    while ((await reconciler.reconcile(job)).kind !== 'done') {
      if (Date.now() > deadline) throw new Error('the run was not taken up and ended within 600 s');
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }

  const auditOf = (rootKey: string, action: string) =>
    tail.waitFor(
      (m) =>
        m.key === rootKey &&
        m.topic === topics.audit &&
        (m.value.data as { action: string }).action === action,
    );

  it('a viewer lists it, an operator may not approve (403), an approver approves: the run succeeds, journaled and audited with the person', async () => {
    const { tenant, reconciler, job, runId, workflowJobId } = await waitingRun();
    const viewer = await userToken(keycloakUsers.viewer);
    const listed = await call('GET', '/approvals', '/approvals', viewer);
    expect(listed.status).toBe(200);
    expect(listed.body.approvals).toContainEqual(
      expect.objectContaining({ runId, rootKey: tenant.rootKey, awxWorkflowJobId: workflowJobId }),
    );
    expect((await call('GET', '/approvals', '/approvals', null)).status).toBe(401);

    const operator = await userToken(keycloakUsers.operator);
    const refused = await call('POST', `/runs/${runId}/approve`, '/runs/{runId}/approve', operator, {});
    expect(refused).toMatchObject({ status: 403, body: { reason: 'role_required' } });
    const stillPending = await back.awx.client.approvalsOfWorkflowJob(workflowJobId);
    expect(stillPending.map((a) => a.status)).toEqual(['pending']);

    const approver = await userToken(keycloakUsers.approver);
    const approved = await call('POST', `/runs/${runId}/approve`, '/runs/{runId}/approve', approver, {
      reason: 'change board said yes',
    });
    expect(approved).toMatchObject({
      status: 200,
      body: {
        runId,
        rootKey: tenant.rootKey,
        decision: 'approved',
        by: 'abby-approver',
        journaled: true,
        audited: true,
      },
    });
    // A second decision: AWX no longer waits on it.
    expect((await call('POST', `/runs/${runId}/deny`, '/runs/{runId}/deny', approver, {})).status).toBe(404);

    await finish(reconciler, job);
    const [run] = await back.plugin.listRuns(tenant.rootKey);
    expect(run).toMatchObject({ run_id: runId, state: 'succeeded', awx_job_id: workflowJobId });
    const journal = await journalOf('tenancy.tenant', tenant.id);
    expect(journal.map((e) => e.comments)).toContainEqual(
      expect.stringContaining(
        `of run ${runId} (AWX workflow job ${workflowJobId}) approved by abby-approver`,
      ),
    );
    const [audit] = await auditOf(tenant.rootKey, 'approval.approved');
    const sub = decodeJwt(approver).sub;
    expect(audit?.value.data).toMatchObject({
      actor: 'abby-approver',
      reason: 'change board said yes',
      correlation: { runId, awxWorkflowJobId: workflowJobId },
      metadata: { actorSubject: sub, authenticatedBy: 'oidc' },
    });
  }, 1_200_000);

  it('`unicop deny` as a signed-in approver: the run ends denied, the person and reason in the journal and on unicop.audit', async () => {
    const { tenant, reconciler, job, runId } = await waitingRun();
    // Two CLI runs (a list, then a decision through AWX and NetBox) may take minutes on a loaded
    // machine: the token file's access token lives 240 s, with no refresh token.
    const env = await signedInCliEnv(keycloakUsers.approver, bridge.url);
    const listed = await runUnicop(['approvals', '--json'], env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).approvals).toContainEqual(expect.objectContaining({ runId }));
    const denied = await runUnicop(['deny', runId, '--reason', 'not in this window'], env);
    expect(denied.stderr).toBe('');
    expect(denied.code).toBe(0);
    expect(denied.stdout).toContain(`run ${runId} of ${tenant.rootKey} denied by abby-approver`);

    await finish(reconciler, job);
    const [run] = await back.plugin.listRuns(tenant.rootKey);
    expect(run).toMatchObject({ run_id: runId, state: 'denied', outcome_class: 'denied' });
    const journal = await journalOf('tenancy.tenant', tenant.id);
    expect(journal).toContainEqual(
      expect.objectContaining({
        kind: expect.objectContaining({ value: 'warning' }),
        comments: expect.stringMatching(
          /denied by abby-approver through UNICOP's admin API: not in this window$/,
        ),
      }),
    );
    const [audit] = await auditOf(tenant.rootKey, 'approval.denied');
    expect(audit?.value.data).toMatchObject({ actor: 'abby-approver', reason: 'not in this window' });
  }, 1_200_000);
});
