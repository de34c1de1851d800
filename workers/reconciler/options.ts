/** The reconciler's options from the configuration (core/config.ts documents each value). */
import type { UnicopConfig } from '../../core/config.js';
import type { ReconcilerOptions } from './reconciler.js';

export function reconcilerOptions(config: UnicopConfig, holder: string): ReconcilerOptions {
  return {
    holder,
    leaseTtlSeconds: config.UNICOP_LEASE_TTL_SECONDS,
    leaseBusyRetryMs: 5_000,
    retry: {
      maxAttempts: config.UNICOP_RETRY_MAX_ATTEMPTS,
      baseDelayMs: config.UNICOP_RETRY_BASE_SECONDS * 1000,
      maxDelayMs: config.UNICOP_RETRY_MAX_SECONDS * 1000,
    },
    pollMinMs: config.UNICOP_POLL_MIN_MS,
    pollMaxMs: config.UNICOP_POLL_MAX_MS,
    awxUiUrl: config.UNICOP_AWX_UI_URL ?? config.UNICOP_AWX_URL,
    cancelGraceMs: config.UNICOP_CANCEL_GRACE_SECONDS * 1000,
  };
}
