/**
 * The names of the Redis queues UNICOP's processes share. The workers take reconcile jobs from the
 * reconcile queue; the bridge's admin API and the CLI read its depth and a root's job (core/status).
 * The queue's contract — what a job carries, how it is added and in what order it is taken — is
 * the workers' (workers/reconcile-queue.ts); only the name is everyone's.
 */

/** The BullMQ queue the reconciler workers take jobs from. */
export const reconcileQueueName = 'unicop-reconcile';
