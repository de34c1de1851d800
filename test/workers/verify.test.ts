/**
 * Post-run verification on the real stack (docs/decisions/0066): NetBox with the plugin, Kafka, and the
 * stack's real AWX 24.6.1 running the real site playbook (awx-playbooks/site.yml, whose `verify` tag reads
 * the target in check mode and asserts it holds what the snapshot renders under this run's fence record).
 * Each site gets `verify: {tags: verify}` through its own `unicop_policy` override (decision 0062), so the
 * stack's kinds stay as they are.
 *
 * - verification passes: the run ends `succeeded` with two AWX jobs recorded — the apply job and the verify
 *   job (job_tags `verify`, same run id) —, `run.verify_launched` audited, the verify job in the outcome;
 * - the site asks its verification to fail (`unicop:fail-verify` in its description): the apply job
 *   succeeds, the run ends `failed` / `verify_failed`, shown in NetBox (run summary, the anchor's journal),
 *   audited `run.failed` with the class, the outcome on `unicop.outcomes`, no retry;
 * - no `verify` in the policy: one AWX job, no verify job recorded;
 * - a prefix root (the prefix playbook's verify tasks read its zones back): passes, then — its
 *   description asking for it — fails `verify_failed`;
 * - the worker stops right after recording the verify job: the next holder adopts the run, follows that
 *   verify job to its end and launches nothing (still two jobs: the apply is never launched again);
 * - the worker stops after AWX started the verify job but before recording it: the next holder verifies
 *   against the apply job's own extra vars and its launch finds that job by run id and phase (adopted).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { PluginClient, type PluginRun, type RunWrite } from '../../core/plugin/client.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import {
  type BackHalf,
  createAnchor,
  journalOf,
  reconcileJob,
  startBackHalf,
} from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

const verifyByTags = { unicop_policy: { verify: { tags: 'verify' } } };

describe('post-run verification: a verify job after a successful apply job', () => {
  let back: BackHalf;
  let tail: TopicTail;
  const of = (key: string, topic: string) => (m: TailedMessage) => m.key === key && m.topic === topic;
  const action = (key: string, name: string) => (m: TailedMessage) =>
    of(key, topics.audit)(m) && (m.value.data as { action: string }).action === name;
  const runsOf = (rootKey: string): Promise<PluginRun[]> => back.plugin.listRuns(rootKey);
  const awxJob = async (id: number) => {
    const res = await fetch(`${back.awx.url}/api/v2/jobs/${id}/`, {
      headers: { authorization: `Bearer ${back.awx.token}` },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { job_tags: string; status: string; extra_vars: string };
  };

  beforeAll(async () => {
    // The override's custom field, made by the plugin's command (idempotent; unicop_bootstrap runs it too).
    execFileSync(join(repoRoot, 'scripts', 'stack.d', 'netbox.sh'), [
      'exec',
      'netbox',
      'unicop_policy_field',
    ]);
    back = await startBackHalf();
    tail = await TopicTail.start([topics.outcomes, topics.audit]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  /** A site of our own (`vf-…`), with the given description and custom fields. */
  async function site(description: string, customFields: Record<string, unknown> = {}) {
    const name = uniqueName('vf');
    return createAnchor('/api/dcim/sites/', 'site', {
      name,
      slug: name.toLowerCase(),
      status: 'active',
      description,
      custom_fields: customFields,
    });
  }

  it('verification passes: succeeded with two AWX jobs recorded, the verify job tagged verify', async () => {
    const s = await site('verified by its policy', verifyByTags);
    expect(s.root.policy).toMatchObject({ verify: { tags: 'verify' } });

    expect(await back.reconciler().reconcile(reconcileJob(s.rootKey))).toEqual({ kind: 'done' });

    const [run] = await runsOf(s.rootKey);
    expect(run).toMatchObject({ state: 'succeeded', outcome_class: '' });
    expect(run?.awx_job_id).toEqual(expect.any(Number));
    expect(run?.verify_job_id).toEqual(expect.any(Number));
    expect(run?.verify_job_id).not.toBe(run?.awx_job_id);
    expect(run?.summary).toContain(`verified: AWX job ${run?.verify_job_id} (verify) passed`);
    const jobs = await back.awx.jobsOf(s.rootKey);
    expect(jobs.map((j) => j.id).sort()).toEqual([run?.awx_job_id, run?.verify_job_id].sort());
    expect(jobs.every((j) => j.run_id === run?.run_id && j.status === 'successful')).toBe(true);
    const verifyJob = await awxJob(run?.verify_job_id as number);
    expect(verifyJob.job_tags).toBe('verify');
    expect(JSON.parse(verifyJob.extra_vars).unicop).toMatchObject({ run_id: run?.run_id, phase: 'verify' });
    expect((await awxJob(run?.awx_job_id as number)).job_tags).toBe('');

    const [launched] = await tail.waitFor(action(s.rootKey, 'run.verify_launched'));
    expect(launched?.value.data).toMatchObject({
      outcome: 'ok',
      correlation: { runId: run?.run_id, awxJobId: run?.awx_job_id, verifyJobId: run?.verify_job_id },
    });
    const [outcome] = await tail.waitFor(of(s.rootKey, topics.outcomes));
    expect(outcome?.value.data).toMatchObject({
      state: 'succeeded',
      failureClass: null,
      awxJobId: run?.awx_job_id,
      verifyJobId: run?.verify_job_id,
    });
  }, 600_000);

  it('verification fails: failed / verify_failed in NetBox, audited, on unicop.outcomes, no retry', async () => {
    const s = await site('unicop:fail-verify', verifyByTags);

    expect(await back.reconciler().reconcile(reconcileJob(s.rootKey))).toEqual({ kind: 'done' });

    const [run] = await runsOf(s.rootKey);
    expect(run).toMatchObject({ state: 'failed', outcome_class: 'verify_failed' });
    expect(run?.summary).toContain(`AWX job ${run?.awx_job_id} successful; verification failed`);
    // The apply job did its work and succeeded; its verify job is the one that failed.
    expect((await awxJob(run?.awx_job_id as number)).status).toBe('successful');
    expect((await awxJob(run?.verify_job_id as number)).status).toBe('failed');
    const journal = await journalOf('dcim.site', s.id);
    expect(journal[0]?.kind.value).toBe('danger');
    expect(journal[0]?.comments).toContain('**failed** (verify_failed)');
    expect(journal[0]?.comments).toContain(`verified by [AWX job ${run?.verify_job_id}]`);
    const root = await back.plugin.findRoot(s.rootKey);
    expect(root?.status).toBe('failed');

    const [audited] = await tail.waitFor(action(s.rootKey, 'run.failed'));
    expect(audited?.value.data).toMatchObject({
      outcome: 'failed',
      correlation: { runId: run?.run_id, failureClass: 'verify_failed', verifyJobId: run?.verify_job_id },
    });
    const [outcome] = await tail.waitFor(of(s.rootKey, topics.outcomes));
    expect(outcome?.value.data).toMatchObject({
      state: 'failed',
      failureClass: 'verify_failed',
      verifyJobId: run?.verify_job_id,
    });
    expect(outcome?.value.data).not.toHaveProperty('retryScheduled');
    expect(await runsOf(s.rootKey)).toHaveLength(1);
    expect(await back.awx.jobsOf(s.rootKey)).toHaveLength(2);
  }, 600_000);

  it('no verify in the policy: one AWX job, no verify job recorded', async () => {
    const s = await site('unicop:fail-verify (but not asked to verify)');
    expect(s.root.policy).toMatchObject({ verify: null });

    await back.reconciler().reconcile(reconcileJob(s.rootKey));

    const [run] = await runsOf(s.rootKey);
    expect(run).toMatchObject({ state: 'succeeded', verify_job_id: null });
    expect(await back.awx.jobsOf(s.rootKey)).toHaveLength(1);
    const [outcome] = await tail.waitFor(of(s.rootKey, topics.outcomes));
    expect(outcome?.value.data).not.toHaveProperty('verifyJobId');
  }, 600_000);

  it("a prefix root: its zones read back by the prefix playbook's verify tasks, then a verify that fails", async () => {
    const net = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
    const prefix = await createAnchor('/api/ipam/prefixes/', 'prefix', {
      prefix: `${net}.0/24`,
      description: 'verified by its policy',
      custom_fields: verifyByTags,
    });
    await netbox('POST', '/api/ipam/ip-addresses/', {
      address: `${net}.7/24`,
      dns_name: `${uniqueName('vf').toLowerCase()}.unicop.test`,
    });
    try {
      await back.reconciler().reconcile(reconcileJob(prefix.rootKey));
      const [run] = await runsOf(prefix.rootKey);
      expect(run).toMatchObject({ state: 'succeeded', outcome_class: '' });
      expect(run?.summary).toContain(`verified: AWX job ${run?.verify_job_id} (verify) passed`);
      expect((await awxJob(run?.verify_job_id as number)).job_tags).toBe('verify');

      await netbox('PATCH', `/api/ipam/prefixes/${prefix.id}/`, { description: 'unicop:fail-verify' });
      await back.reconciler().reconcile(reconcileJob(prefix.rootKey));
      const [second] = await runsOf(prefix.rootKey);
      expect(second).toMatchObject({ state: 'failed', outcome_class: 'verify_failed' });
      expect(await back.awx.jobsOf(prefix.rootKey)).toHaveLength(4);
    } finally {
      await netbox('DELETE', `/api/ipam/prefixes/${prefix.id}/`).catch(() => undefined);
    }
  }, 600_000);

  it('a worker stopping right after recording the verify job: the next holder follows it, launches nothing', async () => {
    const s = await site('verified after a crash', verifyByTags);
    /** The first worker's NetBox client: its write recording the verify job lands, then the worker "dies". */
    class StopsAfterVerifyRecorded extends PluginClient {
      override async writeRun(runId: string, write: RunWrite) {
        const written = await super.writeRun(runId, write);
        if (write.verify_job_id) throw new Error('worker stopped (test): the verify job is recorded');
        return written;
      }
    }
    const dying = new StopsAfterVerifyRecorded({
      baseUrl: stack.netboxUrl(),
      token: stack.netboxToken(),
      timeoutMs: 10_000,
    });
    await expect(back.reconciler({}, { plugin: dying }).reconcile(reconcileJob(s.rootKey))).rejects.toThrow(
      'worker stopped (test)',
    );
    const [left] = await runsOf(s.rootKey);
    expect(left?.verify_job_id).toEqual(expect.any(Number));
    expect(['launched', 'running']).toContain(left?.state);

    await back.reconciler().reconcile(reconcileJob(s.rootKey));

    const runs = await runsOf(s.rootKey);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      run_id: left?.run_id,
      state: 'succeeded',
      awx_job_id: left?.awx_job_id,
      verify_job_id: left?.verify_job_id,
    });
    expect((await back.awx.jobsOf(s.rootKey)).map((j) => j.id).sort()).toEqual(
      [left?.awx_job_id, left?.verify_job_id].sort(),
    );
    await tail.waitFor(action(s.rootKey, 'run.adopted'));
    // The apply launched once; the dying worker stopped before its verify audit, the adopter launched nothing.
    expect(tail.messages.filter(action(s.rootKey, 'run.launched'))).toHaveLength(1);
    expect(tail.messages.filter(action(s.rootKey, 'run.verify_launched'))).toHaveLength(0);
  }, 600_000);

  it('a worker stopping after the verify launch, before recording it: the next holder finds that job by run id and phase', async () => {
    const s = await site('verified after a lost record', verifyByTags);
    /** The first worker's NetBox client: the write that would record the verify job never lands. */
    class StopsBeforeVerifyRecorded extends PluginClient {
      override async writeRun(runId: string, write: RunWrite) {
        if (write.verify_job_id)
          throw new Error('worker stopped (test): the verify job is launched, not recorded');
        return super.writeRun(runId, write);
      }
    }
    const dying = new StopsBeforeVerifyRecorded({
      baseUrl: stack.netboxUrl(),
      token: stack.netboxToken(),
      timeoutMs: 10_000,
    });
    await expect(back.reconciler({}, { plugin: dying }).reconcile(reconcileJob(s.rootKey))).rejects.toThrow(
      'worker stopped (test)',
    );
    const [left] = await runsOf(s.rootKey);
    expect(left).toMatchObject({ verify_job_id: null });
    const launched = await back.awx.jobsOf(s.rootKey);
    expect(launched).toHaveLength(2); // the apply job and the verify job AWX started

    // The adopter verifies against the apply job's own extra vars (it read no snapshot) and its launch
    // finds the verify job already carrying the run id and phase: adopted, not launched again.
    await back.reconciler().reconcile(reconcileJob(s.rootKey));

    const runs = await runsOf(s.rootKey);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ run_id: left?.run_id, state: 'succeeded', awx_job_id: left?.awx_job_id });
    const jobs = await back.awx.jobsOf(s.rootKey);
    expect(jobs.map((j) => j.id).sort()).toEqual(launched.map((j) => j.id).sort());
    expect(runs[0]?.verify_job_id).toBe(jobs.find((j) => j.id !== left?.awx_job_id)?.id);
    expect(
      runs[0]?.log_lines?.some((l) => l.message.includes('an earlier attempt of this run had launched it')),
    ).toBe(true);
  }, 600_000);
});
