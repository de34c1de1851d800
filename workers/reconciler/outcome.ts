/**
 * The end of a run, written: the run record and the journal entry on the anchor in one fenced write,
 * then `unicop.outcomes` and the audit trail in one append; then, if decide() says so (the failure
 * class retries and attempts remain), the retry intent — a new run, visible in the timeline — or
 * the audit that retries are exhausted. The outcome is already in NetBox when its events are
 * appended: a Kafka hiccup must not lose them, so the append is tried again with backoff.
 */
import { trace } from '@opentelemetry/api';
import { configDefaults } from '../../core/config.js';
import { isRetriable } from '../../core/errors.js';
import type { EventLogMessage } from '../../core/event-log/port.js';
import { cloudEvent, eventTypes } from '../../core/events/catalogue.js';
import { intentMessage } from '../../core/events/intent.js';
import { deterministicUuidv7 } from '../../core/ids.js';
import type { RunLogLine } from '../../core/plugin/client.js';
import type { TerminalRunState } from '../../core/runs/state-machine.js';
import { traceHeaders } from '../../core/tracing.js';
import { recordAwxRunEnd } from '../metrics.js';
import { decide } from './decide.js';
import { summaryFileCount } from './policy.js';
import {
  type ActiveRun,
  auditEvent,
  correlation,
  type Leased,
  policyOf,
  reconcilerSource,
  templateOf,
  viewOf,
  writeRun,
} from './scope.js';
import type { RetryStep, RunEnd } from './steps.js';

/** Writes the end of a run (`retry: false`: never followed by a retry, as for an orphaned run). */
export async function finish(
  scope: Leased,
  run: ActiveRun,
  end: RunEnd,
  options: { retry?: boolean } = {},
): Promise<void> {
  const { root, lease, deps } = scope;
  const finishedAt = scope.clock.now();
  run.log.add(finishedAt, outcomeLevel(end.state), `${end.state}: ${end.summary}`, {
    state: end.state,
    failure_class: end.failureClass,
  });
  await writeTerminal(scope, run, end, {
    outcome_class: end.failureClass ?? end.outcomeClass ?? '',
    summary: end.summary,
    journal: { kind: journalKind(end.state), comments: journalText(run, end) },
  });
  const step = decide(
    viewOf(run, run.cause),
    { kind: 'ended', at: finishedAt, end, retryAllowed: options.retry !== false },
    scope.settings,
  );
  if (step.kind !== 'finish') throw new Error(`an ended run cannot ${step.kind}`);
  const outcome = cloudEvent('outcome', {
    id: deterministicUuidv7(finishedAt.getTime(), run.runId, 'outcome'),
    source: reconcilerSource,
    subject: root.key,
    data: {
      runId: run.runId,
      rootKey: root.key,
      state: end.state,
      failureClass: end.failureClass,
      snapshotHash: run.snapshotHash,
      fencingToken: lease.fencingToken,
      intentId: run.intentId,
      awxJobId: run.awx?.id ?? null,
      awxJobUrl: run.awx?.url ?? null,
      summary: end.summary,
      startedAt: run.startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      // A check run says so, and a drifted one names what differs (docs/decisions/0054).
      ...(run.mode === 'check' ? { mode: run.mode } : {}),
      ...(end.changedFiles ? { changedFiles: end.changedFiles } : {}),
      // Its verify job, when one was launched after the apply job (docs/decisions/0066).
      ...(run.verify ? { verifyJobId: run.verify.id } : {}),
      // A retry follows this attempt: the root's change has not ended yet (a rollout does not count it).
      ...(step.retry?.kind === 'retry' ? { retryScheduled: true } : {}),
    },
  });
  // The outcome (and a retry's intent) carry the run's trace on, so a retry stays in the change's trace.
  trace.getActiveSpan()?.setAttributes({ 'unicop.run_id': run.runId, 'unicop.run_state': end.state });
  const messages: EventLogMessage[] = [
    { topic: eventTypes.outcome.topic, key: root.key, value: JSON.stringify(outcome), ...traceHeaders() },
    auditEvent(scope, root.key, `run.${end.state}`, end.failureClass ? 'failed' : 'ok', end.summary, {
      ...correlation(run, lease),
      failureClass: end.failureClass,
      awxJobId: run.awx?.id ?? null,
      ...(run.verify ? { verifyJobId: run.verify.id } : {}),
    }),
  ];
  messages.push(...retryMessages(scope, run, end, step.retry, finishedAt));
  messages.push(...remediationMessages(scope, run, end, finishedAt));
  await appendPersistently(scope, messages);
  deps.metrics?.runs.inc({ state: end.state, failure_class: end.failureClass ?? 'none' });
  const seconds = Math.max(0, finishedAt.getTime() - run.startedAt.getTime()) / 1000;
  deps.metrics?.runDuration.observe({ state: end.state }, seconds);
  if (run.awx) recordAwxRunEnd(deps.metrics, templateOf(root), end.state, seconds);
}

