/**
 * The fail-safe: read-only on uncertainty (issue #17 item 4, decision 0055). Every
 * `UNICOP_FAILSAFE_CHECK_MS` it reads what the workers already measure — the resolver group's lag
 * on unicop.changes, the resolver's record attempts by outcome, the runs' ends on unicop.outcomes —
 * and when a trigger trips while automation is not frozen, it freezes automation globally: a
 * freeze record on `unicop.control` with `actor: unicop` and the trigger's figures as the reason,
 * and its audit event (core/control/automatic-freeze.ts). Every part that obeys a person's freeze
 * obeys it: the dispatcher holds intents, queued jobs wait, the sweeper sweeps nothing.
 *
 * It never lifts a freeze, its own included: a condition that clears leaves automation frozen
 * until a person resumes (`unicop resume`, `POST /resume`). Nothing is evaluated before the freeze
 * view has replayed unicop.control, so a restarted process sees its earlier trip there and does
 * not trip again; evidence from before a person's resume does not count (triggers.ts).
 */
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../../core/clock.js';
import type { UnicopConfig } from '../../core/config.js';
import { automaticFreeze, resumedAt } from '../../core/control/automatic-freeze.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import type { EventLog } from '../../core/event-log/port.js';
import type { RunEndsReader } from './run-ends.js';
import {
  type AttemptCounts,
  ConsumerLagTrigger,
  FailedRootsTrigger,
  ResolverErrorTrigger,
  type Trip,
} from './triggers.js';

export const failsafeSource = 'unicop/failsafe';

export interface FailsafeSettings {
  checkMs: number;
  lag: { records: number; seconds: number };
  resolverErrors: { rate: number; windowSeconds: number; minRecords: number };
  failedRoots: { roots: number; windowSeconds: number };
}

export function failsafeSettings(
  config: Pick<
    UnicopConfig,
    | 'UNICOP_FAILSAFE_CHECK_MS'
    | 'UNICOP_FAILSAFE_LAG_RECORDS'
    | 'UNICOP_FAILSAFE_LAG_SECONDS'
    | 'UNICOP_FAILSAFE_RESOLVER_ERROR_RATE'
    | 'UNICOP_FAILSAFE_RESOLVER_ERROR_WINDOW_SECONDS'
    | 'UNICOP_FAILSAFE_RESOLVER_MIN_RECORDS'
    | 'UNICOP_FAILSAFE_FAILED_ROOTS'
    | 'UNICOP_FAILSAFE_FAILED_ROOTS_WINDOW_SECONDS'
  >,
): FailsafeSettings {
  return {
    checkMs: config.UNICOP_FAILSAFE_CHECK_MS,
    lag: { records: config.UNICOP_FAILSAFE_LAG_RECORDS, seconds: config.UNICOP_FAILSAFE_LAG_SECONDS },
    resolverErrors: {
      rate: config.UNICOP_FAILSAFE_RESOLVER_ERROR_RATE,
      windowSeconds: config.UNICOP_FAILSAFE_RESOLVER_ERROR_WINDOW_SECONDS,
      minRecords: config.UNICOP_FAILSAFE_RESOLVER_MIN_RECORDS,
    },
    failedRoots: {
      roots: config.UNICOP_FAILSAFE_FAILED_ROOTS,
      windowSeconds: config.UNICOP_FAILSAFE_FAILED_ROOTS_WINDOW_SECONDS,
    },
  };
}

export interface FailsafeDeps {
  freezeView: FreezeView;
  eventLog: EventLog;
  /** The watched consumer group's lag (workers: `unicop-resolver` on unicop.changes); throws when unreadable. */
  readLag: () => Promise<number>;
  /** Which group and topic that is, for the reason. */
  lagOf: { group: string; topic: string };
  /** The resolver's cumulative record attempts by outcome (this process's metrics). */
  resolverAttempts: () => Promise<AttemptCounts>;
  /** The runs' ends on unicop.outcomes from the window's start on (run-ends.ts). */
  runEnds: RunEndsReader;
  settings: FailsafeSettings;
  log: Logger;
  /** Counts trips and unreadable readings (workers/metrics.ts); optional in tests. */
  metrics?: {
    failsafeTrips: { inc(labels: { trigger: string }): void };
    probeFailures: { inc(labels: { probe: string }): void };
  };
  clock?: Clock;
}

