/**
 * Gradual rollout (docs/decisions/0061). Two places in the workers:
 * - the resolver's gate (`gateIntents`): the intents of one NetBox request that touched more roots than
 *   UNICOP_ROLLOUT_MIN_ROOTS open a rollout in the plugin (id = the request id; roots in key order, cut
 *   into UNICOP_ROLLOUT_WAVES); only the first wave's intents go on unicop.intents, the others are held
 *   in the plugin (audited `intent.rollout_held`) and their roots refuse the lease until their wave opens;
 * - the rollout worker (`handleOutcomes`, consumer group `unicop-rollout` on unicop.outcomes): each run
 *   end a live rollout may be credited with (`LiveRolloutView`, decision 0069) is reported to the
 *   plugin, which closes the wave when it was its last run — the next wave
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
import type { GateRequest, LiveRolloutRoots, RolloutStep, RolloutStore } from '../../core/rollout/store.js';

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
 * built). The intents of each request are shown to the plugin — every request of the batch in one call
 * (`store.gateMany`; each alone with `store.gate` when that call is refused) — which opens the request's
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
  store: Pick<RolloutStore, 'gate'> & Partial<Pick<RolloutStore, 'gateMany'>>,
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
  const asked = [...byRequest].map(([requestId, intents]) => ({
    requestId,
    intents,
    request: {
      rollout_id: requestId,
      plan: settings.plan,
      failure_threshold: settings.failureThreshold,
      min_roots: settings.minRoots,
      change_ids: [...new Set(intents.map((i) => i.data.cause.changeId).filter((c): c is string => !!c))],
      actor: intents[0]?.data.cause.actor ?? '',
      intents: intents.map((intent) => ({ root_key: intent.data.rootKey, intent })),
    },
  }));
  const answers = await gateAnswers(
    asked.map((a) => a.request),
    store,
  );
  const heldIntents = new Map<string, { rolloutId: string; rootKey: string; wave: number }>();
  const extra: EventLogMessage[] = [];
  for (const [i, { requestId, intents }] of asked.entries()) {
    const step = answers[i];
    if (step instanceof PluginRequestError) {
      const error = step;
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
    const rollout = step?.rollout;
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

/**
 * The gate's answers for the requests of one batch, in order: one call for all of them when the store
 * can (`gateMany`, decision 0069: the gate had been one plugin call per request, a request per run in a
 * loop of single edits); when that call is refused (a 4xx), each request alone, so a refusal is only its
 * own request's (a PluginRequestError in its place). NetBox away throws: the batch comes again.
 */
async function gateAnswers(
  requests: GateRequest[],
  store: Pick<RolloutStore, 'gate'> & Partial<Pick<RolloutStore, 'gateMany'>>,
): Promise<(RolloutStep | PluginRequestError)[]> {
  const answers: (RolloutStep | PluginRequestError)[] = [];
  for (let from = 0; from < requests.length; from += gateBatchMax) {
    const part = requests.slice(from, from + gateBatchMax);
    answers.push(...(await gatePart(part, store)));
  }
  return answers;
}

/** The most requests in one rollouts/gate/ call (the plugin takes up to 1000). */
const gateBatchMax = 500;

async function gatePart(
  requests: GateRequest[],
  store: Pick<RolloutStore, 'gate'> & Partial<Pick<RolloutStore, 'gateMany'>>,
): Promise<(RolloutStep | PluginRequestError)[]> {
  if (store.gateMany && requests.length > 1) {
    try {
      const answers = await store.gateMany(requests);
      if (answers.length !== requests.length)
        throw new Error(`rollouts/gate/ answered ${answers.length} steps for ${requests.length} requests`);
      return answers;
    } catch (error) {
      if (!(error instanceof PluginRequestError)) throw error; // NetBox away: the batch comes again
    }
  }
  const answers: (RolloutStep | PluginRequestError)[] = [];
  for (const request of requests) {
    try {
      answers.push(await store.gate(request));
    } catch (error) {
      if (!(error instanceof PluginRequestError)) throw error; // NetBox away: the batch comes again
      answers.push(error);
    }
  }
  return answers;
}

