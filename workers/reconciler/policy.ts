/**
 * The reconciler's policy, declared once: what makes a run end in which failure class (`classify`:
 * an AWX error at launch or while following, or AWX's own word on the job), what each failure class
 * leads to (a new, visible run with cause `retry` after a backoff, or a terminal end that waits for
 * a human or a new change), and when a root's change window is open. All pure, so they are tested
 * without services.
 */
import {
  AwxAuthError,
  type AwxError,
  AwxNotFoundError,
  AwxPromptsIgnoredError,
} from '../../core/awx/errors.js';
import type { failureClasses } from '../../core/events/catalogue.js';
import type { TerminalRunState } from '../../core/runs/state-machine.js';
import type { RunEnd } from './steps.js';

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
  drift: {
    action: 'terminal',
    why: 'the target differs from NetBox; the root policy drift_mode decides (remediate: an apply run follows)',
  },
  drift_unknown: {
    action: 'terminal',
    why: 'the check job reported no drift summary; checking again would read the same playbook',
  },
  invalid_snapshot: {
    action: 'terminal',
    why: "the snapshot breaks its kind's schema; NetBox's data (or the schema) must be fixed, which is a new change",
  },
  netbox_inconsistent: {
    action: 'terminal',
    why: 'NetBox changed the root with no change through NetBox between lease and launch; automation is frozen until a person looks',
  },
  verify_failed: {
    action: 'terminal',
    why: 'the apply job succeeded but the target does not pass its verification; a human looks before it runs again',
  },
};

/**
 * Why a run ended, as its driver saw it: the failure class follows from this and from nothing else.
 *
 * - `launch-error`: AWX refused or failed the launch (an error that is not AWX's is no failure
 *   class: it pauses the job or is a programming error);
 * - `read-error`: AWX refused to show the followed job (not retriable; a retriable read error is
 *   polled through until `unreachable`);
 * - `unreachable`: AWX stayed unreachable longer than the follow waits;
 * - `status`: AWX's terminal status of the job (`successful`, `failed`, `error`, `canceled`, or one
 *   it may add), whether the run had asked AWX to cancel, and a refused approval of a workflow;
 * - `cancel-ignored`: the run timeout asked AWX to cancel and the job did not stop within the grace;
 * - `misconfigured`: the root's template cannot run its policy (none, or approvals on a job template);
 * - `fenced`: this worker, alive, had a write or its lease renewal refused by the fence: another
 *   worker holds the root now. Only a live worker is `lease_lost`; a run whose worker died before
 *   launching is resumed by the next holder, not failed (docs/decisions/0037).
 */
export type EndCause =
  | { kind: 'launch-error'; error: AwxError }
  | { kind: 'read-error'; error: AwxError }
  | { kind: 'unreachable' }
  | {
      kind: 'status';
      status: string;
      cancelAsked: boolean;
      approval: 'denied' | 'expired' | null;
      /** AWX failed the job itself because its control plane lost it (`reapedByAwx`), not the playbook. */
      reaped?: boolean;
    }
  | { kind: 'cancel-ignored' }
  | { kind: 'misconfigured' }
  | { kind: 'fenced' }
  /** The validation gate refused the snapshot before launch (docs/decisions/0060). */
  | { kind: 'invalid-snapshot' }
  /** NetBox's hash moved between lease and launch with no change through NetBox (fail-safe (d), 0067). */
  | { kind: 'netbox-inconsistent' }
  /** A check run's job was successful: what its playbook's summary says (null: nothing usable). */
  | { kind: 'check'; summary: DriftSummary | null }
  /**
   * AWX's terminal status of the run's verify job (docs/decisions/0066): failed is the target not
   * passing (`verify_failed`); error, canceled and the run timeout are classified as for any job.
   */
  | { kind: 'verify'; status: string; cancelAsked: boolean; reaped: boolean };

/**
 * Whether AWX's `job_explanation` says AWX itself failed a job it lost: its dispatcher, restarted
 * (or finding the job gone from its queue), marks every job it had running as failed — the playbook
 * never failed. Seen in the fault suite after a kill -9 of AWX (AWX 24.6.1, job 150: "Task was marked
 * as running at system start up. The system must have not shut down properly, so it has been marked
 * as failed."). Such a run is `job_error` (an executor-side error: retried), not `job_failed`.
 */
export function reapedByAwx(explanation: string): boolean {
  return (
    explanation.includes('Task was marked as running at system start up') ||
    explanation.includes('Task was marked as running but was not present in the job queue')
  );
}

