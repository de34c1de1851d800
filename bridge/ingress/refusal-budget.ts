/**
 * How many refusal audit events one source may write to `unicop.audit`: a token bucket per source
 * (the peer's address), so that a flood of bad requests cannot flood Kafka. A source starts with
 * `burst` tokens, gets `perMinute` back each minute (never above `burst`), and spends one per
 * refusal written. A refusal without a token is not written but counted, by reason; `drain()` hands
 * the counts over for one summary event per source ("N refusals suppressed from X").
 *
 * Memory is bounded: at most `maxSources` buckets, the least recently refused source forgotten first.
 * A forgotten source's uncounted suppressions move to one aggregate (`source: '*'`), so nothing
 * suppressed goes unreported; a forgotten source comes back with a full bucket, which bounds the
 * events per source by what `maxSources` distinct peers can send, not by a flood of one.
 */

export interface RefusalBudgetOptions {
  /** Refusal events a source may write at once. */
  burst: number;
  /** Tokens a source gets back per minute. */
  perMinute: number;
  /** Sources remembered at once. */
  maxSources: number;
}

/** Refusals of one source that were counted instead of written, since the last drain. */
export interface SuppressedRefusals {
  source: string;
  count: number;
  byReason: Record<string, number>;
  /** When the first of them was refused (ISO 8601). */
  since: string;
}

interface Bucket {
  tokens: number;
  refilledAt: number;
  suppressed: number;
  byReason: Map<string, number>;
  since: number;
}

/** The aggregate of forgotten sources' suppressions. */
export const forgottenSources = '*';

export class RefusalBudget {
  private readonly buckets = new Map<string, Bucket>();
  private readonly forgotten: Bucket;

  constructor(
    private readonly options: RefusalBudgetOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.forgotten = this.fresh(0);
  }

  /** True: write this refusal's audit event. False: it was counted for the source's summary. */
  take(source: string, reason: string): boolean {
    const at = this.now();
    const bucket = this.touch(source, at);
    const minutes = (at - bucket.refilledAt) / 60_000;
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + minutes * this.options.perMinute);
    bucket.refilledAt = at;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return true;
    }
    count(bucket, reason, 1, at);
    return false;
  }

  /** Every source's suppressions since the last drain (forgotten sources as one), counts reset. */
  drain(): SuppressedRefusals[] {
    const drained: SuppressedRefusals[] = [];
    for (const [source, bucket] of [...this.buckets, [forgottenSources, this.forgotten] as const]) {
      if (bucket.suppressed === 0) continue;
      drained.push({
        source,
        count: bucket.suppressed,
        byReason: Object.fromEntries(bucket.byReason),
        since: new Date(bucket.since).toISOString(),
      });
      bucket.suppressed = 0;
      bucket.byReason.clear();
    }
    return drained;
  }

  /** Sources remembered now (for tests and the bound). */
  get size(): number {
    return this.buckets.size;
  }

  /** The source's bucket, moved to the most recently used end; the oldest forgotten when full. */
  private touch(source: string, at: number): Bucket {
    const known = this.buckets.get(source);
    if (known) {
      this.buckets.delete(source);
      this.buckets.set(source, known);
      return known;
    }
    if (this.buckets.size >= this.options.maxSources) {
      const [oldest, bucket] = this.buckets.entries().next().value as [string, Bucket];
      this.buckets.delete(oldest);
      for (const [reason, n] of bucket.byReason) count(this.forgotten, reason, n, bucket.since);
    }
    const bucket = this.fresh(at);
    this.buckets.set(source, bucket);
    return bucket;
  }

  private fresh(at: number): Bucket {
    return { tokens: this.options.burst, refilledAt: at, suppressed: 0, byReason: new Map(), since: at };
  }
}

function count(bucket: Bucket, reason: string, n: number, at: number): void {
  if (bucket.suppressed === 0) bucket.since = at;
  else bucket.since = Math.min(bucket.since, at);
  bucket.suppressed += n;
  bucket.byReason.set(reason, (bucket.byReason.get(reason) ?? 0) + n);
}
