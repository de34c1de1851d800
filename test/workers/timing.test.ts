/**
 * The reconcile queue's stall timing comes from the lease TTL (workers/timing.ts): a killed worker's
 * job is back on the queue before its lease expires, for every TTL the configuration accepts, so the
 * run is adopted within the TTL and not after BullMQ's default 30 s lock + 30 s stalled check.
 */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../core/config.js';
import { reconcileQueueTiming } from '../../workers/timing.js';

describe('reconcile queue timing', () => {
  it('puts a dead worker’s job back before its lease expires, for every TTL the configuration accepts', () => {
    const ttl = configSchema.shape.UNICOP_LEASE_TTL_SECONDS;
    const accepted = [1, 2, 3, 4, 5, 10, 30, 60, 120, 240, 600, 3600, 3601].filter(
      (seconds) => ttl.safeParse(seconds).success,
    );
    expect(accepted[0]).toBe(3); // the schema's minimum, where the margin is smallest
    for (const seconds of accepted) {
      const { lockDuration, stalledInterval } = reconcileQueueTiming(seconds);
      // Lock expiry, then at most one stalled-check interval: the job waits again by then.
      expect(lockDuration + stalledInterval, `TTL ${seconds} s`).toBeLessThanOrEqual(seconds * 1000);
      expect(lockDuration, `TTL ${seconds} s`).toBeGreaterThanOrEqual(2_000); // renewed at half: 1 s of slack
      expect(stalledInterval, `TTL ${seconds} s`).toBeGreaterThan(0);
    }
  });

  it('with the default TTL (60 s) a job stalls after 15 s and is checked every 7.5 s', () => {
    const ttl = configSchema.shape.UNICOP_LEASE_TTL_SECONDS.parse(undefined);
    expect(ttl).toBe(60);
    expect(reconcileQueueTiming(ttl)).toEqual({ lockDuration: 15_000, stalledInterval: 7_500 });
  });
});
