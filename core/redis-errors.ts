/**
 * Redis errors as structured log lines (issue #14, observation 9). An ioredis client with no
 * `error` listener prints "[ioredis] Unhandled error event" and a stack on stderr at every
 * reconnection attempt; a BullMQ Queue, Worker or QueueEvents with none throws, and BullMQ prints
 * the error raw ("could not renew lock for job …", "Missing key for job …"). Every Redis client
 * of the bridge and the workers is given this listener instead: one pino line, message
 * `redis error`, with the fields
 *
 *   redis: { client, target }     which client (`bridge`, `sweeper`, `reconcile-queue`,
 *                                 `reconcile-worker`, …) and its Redis as host:port/db
 *   err:   { name, code, message } the error, its message with any URL credentials removed
 *   repeated                      how many errors of that code were not logged since its last line
 *
 * During an outage ioredis errs at every reconnection attempt (every 2 s at most); a code already
 * logged is logged again at most once per `quietMs` (30 s), with the count of those left out. When
 * an ioredis client is ready again after errors, one `redis connection restored` line says so.
 * The Redis password never reaches the log: the target is built from the URL's host, port and
 * database only, and credentials in an error message are cut out.
 */
import type { Logger } from 'pino';

/** What emits Redis errors: an ioredis client, a BullMQ Queue, Worker or QueueEvents. */
export interface RedisErrorSource {
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export interface RedisErrorFields {
  /** Which client this is, stable across restarts (`bridge`, `sweeper`, `reconcile-worker`, …). */
  client: string;
  /** Its Redis URL (UNICOP_REDIS_URL); only host, port and database are logged. */
  url: string;
  /** A code already logged is logged again after this long at the earliest. */
  quietMs?: number;
}

/** host:port/db of a Redis URL, without user name or password. */
export function redisTarget(url: string): string {
  try {
    const parsed = new URL(url);
    const db = parsed.pathname.replace(/^\//, '') || '0';
    return `${parsed.hostname}:${parsed.port || '6379'}/${db}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** A message with `scheme://user:password@` turned into `scheme://[redacted]@`. */
export function withoutCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi, '$1[redacted]@');
}

/** Attaches the structured error listener to `source`; returns `source`, for wiring in one line. */
export function logRedisErrors<S extends RedisErrorSource>(
  source: S,
  log: Logger,
  fields: RedisErrorFields,
): S {
  const redis = { client: fields.client, target: redisTarget(fields.url) };
  const quietMs = fields.quietMs ?? 30_000;
  const lastLogged = new Map<string, number>();
  const leftOut = new Map<string, number>();
  let failing = false;
  source.on('error', (error: Error) => {
    failing = true;
    const code = String((error as { code?: unknown }).code ?? error.name ?? 'Error');
    const now = Date.now();
    const last = lastLogged.get(code);
    if (last !== undefined && now - last < quietMs) {
      leftOut.set(code, (leftOut.get(code) ?? 0) + 1);
      return;
    }
    lastLogged.set(code, now);
    const repeated = leftOut.get(code) ?? 0;
    leftOut.delete(code);
    log.warn(
      {
        redis,
        err: { name: error.name, code, message: withoutCredentials(String(error.message)) },
        ...(repeated ? { repeated } : {}),
      },
      'redis error',
    );
  });
  // ioredis says `ready` once connected again; BullMQ's classes have no such event.
  (source as unknown as { on(event: 'ready', listener: () => void): unknown }).on('ready', () => {
    if (!failing) return;
    failing = false;
    lastLogged.clear();
    leftOut.clear();
    log.info({ redis }, 'redis connection restored');
  });
  return source;
}
