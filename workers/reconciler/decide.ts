/**
 * The reconciler's decisions, apart from its effects: `decide(run, observation)` says what to do
 * next from what is known of the run and what was just observed — the job as the queue handed it,
 * the root, the lease's answer, a run left open, the snapshot, the template, the launch's answer,
 * AWX's word on the job (follow-step.ts), a fence refusal, the run's end. It does no I/O and reads
 * no clock: the time comes in the observation. The driver (reconcile.ts, follow.ts, outcome.ts)
 * turns each step into effects and their results into the next observation (docs/decisions/0032).
 *
 * Failure classes come from `classify` (policy.ts) only; the texts a run shows (summaries, its log
 * lines) are written here, beside the decision they explain.
 */
import {
  AwxError,
  AwxLaunchUnconfirmedError,
  AwxNotFoundError,
  AwxPromptsIgnoredError,
} from '../../core/awx/errors.js';
import { approvalWaitStep, followStep } from './follow-step.js';
import {
  classify,
  endState,
  failureActions,
  type RetryPolicy,
  retryDelayMs,
  runEnd,
  windowState,
} from './policy.js';
import type {
  AwxJobKind,
  DecideSettings,
  LeaseAnswer,
  LogNote,
  Observation,
  RetryStep,
  RunEnd,
  RunView,
  Step,
} from './steps.js';

export function decide(run: RunView, observation: Observation, settings: DecideSettings): Step {
  switch (observation.kind) {
    case 'job': {
      const notBefore = run.cause.notBefore ? new Date(run.cause.notBefore) : null;
      if (notBefore && notBefore > observation.at)
        return { kind: 'later', at: notBefore, why: 'retry backoff' };
      if (observation.freeze) {
        // Held in the queue while automation is frozen globally (the dispatcher holds new intents).
        return {
          kind: 'later',
          at: new Date(observation.at.getTime() + settings.freezeRecheckMs),
          why: `frozen globally: ${observation.freeze.reason}`,
        };
      }
      return { kind: 'read-root' };
    }
    case 'root':
      return observation.exists
        ? { kind: 'acquire-lease' }
        : { kind: 'drop', why: 'the root no longer exists in NetBox' };
    case 'lease':
      return leaseStep(observation.answer, observation.at, settings);
    case 'open-run':
      return openRunStep(run, observation);
    case 'snapshot':
      return snapshotStep(run, observation);
    case 'template': {
      const { template } = observation;
      if (observation.policyError) {
        // Never the kind's policy in its place: the root's own must be fixed (decision 0062).
        return endStep(
          runEnd(
            { kind: 'misconfigured' },
            `the root's policy cannot be run, nothing launched: ${observation.policyError}`,
          ),
        );
      }
      if (template.id === null) {
        return endStep(
          runEnd(
            { kind: 'misconfigured' },
            `root kind ${observation.rootKind} has no AWX template configured`,
          ),
        );
      }
      if (run.mode === 'check' && template.type === 'workflow') {
        return endStep(
          runEnd(
            { kind: 'misconfigured' },
            `root kind ${observation.rootKind} has a workflow template ${template.id}; a check run (job_type check) needs a job template`,
          ),
        );
      }
      if (observation.approvalRequired && template.type !== 'workflow') {
        return endStep(
          runEnd(
            { kind: 'misconfigured' },
            `policy asks for approval but template ${template.id} is a job template; approvals need a workflow with an approval node`,
          ),
        );
      }
      return {
        kind: 'launch',
        templateId: template.id,
        awxKind: template.type === 'workflow' ? 'workflow_job' : 'job',
      };
    }
    case 'gate':
      return gateStep(observation);
    case 'launch':
      return launchStep(observation.templateId, observation.answer);
    case 'awx-job':
      return followStep(run, observation.at, observation.read, settings);
    case 'approval-wait':
      return approvalWaitStep(observation, settings);
    case 'fence':
      return { kind: 'fenced', why: observation.reason, failureClass: classify({ kind: 'fenced' }) };
    case 'ended':
      return {
        kind: 'finish',
        retry: observation.retryAllowed
          ? retryStep(run, observation.end, observation.at, settings.retry)
          : null,
      };
  }
}

/** The wait after a wait for a notification: back to the minimum when woken, else doubled (capped). */
export function delayAfterWait(delayMs: number, woken: boolean, settings: DecideSettings): number {
  return woken ? settings.pollMinMs : Math.min(delayMs * 2, settings.pollMaxMs);
}

