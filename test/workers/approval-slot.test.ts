/**
 * A run awaiting an AWX approval holds no worker slot (decision 0044), on the real stack: NetBox
 * with the plugin, Kafka, Redis/BullMQ and the stack's real AWX 24.6.1 with a copy of its approval
 * workflow (`unicop-site-with-approval`, launched for tenants; the copy's gate never expires). One
 * reconcile worker with concurrency 1 takes a tenant's job; its run reaches `awaiting_approval` and
 * the job is handed back (delayed, the root's lease free). A site's edit, queued after it, is
 * reconciled to `succeeded` by that same single slot while the tenant still waits, and a sweep
 * leaves the unleased tenant to its job. Then the approval is given in AWX: the handed-back job
 * takes the run up again — same run id, the same AWX workflow job, never launched twice — and the
 * run ends `succeeded`. Holding the slot while waiting (the worker's reconciler without
 * approvalRecheckMs) fails the site's wait. Caps are caps, not budgets: real AWX jobs start
 * containers on a shared, loaded machine.
 */
import { readFile } from 'node:fs/promises';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRetriable } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient, type PluginRoot, type PluginRun } from '../../core/plugin/client.js';
import {
  queueTag,
  type ReconcileJobData,
  reconcileJobOptions,
  rootJobsOf,
} from '../../workers/reconcile-queue.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { Sweeper, type SweeperDeps } from '../../workers/sweeper/sweeper.js';
import { basicAuth } from '../awx/support.js';
import { kindTemplateIds } from '../support/awx.js';
import { netbox } from '../support/netbox.js';
import {
  type BackHalf,
  createSite,
  createTenant,
  eventually,
  reconcileJob,
  startBackHalf,
} from '../support/reconciler.js';
import { stack, stackFact, uniqueName } from '../support/stack.js';

/**
 * A copy of the stack's approval workflow whose gate never expires, owned by this test. The shared
 * template is not changed (other tests shorten its gate's timeout for a while — and a run cut short
 * leaves it so); the copy keeps its approval node, its job node (the stack's unicop-site) and its
 * prompts. Deleted afterwards, its approval template with it.
 */
async function ownApprovalWorkflow(): Promise<{ id: number; remove(): Promise<void> }> {
  const url = stackFact('UNICOP_AWX_REAL_URL');
  const password = (await readFile(stackFact('UNICOP_AWX_ADMIN_PASSWORD_FILE'), 'utf8')).trim();
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: basicAuth('admin', password), 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!res.ok) throw new Error(`${method} ${path}: AWX answered ${res.status} ${await res.text()}`);
    return res.status === 204 ? {} : ((await res.json()) as Record<string, unknown>);
  };
  const copy = await call('POST', `/api/v2/workflow_job_templates/${kindTemplateIds().approval}/copy/`, {
    name: uniqueName('unicop-test-approval-slot'),
  });
  const id = copy.id as number;
  const nodes = (await call('GET', `/api/v2/workflow_job_templates/${id}/workflow_nodes/`)) as {
    results: { summary_fields: { unified_job_template?: { id: number; unified_job_type: string } } }[];
  };
  const gate = nodes.results
    .map((n) => n.summary_fields.unified_job_template)
    .find((t) => t?.unified_job_type === 'workflow_approval');
  if (!gate) throw new Error(`the copy ${id} of the approval workflow has no approval node`);
  await call('PATCH', `/api/v2/workflow_approval_templates/${gate.id}/`, { timeout: 0 });
  // AWX refuses (409) while a job of the template runs: a canceled one takes a moment to stop.
  const remove = () =>
    eventually(
      () =>
        call('DELETE', `/api/v2/workflow_job_templates/${id}/`).then(
          () => true,
          (error: Error) => (error.message.includes('409') ? undefined : Promise.reject(error)),
        ),
      `workflow job template ${id} deleted`,
      120_000,
    ).then(() => undefined);
  return { id, remove };
}

/** NetBox's plugin, except that the named roots launch the given workflow template. */
class PluginWithWorkflow extends PluginClient {
  readonly roots = new Set<string>();
  constructor(private readonly workflowId: number) {
    super({ baseUrl: stack.netboxUrl(), token: stack.netboxToken(), timeoutMs: 30_000 });
  }
  override async findRoot(key: string): Promise<PluginRoot | null> {
    const root = await super.findRoot(key);
    if (!root || !this.roots.has(key)) return root;
    return { ...root, awx_template: { type: 'workflow', id: this.workflowId } as PluginRoot['awx_template'] };
  }
}

