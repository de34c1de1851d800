/**
 * Every failure class of the catalogue is produced by a real code path; this file shows the three
 * that test/workers/reconciler.test.ts does not (executor_unavailable, template_misconfigured,
 * denied and timed_out are there), each against NetBox with the plugin and Kafka. Two run on the
 * stack's real AWX 24.6.1, one on the AWX double (docs/awx-double.md says why):
 *   job_failed  — the playbook fails (the target refuses a stale fencing token): terminal, no retry;
 *   job_error   — AWX cannot run the job (its playbook is missing from the project): retried. The
 *                 double: real AWX refuses such a template (400 "Playbook not found for project.");
 *   canceled    — someone cancels the AWX job outside UNICOP: terminal.
 * lease_lost is said only by a live worker the fence refused (its `run.fenced` audit:
 * test/workers/reconciler-races.test.ts). A worker that died before launching leaves its run to be
 * resumed, not failed (test/workers/resume-after-crash.test.ts, docs/decisions/0037).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwxClient } from '../../core/awx/index.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { pollingOnly } from '../../workers/reconciler/awx-notifications.js';
import { createReconciler } from '../../workers/reconciler/reconcile.js';
import { startTestDouble } from '../awx/support.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import {
  type BackHalf,
  createSite,
  createTenant,
  eventually,
  reconcileJob,
  stackTemplates,
  startBackHalf,
  testReconcilerOptions,
} from '../support/reconciler.js';
import { uniqueName } from '../support/stack.js';

describe('failure classes, each from the code path that produces it', () => {
  let back: BackHalf;
  let tail: TopicTail;
  const of = (key: string, topic: string) => (m: TailedMessage) => m.key === key && m.topic === topic;
  /** Retry intents only: a created object may also get a change intent if a bridge is hooked up. */
  const retryOf = (key: string) => (m: TailedMessage) =>
    of(key, topics.intents)(m) && (m.value.data as { cause: { kind: string } }).cause.kind === 'retry';
  const outcomeOf = async (key: string) =>
    (await tail.waitFor(of(key, topics.outcomes)))[0]?.value.data as Record<string, unknown>;

  beforeAll(async () => {
    back = await startBackHalf();
    tail = await TopicTail.start([topics.outcomes, topics.intents, topics.audit]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  it('job_failed: the playbook fails at the target → failed/job_failed, terminal (no retry intent)', async () => {
    const site = await createSite();
    // The target already applied a far higher fencing token: the playbook's fence refuses to run.
    // On real AWX the target is the stack's shared directory, which the job's container sees at the
    // same path; the fake state is removed afterwards so no later sweep of this root trips on it.
    const dir = join(back.targetDir, site.rootKey.replace('/', '-'));
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'unicop-state.json'),
      JSON.stringify({ fencing_token: 1_000_000_000, run_id: 'a-later-holder' }),
    );
    try {
      await back.reconciler().reconcile(reconcileJob(site.rootKey));

      const [run] = await back.plugin.listRuns(site.rootKey);
      expect(run).toMatchObject({ state: 'failed', outcome_class: 'job_failed' });
      // Real AWX builds a job's stdout from its events, which its callback receiver may still be
      // saving when the job has ended — out of order: a CI run read the recap without the failed
      // task. AWX says when all are in (`event_processing_finished`); the double writes stdout whole.
      const jobId = run?.awx_job_id as number;
      await eventually(
        async () => {
          if (back.awx.kind === 'double') return true;
          const res = await fetch(`${back.awx.url}/api/v2/jobs/${jobId}/`, {
            headers: { authorization: `Bearer ${back.awx.token}` },
          });
          const job = (await res.json()) as { event_processing_finished?: boolean };
          return job.event_processing_finished === true ? true : undefined;
        },
        "AWX to have saved all the job's events",
        300_000,
      );
      const stdout = await back.awx.client.getJobStdout(jobId);
      expect(stdout).toContain('stale fencing token');
      const ended = await outcomeOf(site.rootKey);
      expect(ended).toMatchObject({ state: 'failed', failureClass: 'job_failed' });
      expect(ended).not.toHaveProperty('retryScheduled'); // terminal: a rollout counts this end
      expect(await tail.settle(retryOf(site.rootKey), 1500)).toHaveLength(0);
    } finally {
      await rm(join(dir, 'unicop-state.json'), { force: true });
    }
  }, 600_000);

  it('job_error: AWX cannot run the job (playbook missing) → failed/job_error, and a retry intent', async () => {
    // The AWX double, not real AWX: real AWX 24.6.1 refuses a job template whose playbook is not in
    // its project (POST /api/v2/job_templates/ → 400 "Playbook not found for project."), and a job
    // it cannot start for want of its execution environment's image ends `failed`, not `error`
    // (both asked of the stack's AWX); the double launches the template and ends the job `error`.
    const config = stackTemplates(back.targetDir);
    for (const template of config.job_templates) template.playbook = 'no-such-playbook.yml';
    const broken = await startTestDouble(config, { stepMs: 20 });
    try {
      const site = await createSite();
      const reconciler = createReconciler({
        plugin: back.plugin,
        awx: new AwxClient({ baseUrl: broken.url, token: broken.token, confirmDelayMs: 200 }),
        eventLog: back.eventLog,
        wakeups: pollingOnly,
        log: createLogger('failure-classes', 'silent'),
        options: testReconcilerOptions(uniqueName('worker')),
      });
      await reconciler.reconcile(reconcileJob(site.rootKey));

      const [run] = await back.plugin.listRuns(site.rootKey);
      expect(run).toMatchObject({ state: 'failed', outcome_class: 'job_error' });
      expect(run?.summary).toContain('not found');
      // A retry follows: the outcome says so, and a rollout does not count this attempt (decision 0061).
      expect(await outcomeOf(site.rootKey)).toMatchObject({
        state: 'failed',
        failureClass: 'job_error',
        retryScheduled: true,
      });
      const [retry] = await tail.waitFor(retryOf(site.rootKey));
      expect((retry?.value.data as { cause?: unknown } | undefined)?.cause).toMatchObject({
        kind: 'retry',
        retryOf: run?.run_id,
        attempt: 2,
      });
    } finally {
      await broken.stop();
    }
  }, 600_000);

  it('canceled: the AWX job is canceled outside UNICOP → canceled/canceled, terminal', async () => {
    const tenant = await createTenant(); // a workflow that waits on its approval node
    const running = back.reconciler().reconcile(reconcileJob(tenant.rootKey));
    const jobId = await eventually(
      async () => {
        const root = await back.plugin.findRoot(tenant.rootKey);
        return root?.status === 'awaiting_approval'
          ? (root.last_run as { awx_job_id: number }).awx_job_id
          : undefined;
      },
      'the run awaiting its approval',
      300_000,
    );
    await back.awx.client.cancelWorkflowJob(jobId);
    await running;

    const [run] = await back.plugin.listRuns(tenant.rootKey);
    expect(run).toMatchObject({ state: 'canceled', outcome_class: 'canceled', awx_job_id: jobId });
    expect(await outcomeOf(tenant.rootKey)).toMatchObject({ state: 'canceled', failureClass: 'canceled' });
    expect(await tail.settle(retryOf(tenant.rootKey), 1500)).toHaveLength(0);
  }, 600_000);
});
