/**
 * Telling a retriable error from the rest. An error that may pass if the same work is tried again
 * later (NetBox unavailable, the event log not taking an append, a lost AWX launch answer) carries
 * `retriable: true`; the Kafka consumer then redelivers its batch after a backoff and the reconcile
 * worker pauses its job. Anything else — a programming error above all — is never retried.
 */

export interface RetriableError extends Error {
  retriable: true;
}

export function isRetriable(error: unknown): error is RetriableError {
  return error instanceof Error && (error as { retriable?: unknown }).retriable === true;
}
