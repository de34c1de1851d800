/**
 * The reconcile queue's order (issue #14 item 2, decision 0038) on real Redis/BullMQ and the real
 * NetBox plugin (the AWX double, instant jobs): a job paused with its run open — its AWX job
 * launched, the run's terminal write lost to a NetBox error (observation 7) — goes ahead of fresh
 * intents queued while it waited; and an edit goes ahead of the sweep's intents queued before it,
 * lifting the sweep's job it is coalesced into (the dispatcher's `queueIntent`). The order is read
 * from the run records NetBox holds afterwards (when each run started and ended), not from timing.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.js';
import { NetboxUnavailableError, PluginClient, type RunWrite } from '../../core/plugin/client.js';
import { queueIntent } from '../../workers/dispatcher/dispatcher.js';
import {
  type ReconcileJobData,
  reconcileJobName,
  reconcileJobOptions,
  reconcilePriority,
} from '../../workers/reconcile-queue.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { type BackHalf, createSite, eventually, reconcileJob, startBackHalf } from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

const log = createLogger('queue-priority-test', process.env.UNICOP_TEST_LOG ?? 'silent');
const terminal = ['succeeded', 'failed', 'canceled', 'timed_out', 'denied', 'skipped'];

/** The plugin, except that every terminal write of a run is lost (NetBox answered 5xx). */
class LosesTerminalWrites extends PluginClient {
  lost = 0;
  override async writeRun(runId: string, write: RunWrite) {
    if (write.state === 'succeeded') {
      this.lost++;
      throw new NetboxUnavailableError('test: the terminal write got no answer');
    }
    return super.writeRun(runId, write);
  }
}

async function endedRuns(back: BackHalf, rootKey: string) {
  const runs = await back.plugin.listRuns(rootKey);
  return runs.length > 0 && runs.every((r) => terminal.includes(r.state)) ? runs : undefined;
}

