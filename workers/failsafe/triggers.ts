/**
 * The fail-safe's triggers, pure: each is told what was read (a lag, the resolver's counters, a
 * run's outcome) and when, and says at a given time whether it trips, with the figures that made
 * it. No I/O here; failsafe.ts reads and acts. Evidence older than the last time a person resumed
 * automation (`since`) does not count: they have seen it and decided; a condition that goes on
 * after the resume trips again once it has held long enough on its own.
 */
import type { FailsafeTrigger } from '../../core/control/automatic-freeze.js';

export interface Trip {
  trigger: FailsafeTrigger;
  /** The figures, for the freeze's reason: what was read, against which threshold. */
  figures: string;
}

const seconds = (from: Date, to: Date) => Math.max(0, (to.getTime() - from.getTime()) / 1000);
const later = (a: Date, b: Date | null) => (b && b > a ? b : a);

/** `consumer_lag`: the resolver's lag on unicop.changes above `records` on every reading for `seconds`. */
export class ConsumerLagTrigger {
  private aboveSince: Date | null = null;
  /** The time of the last readable reading: a run above is measured up to it, never past it. */
  private lastAt: Date | null = null;
  private last = 0;

  constructor(
    private readonly settings: { records: number; seconds: number; group: string; topic: string },
  ) {}

  /** A reading; null when the lag could not be read (it neither breaks nor lengthens a run above). */
  observe(lag: number | null, at: Date): void {
    if (lag === null) return;
    this.last = lag;
    this.lastAt = at;
    if (lag > this.settings.records) this.aboveSince ??= at;
    else this.aboveSince = null;
  }

  check(_at: Date, since: Date | null): Trip | null {
    if (this.settings.records === 0 || !this.aboveSince || !this.lastAt) return null;
    // Up to the last good reading, not to the check's time: unreadable readings after one above prove
    // nothing (the lag may have fallen meanwhile).
    const held = seconds(later(this.aboveSince, since), this.lastAt);
    if (held < this.settings.seconds) return null;
    const { group, topic, records } = this.settings;
    return {
      trigger: 'consumer_lag',
      figures: `consumer group ${group} has ${this.last} records of ${topic} not handled, above ${records} on every reading for ${Math.round(held)} s (threshold ${this.settings.seconds} s)`,
    };
  }
}

/** The resolver's cumulative record attempts by outcome (workers/metrics.ts `unicop_stage_items_total`). */
export interface AttemptCounts {
  ok: number;
  error: number;
}

/** `resolver_errors`: more than `rate` of the resolver's record attempts over `windowSeconds` ended in an error. */
export class ResolverErrorTrigger {
  private readonly samples: { at: Date; counts: AttemptCounts }[] = [];

  constructor(private readonly settings: { rate: number; windowSeconds: number; minRecords: number }) {}

  observe(counts: AttemptCounts, at: Date): void {
    this.samples.push({ at, counts });
    // Keep one sample at or before the window's start as the baseline; drop what is older.
    const start = at.getTime() - this.settings.windowSeconds * 1000;
    while (this.samples.length > 1 && (this.samples[1]?.at.getTime() ?? 0) <= start) this.samples.shift();
  }

  check(at: Date, since: Date | null): Trip | null {
    if (this.settings.rate >= 1) return null;
    const start = new Date(at.getTime() - this.settings.windowSeconds * 1000);
    // A resume inside the window: the first sample taken at or after it. Nothing is sampled while
    // frozen, so the latest sample before a resume is from before the freeze, and counting from it
    // would count every error made while frozen (review B #1).
    // Otherwise the latest sample at or before the window's start, else the first after it (a
    // process younger than the window).
    const baseline =
      since && since > start
        ? this.samples.find((s) => s.at >= since)
        : ([...this.samples].reverse().find((s) => s.at <= start) ?? this.samples.find((s) => s.at >= start));
    const current = this.samples[this.samples.length - 1];
    if (!baseline || !current || baseline === current) return null;
    const errors = current.counts.error - baseline.counts.error;
    const total = errors + current.counts.ok - baseline.counts.ok;
    if (total < this.settings.minRecords || errors / total <= this.settings.rate) return null;
    const share = ((100 * errors) / total).toFixed(1);
    return {
      trigger: 'resolver_errors',
      figures: `${errors} of ${total} resolver record attempts ended in an error over the last ${Math.round(seconds(baseline.at, current.at))} s (${share} %, above ${100 * this.settings.rate} %; at least ${this.settings.minRecords} attempts counted)`,
    };
  }
}

/** A run's end as `unicop.outcomes` carries it. */
export interface RunEnd {
  rootKey: string;
  state: string;
  /** The outcome's class (null for a success); absent counts as a failure of any class. */
  failureClass?: string | null;
  finishedAt: Date;
}

/**
 * The terminal states that count as a failure: UNICOP's runs went wrong, not a person's decision
 * (`canceled`, `denied`) nor the target differing (`drifted`). A check run whose job reported no
 * drift summary (class `drift_unknown`) ends `failed` and counts (decision 0062): many roots whose
 * check jobs say nothing is the check template or its playbook broken — what this trigger is for.
 */
export const failedStates: readonly string[] = ['failed', 'timed_out'];

/**
 * Failed runs that do not count (decisions 0060, 0062): `invalid_snapshot` is the validation gate
 * refusing the root's own data before anything reached AWX — a data refusal, not UNICOP or its
 * infrastructure failing, and freezing every root over many refused edits would stop the roots
 * whose data is fine. `template_misconfigured` counts, a bad per-root override's refusal included:
 * the class cannot tell it from a kind's template or schema broken for every root, which is what
 * this trigger is for (and many bad overrides at once is a mass edit worth stopping).
 */
export const uncountedClasses: readonly string[] = ['invalid_snapshot'];

/** `failed_roots`: runs failed for more than `roots` distinct roots within `windowSeconds`. */
export class FailedRootsTrigger {
  /** Root key → its latest failure's end. */
  private readonly failures = new Map<string, Date>();

  constructor(private readonly settings: { roots: number; windowSeconds: number }) {}

  observe(end: RunEnd): void {
    if (!failedStates.includes(end.state)) return;
    if (end.failureClass && uncountedClasses.includes(end.failureClass)) return;
    const known = this.failures.get(end.rootKey);
    if (!known || end.finishedAt > known) this.failures.set(end.rootKey, end.finishedAt);
  }

  check(at: Date, since: Date | null): Trip | null {
    const start = new Date(at.getTime() - this.settings.windowSeconds * 1000);
    for (const [key, when] of this.failures) if (when < start) this.failures.delete(key);
    if (this.settings.roots === 0) return null;
    const cutoff = later(start, since);
    const roots = [...this.failures].filter(([, when]) => when >= cutoff).map(([key]) => key);
    if (roots.length <= this.settings.roots) return null;
    const named = roots.sort().slice(0, 10).join(', ');
    const more = roots.length > 10 ? ` and ${roots.length - 10} more` : '';
    return {
      trigger: 'failed_roots',
      figures: `runs failed for ${roots.length} distinct roots within ${this.settings.windowSeconds} s (more than ${this.settings.roots}): ${named}${more}`,
    };
  }
}
