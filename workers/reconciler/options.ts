/** The reconciler's and its queue worker's options from the configuration (core/config.ts documents each value). */
import type { UnicopConfig } from '../../core/config.js';
import type { ReconcilerOptions } from './ports.js';
import type { ReconcileWorkerOptions } from './worker.js';

export function reconcilerOptions(config: UnicopConfig, holder: string): ReconcilerOptions {
  return {
    holder,
    leaseTtlSeconds: config.UNICOP_LEASE_TTL_SECONDS,
    leaseBusyRetryMs: config.UNICOP_LEASE_BUSY_RETRY_MS,
    freezeRecheckMs: config.UNICOP_FREEZE_RECHECK_SECONDS * 1000,
    outcomeAppendAttempts: config.UNICOP_OUTCOME_APPEND_ATTEMPTS,
    retry: {
      maxAttempts: config.UNICOP_RETRY_MAX_ATTEMPTS,
      baseDelayMs: config.UNICOP_RETRY_BASE_SECONDS * 1000,
      maxDelayMs: config.UNICOP_RETRY_MAX_SECONDS * 1000,
    },
    pollMinMs: config.UNICOP_POLL_MIN_MS,
    pollMaxMs: config.UNICOP_POLL_MAX_MS,
    awxUiUrl: config.UNICOP_AWX_UI_URL ?? config.UNICOP_AWX_URL,
    cancelGraceMs: config.UNICOP_CANCEL_GRACE_SECONDS * 1000,
    approvalRecheckMs: config.UNICOP_APPROVAL_RECHECK_SECONDS * 1000,
  };
}

/** The reconcile worker's pause on a retriable error: first delay, doubling per pause in a row, capped. */
export function reconcileWorkerPauses(
  config: UnicopConfig,
): Pick<ReconcileWorkerOptions, 'pauseMinMs' | 'pauseMaxMs'> {
  return { pauseMinMs: config.UNICOP_PAUSE_MIN_MS, pauseMaxMs: config.UNICOP_PAUSE_MAX_MS };
}
