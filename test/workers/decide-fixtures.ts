/**
 * What the reconciler's decision tables share (decide.test.ts, drift-decide.test.ts): the settings
 * decide() is given, the moment the tables start at, and a run's cause.
 */
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import type { DecideSettings } from '../../workers/reconciler/steps.js';

export const settings: DecideSettings = {
  leaseBusyRetryMs: 5_000,
  freezeRecheckMs: 15_000,
  retry: { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 60_000 },
  pollMinMs: 100,
  pollMaxMs: 1_600,
  cancelGraceMs: 20_000,
};

export const t0 = new Date('2026-11-23T12:00:00Z');

/** A run's cause of this kind (a NetBox change by default), received at t0. */
export function cause(
  kind: ReconcileJobData['cause']['kind'] = 'change',
  extra: Partial<ReconcileJobData['cause']> = {},
): ReconcileJobData['cause'] {
  return {
    kind,
    changeId: null,
    requestId: null,
    event: null,
    objectType: null,
    objectId: null,
    actor: null,
    at: t0.toISOString(),
    ...extra,
  };
}
