/**
 * One clock (core/clock.ts): code that waits or decides by the time takes it from the Clock it is
 * given, so a test moves time by hand and nothing waits for real. Covered without services: the
 * dependency wait of `unicop <service> --wait` (its probe interval and deadline) and the sweeper
 * (its check interval and sweep interval).
 */
import { describe, expect, it } from 'vitest';
import { DependencyTimeoutError, waitForDependencies } from '../../core/cli/dependencies.js';
import type { Clock } from '../../core/clock.js';
import type { EventLog } from '../../core/event-log/port.js';
import { createLogger } from '../../core/logger.js';
import type { PluginClient, PluginRoot } from '../../core/plugin/client.js';
import { Sweeper } from '../../workers/sweeper/sweeper.js';

/** Lets every promise chain that can run now run (timers of the real clock are never involved). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A clock that moves only when told to, waking its sleepers in time order. */
class ManualClock implements Clock {
  private ms = Date.parse('2026-12-01T12:00:00.000Z');
  private sleepers: { at: number; wake: () => void }[] = [];

  now(): Date {
    return new Date(this.ms);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const aborted = () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        resolve();
      };
      const sleeper = {
        at: this.ms + ms,
        wake: () => {
          signal?.removeEventListener('abort', aborted);
          resolve();
        },
      };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  /** Moves the time forward by `ms`, waking each sleeper at its time and letting it run. */
  async advance(ms: number): Promise<void> {
    const end = this.ms + ms;
    await settle();
    for (;;) {
      const next = this.sleepers.filter((s) => s.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.sleepers = this.sleepers.filter((s) => s !== next);
      this.ms = Math.max(this.ms, next.at);
      next.wake();
      await settle();
    }
    this.ms = end;
    await settle();
  }

  get waiting(): number {
    return this.sleepers.length;
  }
}

const log = createLogger('one-clock-test', 'silent');

describe('one clock', () => {
  it('--wait probes every UNICOP_DEPENDENCY_PROBE_INTERVAL_MS of the clock it is given and gives up at its deadline', async () => {
    const clock = new ManualClock();
    let probed = 0;
    const never = {
      name: 'kafka',
      check: async () => {
        probed++;
        return 'topics missing: unicop.changes';
      },
    };
    let outcome: unknown = 'still waiting';
    void waitForDependencies([never], 10, log, { intervalMs: 2000, clock }).then(
      () => {
        outcome = 'resolved';
      },
      (error: unknown) => {
        outcome = error;
      },
    );
    await clock.advance(0);
    expect(probed).toBe(1);
    await clock.advance(1999);
    expect(probed).toBe(1);
    await clock.advance(1);
    expect(probed).toBe(2);
    await clock.advance(7999);
    expect(probed).toBe(5);
    expect(outcome).toBe('still waiting');
    await clock.advance(1);
    expect(probed).toBe(6); // the round at 10 s, the deadline: no more
    expect(outcome).toBeInstanceOf(DependencyTimeoutError);
    expect((outcome as DependencyTimeoutError).waitingFor).toEqual([
      'kafka (topics missing: unicop.changes)',
    ]);
  });

  it('the sweeper checks every checkMs and sweeps once intervalMs has gone by on its clock; stop() ends the checks', async () => {
    const clock = new ManualClock();
    let sweeps = 0;
    let checks = 0;
    const plugin = {
      async *allRoots(): AsyncGenerator<PluginRoot> {
        sweeps++;
        yield* []; // a NetBox with no roots: each sweep lists nothing
      },
    } as unknown as PluginClient;
    const eventLog: EventLog = { append: async () => undefined } as unknown as EventLog;
    const freezeView = {
      globalState: () => {
        checks++;
        return null;
      },
    } as unknown as ConstructorParameters<typeof Sweeper>[0]['freezeView'];
    const sweeper = new Sweeper({
      plugin,
      eventLog,
      log,
      freezeView,
      intervalMs: 60_000,
      checkMs: 5_000,
      sweepOnStart: false,
      clock,
    });
    sweeper.start();
    await clock.advance(0);
    expect(checks).toBe(1);
    await clock.advance(55_000);
    expect(checks).toBe(12);
    expect(sweeps).toBe(0);
    await clock.advance(5_000);
    expect(sweeps).toBe(1);
    await clock.advance(59_999);
    expect(sweeps).toBe(1);
    await clock.advance(1);
    expect(sweeps).toBe(2);
    sweeper.stop();
    await clock.advance(0);
    expect(clock.waiting).toBe(0);
    const before = checks;
    await clock.advance(60_000);
    expect(checks).toBe(before);
  });
});
