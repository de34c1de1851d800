/**
 * The reconcile queue's contract, shared by the dispatcher (which adds jobs) and the reconciler
 * workers (which take them): the BullMQ queue's name, what a job carries, and how a job is added.
 * A job carries a key, not a payload: the reconciler re-reads the root's current state. Its id is
 * the intent's id, so a replayed intent finds its id taken and adds nothing; jobs are deduplicated
 * per root with `keepLastIfActive` — at most one active and one waiting job per root, the rest
 * coalesced into them (guarantee 3).
 */
import type { JobsOptions } from 'bullmq';
import type { EventData } from '../core/events/catalogue.js';

/** The BullMQ queue the reconciler workers take jobs from. */
export const reconcileQueueName = 'unicop-reconcile';

/** The BullMQ job name every reconcile job has. */
export const reconcileJobName = 'reconcile';

/** What a reconcile job carries: the key (the reconciler re-reads everything else) and its cause. */
export interface ReconcileJobData {
  rootKey: string;
  intentId: string;
  cause: EventData<'intent'>['cause'];
}

/**
 * The options a reconcile job is added with: its id is the intent id, and one root has at most one
 * active and one waiting job (a newer intent replaces the waiting one's data).
 */
export function reconcileJobOptions(job: ReconcileJobData): JobsOptions {
  return {
    jobId: job.intentId,
    deduplication: { id: job.rootKey, keepLastIfActive: true },
    // Kept a day so a replayed intent finds its job id taken and adds nothing.
    removeOnComplete: { age: 24 * 3600 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}