describe('reconcile queue: open runs go ahead of fresh intents', () => {
  let back: BackHalf;
  beforeAll(async () => {
    back = await startBackHalf({ instant: true });
  });
  afterAll(async () => {
    await back?.stop();
  });

  it('a paused job whose run is open finishes before any of the fresh intents queued behind it starts', async () => {
    const open = await createSite();
    const fresh = [await createSite(), await createSite(), await createSite(), await createSite()];
    const queueName = uniqueName('reconcile-priority');
    const connection = { url: stack.redisUrl() };
    const queue = new Queue<ReconcileJobData>(queueName, { connection });
    const flaky = new LosesTerminalWrites({
      baseUrl: stack.netboxUrl(),
      token: stack.netboxToken(),
      timeoutMs: 10_000,
    });
    const first = startReconcileWorker(
      // No in-place retry of the terminal write: it gives up at once and the job pauses.
      back.reconciler({ outcomeAppendAttempts: 1 }, { plugin: flaky }),
      { redisUrl: stack.redisUrl(), concurrency: 1, queueName, pauseMinMs: 500, pauseMaxMs: 500 },
      log,
    );
    let second: ReturnType<typeof startReconcileWorker> | undefined;
    try {
      const paused = reconcileJob(open.rootKey);
      await queue.add(reconcileJobName, paused, reconcileJobOptions(paused));
      // Paused after its AWX job (the reconciler's own retries of the write used up): delayed, and
      // its run open in NetBox with the AWX job recorded.
      await eventually(
        async () => {
          const job = await queue.getJob(paused.intentId);
          const pauses = (job?.data as { pauses?: number } | undefined)?.pauses ?? 0;
          return pauses >= 1 && (await queue.getJobState(paused.intentId)) === 'delayed' ? true : undefined;
        },
        'the job paused on the lost terminal writes',
        240_000,
      );
      await first.close();
      const [openRun] = await back.plugin.listRuns(open.rootKey);
      expect(flaky.lost).toBeGreaterThan(0);
      expect(openRun?.awx_job_id).not.toBeNull();
      expect(terminal).not.toContain(openRun?.state);
      expect((await queue.getJob(paused.intentId))?.priority).toBe(reconcilePriority.inFlight);

      // Fresh intents, queued while the paused job waits (as the dispatcher adds them).
      for (const site of fresh) {
        const job = reconcileJob(site.rootKey);
        await queue.add(reconcileJobName, job, reconcileJobOptions(job));
      }
      // The pause (500 ms) is over before a worker looks again, so all five jobs are due together.
      await new Promise((r) => setTimeout(r, 2_000));
      second = startReconcileWorker(
        back.reconciler(),
        { redisUrl: stack.redisUrl(), concurrency: 1, queueName },
        log,
      );
      const ended = (rootKey: string) => endedRuns(back, rootKey);
      const [openEnded] = await eventually(() => ended(open.rootKey), 'the open run ended', 240_000);
      const freshRuns = [];
      for (const site of fresh) {
        freshRuns.push(
          ...(await eventually(() => ended(site.rootKey), `${site.rootKey} reconciled`, 240_000)),
        );
      }

      // The open run (the same run, adopted by the next holder) ended before any fresh run began.
      expect(openEnded?.run_id).toBe(openRun?.run_id);
      expect(openEnded?.state).toBe('succeeded');
      const openFinished = Date.parse(openEnded?.finished ?? '');
      expect(freshRuns).toHaveLength(fresh.length);
      for (const run of freshRuns) expect(Date.parse(run.started)).toBeGreaterThan(openFinished);
    } finally {
      await first.close();
      await second?.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  }, 600_000);

  it('an edit goes ahead of the sweep intents queued before it, and lifts the waiting sweep job it is coalesced into', async () => {
    const swept = [await createSite(), await createSite(), await createSite(), await createSite()];
    const edited = await createSite();
    const sweptThenEdited = await createSite();
    const queueName = uniqueName('reconcile-sweep-priority');
    const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: stack.redisUrl() } });
    let worker: ReturnType<typeof startReconcileWorker> | undefined;
    try {
      // A sweep's intents first (as the dispatcher queues them), then two edits: one of a root the
      // sweep did not reach, one of a root whose sweep job is still waiting.
      for (const site of [...swept, sweptThenEdited]) {
        expect((await queueIntent(queue, reconcileJob(site.rootKey, 'sweep'))).queued).toBe(true);
      }
      expect((await queueIntent(queue, reconcileJob(edited.rootKey))).queued).toBe(true);
      const coalesced = await queueIntent(queue, reconcileJob(sweptThenEdited.rootKey));
      expect(coalesced.queued).toBe(false);
      const lifted = await queue.getJob(coalesced.jobId ?? '');
      expect(lifted?.data.cause.kind).toBe('sweep');
      expect(lifted?.priority).toBe(reconcilePriority.fresh);

      worker = startReconcileWorker(
        back.reconciler(),
        { redisUrl: stack.redisUrl(), concurrency: 1, queueName },
        log,
      );
      const [editedRun] = await eventually(
        () => endedRuns(back, edited.rootKey),
        'the edited root reconciled',
        240_000,
      );
      const [liftedRun] = await eventually(
        () => endedRuns(back, sweptThenEdited.rootKey),
        'the coalesced root reconciled',
        240_000,
      );
      const sweptRuns = [];
      for (const site of swept) {
        sweptRuns.push(
          ...(await eventually(() => endedRuns(back, site.rootKey), `${site.rootKey} swept`, 240_000)),
        );
      }
      // One worker, one job at a time: both edits' runs ended before any sweep-only run began.
      expect(sweptRuns).toHaveLength(swept.length);
      const editsFinished = Math.max(
        Date.parse(editedRun?.finished ?? ''),
        Date.parse(liftedRun?.finished ?? ''),
      );
      expect(Number.isNaN(editsFinished)).toBe(false);
      for (const run of sweptRuns) expect(Date.parse(run.started)).toBeGreaterThan(editsFinished);
    } finally {
      await worker?.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  }, 600_000);
});