/** Whether the driver reads a workflow job's approvals with a read of status `status`. */
export function needsApprovals(kind: AwxJobKind, status: string): boolean {
  return kind === 'workflow_job' && !['successful', 'canceled', 'error'].includes(status);
}

function endStep(end: RunEnd, lines: LogNote[] = []): Step {
  return { kind: 'end', end, lines, retryAllowed: true };
}

function leaseStep(answer: LeaseAnswer, at: Date, settings: DecideSettings): Step {
  switch (answer.kind) {
    case 'acquired':
      return { kind: 'lease-taken', token: answer.token };
    case 'frozen':
      return { kind: 'park', why: answer.detail };
    case 'busy': {
      // Held by another worker: usually released within the run, at the latest when it expires.
      const now = at.getTime();
      const expires = answer.expiresAt ? answer.expiresAt.getTime() + 500 : now + 2_000;
      return {
        kind: 'later',
        at: new Date(Math.max(now + 200, Math.min(expires, now + settings.leaseBusyRetryMs))),
        why: `lease held by ${answer.holder}`,
      };
    }
  }
}

/**
 * A run of the root left open by a worker that stopped (this job holds the lease now). With an AWX
 * job (recorded, or found by its run id) it is followed, never launched again. Without one it never
 * reached AWX: nothing failed, so this job continues it under its own id — a run waiting for its
 * change window goes on waiting, one left before its launch is resumed (docs/decisions/0037). One
 * job continues one run; another open run of the root without a job is superseded by it.
 */
function openRunStep(run: RunView, seen: Extract<Observation, { kind: 'open-run' }>): Step {
  if (run.awx) return { kind: 'adopt' };
  if (run.state !== 'queued' && !seen.lookedUp) return { kind: 'find-launched' };
  if (seen.continuing === null) return run.state === 'queued' ? { kind: 'keep-waiting' } : { kind: 'resume' };
  return {
    kind: 'end',
    end: {
      state: 'skipped',
      failureClass: null,
      summary: `superseded by run ${seen.continuing}, which converges the root; no AWX job carries this run`,
    },
    lines: [],
    retryAllowed: false,
  };
}

function snapshotStep(run: RunView, seen: Extract<Observation, { kind: 'snapshot' }>): Step {
  // A drift check checks a root that is reconciled at this snapshot; one whose snapshot changed (an
  // edit coalesced into its job, or never reconciled) gets the apply run the change needs instead, so
  // no change is ever lost to a check. A check changes nothing: no change window holds it.
  if (run.cause.kind === 'drift_check' && seen.lastReconciledHash === seen.hash) {
    return { kind: 'start', mode: 'check' };
  }
  const forced = run.cause.kind === 'manual' || run.cause.kind === 'retry';
  if (seen.takenUp?.includes(seen.hash)) {
    // As if the job had followed it in its slot: its end is the job's end, forced or not.
    return { kind: 'done', why: 'the run taken up after its approval wait was for this snapshot' };
  }
  if (!forced && seen.adoptedSucceeded.includes(seen.hash)) {
    return { kind: 'done', why: 'an adopted run already converged the root to this snapshot' };
  }
  if (!forced && !seen.drifted && seen.hash === seen.lastReconciledHash) {
    return {
      kind: 'skip',
      end: { state: 'skipped', failureClass: null, summary: 'snapshot already reconciled' },
    };
  }
  const window = windowState(seen.windows, seen.at);
  if (!window.open) {
    const opensAt = window.opensAt ?? new Date(seen.at.getTime() + 24 * 3600_000);
    return {
      kind: 'wait-window',
      opensAt,
      summary: `waiting for the change window; opens at ${opensAt.toISOString()}`,
    };
  }
  return { kind: 'start', mode: 'apply' };
}

/** A gate refusal's summary names each problem in at most `problem` characters, all in at most `summary`. */
export const gateLimits = { problem: 200, summary: 2000 } as const;

const cut = (text: string, max: number) =>
  text.length > max ? `${text.slice(0, Math.max(0, max - 1))}…` : text;

/**
 * Whose schema the gate applied, for its refusals (review B #10, decision 0068): the kind's, the root's
 * own override's, or both (an override's schema applies with its kind's).
 */
