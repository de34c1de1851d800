/**
 * Gradual rollout (docs/decisions/0061). Two places in the workers:
 * - the resolver's gate (`gateIntents`): the intents of one NetBox request that touched more roots than
 *   UNICOP_ROLLOUT_MIN_ROOTS open a rollout in the plugin (id = the request id; roots in key order, cut
 *   into UNICOP_ROLLOUT_WAVES); only the first wave's intents go on unicop.intents, the others are held
 *   in the plugin (audited `intent.rollout_held`) and their roots refuse the lease until their wave opens;
 * - the rollout worker (`handleOutcomes`, consumer group `unicop-rollout` on unicop.outcomes): each run
 *   end is reported to the plugin, which closes the wave when it was its last run — the next wave
 *   opens (its held intents are appended to unicop.intents here), or the rollout halts above the
 *   failure threshold, or is done.
 * Every transition is an `io.unicop.rollout.v1` event on unicop.control. The plugin decides each step
 * under the rollout's row lock, so replays and concurrent outcomes do not open a wave twice; queueing a
 * released intent twice adds nothing (its id is its job's id).
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import type { EventStream, LogRecord } from '../../core/event-log/consumer.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import { rootAuditMessage } from '../../core/events/audit.js';
import { type CloudEvent, eventTypes, parseEvent } from '../../core/events/catalogue.js';
import { PluginRequestError } from '../../core/plugin/client.js';
import { rolloutEvent, rolloutSource, rootAudit, stepMessages } from '../../core/rollout/events.js';
import type { RolloutStep, RolloutStore } from '../../core/rollout/store.js';

export const rolloutConsumerGroup = 'unicop-rollout';

export interface RolloutSettings {
  /** More roots than this in one request: a rollout (0: never). */
  minRoots: number;
  /** UNICOP_ROLLOUT_WAVES, e.g. "1,10%,rest". */
  plan: string;
  /** The highest failure share (0..1) of a wave's ended runs that still opens the next wave. */
  failureThreshold: number;
}

export function rolloutSettings(config: {
  UNICOP_ROLLOUT_MIN_ROOTS: number;
  UNICOP_ROLLOUT_WAVES: string;
  UNICOP_ROLLOUT_FAILURE_THRESHOLD: number;
}): RolloutSettings {
  return {
    minRoots: config.UNICOP_ROLLOUT_MIN_ROOTS,
    plan: config.UNICOP_ROLLOUT_WAVES,
    failureThreshold: config.UNICOP_ROLLOUT_FAILURE_THRESHOLD,
  };
}

/** The intent.published audit's intent id (to drop the audits of intents held back), or null. */
function publishedIntentId(message: EventLogMessage): string | null {
  if (message.topic !== eventTypes.audit.topic) return null;
  const audit = parseEvent('audit', String(message.value));
  if (audit?.data.action !== 'intent.published') return null;
  const id = audit.data.correlation.intentId;
  return typeof id === 'string' ? id : null;
}

/**
 * The resolver's gate: returns the messages to append instead of `messages` (what resolveChanges
 * built). The intents of each request are shown to the plugin (`store.gate`), which opens the request's
 * rollout the first time its change records touch more than settings.minRoots roots; intents of held
 * roots are not appended, their `intent.published` audits become `intent.rollout_held`, and a rollout
 * opened now adds its `opened` event. A request known to have no rollout is not asked about again
 * (`noRollout`, kept by the caller). Throws when NetBox does not answer (the batch comes again). A
 * gate the plugin refuses (a 4xx: the token lacks unicop.change_rollout, a plan it refuses) is no
 * reason to stop the change pipeline: that request has no rollout, its intents go out ungated, and
 * each of its roots gets a `rollout.gate_refused` audit naming the refusal (review-A #1).
 */
