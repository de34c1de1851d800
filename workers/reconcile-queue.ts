/**
 * The reconcile queue's contract, shared by the dispatcher (which adds jobs), the reconciler workers
 * (which take them) and the sweeper (which asks whether a root still has one): what a job carries,
 * how a job is added, and in what order jobs are taken. The queue's name is in core/queues.ts: the
 * bridge and the CLI read the queue too.
 * A job carries a key, not a payload: the reconciler re-reads the root's current state. Its id is
 * the intent's id, so a replayed intent finds its id taken and adds nothing; jobs are deduplicated
 * per root with `keepLastIfActive` — at most one active and one waiting job per root, the rest
 * coalesced into them (guarantee 3).
 *
 * Order (decision 0038): work in flight goes ahead of new work. BullMQ takes its wait list (jobs
 * without a priority, and stalled jobs it moves back) first, then its prioritized set, lowest
 * number first and FIFO within a number. A fresh intent is added at `reconcilePriority.fresh`; a
 * job that a worker already took and handed back (`later`: paused, lease busy, change window) is
 * raised to `reconcilePriority.inFlight` before it is delayed, and so is the sweeper's intent for a
 * root whose run is open — finishing or adopting that run does not queue behind every new edit.
 * The sweeper's other intents (drift NetBox never told us about, or a whole rebuild after Redis lost
 * its data) go after new work, at `reconcilePriority.sweep`, so an operator's edit does not wait
 * behind a sweep of every root; the drift scheduler's check intents go last, after sweeps, at
 * `reconcilePriority.driftCheck` (decision 0054). An intent coalesced into a waiting job of a later
 * priority raises that job to its own (`raisedPriority`; sweep and drift-check intents raise nothing).
 */
import { createHash } from 'node:crypto';
import type { JobsOptions, Queue } from 'bullmq';
import type { EventData } from '../core/events/catalogue.js';

/** The BullMQ job name every reconcile job has. */
export const reconcileJobName = 'reconcile';

/** What a reconcile job carries: the key (the reconciler re-reads everything else) and its cause. */
export interface ReconcileJobData {
  rootKey: string;
  intentId: string;
  cause: EventData<'intent'>['cause'];
  /** W3C trace context of the intent's dispatch, continued by the run (core/tracing.ts); absent when tracing is off. */
  traceparent?: string;
}

/** BullMQ priorities (lower is taken first; 0 would be BullMQ's wait list, ahead of both). */
export const reconcilePriority = {
  /** A run is open or a worker already took the job: finishing it goes first. */
  inFlight: 1,
  /** A new intent. */
  fresh: 2,
  /** The sweeper's intent for a root with no open run: drift found by listing, never ahead of edits. */
  sweep: 3,
  /** The drift scheduler's check runs (docs/decisions/0054): behind everything else. */
  driftCheck: 4,
} as const;

/** The priority an intent's job is added with (decision 0038). */
export function priorityOf(cause: ReconcileJobData['cause']): number {
  if (cause.openRun) return reconcilePriority.inFlight;
  if (cause.kind === 'drift_check') return reconcilePriority.driftCheck;
  return cause.kind === 'sweep' ? reconcilePriority.sweep : reconcilePriority.fresh;
}

/**
 * The priority a waiting job must be raised to when `cause`'s intent was coalesced into it, or null
 * when it already goes at least as early (lower number first).
 */
export function raisedPriority(current: number, cause: ReconcileJobData['cause']): number | null {
  const wanted = priorityOf(cause);
  return wanted < current ? wanted : null;
}

/**
 * The options a reconcile job is added with: its id is the intent id, one root has at most one
 * active and one waiting job (a newer intent replaces the waiting one's data), and an intent for a
 * root with an open run goes ahead of fresh ones.
 */
export function reconcileJobOptions(job: ReconcileJobData): JobsOptions {
  return {
    jobId: job.intentId,
    deduplication: { id: job.rootKey, keepLastIfActive: true },
    priority: priorityOf(job.cause),
    // Kept a day so a replayed intent finds its job id taken and adds nothing.
    removeOnComplete: { age: 24 * 3600 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

/**
 * Which queue a lease holder takes its jobs from: a short hash of the Redis server, database and
 * queue name (no credentials). The reconciler's holder name ends with it (`holderFor`), so a
 * sweeper knows which leases are its queue's to judge — on a NetBox that other UNICOP instances
 * (another Redis, another queue: tests, a demo) also lease, theirs are never its business.
 */
export function queueTag(redisUrl: string, queueName: string): string {
  const url = new URL(redisUrl);
  const db = url.pathname.replace(/^\//, '') || '0';
  return createHash('sha256')
    .update(`${url.hostname}:${url.port || '6379'}/${db}/${queueName}`)
    .digest('hex')
    .slice(0, 10);
}

/** A lease holder name that says which queue its jobs come from: `<name> q:<tag>`. */
export function holderFor(name: string, tag: string): string {
  return `${name} q:${tag}`;
}

/** The queue tag a holder name carries, or null (an older holder, or someone else's). */
export function holderQueueTag(holder: string | null): string | null {
  return holder?.match(/ q:([0-9a-f]{10})$/)?.[1] ?? null;
}

/** The queue as the sweeper reads it: its tag, and does a root still have a job not finished? */
export interface RootJobs {
  readonly tag: string;
  inFlight(rootKey: string): Promise<boolean>;
}

/**
 * A root has a job in flight while BullMQ's deduplication key for it names a job that is waiting,
 * prioritized, delayed or active (BullMQ removes the key when the job completes or fails, and a
 * Redis that lost its data has neither). Jobs are only ever added with `reconcileJobOptions`.
 */
export function rootJobsOf(
  queue: Pick<Queue, 'getDeduplicationJobId' | 'getJobState'>,
  tag: string,
): RootJobs {
  return {
    tag,
    async inFlight(rootKey) {
      const jobId = await queue.getDeduplicationJobId(rootKey);
      if (!jobId) return false;
      const state = await queue.getJobState(jobId);
      return state !== 'unknown' && state !== 'completed' && state !== 'failed';
    },
  };
}
