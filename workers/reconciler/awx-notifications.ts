/**
 * AWX notifications as wake-up calls. The bridge publishes each AWX notification it receives on
 * `unicop.awx-events`; a run following an AWX job waits on this view between polls, so a
 * notification ends the wait at once: a job status for that job, or — for a workflow job — an
 * approval notification of its gate (needs review, approved, denied, timed out; decision 0031). A notification is only a hint — AWX sends each one at most
 * once and may not send it at all — so the follower always re-reads the job from AWX's API, and
 * keeps polling with backoff when nothing arrives.
 */
import { systemClock } from '../../core/clock.js';
import type { EventStream } from '../../core/event-log/consumer.js';
import { parseEvent } from '../../core/events/catalogue.js';

export type AwxJobKind = 'job' | 'workflow_job';

export interface JobWakeups {
  /** Resolves true when a notification for the job arrives, false after `timeoutMs`. */
  wait(kind: AwxJobKind, jobId: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
}

/** Waits without notifications: plain polling (tests of the fallback, or no bridge in front of AWX). */
export const pollingOnly: JobWakeups = {
  wait: (_kind, _id, timeoutMs, signal) => systemClock.sleep(timeoutMs, signal).then(() => false),
};

/** The job a notification on unicop.awx-events is about (`kind/id`), or undefined for anything else. */
function wakeKeyOf(value: string): string | undefined {
  const status = parseEvent('awxJobStatus', value);
  if (status) return `${status.data.kind}/${status.data.awxJobId}`;
  const approval = parseEvent('awxApproval', value);
  if (approval) return `workflow_job/${approval.data.workflowJobId}`;
  return undefined;
}

export class AwxNotificationWakeups implements JobWakeups {
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(private readonly stream: EventStream) {}

  async start(): Promise<void> {
    await this.stream.start(async (records) => {
      for (const record of records) {
        const key = wakeKeyOf(record.value);
        if (!key) continue;
        for (const wake of this.waiting.get(key) ?? []) wake();
      }
    });
  }

  stop(): Promise<void> {
    return this.stream.stop();
  }

  wait(kind: AwxJobKind, jobId: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const key = `${kind}/${jobId}`;
    return new Promise((resolve) => {
      const waiters = this.waiting.get(key) ?? new Set();
      this.waiting.set(key, waiters);
      const finish = (woken: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        waiters.delete(wake);
        if (waiters.size === 0) this.waiting.delete(key);
        resolve(woken);
      };
      const wake = () => finish(true);
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      waiters.add(wake);
      if (signal?.aborted) finish(false);
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