/** The one classification: the failure class a run's end has, null when it succeeded. */
export function classify(cause: EndCause): FailureClass | null {
  switch (cause.kind) {
    case 'launch-error': {
      const { error } = cause;
      if (error instanceof AwxPromptsIgnoredError || error instanceof AwxNotFoundError) {
        return 'template_misconfigured';
      }
      if (error instanceof AwxAuthError || error.retriable) return 'executor_unavailable';
      return 'template_misconfigured'; // AWX refused the launch as asked
    }
    case 'read-error':
      return cause.error instanceof AwxNotFoundError ? 'job_error' : 'executor_unavailable';
    case 'unreachable':
      return 'executor_unavailable';
    case 'status':
      switch (cause.status) {
        case 'successful':
          return null;
        case 'canceled':
          return cause.cancelAsked ? 'timed_out' : 'canceled';
        case 'error':
          return 'job_error';
        default: // 'failed', or a status AWX may add: the job did not succeed
          if (cause.approval === 'expired') return 'timed_out';
          if (cause.approval === 'denied') return 'denied';
          if (cause.reaped) return 'job_error';
          return 'job_failed';
      }
    case 'cancel-ignored':
      return 'timed_out';
    case 'misconfigured':
      return 'template_misconfigured';
    case 'fenced':
      return 'lease_lost';
    case 'invalid-snapshot':
      return 'invalid_snapshot';
    case 'netbox-inconsistent':
      return 'netbox_inconsistent';
    case 'check':
      if (cause.summary === null) return 'drift_unknown';
      return cause.summary.drift ? 'drift' : null;
    case 'verify':
      if (cause.status === 'failed' && !cause.reaped) return 'verify_failed';
      return classify({
        kind: 'status',
        status: cause.status,
        cancelAsked: cause.cancelAsked,
        approval: null,
        reaped: cause.reaped,
      });
  }
}

/** The terminal run state a failure class ends in (null: the run succeeded). */
export function endState(failureClass: FailureClass | null): TerminalRunState {
  switch (failureClass) {
    case null:
      return 'succeeded';
    case 'canceled':
    case 'timed_out':
    case 'denied':
      return failureClass;
    case 'drift':
      return 'drifted';
    default:
      return 'failed';
  }
}

/** A run's end from why it ended: its failure class, the terminal state that class ends in, a summary. */
export function runEnd(
  cause: EndCause,
  summary: string,
): { state: TerminalRunState; failureClass: FailureClass | null; summary: string } {
  const failureClass = classify(cause);
  return { state: endState(failureClass), failureClass, summary };
}

/** The summary a playbook reports in AWX's job `artifacts` (awx-playbooks/README.md, "Summary"). */
export interface DriftSummary {
  drift: boolean;
  /** The files that differ (changed_files, and removed_files when the playbook reports them). */
  changedFiles: string[];
}

/**
 * What a check run's successful AWX job says about drift (docs/decisions/0054), from its artifacts'
 * `unicop_summary`; null when it says nothing usable: no summary, a summary whose mode is not
 * `check` (the playbook did not run in check mode), or a `drift` that is not a boolean. A check run
 * with null never ends `succeeded`.
 */
export function driftSummary(artifacts: unknown): DriftSummary | null {
  const summary = (artifacts as { unicop_summary?: unknown } | null | undefined)?.unicop_summary;
  if (!summary || typeof summary !== 'object') return null;
  const s = summary as Record<string, unknown>;
  if (s.mode !== 'check' || typeof s.drift !== 'boolean') return null;
  const files = (value: unknown) =>
    Array.isArray(value) ? value.filter((f): f is string => typeof f === 'string') : [];
  const changedFiles = [...new Set([...files(s.changed_files), ...files(s.removed_files)])].sort();
  return { drift: s.drift, changedFiles };
}

/** How a check run whose AWX job was successful ends: in sync, drifted (naming the files), or unknown. */
export function checkRunEnd(summary: DriftSummary | null, what: string): RunEnd {
  const failureClass = classify({ kind: 'check', summary });
  const state = endState(failureClass);
  if (summary === null) {
    const why = `${what} successful but reported no drift summary (artifacts.unicop_summary in check mode); drift unknown`;
    return { state, failureClass, summary: why };
  }
  if (!summary.drift) {
    const why = `check: ${what} found the target in sync with the snapshot`;
    return { state, failureClass, outcomeClass: 'in_sync', summary: why };
  }
  const files = summary.changedFiles;
  const shown =
    files.slice(0, summaryFileCount).join(', ') +
    (files.length > summaryFileCount ? `, … (${files.length} in all)` : '');
  const why = `drift: ${what} found the target differing from the snapshot${files.length ? ` in ${shown}` : ''}`;
  return { state, failureClass, changedFiles: files, summary: why };
}

/** How many differing files a drifted run's summary names; the journal entry adds the next ones (outcome.ts). */
export const summaryFileCount = 20;

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