/** What one evaluation read and decided (for logs and tests). */
export interface Evaluation {
  at: Date;
  /** Null when it could not be read, or was not read (frozen). */
  lag: number | null;
  attempts: AttemptCounts | null;
  /** Already frozen (by a person or by an earlier trip): nothing was evaluated to act on. */
  frozen: boolean;
  trip: Trip | null;
}

export class Failsafe {
  private readonly lag: ConsumerLagTrigger;
  private readonly resolverErrors: ResolverErrorTrigger;
  private readonly failedRoots: FailedRootsTrigger;
  private timer: NodeJS.Timeout | undefined;
  private evaluating: Promise<Evaluation> | null = null;
  private stopped = false;
  /** Evaluations done, and the latest (tests wait on these instead of on time). */
  evaluations = 0;
  latest: Evaluation | null = null;

  constructor(private readonly deps: FailsafeDeps) {
    const { settings, lagOf } = deps;
    this.lag = new ConsumerLagTrigger({ ...settings.lag, ...lagOf });
    this.resolverErrors = new ResolverErrorTrigger(settings.resolverErrors);
    this.failedRoots = new FailedRootsTrigger(settings.failedRoots);
  }

  /** Waits for unicop.control's replay, starts reading run ends, then evaluates on the interval. */
  async start(): Promise<void> {
    try {
      await this.deps.freezeView.replayed();
    } catch (error) {
      if (this.stopped) return; // stopped before the replay: nothing to evaluate
      throw error;
    }
    await this.deps.runEnds.start((end) => this.failedRoots.observe(end));
    if (this.stopped) return;
    this.timer = setInterval(() => void this.evaluate().catch(() => undefined), this.deps.settings.checkMs);
    this.deps.log.info({ settings: this.deps.settings }, 'fail-safe evaluating its triggers');
  }

  /** One evaluation (never two at once: a call during one gets that one). */
  evaluate(): Promise<Evaluation> {
    this.evaluating ??= this.evaluateOnce().finally(() => {
      this.evaluating = null;
    });
    return this.evaluating;
  }

  private async evaluateOnce(): Promise<Evaluation> {
    const { deps } = this;
    const at = (deps.clock ?? systemClock).now();
    if (deps.freezeView.globalState()?.frozen === true) {
      // Frozen (by a person or an earlier trip): nothing would be acted on, so nothing is read — no
      // lag request to Kafka, no metrics. Evidence from before a resume does not count anyway.
      this.evaluations += 1;
      this.latest = { at, lag: null, attempts: null, frozen: true, trip: null };
      return this.latest;
    }
    const lag = await deps.readLag().catch((error: unknown) => {
      deps.metrics?.probeFailures.inc({ probe: 'failsafe_lag' });
      deps.log.warn({ err: error }, 'fail-safe: the consumer lag could not be read');
      return null;
    });
    const attempts = await deps.resolverAttempts();
    this.lag.observe(lag, at);
    this.resolverErrors.observe(attempts, at);
    const freeze = deps.freezeView.globalState();
    const frozen = freeze?.frozen === true;
    const since = resumedAt(freeze);
    const trip = frozen
      ? null
      : (this.lag.check(at, since) ??
        this.resolverErrors.check(at, since) ??
        this.failedRoots.check(at, since));
    if (trip) await this.freeze(trip, at);
    this.evaluations += 1;
    this.latest = { at, lag, attempts, frozen, trip };
    return this.latest;
  }

  /** Appends the freeze (and its audit event); a failed append is logged and tried at the next evaluation. */
  private async freeze(trip: Trip, at: Date): Promise<void> {
    const { data, messages } = automaticFreeze(trip.trigger, trip.figures, at, failsafeSource);
    try {
      await this.deps.eventLog.append(messages);
    } catch (error) {
      this.deps.log.error(
        { err: error, trigger: trip.trigger },
        'fail-safe tripped but Kafka took no freeze',
      );
      throw error;
    }
    this.deps.freezeView.apply(data);
    this.deps.metrics?.failsafeTrips.inc({ trigger: trip.trigger });
    this.deps.log.error(
      { trigger: trip.trigger, reason: data.reason },
      'fail-safe tripped: automation frozen globally until a person resumes it (docs/runbooks/unicop-froze-itself.md)',
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.evaluating?.catch(() => undefined);
    await this.deps.runEnds.stop();
  }
}
