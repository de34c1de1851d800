/**
 * Idempotency keys for the admin API's acting routes (docs/decisions/0034-operator-cli.md). A
 * request with an `Idempotency-Key` header claims the key in Redis (SET NX) together with the
 * fingerprint of what it asks — method, path and body (JSON with its keys sorted); once the route
 * answered 2xx, the answer is stored under the key for `ttlSeconds`. Then:
 *   - the same key and the same request again → the stored answer, replayed; nothing acts twice;
 *   - the same key with another request        → 422 `idempotency_key_reused`; nothing acts;
 *   - the same key while the first is still being handled → 409 `idempotency_in_flight`, retry later.
 * An answer that is not 2xx is not kept (the claim is dropped), so a retry after a failure acts.
 * A claim whose handler never finished (the bridge died) expires after `inFlightSeconds`.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface StoredAnswer {
  status: number;
  body: unknown;
}

/** What a key holds: the fingerprint of the request that claimed it, and its answer once given. */
export interface IdempotencyRecord {
  fingerprint: string;
  answer: StoredAnswer | null;
}

/** The store of idempotency keys (a port: Redis in the bridge). */
export interface IdempotencyStore {
  /** Claims `key` for `fingerprint`: null when this request claimed it, else what the key holds. */
  claim(key: string, fingerprint: string): Promise<IdempotencyRecord | null>;
  /** Keeps the answer under the key. */
  complete(key: string, record: IdempotencyRecord): Promise<void>;
  /** Drops the claim (the request failed: a retry must be able to act). */
  release(key: string): Promise<void>;
}

/** Sorted-key JSON of a body, so the same object sent twice has one fingerprint. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function requestFingerprint(method: string, path: string, raw: Buffer): string {
  let body = raw.toString('utf8');
  if (raw.length > 0) {
    try {
      body = canonical(JSON.parse(body));
    } catch {
      // not JSON: the raw text is the fingerprint (the route will refuse it anyway)
    }
  }
  return createHash('sha256').update(`${method} ${path}\n${body}`).digest('hex');
}

export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
    // A request the bridge is still handling; longer than any admin route takes (NetBox + Kafka).
    private readonly inFlightSeconds = 120,
  ) {}

  private redisKey(key: string): string {
    return `unicop:admin-idempotency:${createHash('sha256').update(key).digest('hex')}`;
  }

  async claim(key: string, fingerprint: string): Promise<IdempotencyRecord | null> {
    const redisKey = this.redisKey(key);
    const mine: IdempotencyRecord = { fingerprint, answer: null };
    // Twice at most: a key that expires between SET NX and GET is claimed on the second try.
    for (let attempt = 0; attempt < 2; attempt++) {
      const claimed = await this.redis.set(redisKey, JSON.stringify(mine), 'EX', this.inFlightSeconds, 'NX');
      if (claimed === 'OK') return null;
      const held = await this.redis.get(redisKey);
      if (held !== null) return JSON.parse(held) as IdempotencyRecord;
    }
    throw new Error(`idempotency key could neither be claimed nor read (${redisKey})`);
  }

  async complete(key: string, record: IdempotencyRecord): Promise<void> {
    await this.redis.set(this.redisKey(key), JSON.stringify(record), 'EX', this.ttlSeconds);
  }

  async release(key: string): Promise<void> {
    await this.redis.del(this.redisKey(key));
  }
}
