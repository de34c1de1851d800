/**
 * AWX faults while a run follows its job, which neither the real AWX nor the double produce on
 * demand: a gateway answering 502 in the middle of the follow, and AWX taking the request and never
 * answering (the socket hangs until the client's timeout). Decision 0006 item 6 and
 * docs/runbooks/awx-unavailable.md: AWX unreachable while following — polling goes on (no failure,
 * no second launch) and the run ends with AWX's own word once it answers again.
 *
 * The real reconciler (workers/reconciler/: createReconciler) runs against the real NetBox plugin, Kafka
 * and the stack's real AWX 24.6.1; nock wraps real AWX's address (every other request passes
 * through to it) and answers only the job reads it is told to break. Happy path against the real services: test/workers/reconciler.test.ts,
 * "launches once with the snapshot, records success in NetBox and Kafka, then skips the same hash".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwxClient } from '../../core/awx/index.js';
import { createLogger } from '../../core/logger.js';
import { pollingOnly } from '../../workers/reconciler/awx-notifications.js';
import { createReconciler, type Reconciler } from '../../workers/reconciler/reconcile.js';
import {
  type BackHalf,
  createSite,
  eventually,
  reconcileJob,
  startBackHalf,
  testReconcilerOptions,
} from '../support/reconciler.js';
import { uniqueName } from '../support/stack.js';
import { never, startNock, stopNock } from './nock.js';

const jobRead = /^\/api\/v2\/jobs\/\d+\/$/;

describe('faults: AWX breaks while a run follows its job', () => {
  let back: BackHalf;
  let nock: ReturnType<typeof startNock>;
  beforeAll(async () => {
    nock = startNock();
    // Real AWX: a job runs in its own container for 10–40 s, so the run is still following when the
    // fault is switched on.
    back = await startBackHalf();
  });
  afterAll(async () => {
    await back?.stop();
    stopNock();
  });

  /** A reconciler whose AWX client gives up on a request after `timeoutMs`. */
  function reconciler(timeoutMs: number): Reconciler {
    return createReconciler({
      plugin: back.plugin,
      awx: new AwxClient({ baseUrl: back.awx.url, token: back.awx.token, timeoutMs, confirmDelayMs: 200 }),
      eventLog: back.eventLog,
      wakeups: pollingOnly,
      log: createLogger('faults-awx', process.env.UNICOP_TEST_LOG ?? 'silent'),
      options: testReconcilerOptions(uniqueName('worker')),
    });
  }

  /** Waits until the run of the root has its AWX job recorded (the reconciler now follows it). */
  async function followed(rootKey: string) {
    return eventually(
      async () => {
        const [run] = await back.plugin.listRuns(rootKey);
        return run?.awx_job_id && (run.state === 'launched' || run.state === 'running') ? run : undefined;
      },
      'the run to be launched and followed',
      300_000,
    );
  }

  it('AWX answering 502 mid-follow: polling goes on, no second launch, the run ends succeeded', async () => {
    const site = await createSite();
    const reconcile = reconciler(10_000).reconcile(reconcileJob(site.rootKey));
    const run = await followed(site.rootKey);
    const faultAt = Date.now();
    const gateway = nock(back.awx.url, { allowUnmocked: true })
      .get(jobRead)
      .times(4)
      .reply(502, '<html><body><h1>502 Bad Gateway</h1></body></html>', { 'Content-Type': 'text/html' });

    expect(await reconcile).toEqual({ kind: 'done' });
    // Captured after the act: the 502s were all served to the follower, which polled on after them.
    expect(gateway.isDone()).toBe(true);
    const [after] = await back.plugin.listRuns(site.rootKey);
    expect(after?.run_id).toBe(run.run_id);
    expect(after?.state).toBe('succeeded');
    expect(after?.awx_job_id).toBe(run.awx_job_id);
    const jobs = await back.awx.jobsOf(site.rootKey);
    expect(jobs).toHaveLength(1);
    // Mid-follow on AWX's side too: its job ended after the gateway began answering 502.
    expect(Date.parse(jobs[0]?.finished ?? '')).toBeGreaterThan(faultAt);
  }, 600_000);

  it('AWX hanging mid-follow (no answer until the client times out): polling goes on, the run ends succeeded', async () => {
    const site = await createSite();
    // 10 s: well above real AWX's own answers here (measured on the loaded stack: a job read
    // 0.1–0.5 s, a launch with its run-id lookup 2–3 s), so only the hung reads time out.
    const reconcile = reconciler(10_000).reconcile(reconcileJob(site.rootKey));
    const run = await followed(site.rootKey);
    const faultAt = Date.now();
    const hang = nock(back.awx.url, { allowUnmocked: true }).get(jobRead).times(2).reply(never);

    expect(await reconcile).toEqual({ kind: 'done' });
    expect(hang.isDone()).toBe(true);
    const [after] = await back.plugin.listRuns(site.rootKey);
    expect(after?.run_id).toBe(run.run_id);
    expect(after?.state).toBe('succeeded');
    const jobs = await back.awx.jobsOf(site.rootKey);
    expect(jobs).toHaveLength(1);
    expect(Date.parse(jobs[0]?.finished ?? '')).toBeGreaterThan(faultAt);
  }, 600_000);
});
