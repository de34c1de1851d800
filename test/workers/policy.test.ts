/**
 * The reconciler's declared policy, without services: every failure class maps to exactly one
 * action; retry backoff grows and is capped; change windows (same day, across midnight, days of the
 * week, time zones) say open/closed and when they open next.
 */
import { describe, expect, it } from 'vitest';
import { failureClasses } from '../../core/events/catalogue.js';
import { changeWindows, failureActions, retryDelayMs, windowState } from '../../workers/reconciler/policy.js';

describe('failure classes → actions', () => {
  it('maps every failure class the catalogue knows, and nothing else', () => {
    expect(Object.keys(failureActions).sort()).toEqual([...failureClasses].sort());
    for (const action of Object.values(failureActions)) {
      expect(['retry', 'terminal']).toContain(action.action);
      expect(action.why.length).toBeGreaterThan(10);
    }
  });

  it('retries what may pass by itself and stops on what needs a human', () => {
    expect(failureActions.executor_unavailable.action).toBe('retry');
    expect(failureActions.job_error.action).toBe('retry');
    expect(failureActions.template_misconfigured.action).toBe('terminal');
    expect(failureActions.denied.action).toBe('terminal');
  });

  it('backs off exponentially from the base, capped', () => {
    const policy = { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 5000 };
    expect([2, 3, 4, 5, 6].map((n) => retryDelayMs(policy, n))).toEqual([1000, 2000, 4000, 5000, 5000]);
  });
});

describe('change windows', () => {
  const at = (iso: string) => new Date(iso);

  it('no window means any time', () => {
    expect(windowState(changeWindows(null), at('2026-11-23T12:00:00Z'))).toMatchObject({ open: true });
  });

  it('a daily window: open inside, closed outside with the next opening', () => {
    const windows = changeWindows({ start: '02:00', end: '03:00' });
    expect(windowState(windows, at('2026-11-23T02:30:00Z')).open).toBe(true);
    expect(windowState(windows, at('2026-11-23T03:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-11-24T02:00:00Z'),
    });
    expect(windowState(windows, at('2026-11-23T01:59:30Z')).opensAt).toEqual(at('2026-11-23T02:00:00Z'));
  });

  it('a window across midnight belongs to the day it starts', () => {
    // Saturdays 22:00 → 04:00: Sunday 03:00 is inside, Sunday 22:00 is not.
    const windows = changeWindows([{ days: ['sat'], start: '22:00', end: '04:00' }]);
    expect(windowState(windows, at('2026-11-29T03:00:00Z')).open).toBe(true); // Sunday
    expect(windowState(windows, at('2026-11-28T21:59:00Z')).opensAt).toEqual(at('2026-11-28T22:00:00Z'));
    expect(windowState(windows, at('2026-11-29T22:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-05T22:00:00Z'),
    });
  });

  it('honours the window time zone', () => {
    const windows = changeWindows([
      { start: '09:00', end: '17:00', timezone: 'Europe/Berlin', days: ['mon'] },
    ]);
    expect(windowState(windows, at('2026-11-23T08:30:00Z')).open).toBe(true); // 09:30 in Berlin
    expect(windowState(windows, at('2026-11-23T07:30:00Z')).opensAt).toEqual(at('2026-11-23T08:00:00Z'));
  });

  it('any of several windows opens the gate', () => {
    const windows = changeWindows([
      { start: '01:00', end: '02:00' },
      { start: '13:00', end: '14:00' },
    ]);
    expect(windowState(windows, at('2026-11-23T13:15:00Z')).open).toBe(true);
    expect(windowState(windows, at('2026-11-23T02:15:00Z')).opensAt).toEqual(at('2026-11-23T13:00:00Z'));
  });
});
