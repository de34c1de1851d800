/**
 * The reconciler under races and crashes (guarantees 2 and 7), against the real services and the
 * stack's real AWX 24.6.1:
 *   - two BullMQ workers handed jobs for the same root at once never run it twice at the same time
 *     (AWX would allow it: the catalogue templates have allow_simultaneous on, checked below, so only
 *     the lease stands in the way); judged by the started..finished times AWX itself recorded;
 *   - a worker killed (SIGKILL) while its AWX job waits leaves it to the next worker, which adopts
 *     the job and follows it to its end — one AWX job, never a second launch;
 *   - a worker whose lease expired (it was cut off from NetBox) has its writes refused by the fence
 *     and stops, while the new holder finishes the run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Queue, type Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { NetboxUnavailableError, PluginClient } from '../../core/plugin/client.js';
import { createWorkerMetrics } from '../../workers/metrics.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import type { Reconciler } from '../../workers/reconciler/reconcile.js';
import type { ReconcileResult } from '../../workers/reconciler/result.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { overlappingRuns } from '../awx/support.js';
import { kindTemplateIds } from '../support/awx.js';
import { TopicTail } from '../support/kafka.js';
import {
  type BackHalf,
  createSite,
  createTenant,
  eventually,
  reconcileJob,
  startBackHalf,
} from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

const log = createLogger('races-test', 'silent');

/** Reconciles until done, sleeping whenever the reconciler says "later" (as the queue would). */
async function reconcileToEnd(reconciler: Reconciler, job: ReconcileJobData): Promise<ReconcileResult[]> {
  const results: ReconcileResult[] = [];
  for (;;) {
    const result = await reconciler.reconcile(job);
    results.push(result);
    if (result.kind === 'done') return results;
    await new Promise((r) => setTimeout(r, Math.max(0, result.at.getTime() - Date.now())));
  }
}

/** A plugin client cut off from NetBox for lease renewals only: its lease silently expires. */
class PartitionedPlugin extends PluginClient {
  override async renewLease(): Promise<never> {
    throw new NetboxUnavailableError('partitioned by the test');
  }
}

