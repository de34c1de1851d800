/**
 * The fail-safe while automation is frozen reads nothing (decision 0062): no consumer-lag request to
 * Kafka, no resolver metrics — a freeze only a person lifts leaves nothing to act on. Unfrozen, it
 * reads both at every evaluation. And the `failed_roots` trigger counts a check run that ended
 * `failed` with `drift_unknown` (its job reported no drift summary), not a `drifted` one.
 *
 * Without services: the real Failsafe and FreezeView, the view fed by an empty stream (replayed at
 * once) and the freeze applied as the fail-safe applies its own trip. The real-stack fail-safe
 * (Kafka, unicop.control) is failsafe.test.ts, which freezes the shared topic.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { automaticFreeze } from '../../core/control/automatic-freeze.js';
import { FreezeView } from '../../core/control/freeze-view.js';
import type { EventLog } from '../../core/event-log/port.js';
import { Failsafe, type FailsafeSettings } from '../../workers/failsafe/failsafe.js';
import { FailedRootsTrigger } from '../../workers/failsafe/triggers.js';
import { checkRunEnd } from '../../workers/reconciler/policy.js';

const log = pino({ level: 'silent' });
const settings: FailsafeSettings = {
  checkMs: 60_000, // evaluations are called by the test
  lag: { records: 0, seconds: 0 },
  resolverErrors: { rate: 1, windowSeconds: 60, minRecords: 1 },
  failedRoots: { roots: 0, windowSeconds: 60 },
};

async function failsafeWithCounts() {
  const view = new FreezeView({
    start: async () => undefined,
    stop: async () => undefined,
    lag: async () => 0,
    offsets: async () => [],
  });
  await view.start();
  const reads = { lag: 0, attempts: 0 };
  const failsafe = new Failsafe({
    freezeView: view,
    // Never called: every trigger is off and, frozen, nothing is appended.
    eventLog: undefined as unknown as EventLog,
    readLag: async () => {
      reads.lag += 1;
      return 0;
    },
    lagOf: { group: 'unicop-resolver', topic: 'unicop.changes' },
    resolverAttempts: async () => {
      reads.attempts += 1;
      return { ok: 0, error: 0 };
    },
    runEnds: { start: async () => undefined, stop: async () => undefined },
    settings,
    log,
  });
  return { view, failsafe, reads };
}

describe('fail-safe while frozen', () => {
  it('reads the lag and the resolver metrics at every evaluation while not frozen, nothing while frozen', async () => {
    const { view, failsafe, reads } = await failsafeWithCounts();
    await failsafe.evaluate();
    await failsafe.evaluate();
    expect(reads).toEqual({ lag: 2, attempts: 2 });
    expect(failsafe.latest).toMatchObject({ frozen: false, lag: 0, trip: null });

    view.apply(automaticFreeze('consumer_lag', 'figures', new Date(), 'test').data);
    for (let i = 0; i < 5; i++) await failsafe.evaluate();
    expect(reads).toEqual({ lag: 2, attempts: 2 });
    expect(failsafe.evaluations).toBe(7);
    expect(failsafe.latest).toMatchObject({ frozen: true, lag: null, attempts: null, trip: null });
  });

  it("does not trip on a person's resume over the resolver errors made while it was frozen", async () => {
    let now = new Date('2026-12-02T12:00:00Z');
    const later = (seconds: number) => {
      now = new Date(now.getTime() + seconds * 1000);
    };
    let counts = { ok: 100, error: 0 };
    const appended: unknown[] = [];
    const view = new FreezeView({
      start: async () => undefined,
      stop: async () => undefined,
      lag: async () => 0,
      offsets: async () => [],
    });
    await view.start();
    const failsafe = new Failsafe({
      freezeView: view,
      eventLog: {
        append: async (messages: unknown[]) => void appended.push(...messages),
      } as unknown as EventLog,
      readLag: async () => 0,
      lagOf: { group: 'unicop-resolver', topic: 'unicop.changes' },
      resolverAttempts: async () => counts,
      runEnds: { start: async () => undefined, stop: async () => undefined },
      settings: { ...settings, resolverErrors: { rate: 0.5, windowSeconds: 600, minRecords: 50 } },
      log,
      clock: { now: () => now, sleep: async () => undefined },
    });
    await failsafe.evaluate(); // the last sample before the freeze
    later(1);
    view.apply(automaticFreeze('consumer_lag', 'figures', now, 'test').data);
    for (let i = 0; i < 360; i++) {
      later(5); // 30 min frozen, the resolver failing meanwhile (NetBox away)
      counts = { ok: counts.ok, error: counts.error + 2 };
      await failsafe.evaluate();
    }
    expect(counts.error).toBe(720);
    view.apply({
      scope: 'global',
      rootKey: null,
      frozen: false,
      reason: 'NetBox back',
      actor: 'alice',
      at: now.toISOString(),
    });
    for (let i = 0; i < 3; i++) {
      later(5);
      counts = { ok: counts.ok + 10, error: counts.error };
      await failsafe.evaluate();
    }
    expect(failsafe.latest).toMatchObject({ frozen: false, trip: null });
    expect(appended).toEqual([]);
  });

  it('failed_roots counts drift_unknown check runs (state failed), not drifted ones', () => {
    const at = new Date('2026-12-02T12:00:00Z');
    const unknown = new FailedRootsTrigger({ roots: 2, windowSeconds: 60 });
    const drifted = new FailedRootsTrigger({ roots: 2, windowSeconds: 60 });
    // How a check run ends when its job reported no summary, and when it found the target differing.
    const noSummary = checkRunEnd(null, 'AWX job 1');
    const differing = checkRunEnd({ drift: true, changedFiles: ['/etc/x'] }, 'AWX job 2');
    expect([noSummary.failureClass, differing.failureClass]).toEqual(['drift_unknown', 'drift']);
    for (const rootKey of ['site/1', 'site/2', 'site/3']) {
      unknown.observe({ rootKey, state: noSummary.state, finishedAt: at });
      drifted.observe({ rootKey, state: differing.state, finishedAt: at });
    }
    expect(unknown.check(at, null)?.trigger).toBe('failed_roots');
    expect(drifted.check(at, null)).toBeNull();
  });
});
