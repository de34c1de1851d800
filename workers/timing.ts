/**
 * The reconcile queue's stall timing, derived from the lease TTL in this one place (decision 0036).
 *
 * A worker killed mid-job leaves two things behind: the root's lease in NetBox, which expires
 * `UNICOP_LEASE_TTL_SECONDS` after its last renewal, and the BullMQ job, whose lock expires after
 * `lockDuration` and which the stalled-job check (every `stalledInterval`) then moves back to the
 * waiting list. The job must be waiting again before the lease expires, so that the next worker takes
 * it, finds the lease busy until its expiry (the reconciler looks again at the expiry) and adopts
 * the run then — within the TTL of the kill, not after BullMQ's defaults (30 s lock + 30 s check).
 *
 * lockDuration = TTL / 4 (at least 2 s: BullMQ renews the lock at half of it, and a busy event loop
 * must not lose a lock it holds; at most BullMQ's 30 s default), stalledInterval = lockDuration / 2:
 * the job is back within 3/8 of the TTL of a kill. With the default TTL (60 s): 15 s and 7.5 s.
 */

export interface ReconcileQueueTiming {
  /** How long a worker's lock on a job lasts without renewal (BullMQ renews it at half). */
  lockDuration: number;
  /** How often a worker looks for jobs whose lock expired (stalled) and puts them back. */
  stalledInterval: number;
}

/** BullMQ worker options for the reconcile queue, from the lease TTL in seconds. */
export function reconcileQueueTiming(leaseTtlSeconds: number): ReconcileQueueTiming {
  const lockDuration = Math.min(30_000, Math.max(2_000, Math.round((leaseTtlSeconds * 1000) / 4)));
  return { lockDuration, stalledInterval: Math.round(lockDuration / 2) };
}