describe('reconciler: races, crashes and the fence', () => {
  let back: BackHalf;
  let tail: TopicTail;
  const auditActions = (rootKey: string) =>
    tail.messages
      .filter((m) => m.key === rootKey && m.topic === topics.audit)
      .map((m) => m.value.data as { action: string; actor: string; correlation: Record<string, unknown> });

  beforeAll(async () => {
    // `simultaneous` only matters when UNICOP_TEST_AWX=double: real AWX's templates allow it already.
    back = await startBackHalf({ simultaneous: true });
    tail = await TopicTail.start([topics.audit, topics.outcomes]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  it('two workers racing for one root never overlap; each run has a higher fencing token', async () => {
    const site = await createSite();
    const queueName = uniqueName('reconcile-race');
    const connection = { url: stack.redisUrl() };
    const queue = new Queue<ReconcileJobData>(queueName, { connection });
    const workers: Worker[] = [];
    const metrics = createWorkerMetrics();
    if (back.awx.kind === 'real') {
      // Else AWX itself would keep the jobs apart and the test would prove nothing about the lease.
      const template = await fetch(`${back.awx.url}/api/v2/job_templates/${kindTemplateIds().site}/`, {
        headers: { authorization: `Bearer ${back.awx.token}` },
      }).then((r) => r.json() as Promise<{ allow_simultaneous?: boolean }>);
      expect(template.allow_simultaneous).toBe(true);
    }
    try {
      for (const n of [1, 2]) {
        workers.push(
          startReconcileWorker(
            back.reconciler({ holder: `racer-${n}` }, { metrics }),
            { redisUrl: stack.redisUrl(), concurrency: 2, queueName, metrics },
            log,
          ),
        );
      }
      // Four jobs for the same root, without de-duplication: all four are taken at once.
      for (let i = 0; i < 4; i++) {
        const job = reconcileJob(site.rootKey, 'manual');
        await queue.add('reconcile', job, { jobId: job.intentId });
      }
      const runs = await eventually(
        async () => {
          const list = await back.plugin.listRuns(site.rootKey);
          return list.length === 4 && list.every((r) => r.state === 'succeeded') ? list : undefined;
        },
        'four succeeded runs',
        // Four real AWX jobs one after another, 10–40 s each, more when other files load the stack.
        480_000,
      );
      const records = await back.awx.jobs();
      const jobs = records.filter((j) => j.type === 'job' && j.root === site.rootKey);
      expect(jobs).toHaveLength(4);
      // The overlap check compares start..end of each job: all four must have both, or it passes empty.
      expect(jobs.filter((j) => j.started && j.finished)).toHaveLength(4);
      expect(overlappingRuns(records, site.rootKey)).toEqual([]);
      const tokens = runs.map((r) => r.fencing_token).reverse();
      expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
      expect(new Set(tokens).size).toBe(4);
      // The lease turned jobs away while another worker held the root (they came back later).
      const counted = async (name: string, label: string) =>
        (await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) =>
          Object.values(v.labels).includes(label),
        )?.value ?? 0;
      expect(await counted('unicop_reconcile_jobs_total', 'later')).toBeGreaterThan(0);
      // (Counted after the outcome events are appended, so a moment after NetBox shows the run.)
      await eventually(
        async () => (await counted('unicop_runs_total', 'succeeded')) === 4 || undefined,
        'four succeeded runs counted',
        15_000,
      );
    } finally {
      await Promise.all(workers.map((w) => w.close()));
      await queue.obliterate({ force: true });
      await queue.close();
    }
  }, 600_000);

  it('a worker killed mid-run: the next worker adopts its AWX job, which is never launched twice', async () => {
    const tenant = await createTenant();
    // node itself runs the worker (the tsx CLI would put a second process between, which SIGKILL misses).
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'test', 'workers', 'fixtures', 'reconcile-once.ts')],
      {
        env: {
          ...process.env,
          UNICOP_TEST_ROOT: tenant.rootKey,
          UNICOP_TEST_AWX_URL: back.awx.url,
          UNICOP_TEST_AWX_TOKEN: back.awx.token,
        },
        stdio: 'ignore',
      },
    );
    try {
      const jobId = await eventually(
        async () => {
          const root = await back.plugin.findRoot(tenant.rootKey);
          const last = root?.last_run as { state: string; awx_job_id: number } | null;
          return last?.state === 'awaiting_approval' ? last.awx_job_id : undefined;
        },
        'the doomed worker to reach the approval',
        180_000,
      );
      child.kill('SIGKILL');

      const adopter = back.reconciler({ holder: 'adopter' });
      const adopting = reconcileToEnd(adopter, reconcileJob(tenant.rootKey));
      await eventually(
        async () => auditActions(tenant.rootKey).some((a) => a.action === 'run.adopted'),
        'adoption',
        120_000,
      );
      const approval = (await back.awx.client.approvalsOfWorkflowJob(jobId)).find(
        (a) => a.status === 'pending',
      );
      await back.awx.client.approve(approval?.id as number);
      await adopting;

      const records = await back.awx.jobsOf(tenant.rootKey);
      const workflows = records.filter((j) => j.type === 'workflow_job');
      expect(workflows.map((j) => j.id)).toEqual([jobId]);
      // ... and its one apply job (spawned after the approval, carrying the same root).
      expect(records.filter((j) => j.type === 'job')).toHaveLength(1);
      const runs = await back.plugin.listRuns(tenant.rootKey);
      expect(runs[runs.length - 1]).toMatchObject({ awx_job_id: jobId, state: 'succeeded' });
    } finally {
      child.kill('SIGKILL');
    }
  }, 420_000);

  it('a worker whose lease expired is refused by the fence and stops; the new holder finishes', async () => {
    const tenant = await createTenant();
    const stale = back.reconciler(
      { holder: 'stale-worker', leaseTtlSeconds: 3 },
      { plugin: new PartitionedPlugin({ baseUrl: stack.netboxUrl(), token: stack.netboxToken() }) },
    );
    const staleRun = stale.reconcile(reconcileJob(tenant.rootKey));
    const jobId = await eventually(
      async () => {
        const root = await back.plugin.findRoot(tenant.rootKey);
        const last = root?.last_run as { state: string; awx_job_id: number } | null;
        return last?.state === 'awaiting_approval' ? last.awx_job_id : undefined;
      },
      'awaiting approval',
      180_000,
    );
    const successor = reconcileToEnd(back.reconciler({ holder: 'successor' }), reconcileJob(tenant.rootKey));
    await eventually(
      async () =>
        auditActions(tenant.rootKey).some((a) => a.action === 'run.adopted' && a.actor === 'successor'),
      'the successor to adopt the run',
      120_000,
    );
    const approval = (await back.awx.client.approvalsOfWorkflowJob(jobId)).find(
      (a) => a.status === 'pending',
    );
    await back.awx.client.approve(approval?.id as number);
    await Promise.all([staleRun, successor]);

    // The tail reads Kafka asynchronously: wait for the events, then check nothing more came.
    await tail.waitFor((m) => m.key === tenant.rootKey && m.topic === topics.outcomes);
    await eventually(
      async () => auditActions(tenant.rootKey).some((a) => a.action === 'run.fenced') || undefined,
      'the fenced audit event',
      15_000,
    );
    await tail.settle(() => false, 1000);
    const fenced = auditActions(tenant.rootKey).filter((a) => a.action === 'run.fenced');
    expect(fenced.map((a) => a.actor)).toEqual(['stale-worker']);
    // The one lease_lost: a live worker refused by the fence (a dead one's run is adopted or resumed).
    expect(fenced.map((a) => a.correlation.failureClass)).toEqual(['lease_lost']);
    const [run] = await back.plugin.listRuns(tenant.rootKey);
    const root = await back.plugin.findRoot(tenant.rootKey);
    expect(run?.state).toBe('succeeded');
    expect(run?.fencing_token).toBe((root?.lease as { highest_token?: number } | undefined)?.highest_token);
    const outcomes = tail.messages.filter((m) => m.key === tenant.rootKey && m.topic === topics.outcomes);
    expect(outcomes).toHaveLength(1);
  }, 420_000);
});
