/**
 * The reconciler's policy, declared once: what each failure class leads to (a new, visible run
 * with cause `retry` after a backoff, or a terminal end that waits for a human or a new change),
 * and when a root's change window is open. Both are pure, so they are tested without services.
 */
import type { failureClasses } from '../../core/events/catalogue.js';

export type FailureClass = (typeof failureClasses)[number];

export interface FailureAction {
  action: 'retry' | 'terminal';
  /** Why, in one line: shown in the decision record and the run's summary. */
  why: string;
}

/** The one place failure classes map to actions (docs/decisions/0006-reconciler.md). */
export const failureActions: Record<FailureClass, FailureAction> = {
  executor_unavailable: {
    action: 'retry',
    why: 'AWX was unreachable or refused the call; it may be back soon',
  },
  template_misconfigured: {
    action: 'terminal',
    why: 'the template must be fixed; a retry would fail the same way',
  },
  job_failed: { action: 'terminal', why: 'the playbook failed; repeating it unchanged repeats the failure' },
  job_error: { action: 'retry', why: 'AWX could not run the job (an executor-side error, not the playbook)' },
  canceled: { action: 'terminal', why: 'someone canceled the job on purpose' },
  timed_out: { action: 'terminal', why: 'the run exceeded its policy timeout; a human should look first' },
  denied: { action: 'terminal', why: 'an approver said no' },
  lease_lost: { action: 'terminal', why: 'another worker holds the root now and converges it' },
};

export interface RetryPolicy {
  /** Runs in a chain of retries, the first one included; the last failure is terminal. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** The delay before retry attempt `attempt` (2, 3, …): exponential from the base, capped. */
export function retryDelayMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 2));
}

// ---- change windows ---------------------------------------------------------------------------

const weekdays = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof weekdays)[number];

/** One window as the plugin normalises it (docs/plugin-api.md): a start day belongs to `days`. */
export interface ChangeWindow {
  days?: Weekday[];
  start: string;
  end: string;
  timezone?: string;
}

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Weekday and minute of the day of `at` in `timezone`. */
function localTime(at: Date, timezone: string): { day: Weekday; minute: number } {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timezone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]));
  const day = String(parts.weekday).toLowerCase().slice(0, 3) as Weekday;
  return { day, minute: Number(parts.hour) * 60 + Number(parts.minute) };
}

function previousDay(day: Weekday): Weekday {
  return weekdays[(weekdays.indexOf(day) + 6) % 7] as Weekday;
}

function inWindow(window: ChangeWindow, at: Date): boolean {
  const days = window.days ?? [...weekdays];
  const { day, minute } = localTime(at, window.timezone ?? 'UTC');
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  if (start < end) return days.includes(day) && minute >= start && minute < end;
  // Crosses midnight: the part after midnight belongs to the day the window started.
  return (days.includes(day) && minute >= start) || (days.includes(previousDay(day)) && minute < end);
}

/** Normalises the policy value (null, one window, or a list) to a list; empty means "any time". */
export function changeWindows(policyValue: unknown): ChangeWindow[] {
  if (policyValue === null || policyValue === undefined) return [];
  return (Array.isArray(policyValue) ? policyValue : [policyValue]) as ChangeWindow[];
}

/**
 * Whether a change may start at `at`, and if not, when the next window opens (to the minute;
 * null if none opens within eight days, which only a window with no days can cause).
 */
export function windowState(windows: ChangeWindow[], at: Date): { open: boolean; opensAt: Date | null } {
  if (windows.length === 0 || windows.some((w) => inWindow(w, at))) return { open: true, opensAt: at };
  const minute = 60_000;
  let probe = Math.ceil(at.getTime() / minute) * minute;
  for (let i = 0; i < 8 * 24 * 60; i++, probe += minute) {
    const candidate = new Date(probe);
    if (windows.some((w) => inWindow(w, candidate))) return { open: false, opensAt: candidate };
  }
  return { open: false, opensAt: null };
}
