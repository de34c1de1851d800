/**
 * The one clock. Code that reads the time or waits takes a `Clock` instead of calling `Date.now()`,
 * `new Date()` or `setTimeout` itself, so a decision can be given its time (issue #13: "no clock in
 * decide(); time comes in the observation") and a test can hand in a clock it moves by hand.
 */
export interface Clock {
  /** The current time. */
  now(): Date;
  /** Resolves after `ms` milliseconds, or at once when `signal` is (or becomes) aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Wall-clock time and real timers: what every service runs with. */
export const systemClock: Clock = {
  now: () => new Date(),
  sleep,
};
