/**
 * Sweeps asked for through the admin API (`POST /sweep`, `unicop sweep`). The workers' own
 * `POST /sweep` answers loopback peers only, so an operator elsewhere asks the bridge, which puts a
 * request id on a Redis list; the sweeper of one workers process takes every waiting request at
 * its next check (an atomic LPOP: each request is taken once, by one process), sweeps once for all
 * of them, and records the report under each request id for a day, where the admin API
 * reads it back (`GET /sweeps/{id}`). The Redis keys live here, once, for both sides.
 */
import type { Redis } from 'ioredis';

export const sweepRequestsKey = 'unicop:sweep-requests';
const stateKey = (requestId: string) => `unicop:sweep-request:${requestId}`;
// A day: long enough for an operator to look at what their sweep did.
const stateTtlSeconds = 24 * 3600;

/** What one sweep found: roots listed, and the keys of the roots it emitted an intent for. */
export interface SweepRequestReport {
  requestId: string;
  requestedAt: string;
  finishedAt: string;
  scanned: number;
  emitted: string[];
}

/** Where a request stands: waiting for a sweeper, or done with its report. */
export type SweepRequestState =
  | { state: 'requested'; requestId: string; requestedAt: string }
  | ({ state: 'done' } & SweepRequestReport);

/** Queues a sweep request (the bridge); its state reads `requested` until a sweeper reports. */
export async function requestSweep(redis: Redis, requestId: string, at: Date): Promise<void> {
  const requestedAt = at.toISOString();
  const state: SweepRequestState = { state: 'requested', requestId, requestedAt };
  await redis
    .multi()
    .set(stateKey(requestId), JSON.stringify(state), 'EX', stateTtlSeconds)
    .rpush(sweepRequestsKey, JSON.stringify({ requestId, requestedAt }))
    .exec();
}

/** Takes every waiting request (the sweeper); none taken is an empty list. */
export async function takeSweepRequests(redis: Redis): Promise<{ requestId: string; requestedAt: string }[]> {
  const taken = (await redis.lpop(sweepRequestsKey, 1000)) ?? [];
  return taken.flatMap((raw) => {
    try {
      const parsed = JSON.parse(raw) as { requestId?: unknown; requestedAt?: unknown };
      return typeof parsed.requestId === 'string' && typeof parsed.requestedAt === 'string'
        ? [{ requestId: parsed.requestId, requestedAt: parsed.requestedAt }]
        : [];
    } catch {
      return [];
    }
  });
}

/** Records what the sweep did for one request (the sweeper). */
export async function recordSweepReport(redis: Redis, report: SweepRequestReport): Promise<void> {
  const state: SweepRequestState = { state: 'done', ...report };
  await redis.set(stateKey(report.requestId), JSON.stringify(state), 'EX', stateTtlSeconds);
}

/** Where a request stands, or null for an id never requested (or whose state expired). */
export async function sweepRequestState(redis: Redis, requestId: string): Promise<SweepRequestState | null> {
  const raw = await redis.get(stateKey(requestId));
  return raw === null ? null : (JSON.parse(raw) as SweepRequestState);
}
