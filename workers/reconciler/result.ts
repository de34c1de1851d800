/**
 * What the queue does with a reconcile job, one of three (controller-runtime's Result): done; later,
 * at a given time, and why (a lease held elsewhere, a closed change window, a retry's backoff, a
 * global freeze, a run awaiting approval handed back — or a pause on a retriable error: NetBox,
 * Kafka or an AWX launch answer away);
 * terminal, with the error's class (a programming error: never retried). worker.ts maps each to
 * its queue action, metric and log line in one switch.
 *
 * `reconcile()` answers done or later; a thrown error becomes later (paused) or terminal in
 * `settle()`.
 */
import { isRetriable } from '../../core/errors.js';
import type { AwxJobRef } from './steps.js';

export type QueueResult =
  | { kind: 'done' }
  | { kind: 'later'; at: Date; why: string; pausedBy?: unknown; wakeOn?: AwxJobRef }
  | { kind: 'terminal'; class: string; error: unknown };

/** What `reconcile()` answers (an error is thrown, not answered). */
export type ReconcileResult = Exclude<QueueResult, { kind: 'terminal' }>;

export const done: ReconcileResult = { kind: 'done' };

/** Later, at `at`; or as soon as AWX notifies about `wakeOn` (a run handed back awaiting approval). */
export function later(at: Date, why: string, wakeOn?: AwxJobRef): ReconcileResult {
  return wakeOn ? { kind: 'later', at, why, wakeOn } : { kind: 'later', at, why };
}

/**
 * The job's result, its error included: a retriable one pauses it for `pauseMs` (`pausedBy` names
 * the error), any other is terminal.
 */
export async function settle(
  reconcile: () => Promise<ReconcileResult>,
  pauseMs: number,
  now: () => Date = () => new Date(),
): Promise<QueueResult> {
  try {
    return await reconcile();
  } catch (error) {
    if (!isRetriable(error)) {
      return { kind: 'terminal', class: error instanceof Error ? error.name : typeof error, error };
    }
    const why = error instanceof Error ? `paused: ${error.name}` : 'paused';
    return { kind: 'later', at: new Date(now().getTime() + pauseMs), why, pausedBy: error };
  }
}