/**
 * The terminal write, known to have landed before the outcome is appended. A write whose answer
 * was lost (a timeout, a reset: NetBox may have applied it) is not sent blindly again — it carries
 * a journal entry, and a terminal run refuses a second end. NetBox is read back instead: the run
 * already in this end state means the write landed; still open, it is written again. Without this,
 * a job coming back after such a loss finds no open run and the run's outcome never reaches Kafka
 * (DESIGN.md §3: one terminal outcome per run). Up to the outcome append's attempts, then thrown
 * (the job pauses, and the open run, if it is still open, is adopted).
 */
async function writeTerminal(
  scope: Leased,
  run: ActiveRun,
  end: RunEnd,
  fields: Parameters<typeof writeRun>[3],
): Promise<void> {
  const attempts = scope.deps.options.outcomeAppendAttempts ?? configDefaults.UNICOP_OUTCOME_APPEND_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    try {
      if (attempt === 1 || (await terminalWriteLanded(scope, run, end)) === false) {
        await writeRun(scope, run, end.state, fields);
      }
      return;
    } catch (error) {
      if (!isRetriable(error) || attempt >= attempts) throw error;
      scope.deps.log.warn(
        { err: error, attempt, runId: run.runId, state: end.state },
        'terminal run write unanswered; reading the run back before writing again',
      );
      await scope.clock.sleep(500 * 2 ** attempt);
    }
  }
}

/** Whether NetBox holds the run in this end state already (then marked written here). */
async function terminalWriteLanded(scope: Leased, run: ActiveRun, end: RunEnd): Promise<boolean> {
  const runs = await scope.deps.plugin.listRuns(scope.root.key, [end.state]);
  if (!runs.some((r) => r.run_id === run.runId)) return false;
  run.state = end.state;
  run.created = true;
  return true;
}

/** The retry intent and its audit event, or the audit that retries are exhausted. */
function retryMessages(
  scope: Leased,
  run: ActiveRun,
  end: RunEnd,
  retry: RetryStep,
  at: Date,
): EventLogMessage[] {
  if (!retry) return [];
  const rootKey = scope.root.key;
  const ids = { runId: run.runId, failureClass: end.failureClass };
  if (retry.kind === 'exhausted') {
    return [auditEvent(scope, rootKey, 'run.retries_exhausted', 'failed', retry.why, ids)];
  }
  const { attempt, notBefore } = retry;
  const { intentId, message } = intentMessage(
    reconcilerSource,
    rootKey,
    {
      kind: 'retry',
      changeId: run.cause.changeId,
      requestId: run.cause.requestId,
      event: run.cause.event,
      objectType: run.cause.objectType,
      objectId: run.cause.objectId,
      actor: 'unicop-reconciler',
      retryOf: run.runId,
      attempt,
      notBefore: notBefore.toISOString(),
    },
    // Derived from the failed run: publishing it again (after a crash) queues nothing new.
    { intentId: deterministicUuidv7(at.getTime(), run.runId, 'retry'), at },
  );
  return [
    { ...message, ...traceHeaders() },
    auditEvent(scope, rootKey, 'run.retry_scheduled', 'ok', retry.why, {
      ...ids,
      intentId,
      attempt,
      notBefore: notBefore.toISOString(),
    }),
  ];
}

