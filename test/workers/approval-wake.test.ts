/**
 * The reconcile worker's side of decision 0044, on the stack's real Redis (BullMQ): a job handed
 * back because its run awaits approval (`later` with `wakeOn`) is delayed to its re-check time, and
 * promoted at once when a notification about its workflow job arrives — here from a stand-in for
 * the AWX notifications view (the real one is tested in awx-wakeups.test.ts), and a reconciler that
 * answers `later` (an hour away) once, then `done`. Without the notification the job stays delayed.
 */
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import type { AwxJobKind, JobWakeups } from '../../workers/reconciler/awx-notifications.js';
import type { Reconciler } from '../../workers/reconciler/reconcile.js';
import { done, later } from '../../workers/reconciler/result.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { eventually, reconcileJob } from '../support/reconciler.js';
import { stack, uniqueName } from '../support/stack.js';

/** Wake-ups the test sends: `notify(kind, id)` ends the waits for that job, as a notification would. */
class TestWakeups implements JobWakeups {
  private readonly waiting = new Map<string, (woken: boolean) => void>();
  wait(kind: AwxJobKind, jobId: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const finish = (woken: boolean) => {
        clearTimeout(timer);
        resolve(woken);
      };
      this.waiting.set(`${kind}/${jobId}`, finish);
      signal?.addEventListener('abort', () => finish(false), { once: true });
    });
  }
  get waits(): string[] {
    return [...this.waiting.keys()];
  }
  notify(kind: AwxJobKind, jobId: number): void {
    this.waiting.get(`${kind}/${jobId}`)?.(true);
  }
}

describe('reconcile worker: a job handed back awaiting approval', () => {
  it.each([
    ['is promoted when AWX notifies about its workflow job', true],
    ['stays delayed to its re-check time without a notification', false],
  ])(
    '%s',
    async (_name, notified) => {
      const queueName = uniqueName('reconcile-approval-wake');
      const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: stack.redisUrl() } });
      const wakeups = new TestWakeups();
      const calls: string[] = [];
      const reconciler: Reconciler = {
        reconcile: async (job) => {
          calls.push(job.rootKey);
          return calls.length === 1
            ? later(new Date(Date.now() + 3600_000), 'awaiting approval of AWX workflow job 77', {
                kind: 'workflow_job',
                id: 77,
              })
            : done;
        },
      };
      const worker = startReconcileWorker(
        reconciler,
        { redisUrl: stack.redisUrl(), concurrency: 1, queueName, wakeups },
        createLogger('approval-wake', process.env.UNICOP_TEST_LOG ?? 'silent'),
      );
      try {
        const job = reconcileJob(uniqueName('tenant/wake'));
        await queue.add('reconcile', job, { jobId: job.intentId });
        await eventually(
          async () =>
            ((await queue.getJobState(job.intentId)) === 'delayed' &&
              wakeups.waits.includes('workflow_job/77')) ||
            undefined,
          'the job delayed, waiting for a notification about workflow job 77',
          60_000,
        );
        if (notified) {
          wakeups.notify('workflow_job', 77);
          await eventually(
            async () => (await queue.getJobState(job.intentId)) === 'completed' || undefined,
            'the job taken again and completed',
            60_000,
          );
          expect(calls).toHaveLength(2);
        } else {
          wakeups.notify('workflow_job', 78); // another workflow's news changes nothing
          await new Promise((r) => setTimeout(r, 3_000));
          expect(await queue.getJobState(job.intentId)).toBe('delayed');
          expect(calls).toHaveLength(1);
        }
      } finally {
        await worker.close();
        await queue.obliterate({ force: true });
        await queue.close();
      }
    },
    180_000,
  );
});
