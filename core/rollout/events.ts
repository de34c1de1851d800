/**
 * The messages a rollout step asks for (docs/decisions/0061): its `io.unicop.rollout.v1` event on
 * unicop.control, and the intents it released on unicop.intents with their `intent.released` audit.
 * Used by the workers' rollout worker and the admin API's resume.
 */
import type { EventLogMessage } from '../event-log/port.js';
import { type AuditAction, rootAuditMessage } from '../events/audit.js';
import { cloudEvent, type EventData, eventTypes, parseEvent } from '../events/catalogue.js';
import { intentMessage } from '../events/intent.js';
import { deterministicUuidv7 } from '../ids.js';
import type { RolloutStep, RolloutSummary } from './store.js';

export const rolloutSource = 'unicop/rollout';

/**
 * The rollout event of a step that changed something. Its id is derived from the rollout, the
 * transition and the wave (each happens once per rollout and wave; its time part from when the plugin
 * recorded it), so the same step told again — a replayed outcome or gate batch — is the same event.
 */
export function rolloutEvent(
  rollout: RolloutSummary,
  transition: EventData<'rollout'>['transition'],
  actor: string,
  at: Date,
): EventLogMessage {
  const recorded =
    transition === 'opened'
      ? rollout.opened
      : transition === 'done' || transition === 'aborted'
        ? rollout.ended
        : rollout.wave_started;
  const wave = rollout.current_wave + 1;
  const event = cloudEvent('rollout', {
    id: deterministicUuidv7(
      Date.parse(recorded ?? '') || at.getTime(),
      'rollout-event',
      rollout.rollout_id,
      transition,
      wave,
    ),
    source: rolloutSource,
    subject: `rollout/${rollout.rollout_id}`,
    time: at.toISOString(),
    data: {
      rolloutId: rollout.rollout_id,
      transition,
      state: rollout.state,
      wave,
      waves: rollout.waves,
      counts: rollout.counts,
      reason: rollout.reason || null,
      actor,
      at: at.toISOString(),
    },
  });
  return { topic: eventTypes.rollout.topic, key: rollout.rollout_id, value: JSON.stringify(event) };
}

export function rootAudit(
  rootKey: string,
  action: AuditAction,
  reason: string,
  correlation: Record<string, string | number | null>,
  actor = 'unicop-rollout',
): EventLogMessage {
  return rootAuditMessage(rolloutSource, actor, rootKey, action, 'ok', reason, correlation);
}

/**
 * The messages a step asks for: the released intents (each on unicop.intents, keyed by its root, with
 * its `intent.released` audit) and, when something changed, the rollout event.
 */
export function stepMessages(step: RolloutStep, actor: string, at: Date): EventLogMessage[] {
  const out: EventLogMessage[] = [];
  const rollout = step.rollout;
  if (!rollout) return out;
  const wave = rollout.current_wave + 1;
  const opened = Date.parse(rollout.wave_started ?? '') || at.getTime();
  for (const { root_key: rootKey, intent: raw } of step.release) {
    // A new intent with the held one's cause (its change, request, actor; or, when the root's own change
    // never reached the resolver, the rollout's request). Not the held intent itself: its id may be a
    // job id already (another resolver's copy of it was queued and parked at the lease), and a job id
    // is kept a day. Its id is derived from the rollout, wave and root, so queueing it again (a resume
    // of an open rollout, a replayed outcome) adds nothing.
    const held = parseEvent('intent', JSON.stringify(raw ?? null))?.data;
    const cause = held
      ? { ...held.cause }
      : { kind: 'change' as const, actor, requestId: rollout.rollout_id };
    const intentId = deterministicUuidv7(opened, 'rollout', rollout.rollout_id, wave, rootKey);
    out.push(intentMessage(rolloutSource, rootKey, cause, { intentId, at }).message);
    out.push(
      rootAudit(rootKey, 'intent.released', `rollout ${rollout.rollout_id} wave ${wave} opened`, {
        rolloutId: rollout.rollout_id,
        wave,
        intentId,
        heldIntentId: held?.intentId ?? null,
      }),
    );
  }
  if (step.transition) out.push(rolloutEvent(rollout, step.transition, actor, at));
  return out;
}
