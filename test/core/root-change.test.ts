/**
 * Where a root's newest change is held (core/status/root-change.ts locateRootChange), by table from
 * readings made up here — the root as the plugin lists it, its job in the reconcile queue, its open
 * run's AWX status, the stages before the queue — and (second part) the reading of a root's job on
 * the real Redis (core/status/readings.ts reconcileJobOfRoot): its place in BullMQ's order (wait
 * list, then prioritized), a delayed job's due time, and a newer intent kept behind an active job.
 */
import { Queue, Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import type { PluginRoot } from '../../core/plugin/client.js';
import { reconcileJobOfRoot } from '../../core/status/readings.js';
import {
  locateRootChange,
  type RootChangeReadings,
  type UpstreamReading,
} from '../../core/status/root-change.js';
import {
  type ReconcileJobData,
  reconcileJobName,
  reconcileJobOptions,
} from '../../workers/reconcile-queue.js';
import { reconcileJob } from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

const now = new Date('2026-12-02T02:00:00Z');
const hashA = 'a'.repeat(64);
const hashB = 'b'.repeat(64);

type Run = NonNullable<PluginRoot['last_run']>;
const run = (fields: Partial<Run>): Run =>
  ({
    id: 1,
    run_id: 'run-1',
    state: 'succeeded',
    fencing_token: 4,
    snapshot_hash: hashA,
    cause: 'change',
    started: '2026-12-02T01:59:00Z',
    finished: null,
    awx_job_type: 'job',
    awx_job_id: null,
    outcome_class: '',
    ...fields,
  }) as Run;

const root = (fields: Partial<PluginRoot> = {}): PluginRoot =>
  ({
    id: 7,
    key: 'site/7',
    kind: 'site',
    status: 'in_sync',
    frozen: false,
    frozen_reason: '',
    current_hash: hashA,
    last_reconciled_hash: hashA,
    last_run: run({}),
    lease: { live: false, holder: null, token: null, expires_at: null, highest_token: 4 },
    ...fields,
  }) as PluginRoot;

const clear = (stage: string): UpstreamReading => ({ stage, state: 'clear', summary: 'clear', figures: {} });
const upstreamClear = [clear('netbox'), clear('resolver'), clear('dispatcher')];
const readings = (fields: Partial<RootChangeReadings>): RootChangeReadings => ({
  rootKey: 'site/7',
  root: root(),
  job: null,
  awxStatus: null,
  upstream: upstreamClear,
  now,
  ...fields,
});
const job = (fields: Partial<Exclude<RootChangeReadings['job'], Error | null>>) => ({
  jobId: 'intent-9',
  state: 'prioritized',
  intentId: 'intent-9',
  ahead: 3,
  dueAt: null,
  nextIntentId: null,
  ...fields,
});
const leaseHeld = {
  live: true,
  holder: 'vm:1 q:abc',
  token: 5,
  expires_at: '2026-12-02T02:00:30Z',
  highest_token: 5,
};

describe('locateRootChange: where the newest change of a root is', () => {
  const cases: [
    string,
    Partial<RootChangeReadings>,
    { stage: string | null; reason: string; text: RegExp },
  ][] = [
    ['in step, nothing queued: reconciled', {}, { stage: null, reason: 'reconciled', text: /^reconciled/ }],
    [
      'its job prioritized with 3 ahead: the reconcile queue',
      { root: root({ current_hash: hashB }), job: job({}) },
      { stage: 'reconcile-queue', reason: 'waiting-for-worker', text: /intent-9 waits .* 3 job\(s\) ahead/ },
    ],
    [
      'its job waiting (a queued job is pending even with the hash in step)',
      { job: job({ state: 'waiting', ahead: 0 }) },
      { stage: 'reconcile-queue', reason: 'waiting-for-worker', text: /0 job\(s\) ahead/ },
    ],
    [
      'its job delayed while another holds the lease',
      {
        root: root({ current_hash: hashB, lease: leaseHeld }),
        job: job({ state: 'delayed', ahead: null, dueAt: new Date('2026-12-02T02:00:20Z') }),
      },
      {
        stage: 'reconcile-queue',
        reason: 'delayed',
        text: /until 2026-12-02T02:00:20.000Z \(in 20 s\): lease held by vm:1 q:abc/,
      },
    ],
    [
      'frozen: the root, whatever else waits',
      { root: root({ current_hash: hashB, frozen: true, frozen_reason: 'change freeze' }), job: job({}) },
      { stage: 'root', reason: 'frozen', text: /frozen \(change freeze\)/ },
    ],
    [
      'held in a rollout wave not opened yet: the rollout named, whatever else waits',
      {
        root: root({ current_hash: hashB, status: 'held' }),
        job: job({}),
        heldBy: { rolloutId: 'req-1', state: 'halted', wave: 3, currentWave: 2, waves: 3 },
      },
      {
        stage: 'root',
        reason: 'rollout-held',
        text: /held by rollout req-1 \(wave 3 of 3, the rollout at wave 2, halted: .*unicop rollout show req-1/,
      },
    ],
    [
      'held, the rollout unread: the listing to look it up in',
      { root: root({ current_hash: hashB, status: 'held' }), heldBy: new Error('NetBox answered 503') },
      {
        stage: 'root',
        reason: 'rollout-held',
        text: /live rollout \(which one could not be read: NetBox answered 503\).*unicop rollout list.*rollouts\/\?root=site\/7/,
      },
    ],
    [
      'an open run awaiting approval',
      {
        root: root({
          current_hash: hashB,
          last_run: run({ state: 'awaiting_approval', awx_job_type: 'workflow', awx_job_id: 88 }),
        }),
        job: job({ state: 'active', ahead: null }),
      },
      { stage: 'awx', reason: 'awaiting-approval', text: /awaits approval in AWX \(workflow job 88\)/ },
    ],
    [
      'an open run whose AWX job is pending, a newer intent behind the active job',
      {
        root: root({
          current_hash: hashB,
          lease: leaseHeld,
          last_run: run({ state: 'launched', awx_job_id: 91 }),
        }),
        job: job({ state: 'active', ahead: null, nextIntentId: 'intent-10' }),
        awxStatus: 'pending',
      },
      { stage: 'awx', reason: 'awx-pending', text: /job 91 is pending.*a newer intent \(intent-10\) waits/ },
    ],
    [
      'an open run whose AWX job runs',
      {
        root: root({
          current_hash: hashB,
          lease: leaseHeld,
          last_run: run({ state: 'running', awx_job_id: 91 }),
        }),
        awxStatus: 'running',
      },
      { stage: 'awx', reason: 'awx-running', text: /job 91 is running since 60 s/ },
    ],
    [
      'an open run before its launch: the lease',
      { root: root({ current_hash: hashB, lease: leaseHeld, last_run: run({ state: 'leased' }) }) },
      { stage: 'root', reason: 'lease-held', text: /run-1 is leased .*lease held by vm:1 q:abc \(token 5\)/ },
    ],
    [
      'no job of this queue, the lease held by another',
      { root: root({ current_hash: hashB, lease: leaseHeld }) },
      { stage: 'root', reason: 'lease-held', text: /lease held by vm:1 q:abc/ },
    ],
    [
      'the last run of this state failed: nothing retries it',
      {
        root: root({
          current_hash: hashB,
          last_run: run({ state: 'failed', snapshot_hash: hashB, outcome_class: 'executor_unavailable' }),
        }),
      },
      { stage: 'root', reason: 'last-run-failed', text: /ended failed \(executor_unavailable\)/ },
    ],
    [
      "not queued, the dispatcher's group lags: upstream",
      {
        root: root({ current_hash: hashB }),
        upstream: [
          clear('netbox'),
          clear('resolver'),
          {
            stage: 'dispatcher',
            state: 'holding',
            summary: 'group g has 12 record(s)',
            figures: { lag: 12 },
          },
        ],
      },
      { stage: 'dispatcher', reason: 'upstream', text: /must pass dispatcher: group g has 12 record/ },
    ],
    [
      "not queued, NetBox's queue holds jobs: the first holding stage",
      {
        root: root({ current_hash: hashB }),
        upstream: [
          { stage: 'netbox', state: 'holding', summary: '3000 background job(s)', figures: {} },
          clear('resolver'),
          { stage: 'dispatcher', state: 'holding', summary: 'lag', figures: {} },
        ],
      },
      { stage: 'netbox', reason: 'upstream', text: /must pass netbox: 3000 background/ },
    ],
    [
      'the hash in step but stale (a change not hashed yet): not reconciled',
      { root: root({ hash_stale: true } as Partial<PluginRoot>) },
      { stage: 'bridge', reason: 'not-received', text: /stale: a change not hashed yet/ },
    ],
    [
      'not queued and nothing holds it: it never reached UNICOP',
      { root: root({ current_hash: hashB }) },
      { stage: 'bridge', reason: 'not-received', text: /did not reach UNICOP/ },
    ],
    [
      'the queue could not be read: not called reconciled',
      { job: new Error('connect ECONNREFUSED') },
      {
        stage: null,
        reason: 'unknown',
        text: /in step .* whether a job waits is not known \(the reconcile queue could not be read: connect ECONNREFUSED\)/,
      },
    ],
    [
      'changed, the queue unreadable, nothing upstream: unknown, not "never received"',
      { root: root({ current_hash: hashB }), job: new Error('no answer within 10 s') },
      { stage: null, reason: 'unknown', text: /not queued, and reconcile-queue could not be read/ },
    ],
    ['no such root', { root: null }, { stage: null, reason: 'unknown', text: /NetBox has no root site\/7/ }],
  ];
  for (const [name, given, expected] of cases) {
    it(name, () => {
      const change = locateRootChange(readings(given));
      expect({ stage: change.stage, reason: change.reason }).toEqual({
        stage: expected.stage,
        reason: expected.reason,
      });
      expect(change.reconciled).toBe(expected.reason === 'reconciled');
      expect(change.summary).toMatch(expected.text);
    });
  }
});

describe("reconcileJobOfRoot: a root's job in the real reconcile queue (Redis)", () => {
  const queueName = uniqueName('root-job');
  const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: stack.redisUrl() } });
  const add = (data: ReconcileJobData, extra: Record<string, unknown> = {}) =>
    queue.add(reconcileJobName, data, { ...reconcileJobOptions(data), ...extra });
  let worker: Worker | undefined;
  afterAll(async () => {
    await worker?.close(true);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  });

  it("counts the jobs ahead in BullMQ order, reads a delayed one's due time, and a newer intent behind an active job", async () => {
    expect(await reconcileJobOfRoot(queue, 'site/1')).toBeNull();
    // Two other roots first, fresh priority; then site/1, fresh; a sweep-less wait-list job goes ahead of all.
    await add(reconcileJob('site/2'));
    await add(reconcileJob('site/3'));
    const mine = reconcileJob('site/1');
    await add(mine);
    await add(reconcileJob('site/4'), { priority: 0 });
    const waiting = await reconcileJobOfRoot(queue, 'site/1');
    expect(waiting).toMatchObject({
      jobId: mine.intentId,
      state: 'prioritized',
      intentId: mine.intentId,
      ahead: 3,
    });

    const dueAt = Date.now() + 60_000;
    const later = reconcileJob('site/5');
    await add(later, { delay: 60_000 });
    const delayed = await reconcileJobOfRoot(queue, 'site/5');
    expect(delayed?.state).toBe('delayed');
    expect(Math.abs((delayed?.dueAt?.getTime() ?? 0) - dueAt)).toBeLessThan(2_000);

    // A worker takes the first job (site/4) and holds it; a newer intent for site/4 is kept behind it.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let taken = '';
    worker = new Worker(
      queueName,
      async (j) => {
        taken = (j.data as ReconcileJobData).rootKey;
        await held;
      },
      { connection: { url: stack.redisUrl() }, concurrency: 1 },
    );
    for (const started = Date.now(); taken === '' && Date.now() - started < 30_000; ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(taken).toBe('site/4');
    const newer = reconcileJob('site/4');
    await add(newer);
    expect(await reconcileJobOfRoot(queue, 'site/4')).toMatchObject({
      state: 'active',
      nextIntentId: newer.intentId,
    });
    expect(await reconcileJobOfRoot(queue, 'site/1')).toMatchObject({ ahead: 2 });
    release();
  }, 60_000);
});