/** Requests known to have no rollout, the oldest forgotten past this many. */
const noRolloutKept = 10_000;
function remember(set: Set<string>, requestId: string): void {
  set.add(requestId);
  if (set.size > noRolloutKept) set.delete(set.values().next().value as string);
}

/** The least time between two reads of the live rollouts' roots (a batch that needs one waits for it). */
export const liveRootsRefreshMs = 1000;

/**
 * Which run ends the rollout worker reports (decision 0069): only those a live rollout may be credited
 * with. The plugin credits an end to a released member of a live rollout, released no later than the run
 * started (rollouts.py record_outcomes); `rollouts/live/` lists those roots with the time `at` up to
 * which the list is complete. A member leaves `released` only by ending, and a rollout stops being live
 * for good, so an end whose root is not listed, of a run started before `at`, is credited to no rollout:
 * not reported. An end of a run started at or after `at` asks for a newer list (at most one read per
 * liveRootsRefreshMs, the batch waiting for it); when even the newest list cannot tell (the run's clock
 * ahead of NetBox's), the end is reported, as every end was before. The roots a step released are added
 * at once. Started empty: the first end reads the list.
 */
export class LiveRolloutView {
  private roots = new Set<string>();
  private at = Number.NEGATIVE_INFINITY;
  private lastRead = Number.NEGATIVE_INFINITY;
  /** How many times the list was read (for the benchmark's count of plugin calls). */
  reads = 0;

  constructor(
    private readonly store: Pick<RolloutStore, 'live'>,
    private readonly clock: Clock = systemClock,
    private readonly refreshMs = liveRootsRefreshMs,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  /** Whether the plugin may credit this end to a live rollout (reading a newer list when it cannot tell). */
  async mayCredit(rootKey: string, startedAt: string): Promise<boolean> {
    if (this.roots.has(rootKey)) return true;
    const started = Date.parse(startedAt);
    if (!Number.isFinite(started)) return true; // cannot tell: the plugin decides
    if (started < this.at) return false;
    try {
      await this.read();
    } catch (error) {
      // Refused (a 4xx: a token without unicop.view_rollout): not fatal — the end is reported, as every
      // end was before 0069, and the plugin decides (review-A #1). NetBox away throws: the batch comes again.
      if (error instanceof PluginRequestError) return true;
      throw error;
    }
    return this.roots.has(rootKey) || started >= this.at;
  }

  /** Roots a step just released: their ends count from now on. */
  released(rootKeys: Iterable<string>): void {
    for (const key of rootKeys) this.roots.add(key);
  }

  private async read(): Promise<void> {
    const wait = this.lastRead + this.refreshMs - this.clock.now().getTime();
    if (wait > 0) await this.sleep(wait);
    this.lastRead = this.clock.now().getTime();
    const live: LiveRolloutRoots = await this.store.live();
    this.reads++;
    this.roots = new Set(live.roots);
    this.at = Date.parse(live.at);
  }
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
    /** Ends no live rollout may be credited with are not reported (decision 0069); absent: every end. */
    live?: LiveRolloutView;
  },
): Promise<EventLogMessage[]> {
  const out: EventLogMessage[] = [];
  for (const record of records) {
    const outcome = parseEvent('outcome', record.value);
    // A failed attempt a retry follows is not the root's end: the retry's outcome is (review-A #5).
    if (!outcome || outcome.data.mode === 'check' || outcome.data.retryScheduled) continue;
    const end = outcome.data;
    // No live rollout can be credited with it (decision 0069): the plugin is not asked.
    if (deps.live && !(await deps.live.mayCredit(end.rootKey, end.startedAt))) continue;
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
    for (const each of [step, ...(step.also ?? [])]) {
      deps.live?.released(each.release.map((r) => r.root_key));
      out.push(...stepMessages(each, 'unicop-rollout', at));
    }
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
  const live = new LiveRolloutView(deps.store, deps.clock);
  await deps.outcomes.start(async (records) => {
    const appended = await handleOutcomes(records, { ...deps, live });
    if (appended.length > 0)
      deps.log.info({ outcomes: records.length, appended: appended.length }, 'rollout steps');
  });
  return { stop: () => deps.outcomes.stop() };
}