export async function gateIntents(
  messages: EventLogMessage[],
  store: Pick<RolloutStore, 'gate'>,
  settings: RolloutSettings,
  clock: Clock = systemClock,
  noRollout: Set<string> = new Set(),
  log?: Pick<Logger, 'warn'>,
): Promise<EventLogMessage[]> {
  if (settings.minRoots <= 0) return messages;
  const byRequest = new Map<string, CloudEvent<'intent'>[]>();
  for (const message of messages) {
    if (message.topic !== eventTypes.intent.topic) continue;
    const intent = parseEvent('intent', String(message.value));
    const requestId = intent?.data.cause.requestId;
    if (!intent || !requestId || noRollout.has(requestId)) continue;
    byRequest.set(requestId, [...(byRequest.get(requestId) ?? []), intent]);
  }
  const heldIntents = new Map<string, { rolloutId: string; rootKey: string; wave: number }>();
  const extra: EventLogMessage[] = [];
  for (const [requestId, intents] of byRequest) {
    let step: RolloutStep;
    try {
      step = await store.gate({
        rollout_id: requestId,
        plan: settings.plan,
        failure_threshold: settings.failureThreshold,
        min_roots: settings.minRoots,
        change_ids: [...new Set(intents.map((i) => i.data.cause.changeId).filter((c): c is string => !!c))],
        actor: intents[0]?.data.cause.actor ?? '',
        intents: intents.map((intent) => ({ root_key: intent.data.rootKey, intent })),
      });
    } catch (error) {
      if (!(error instanceof PluginRequestError)) throw error; // NetBox away: the batch comes again
      remember(noRollout, requestId);
      log?.warn(
        { requestId, status: error.status, roots: intents.length, err: error.message },
        'rollout gate refused: the request goes out ungated',
      );
      for (const intent of intents) {
        extra.push(
          rootAuditMessage(
            rolloutSource,
            'unicop-resolver',
            intent.data.rootKey,
            'rollout.gate_refused',
            'rejected',
            `the rollout gate was refused (${error.message}): the intent went out ungated, in no rollout`,
            { requestId, intentId: intent.data.intentId, status: error.status },
          ),
        );
      }
      continue;
    }
    const rollout = step.rollout;
    if (!rollout) {
      remember(noRollout, requestId);
      continue;
    }
    const held = new Set(step.held ?? []);
    const waveOf = new Map(rollout.members.map((m) => [m.root_key, m.wave + 1]));
    for (const intent of intents) {
      if (held.has(intent.data.rootKey)) {
        heldIntents.set(intent.data.intentId, {
          rolloutId: requestId,
          rootKey: intent.data.rootKey,
          wave: waveOf.get(intent.data.rootKey) ?? 0,
        });
      }
    }
    // Opened now, or this batch holds the change that opened it (a batch whose append failed, come again):
    // the event again, with the same id (review-A #4).
    const opening = rollout.change_ids[0];
    if (step.transition || (opening && intents.some((i) => i.data.cause.changeId === opening)))
      extra.push(rolloutEvent(rollout, 'opened', 'unicop-resolver', clock.now()));
  }
  if (heldIntents.size === 0) return [...messages, ...extra];
  const out: EventLogMessage[] = [];
  for (const message of messages) {
    if (message.topic === eventTypes.intent.topic) {
      const id = parseEvent('intent', String(message.value))?.data.intentId;
      if (id && heldIntents.has(id)) continue;
    }
    const audited = publishedIntentId(message);
    const held = audited ? heldIntents.get(audited) : undefined;
    if (held) {
      out.push(
        rootAudit(
          held.rootKey,
          'intent.rollout_held',
          `held in rollout ${held.rolloutId}, wave ${held.wave}: it opens when the earlier waves ended under the failure threshold`,
          { rolloutId: held.rolloutId, wave: held.wave, intentId: audited },
          'unicop-resolver',
        ),
      );
      continue;
    }
    out.push(message);
  }
  return [...out, ...extra];
}

/** Requests known to have no rollout, the oldest forgotten past this many. */
const noRolloutKept = 10_000;
function remember(set: Set<string>, requestId: string): void {
  set.add(requestId);
  if (set.size > noRolloutKept) set.delete(set.values().next().value as string);
}

/**
 * One batch of unicop.outcomes: each apply run's end reported to the plugin (not an attempt a retry
 * follows: the root's end is its last attempt's), then what the steps ask for appended (before the offsets are committed: a crash reports them again, which changes nothing).
 * An end the plugin refuses (a 4xx) is logged, audited `rollout.outcome_refused` with the refusal and
 * skipped, not fatal: the worker goes on with the next end (review-A #1).
 */
export async function handleOutcomes(
  records: LogRecord[],
  deps: {
    store: Pick<RolloutStore, 'outcome'>;
    eventLog: EventLog;
    clock?: Clock;
    log?: Pick<Logger, 'warn'>;
  },
): Promise<EventLogMessage[]> {
  const out: EventLogMessage[] = [];
  for (const record of records) {
    const outcome = parseEvent('outcome', record.value);
    // A failed attempt a retry follows is not the root's end: the retry's outcome is (review-A #5).
    if (!outcome || outcome.data.mode === 'check' || outcome.data.retryScheduled) continue;
    const end = outcome.data;
    let step: RolloutStep;
    try {
      step = await deps.store.outcome({
        root_key: end.rootKey,
        run_id: end.runId,
        state: end.state,
        outcome_class: end.failureClass,
        started_at: end.startedAt,
      });
    } catch (error) {
      if (!(error instanceof PluginRequestError)) throw error; // NetBox away: the batch comes again
      deps.log?.warn(
        { rootKey: end.rootKey, runId: end.runId, status: error.status, err: error.message },
        'rollout: the plugin refused a run end; skipped',
      );
      out.push(
        rootAuditMessage(
          rolloutSource,
          'unicop-rollout',
          end.rootKey,
          'rollout.outcome_refused',
          'rejected',
          `the plugin refused this run's end (${error.message}): not counted in a rollout wave`,
          { runId: end.runId, status: error.status },
        ),
      );
      continue;
    }
    const at = (deps.clock ?? systemClock).now();
    for (const each of [step, ...(step.also ?? [])]) out.push(...stepMessages(each, 'unicop-rollout', at));
  }
  if (out.length > 0) await deps.eventLog.append(out);
  return out;
}

export async function startRolloutWorker(deps: {
  outcomes: EventStream;
  store: RolloutStore;
  eventLog: EventLog;
  log: Logger;
  clock?: Clock;
}): Promise<{ stop(): Promise<void> }> {
  await deps.outcomes.start(async (records) => {
    const appended = await handleOutcomes(records, deps);
    if (appended.length > 0)
      deps.log.info({ outcomes: records.length, appended: appended.length }, 'rollout steps');
  });
  return { stop: () => deps.outcomes.stop() };
}