/**
 * A drifted run of a root whose policy says `drift_mode: remediate` is followed by an apply run: its
 * intent (cause `drift`, `driftOf` the check run: decision 0039's cause chain) goes out with the
 * outcome, after the terminal write. The apply run takes the way any change does — lease, change
 * window, approval — and runs although the hash is reconciled, because the root's last run says
 * drift (decide()'s `drifted`). `detect` stops at `drifted`. The intent id derives from the check
 * run, so publishing it again after a crash queues nothing new.
 */
function remediationMessages(scope: Leased, run: ActiveRun, end: RunEnd, at: Date): EventLogMessage[] {
  if (end.state !== 'drifted' || policyOf(scope.root).drift_mode !== 'remediate') return [];
  const rootKey = scope.root.key;
  const { intentId, message } = intentMessage(
    reconcilerSource,
    rootKey,
    { kind: 'drift', actor: 'unicop-reconciler', driftOf: run.runId },
    { intentId: deterministicUuidv7(at.getTime(), run.runId, 'drift'), at },
  );
  const why = `drift_mode remediate: an apply run reverts the drift run ${run.runId} found`;
  return [
    { ...message, ...traceHeaders() },
    auditEvent(scope, rootKey, 'run.remediation_scheduled', 'ok', why, { runId: run.runId, intentId }),
  ];
}

/** Appends, trying again with backoff (0.5 s · 2^n) for up to about a minute before giving up loudly. */
async function appendPersistently(scope: Leased, messages: EventLogMessage[]): Promise<void> {
  const attempts = scope.deps.options.outcomeAppendAttempts ?? configDefaults.UNICOP_OUTCOME_APPEND_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    try {
      await scope.deps.eventLog.append(messages);
      return;
    } catch (error) {
      if (attempt >= attempts) throw error;
      scope.deps.log.warn({ err: error, attempt }, 'outcome events not yet on Kafka; trying again');
      await scope.clock.sleep(500 * 2 ** attempt);
    }
  }
}

/** The plugin's RunJournalSerializer.comments max_length: a longer journal entry is refused, and the run write with it. */
export const journalLimit = 4000;

export function journalText(run: ActiveRun, end: RunEnd): string {
  const job = run.awx
    ? ` — [AWX ${run.awx.kind === 'job' ? 'job' : 'workflow job'} ${run.awx.id}](${run.awx.url})`
    : '';
  const verify = run.verify ? `, verified by [AWX job ${run.verify.id}](${run.verify.url})` : '';
  const why = end.failureClass ? ` (${end.failureClass})` : '';
  const mode = run.mode === 'check' ? ' (check mode)' : '';
  // The summary names the first files already (checkRunEnd, policy.ts): the journal adds the next 50.
  const more = end.changedFiles?.slice(summaryFileCount) ?? [];
  const files = more.length
    ? `\n\nAlso differing at the target: ${more
        .slice(0, 50)
        .map((f) => `\`${f}\``)
        .join(', ')}${more.length > 50 ? ', …' : ''}.`
    : '';
  const head = `UNICOP run \`${run.runId}\`${mode} **${end.state}**${why}${job}${verify}\n\n`;
  const tail = `\n\nSnapshot \`${run.snapshotHash.slice(0, 12)}\`, cause ${run.cause.kind}.`;
  // The plugin takes at most journalLimit characters and refuses the whole terminal write otherwise.
  const room = journalLimit - head.length - tail.length;
  const body = `${end.summary}${files}`;
  return `${head}${body.length > room ? `${body.slice(0, room - 1)}…` : body}${tail}`;
}

function outcomeLevel(state: TerminalRunState): RunLogLine['level'] {
  if (state === 'succeeded' || state === 'skipped') return 'info';
  if (state === 'canceled' || state === 'denied' || state === 'drifted') return 'warning';
  return 'error';
}

function journalKind(state: TerminalRunState): 'info' | 'success' | 'warning' | 'danger' {
  if (state === 'succeeded') return 'success';
  if (state === 'skipped') return 'info';
  if (state === 'canceled' || state === 'denied' || state === 'drifted') return 'warning';
  return 'danger';
}
