/**
 * The reconciler against the real services: NetBox with the plugin (leases, snapshots, run records,
 * journal), Kafka (outcomes, audit, retry intents) and the stack's real AWX 24.6.1 (its jobs run
 * the real playbooks in execution-environment containers: each takes tens of seconds, so the caps
 * below are generous; they are caps, not budgets).
 * Covers: one change → one launch with `extra_vars.unicop` → succeeded, written to NetBox (run,
 * journal entry on the anchor, root in sync) and Kafka, lease released; the same hash again →
 * skipped, nothing launched; ignored extra_vars → template_misconfigured, never success; AWX down →
 * executor_unavailable with a visible retry intent; approvals approved, denied and expired (AWX's
 * own approval timeout, shortened on the template for the test); a change window
 * that is closed → the run waits visibly and continues in the window; the run timeout → AWX job
 * canceled → timed_out; a global freeze set at the admin API (unicop.control) holds a job in a
 * real BullMQ queue until resume; a frozen root is parked; the NetBox token, the AWX token and the
 * webhook secret appear nowhere in what one root's way through bridge, resolver and reconciler
 * wrote (events, runs, journal, logs), read after the runs.
 */
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwxClient } from '../../core/awx/index.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import type { PluginRun } from '../../core/plugin/client.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { pollingOnly } from '../../workers/reconciler/awx-notifications.js';
import { createReconciler, type Reconciler } from '../../workers/reconciler/reconcile.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { GlobalSwitch, startControlView, untilGlobal } from '../support/freeze.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { startFrontHalf } from '../support/pipeline.js';
import {
  type BackHalf,
  createAnchor,
  createSite,
  createTenant,
  eventually,
  journalOf,
  reconcileJob,
  startBackHalf,
  testReconcilerOptions,
} from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

function lineSink(lines: string[]): Writable {
  return new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
}

