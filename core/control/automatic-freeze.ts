/**
 * A global freeze UNICOP sets on itself (the fail-safe, workers/failsafe/, decision 0055): the same
 * `io.unicop.freeze.v1` record on `unicop.control` a person's `POST /freeze` writes, so every part
 * that obeys a freeze obeys it, with `actor: unicop` (not a person) and a reason that starts
 * `fail-safe <trigger>:` and goes on with the figures that tripped it. Nothing here lifts a freeze:
 * only a person does (`unicop resume`, `POST /resume`, audited).
 */

import type { EventLogMessage } from '../event-log/port.js';
import { auditMessage } from '../events/audit.js';
import { cloudEvent, type EventData, eventTypes } from '../events/catalogue.js';
import { uuidv7 } from '../ids.js';
import type { GlobalFreeze } from './freeze-view.js';

/** The actor of a freeze UNICOP set on itself. */
export const failsafeActor = 'unicop';

/** What can trip the fail-safe. */
export const failsafeTriggers = [
  'consumer_lag',
  'resolver_errors',
  'failed_roots',
  // NetBox answered inconsistently: a root's snapshot hash moved between lease and launch with no change
  // through NetBox (the reconciler trips it, workers/reconciler/recheck.ts; decision 0067).
  'snapshot_changed',
] as const;
export type FailsafeTrigger = (typeof failsafeTriggers)[number];

const reasonPrefix = 'fail-safe ';

/** The freeze record and its audit event, in one append (the freeze first: it is what acts). */
export function automaticFreeze(
  trigger: FailsafeTrigger,
  figures: string,
  at: Date,
  source: string,
): { data: EventData<'freeze'>; messages: EventLogMessage[] } {
  const reason = `${reasonPrefix}${trigger}: ${figures}`;
  const data: EventData<'freeze'> = {
    scope: 'global',
    rootKey: null,
    frozen: true,
    reason,
    actor: failsafeActor,
    at: at.toISOString(),
  };
  const event = cloudEvent('freeze', { id: uuidv7(), source, subject: 'global', data });
  const audit = auditMessage(
    source,
    {
      action: 'automation.frozen',
      actor: failsafeActor,
      subjectType: 'automation',
      subjectId: 'global',
      outcome: 'ok',
      reason,
      correlation: { trigger },
      metadata: { trigger, figures },
    },
    'global',
  );
  return {
    data,
    messages: [{ topic: eventTypes.freeze.topic, key: 'global', value: JSON.stringify(event) }, audit],
  };
}

/**
 * Why automation is frozen globally, as a metric label: the trigger of a freeze UNICOP set on
 * itself, `person` for anyone else's; null when it is not frozen.
 */
export function freezeReasonLabel(freeze: GlobalFreeze): FailsafeTrigger | 'person' | null {
  if (!freeze?.frozen) return null;
  if (freeze.actor !== failsafeActor) return 'person';
  const named = freeze.reason.slice(reasonPrefix.length).split(':')[0];
  return failsafeTriggers.find((t) => t === named) ?? 'person';
}

/**
 * Since when the evidence counts: the last time a person resumed automation globally (what came
 * before, they have seen and judged), or null when the last record is a freeze or there is none.
 */
export function resumedAt(freeze: GlobalFreeze): Date | null {
  return freeze && !freeze.frozen ? new Date(freeze.at) : null;
}