function schemaOwner(gate: GateObservation): string {
  const root = gate.rootKey ?? 'the root';
  if (gate.schemaFrom === 'override') return `${root}'s unicop_policy override's schema`;
  if (gate.schemaFrom === 'kind+override') {
    return `root kind ${gate.rootKind}'s schema with ${root}'s unicop_policy override's (both apply)`;
  }
  return `root kind ${gate.rootKind}'s schema`;
}

type GateObservation = Extract<Observation, { kind: 'gate' }>;

/**
 * The validation gate's word on an apply run's snapshot (docs/decisions/0060): refused → `failed`,
 * class `invalid_snapshot`, the first problems named in the summary; a schema that cannot be compiled
 * is the kind's misconfiguration (`template_misconfigured`: its policy must be fixed).
 */
function gateStep(gate: GateObservation): Step {
  const { verdict } = gate;
  if (verdict.kind === 'pass') return { kind: 'gate-passed' };
  const owner = schemaOwner(gate);
  if (verdict.kind === 'unusable') {
    const what =
      gate.schemaFrom && gate.schemaFrom !== 'kind' ? owner : `root kind ${gate.rootKind}'s policy schema`;
    return endStep(
      runEnd({ kind: 'misconfigured' }, `${what} cannot be used: ${cut(verdict.reason, gateLimits.summary)}`),
    );
  }
  const { problems } = verdict;
  // Bounded (review B #2): an ajv message repeats the schema's pattern, so ten of them can outgrow
  // the journal entry that carries the summary, and a terminal write refused leaves the run open.
  const shown = problems.slice(0, 10).map((p) => cut(`${p.path} ${p.message}`, gateLimits.problem));
  const more = problems.length > shown.length ? `; … (${problems.length} in all)` : '';
  const head = `snapshot refused by ${owner}, nothing launched: `;
  const summary = `${head}${cut(shown.join('; '), gateLimits.summary - head.length - more.length)}${more}`;
  // The run's log keeps flat meta only (run-log.ts), so the problems go in the message, which the
  // log cuts at 500 characters: as many as fit, the summary naming ten and the count all.
  const listed = problems.map((p) => cut(`${p.path} ${p.message}`, gateLimits.problem)).join('; ');
  return endStep(runEnd({ kind: 'invalid-snapshot' }, summary), [
    {
      level: 'error',
      message: `validation gate: ${problems.length} problem(s) in the snapshot: ${listed}`,
      meta: { problems: problems.length },
    },
  ]);
}

function launchStep(templateId: number, answer: Extract<Observation, { kind: 'launch' }>['answer']): Step {
  if (answer.ok) return { kind: 'record-launch', id: answer.id, adopted: answer.adopted };
  const { error } = answer;
  // Sent, answer lost, job not found yet: keep the run open; the job comes back and adoption looks
  // the run id up in AWX again (docs/decisions/0011), so a late job is never launched twice.
  if (error instanceof AwxLaunchUnconfirmedError || !(error instanceof AwxError))
    return { kind: 'raise', error };
  const failureClass = classify({ kind: 'launch-error', error });
  let summary = `AWX refused the launch: ${error.message}`;
  if (error instanceof AwxPromptsIgnoredError) {
    summary = `AWX template ${templateId} ignored launch fields: ${error.message}`;
  } else if (error instanceof AwxNotFoundError) {
    summary = `AWX template ${templateId} does not exist`;
  } else if (failureClass === 'executor_unavailable') {
    summary = `launch failed: ${error.message}`;
  }
  return endStep({ state: endState(failureClass), failureClass, summary });
}

function retryStep(run: RunView, end: RunEnd, at: Date, retry: RetryPolicy): RetryStep {
  // A check run is not retried: a retry is forced (it applies), which would overwrite a hand edit the
  // check was there to report (drift_mode detect). The scheduler checks again on its interval.
  if (run.mode === 'check') return null;
  if (!end.failureClass || failureActions[end.failureClass].action !== 'retry') return null;
  const attempt = (run.cause.attempt ?? 1) + 1;
  if (attempt > retry.maxAttempts) return { kind: 'exhausted', why: `${retry.maxAttempts} attempts failed` };
  return {
    kind: 'retry',
    attempt,
    notBefore: new Date(at.getTime() + retryDelayMs(retry, attempt)),
    why: failureActions[end.failureClass].why,
  };
}