describe('reconciler: one root, one run, AWX, outcome', () => {
  let back: BackHalf;
  let tail: TopicTail;
  const byRoot = (key: string, topic: string) => (m: { key: string | null; topic: string }) =>
    m.key === key && m.topic === topic;

  beforeAll(async () => {
    back = await startBackHalf();
    tail = await TopicTail.start([topics.outcomes, topics.audit, topics.intents, topics.changes]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  async function runsOf(rootKey: string): Promise<PluginRun[]> {
    return back.plugin.listRuns(rootKey);
  }

  it('launches once with the snapshot, records success in NetBox and Kafka, then skips the same hash', async () => {
    const site = await createSite();
    const result = await back.reconciler().reconcile(reconcileJob(site.rootKey));
    expect(result).toEqual({ kind: 'done' });

    const [run] = await runsOf(site.rootKey);
    expect(run?.state).toBe('succeeded');
    expect(run?.awx_job_id).toBeGreaterThan(0);
    const snapshot = await back.plugin.snapshot(site.root.id);
    expect(run?.snapshot_hash).toBe(snapshot.hash);

    const jobs = await back.awx.jobsOf(site.rootKey);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.run_id).toBe(run?.run_id);
    const launched = await back.awx.client.getJob(run?.awx_job_id as number);
    const vars = JSON.parse(String(launched.extra_vars)) as { unicop: Record<string, unknown> };
    expect(vars.unicop).toMatchObject({ root: site.rootKey, hash: snapshot.hash, run_id: run?.run_id });
    expect(vars.unicop.snapshot).toEqual(snapshot.snapshot);
    expect(typeof vars.unicop.fencing_token).toBe('number');

    const root = await back.plugin.findRoot(site.rootKey);
    expect(root?.last_reconciled_hash).toBe(snapshot.hash);
    expect(root?.status).toBe('in_sync');
    expect((root?.lease as { live: boolean } | undefined)?.live).toBe(false);

    const journal = await journalOf('dcim.site', site.id);
    expect(journal).toHaveLength(1);
    expect(journal[0]?.kind.value).toBe('success');
    expect(journal[0]?.comments).toContain(`/#/jobs/playbook/${run?.awx_job_id}/output`);

    const [outcome] = await tail.waitFor(byRoot(site.rootKey, topics.outcomes));
    expect(outcome?.value.data).toMatchObject({ runId: run?.run_id, state: 'succeeded', failureClass: null });
    await tail.waitFor(
      (m) =>
        byRoot(site.rootKey, topics.audit)(m) &&
        (m.value.data as { action: string }).action === 'lease.released',
    );
    const actions = tail.messages
      .filter(byRoot(site.rootKey, topics.audit))
      .map((m) => (m.value.data as { action: string }).action);
    expect(actions).toEqual([
      'lease.acquired',
      'run.leased',
      'run.launched',
      ...actions.slice(3, -2),
      'run.succeeded',
      'lease.released',
    ]);

    // Same snapshot again: a skipped run, no second AWX job.
    await back.reconciler().reconcile(reconcileJob(site.rootKey));
    const runs = await runsOf(site.rootKey);
    expect(runs.map((r) => r.state)).toEqual(['skipped', 'succeeded']);
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(1);
  }, 600_000);

  it('a member change makes a new run at the new hash; a manual reconcile runs even at the same hash', async () => {
    const site = await createSite();
    await back.reconciler().reconcile(reconcileJob(site.rootKey));
    const before = (await back.plugin.snapshot(site.root.id)).hash;
    await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description: 'changed by the test' });
    await back.reconciler().reconcile(reconcileJob(site.rootKey));
    const runs = await runsOf(site.rootKey);
    expect(runs.map((r) => r.state)).toEqual(['succeeded', 'succeeded']);
    expect(runs[0]?.snapshot_hash).not.toBe(before);
    await back.reconciler().reconcile(reconcileJob(site.rootKey, 'manual'));
    expect((await runsOf(site.rootKey))[0]?.state).toBe('succeeded');
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(3);
  }, 600_000);

  it('a drift flagged by the last run is not skipped at the same hash', async () => {
    const site = await createSite();
    await back.reconciler().reconcile(reconcileJob(site.rootKey));
    const { hash } = await back.plugin.snapshot(site.root.id);
    // A check-mode run found the target differing (what a drift check records). It goes through
    // the states the plugin allows (a run is never created as succeeded: answered 409).
    const { token } = await back.plugin.acquireLease(site.root.id, 'drift-check', 30);
    const driftRunId = uniqueName('drift-check');
    await expect(
      back.plugin.createRun({
        run_id: driftRunId,
        root: site.rootKey,
        snapshot_hash: hash,
        cause: 'sweep',
        fencing_token: token,
        state: 'succeeded',
      }),
    ).rejects.toMatchObject({ status: 409, body: { state: null, allowed: ['queued', 'leased', 'skipped'] } });
    await back.plugin.createRun({
      run_id: driftRunId,
      root: site.rootKey,
      snapshot_hash: hash,
      cause: 'sweep',
      fencing_token: token,
      state: 'leased',
    });
    for (const state of ['launched', 'running'] as const) {
      await back.plugin.updateRun(driftRunId, { fencing_token: token, state });
    }
    await back.plugin.updateRun(driftRunId, {
      fencing_token: token,
      state: 'succeeded',
      outcome_class: 'drift',
      summary: 'check mode: target differs',
    });
    await back.plugin.releaseLease(site.root.id, token);
    expect((await back.plugin.findRoot(site.rootKey))?.status).toBe('drifted');
    await back.reconciler().reconcile(reconcileJob(site.rootKey));
    const [run] = await runsOf(site.rootKey);
    expect(run).toMatchObject({ state: 'succeeded', snapshot_hash: hash });
    expect(run?.awx_job_id).toBeGreaterThan(0);
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(2);
  }, 600_000);

  it('refuses success when AWX ignores extra_vars: template_misconfigured, terminal', async () => {
    const ignoring = await startBackHalf({ siteIgnoresVariables: true });
    try {
      const site = await createSite();
      await ignoring.reconciler().reconcile(reconcileJob(site.rootKey));
      const [run] = await runsOf(site.rootKey);
      expect(run).toMatchObject({ state: 'failed', outcome_class: 'template_misconfigured' });
      const [outcome] = await tail.waitFor(byRoot(site.rootKey, topics.outcomes));
      expect(outcome?.value.data).toMatchObject({ state: 'failed', failureClass: 'template_misconfigured' });
      // Terminal: no retry intent.
      const retries = await tail.settle((m) => byRoot(site.rootKey, topics.intents)(m), 1000);
      expect(retries).toHaveLength(0);
      expect((await journalOf('dcim.site', site.id))[0]?.kind.value).toBe('danger');
    } finally {
      await ignoring.stop();
    }
  }, 600_000);

  it('AWX unreachable: executor_unavailable, and a retry intent with a backoff, visible on the log', async () => {
    const site = await createSite();
    const down = createReconciler({
      plugin: back.plugin,
      awx: new AwxClient({ baseUrl: 'http://127.0.0.1:9', token: 'unused-token-value' }),
      eventLog: back.eventLog,
      wakeups: pollingOnly,
      log: createLogger('t', 'silent'),
      options: testReconcilerOptions(uniqueName('worker')),
    });
    await down.reconcile(reconcileJob(site.rootKey));
    const [run] = await runsOf(site.rootKey);
    expect(run).toMatchObject({ state: 'failed', outcome_class: 'executor_unavailable' });
    const [retry] = await tail.waitFor(byRoot(site.rootKey, topics.intents));
    if (!retry) throw new Error('no retry intent');
    const cause = (retry.value.data as { cause: Record<string, unknown> }).cause;
    expect(cause).toMatchObject({ kind: 'retry', retryOf: run?.run_id, attempt: 2 });
    expect(Date.parse(String(cause.notBefore))).toBeGreaterThan(Date.now() - 1000);

    // The retry, once AWX is back, is a new run that succeeds.
    const job = { ...reconcileJob(site.rootKey, 'retry'), cause: cause as never };
    // Before its notBefore (a clock set just before it: on a loaded machine the wall clock may
    // already be past it) the retry comes back then, touching nothing.
    const notBefore = new Date(String(cause.notBefore));
    const early = await back
      .reconciler({}, { now: () => new Date(notBefore.getTime() - 500) })
      .reconcile(job);
    expect(early).toMatchObject({ kind: 'later', at: notBefore });
    expect(await runsOf(site.rootKey)).toHaveLength(1);
    await new Promise((r) =>
      setTimeout(r, Math.max(0, Date.parse(String(cause.notBefore)) - Date.now() + 50)),
    );
    await back.reconciler().reconcile(job);
    const runs = await runsOf(site.rootKey);
    expect(runs.map((r) => [r.state, r.cause])).toEqual([
      ['succeeded', 'retry'],
      ['failed', 'change'],
    ]);
  }, 600_000);

  it('approval: the run waits in awaiting_approval (visible in NetBox), then approved → succeeded', async () => {
    const tenant = await createTenant();
    const running = back.reconciler().reconcile(reconcileJob(tenant.rootKey));
    const waiting = await eventually(
      async () => {
        const root = await back.plugin.findRoot(tenant.rootKey);
        return root?.status === 'awaiting_approval' ? root : undefined;
      },
      'root awaiting approval',
      300_000,
    );
    expect((waiting.last_run as { state: string }).state).toBe('awaiting_approval');
    const jobId = (waiting.last_run as { awx_job_id: number }).awx_job_id;
    const pending = (await back.awx.client.approvalsOfWorkflowJob(jobId)).find((a) => a.status === 'pending');
    expect(pending).toBeDefined();
    await back.awx.client.approve(pending?.id as number);
    await running;
    const [run] = await runsOf(tenant.rootKey);
    expect(run).toMatchObject({ state: 'succeeded', awx_job_type: 'workflow' });
    // Read once the run's last audit event is in (the tail trails the run by a moment).
    await tail.waitFor(
      (m) =>
        byRoot(tenant.rootKey, topics.audit)(m) &&
        (m.value.data as { action: string }).action === 'lease.released',
    );
    const actions = tail.messages
      .filter(byRoot(tenant.rootKey, topics.audit))
      .map((m) => (m.value.data as { action: string }).action);
    expect(actions).toContain('approval.requested');
    expect(actions).toContain('approval.given');
  }, 600_000);

  it('approval denied → denied (terminal, warning in the journal)', async () => {
    const tenant = await createTenant();
    const running = back.reconciler().reconcile(reconcileJob(tenant.rootKey));
    // Waits on NetBox (the root shows the question), then asks AWX once: real AWX is polled gently.
    const waiting = await eventually(
      async () => {
        const root = await back.plugin.findRoot(tenant.rootKey);
        return root?.status === 'awaiting_approval' ? root : undefined;
      },
      'root awaiting approval',
      300_000,
    );
    const jobId = (waiting.last_run as { awx_job_id: number }).awx_job_id;
    const approval = (await back.awx.client.approvalsOfWorkflowJob(jobId)).find(
      (a) => a.status === 'pending',
    );
    if (!approval) throw new Error(`workflow job ${jobId} has no pending approval`);
    await back.awx.client.deny(approval.id as number);
    await running;
    const [run] = await runsOf(tenant.rootKey);
    expect(run).toMatchObject({
      state: 'denied',
      outcome_class: 'denied',
      summary: 'approval "Approve site change" denied',
    });
    expect((await journalOf('tenancy.tenant', tenant.id))[0]?.kind.value).toBe('warning');
  }, 600_000);

  it('change window closed: the run waits visibly (queued, audited), then runs inside the window', async () => {
    const name = uniqueName('loc');
    const site = await createSite();
    const location = await createAnchor('/api/dcim/locations/', 'location', {
      name,
      slug: name.toLowerCase(),
      site: site.id,
    });
    let clock = new Date('2026-11-23T12:00:00Z'); // the stack's location window is 02:00–03:00 UTC
    const reconciler = back.reconciler({}, { now: () => clock });
    const first = await reconciler.reconcile(reconcileJob(location.rootKey));
    expect(first).toMatchObject({ kind: 'later', at: new Date('2026-11-24T02:00:00Z') });
    const [waiting] = await runsOf(location.rootKey);
    expect(waiting?.state).toBe('queued');
    expect(waiting?.summary).toContain('change window');
    expect(await back.awx.jobsOf(location.rootKey)).toHaveLength(0);

    clock = new Date('2026-11-24T02:10:00Z');
    await reconciler.reconcile(reconcileJob(location.rootKey));
    const runs = await runsOf(location.rootKey);
    expect(runs).toHaveLength(1); // the same run continued, not a second one
    expect(runs[0]).toMatchObject({ run_id: waiting?.run_id, state: 'succeeded' });
  }, 600_000);

  it('run timeout: the AWX job is canceled and the run ends timed_out', async () => {
    const tenant = await createTenant(); // a workflow that waits on its approval: it outlives the timeout
    let clock = new Date();
    const reconciler = back.reconciler({}, { now: () => clock });
    const running = reconciler.reconcile(reconcileJob(tenant.rootKey));
    const jobId = await eventually(
      async () => {
        const root = await back.plugin.findRoot(tenant.rootKey);
        return root?.status === 'awaiting_approval'
          ? (root.last_run as { awx_job_id: number }).awx_job_id
          : undefined;
      },
      'awaiting approval',
      300_000,
    );
    clock = new Date(Date.now() + 2 * 3600_000); // past the tenant kind's run_timeout_seconds (3600)
    await running;
    const [run] = await runsOf(tenant.rootKey);
    expect(run).toMatchObject({ state: 'timed_out', outcome_class: 'timed_out' });
    expect((await back.awx.client.getWorkflowJob(jobId)).status).toBe('canceled');
  }, 600_000);

  it('an approval that expires in AWX ends the run timed_out', async () => {
    const expiring = await startBackHalf({ approvalTimeoutSeconds: 2 });
    try {
      const tenant = await createTenant();
      await expiring.reconciler().reconcile(reconcileJob(tenant.rootKey));
      const [run] = await runsOf(tenant.rootKey);
      expect(run).toMatchObject({ state: 'timed_out', outcome_class: 'timed_out' });
      expect(run?.summary).toBe('approval "Approve site change" expired');
    } finally {
      await expiring.stop();
    }
  }, 600_000);

  it('a global freeze set at the admin API holds a queued job in the BullMQ queue (nothing launched); after resume it runs', async () => {
    const site = await createSite();
    const log = createLogger('t', 'silent');
    // As a workers process: a freeze view replaying unicop.control, a reconcile worker on a queue.
    const freezeView = await startControlView(back.kafka, log);
    const queueName = uniqueName('reconcile-freeze');
    const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: stack.redisUrl() } });
    const worker = startReconcileWorker(
      back.reconciler({}, { freezeView }),
      { redisUrl: stack.redisUrl(), concurrency: 1, queueName },
      log,
    );
    const global = await GlobalSwitch.start();
    const reason = uniqueName('reconciler freeze test');
    const stateOf = async (id: string) => (await queue.getJob(id))?.getState();
    // This test's job is a manual reconcile, the root's only one. On the shared stack another
    // file's front half may make its own 'change' run of the new site (seen 2026-12-01, queued
    // just before the freeze); those runs and their AWX jobs are not this job's. CI runs one file
    // at a time, so there none come.
    const ownRuns = async () => (await runsOf(site.rootKey)).filter((r) => r.cause === 'manual');
    const launches = async () => {
      const foreign = new Set(
        (await runsOf(site.rootKey)).filter((r) => r.cause !== 'manual').map((r) => r.run_id),
      );
      return (await back.awx.jobsOf(site.rootKey)).filter((j) => !foreign.has(j.run_id ?? '')).length;
    };
    try {
      await global.freeze(reason); // POST /freeze → unicop.control → the worker's freeze view
      await untilGlobal(freezeView, true, reason);
      const job = reconcileJob(site.rootKey, 'manual');
      await queue.add('reconcile', job, { jobId: job.intentId });
      // The worker took the job and put it back: delayed, still in the queue.
      await eventually(
        async () =>
          ((await queue.getJob(job.intentId))?.processedOn && (await stateOf(job.intentId)) === 'delayed') ||
          undefined,
        'the job taken and put back while frozen',
        60_000,
      );
      await new Promise((r) => setTimeout(r, 3000));
      expect(await stateOf(job.intentId)).toBe('delayed');
      expect(await ownRuns()).toHaveLength(0);
      expect(await launches()).toBe(0);

      await global.resume(`${reason} over`);
      await untilGlobal(freezeView, false, `${reason} over`);
      await eventually(
        async () => (await stateOf(job.intentId)) === 'completed' || undefined,
        'the job run after resume',
        300_000,
      );
      expect((await ownRuns()).map((r) => r.state)).toEqual(['succeeded']);
      expect(await launches()).toBe(1);
    } finally {
      await global.close(); // resumes if the test left automation frozen
      await worker.close();
      await freezeView.stop();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  }, 600_000);

  it('a frozen root is parked: no lease, no run, an audit event saying why', async () => {
    const site = await createSite();
    await back.plugin.setFrozen(site.root.id, true, 'maintenance by the test');
    try {
      const result = await back.reconciler().reconcile(reconcileJob(site.rootKey));
      expect(result).toEqual({ kind: 'done' });
      expect(await runsOf(site.rootKey)).toHaveLength(0);
      const [parked] = await tail.waitFor(
        (m) =>
          byRoot(site.rootKey, topics.audit)(m) &&
          (m.value.data as { action: string }).action === 'intent.parked',
      );
      expect((parked?.value.data as { reason?: string } | undefined)?.reason).toContain(
        'maintenance by the test',
      );
    } finally {
      await back.plugin.setFrozen(site.root.id, false, 'test done');
    }
  });

  it('writes no secret into runs, journal entries, events or logs', async () => {
    // The whole way of one root: NetBox's signed webhook → bridge → resolver → intent → reconciler
    // (a run that fails on AWX unreachable, with the real AWX token, then one that succeeds).
    const front = await startFrontHalf(['dcim.site']);
    const lines: string[] = [];
    const log = createLogger('reconciler', 'debug', lineSink(lines));
    try {
      const site = await createSite();
      const [intent] = await tail.waitFor(byRoot(site.rootKey, topics.intents), 1, 60_000);
      const job = { ...reconcileJob(site.rootKey), ...(intent?.value.data as ReconcileJobData) };
      const unreachable = createReconciler({
        plugin: back.plugin,
        awx: new AwxClient({ baseUrl: 'http://127.0.0.1:9', token: back.awx.token }),
        eventLog: back.eventLog,
        wakeups: pollingOnly,
        log,
        options: testReconcilerOptions(uniqueName('worker')),
      });
      // (Another test's dispatcher on the shared stack may hold the root's lease for a moment.)
      const untilDone = async (reconciler: Reconciler, data: ReconcileJobData) => {
        while ((await reconciler.reconcile(data)).kind === 'later')
          await new Promise((r) => setTimeout(r, 500));
      };
      await untilDone(unreachable, job);
      await untilDone(back.reconciler({}, { log }), reconcileJob(site.rootKey, 'manual'));

      // Captured after the act: the root's events, its runs and journal, every log line.
      const released = (m: TailedMessage) =>
        byRoot(site.rootKey, topics.audit)(m) &&
        (m.value.data as { action: string }).action === 'lease.released';
      await tail.waitFor(released, 2);
      await tail.waitFor(byRoot(site.rootKey, topics.outcomes), 2);
      await tail.waitFor(byRoot(site.rootKey, topics.intents), 2); // the change's, the retry
      const changeKey = `dcim.site:${site.id}`;
      const events = tail.messages.filter((m) => m.key === site.rootKey || m.key === changeKey);
      const runs = await runsOf(site.rootKey);
      const journal = await journalOf('dcim.site', site.id);
      expect(runs.map((r) => `${r.state} ${r.outcome_class || ''}`.trim())).toEqual(
        expect.arrayContaining(['succeeded', 'failed executor_unavailable']),
      );
      expect(journal.length).toBeGreaterThanOrEqual(2);
      expect(events.filter((m) => m.topic === topics.changes).length).toBeGreaterThan(0);
      const logs = [...lines, ...front.bridge.logs, ...front.resolverLogs];
      expect(front.bridge.logs.join('')).toContain('change accepted'); // (the reconciler logs little)
      const written = JSON.stringify({ events, runs, journal, logs });
      const secrets = { netbox: stack.netboxToken(), awx: back.awx.token, webhook: front.secret };
      for (const [what, secret] of Object.entries(secrets)) {
        expect(secret.length, what).toBeGreaterThan(8);
        expect(written.includes(secret), `the ${what} secret was written`).toBe(false);
      }
    } finally {
      await front.stop();
    }
  }, 600_000);
});