describe('a run awaiting approval gives its worker slot back', () => {
  let back: BackHalf;
  let workflow: Awaited<ReturnType<typeof ownApprovalWorkflow>>;

  beforeAll(async () => {
    back = await startBackHalf();
    workflow = await ownApprovalWorkflow();
  });
  afterAll(async () => {
    await workflow?.remove();
    await back?.stop();
  });

  /**
   * The run this test's job made (other tests' pipelines may reconcile the same roots too); none
   * while NetBox does not answer in time (a loaded machine): the probe asks again.
   */
  const runOf = async (job: ReconcileJobData): Promise<PluginRun | undefined> => {
    try {
      return (await back.plugin.listRuns(job.rootKey)).find((r) => r.intent_id === job.intentId);
    } catch (error) {
      if (isRetriable(error)) return undefined;
      throw error;
    }
  };

  it("one slot: a tenant's run waits for approval while a site's edit is reconciled; approved, the same run and AWX workflow job succeed", async () => {
    const tenant = await createTenant();
    const site = await createSite();
    const plugin = new PluginWithWorkflow(workflow.id);
    plugin.roots.add(tenant.rootKey);
    const queueName = uniqueName('reconcile-approval-slot');
    const connection = { url: stack.redisUrl() };
    const queue = new Queue<ReconcileJobData>(queueName, { connection });
    const worker = startReconcileWorker(
      // The workers' lease TTL (60 s): at load 40-50, NetBox answers renewals in tens of seconds.
      back.reconciler({ approvalRecheckMs: 2_000, leaseTtlSeconds: 60 }, { plugin }),
      { redisUrl: stack.redisUrl(), concurrency: 1, queueName, leaseTtlSeconds: 60 },
      createLogger('approval-slot', process.env.UNICOP_TEST_LOG ?? 'silent'),
    );
    let workflowJobId: number | null = null;
    try {
      const tenantJob = reconcileJob(tenant.rootKey);
      await queue.add('reconcile', tenantJob, reconcileJobOptions(tenantJob));
      const waiting = await eventually(
        async () => {
          const run = await runOf(tenantJob);
          return run?.state === 'awaiting_approval' ? run : undefined;
        },
        "the tenant's run awaiting approval",
        600_000,
      );
      workflowJobId = waiting.awx_job_id as number;

      // The site is edited and its job queued behind the tenant's, for the one slot.
      await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description: uniqueName('edited') });
      const siteJob = reconcileJob(site.rootKey);
      await queue.add('reconcile', siteJob, reconcileJobOptions(siteJob));
      const siteRun = await eventually(
        async () => {
          const run = await runOf(siteJob);
          return run?.finished ? run : undefined;
        },
        "the site's run ended while the tenant waits",
        600_000,
      );
      expect(siteRun).toMatchObject({ state: 'succeeded' });
      expect(siteRun.awx_job_id).toBeGreaterThan(0);
      // ... and the tenant's run still waits, its approval still pending in AWX, its lease free.
      expect((await runOf(tenantJob))?.state).toBe('awaiting_approval');
      const approvals = await back.awx.client.approvalsOfWorkflowJob(workflowJobId);
      const pending = approvals.find((a) => a.status === 'pending');
      expect(pending).toBeDefined();
      expect((await back.plugin.findRoot(tenant.rootKey))?.lease.live).toBe(false);
      // A sweep sees the tenant unleased with its run open, and leaves it to the job in the queue.
      const sweeper = new Sweeper({
        plugin: {
          allRoots: async function* () {
            const root = await plugin.findRoot(tenant.rootKey);
            if (root) yield root;
          },
          releaseLease: (id: number, token: number) => plugin.releaseLease(id, token),
        } as unknown as SweeperDeps['plugin'],
        eventLog: back.eventLog,
        log: createLogger('approval-slot-sweeper', 'silent'),
        intervalMs: 3_600_000,
        jobs: rootJobsOf(queue, queueTag(stack.redisUrl(), queueName)),
      });
      expect(await sweeper.sweep()).toMatchObject({ scanned: 1, emitted: [], freed: [] });

      await back.awx.client.approve(pending?.id as number);
      const ended = await eventually(
        async () => {
          const run = await runOf(tenantJob);
          return run && run.state !== 'awaiting_approval' && run.finished ? run : undefined;
        },
        "the tenant's run ended after its approval",
        600_000,
      );
      expect(ended).toMatchObject({ run_id: waiting.run_id, state: 'succeeded', awx_job_id: workflowJobId });
      // Read from AWX: one workflow job carries the run's id (a relaunch would be a second).
      const workflows = (await back.awx.jobsOf(tenant.rootKey)).filter(
        (j) => j.type === 'workflow_job' && j.run_id === waiting.run_id,
      );
      expect(workflows.map((j) => j.id)).toEqual([workflowJobId]);
      const lines = (ended as { log_lines?: { message: string }[] }).log_lines ?? [];
      expect(lines.map((l) => l.message)).toContainEqual(expect.stringContaining('taken up by'));
    } finally {
      // Never leave a workflow waiting on the shared AWX (the old holding keeps the slot until then).
      if (workflowJobId !== null) {
        const job = await back.awx.client.getWorkflowJob(workflowJobId);
        if (!['successful', 'failed', 'error', 'canceled'].includes(String(job.status))) {
          await back.awx.client.cancelWorkflowJob(workflowJobId).catch(() => undefined);
        }
      }
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  }, 1_800_000);
});
