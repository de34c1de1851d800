/**
 * The vocabulary of the reconciler's decisions (decide.ts): what they know of a run (`RunView`),
 * what the driver observed (`Observation`) and what it is told to do next (`Step`). Plain data
 * only — no clients, no clock — so a decision is a function of these and a test is a table of them.
 * docs/decisions/0032 lists each observation and step with the point of the run it belongs to.
 */
import type { AwxError } from '../../core/awx/errors.js';
import type { RunLogLine } from '../../core/plugin/client.js';
import type { RunState, TerminalRunState } from '../../core/runs/state-machine.js';
import type { ReconcileJobData } from '../reconcile-queue.js';
import type { ChangeWindow, FailureClass, RetryPolicy } from './policy.js';

export type AwxJobKind = 'job' | 'workflow_job';

/** How a run launches its template (docs/decisions/0054): apply, or check (check mode: drift only). */
export type RunMode = 'apply' | 'check';

/** An AWX job or workflow job, as notifications name it. */
export interface AwxJobRef {
  kind: AwxJobKind;
  id: number;
}

/** The tuning the decisions use (reconcilerOptions(): core/config.ts documents each value). */
export interface DecideSettings {
  /** A lease held elsewhere: look again after this long at most (or at its expiry, if sooner). */
  leaseBusyRetryMs: number;
  /** Frozen globally: the job looks again after this long. */
  freezeRecheckMs: number;
  retry: RetryPolicy;
  pollMinMs: number;
  pollMaxMs: number;
  cancelGraceMs: number;
  /**
   * A run awaiting approval is handed back to the queue (the job gives its worker slot back) and
   * looked at again after this long, or sooner when AWX notifies (docs/decisions/0044). None: the
   * job follows the run to its end (a reconciler driven once, outside a queue, is not called again).
   */
  approvalRecheckMs?: number;
}

/** Where the follow of an AWX job stands. */
export interface FollowState {
  /** The run timeout: from the lease taken for the work, plus the policy's run_timeout_seconds. */
  deadline: Date;
  timeoutMs: number;
  /** The next wait for a notification (doubles up to pollMaxMs; back to pollMinMs on news). */
  delayMs: number;
  cancelAskedAt: Date | null;
  unreachableSince: Date | null;
  /** AWX's last status seen (a change is a line of the run's log). */
  awxStatus: string | null;
}

/** What the decisions know of the run being driven. */
export interface RunView {
  /** The job's cause (manual/retry force a run; a retry's attempt and notBefore). */
  cause: ReconcileJobData['cause'];
  /** The run record's state; null before the record exists. */
  state: RunState | null;
  /** apply (absent: apply), or check (a drift check: the template in check mode, its end read from its summary). */
  mode?: RunMode;
  /** The AWX job the run follows, once launched or found (while verifying: its verify job). */
  awx: { kind: AwxJobKind; id: number } | null;
  follow: FollowState | null;
  /**
   * The job followed is the run's verify job (docs/decisions/0066): its status moves no run state,
   * and its end is the verification's (failed: `verify_failed`).
   */
  verifying?: boolean;
}

/** How a run ended, before it is written anywhere. */
export interface RunEnd {
  state: TerminalRunState;
  failureClass: FailureClass | null;
  summary: string;
  /** The run's outcome class when it is no failure: `in_sync`, a check run that found no drift. */
  outcomeClass?: 'in_sync';
  /** A drifted check run's differing files (the playbook's summary). */
  changedFiles?: string[];
}

/** A line for the run's own log (run-log.ts), its time added by the driver. */
export interface LogNote {
  level: RunLogLine['level'];
  message: string;
  meta?: Record<string, unknown>;
}

export type LeaseAnswer =
  | { kind: 'acquired'; token: number }
  | { kind: 'frozen'; detail: string }
  | { kind: 'busy'; holder: string | null; expiresAt: Date | null };

/** AWX's answer to a read of the followed job (and, for a workflow, of its approvals). */
export type AwxRead =
  | {
      ok: true;
      status: string;
      explanation: string;
      pendingApproval: boolean;
      refusedApproval: { name: string; timedOut: boolean } | null;
      /** The job's `artifacts` (set_stats), read for a check run's drift summary. */
      artifacts?: unknown;
    }
  | { ok: false; error: AwxError };

export type Observation =
  /** The job, as the queue hands it; whether automation is frozen globally. */
  | { kind: 'job'; at: Date; freeze: { reason: string } | null }
  | { kind: 'root'; exists: boolean }
  | { kind: 'lease'; at: Date; answer: LeaseAnswer }
  /**
   * A run of the root left open (run: its record); whether AWX was asked for its job already; the
   * run id of an open run this job already continues (null: none yet).
   */
  | { kind: 'open-run'; lookedUp: boolean; continuing: string | null }
  | {
      kind: 'snapshot';
      at: Date;
      hash: string;
      lastReconciledHash: string | null;
      /** The last run's outcome class says drift: a run is due even for the same hash. */
      drifted: boolean;
      /** Snapshot hashes adopted runs of this job ended `succeeded` with. */
      adoptedSucceeded: readonly string[];
      /**
       * Snapshot hashes of runs this job took up after their approval wait, however they ended: the
       * job had launched them for that snapshot itself (decision 0044). None: no such run.
       */
      takenUp?: readonly string[];
      windows: ChangeWindow[];
    }
  | {
      kind: 'template';
      rootKind: string;
      template: { type: 'job' | 'workflow'; id: number | null };
      approvalRequired: boolean;
      /** Why the root's policy override cannot be run (the plugin's policy_error, decision 0062), or null. */
      policyError?: string | null;
    }
  | {
      kind: 'launch';
      templateId: number;
      answer: { ok: true; id: number; adopted: boolean } | { ok: false; error: unknown };
    }
  | { kind: 'awx-job'; at: Date; read: AwxRead }
  /** An apply run about to launch: what the kind's schema says of its snapshot (docs/decisions/0060). */
  | { kind: 'gate'; rootKind: string; verdict: GateVerdict; schemaFrom?: SchemaFrom; rootKey?: string }
  /**
   * Before any lease: the root's last run was handed back awaiting approval (its run timeout
   * `deadline`, from its log); AWX's word on its workflow job.
   */
  | { kind: 'approval-wait'; at: Date; workflowJobId: number; deadline: Date; read: AwxRead }
  /** A run write or the lease renewal was refused by the fence: another worker holds the root. */
  | { kind: 'fence'; reason: string }
  | { kind: 'ended'; at: Date; end: RunEnd; retryAllowed: boolean };

/** One way a snapshot breaks its kind's schema: the JSON Pointer of the value and what is wrong. */
export interface SchemaProblem {
  path: string;
  message: string;
}

/**
 * Where the schema a gate applies came from (the plugin's policy `overridden`, decision 0068): the root
 * kind's, the root's unicop_policy override's (the kind has none), or both at once (allOf).
 */
export type SchemaFrom = 'kind' | 'override' | 'kind+override';

/** The kind's schema on the snapshot (gate.ts): none or passed, refused, or itself unusable. */
export type GateVerdict =
  | { kind: 'pass' }
  | { kind: 'invalid'; problems: SchemaProblem[] }
  | { kind: 'unusable'; reason: string };

/** What follows an ended run. */
export type RetryStep =
  | { kind: 'retry'; attempt: number; notBefore: Date; why: string }
  | { kind: 'exhausted'; why: string }
  | null;

/** The wait between two reads of the AWX job: for a notification (or the delay), or plainly. */
export interface Wait {
  ms: number;
  notifications: boolean;
}

export type Step =
  /** Back to the queue until `at` (sooner if AWX notifies about `wakeOn`). */
  | { kind: 'later'; at: Date; why: string; wakeOn?: AwxJobRef }
  | { kind: 'read-root' }
  /** Nothing to reconcile (audit `intent.dropped`). */
  | { kind: 'drop'; why: string }
  | { kind: 'acquire-lease' }
  /** Frozen root: parked, not lost (audit `intent.parked`; the sweeper re-emits once unfrozen). */
  | { kind: 'park'; why: string }
  | { kind: 'lease-taken'; token: number }
  /** An open run: ask AWX for a job carrying its run id. */
  | { kind: 'find-launched' }
  /** An open run with an AWX job: follow it to its end, never launch again. */
  | { kind: 'adopt' }
  /** An open run waiting for its change window: this job continues it. */
  | { kind: 'keep-waiting' }
  /**
   * An open run its worker left before any AWX launch (none carries its run id): this job resumes
   * it under its own lease — same run id, the new fencing token, audit `run.resumed` (0037).
   */
  | { kind: 'resume' }
  /** The job is done without a run (an adopted run already converged this snapshot). */
  | { kind: 'done'; why: string }
  | { kind: 'skip'; end: RunEnd }
  | { kind: 'wait-window'; opensAt: Date; summary: string }
  /** The run starts in `mode`: record `leased`, then the template. */
  | { kind: 'start'; mode: RunMode }
  /** The snapshot passed the gate before launch (or the kind has no schema): on to the template. */
  | { kind: 'gate-passed' }
  | { kind: 'launch'; templateId: number; awxKind: AwxJobKind }
  /** AWX took the launch: record the job id (before any wait), then follow. */
  | { kind: 'record-launch'; id: number; adopted: boolean }
  /** Not a run's failure: the error goes to the queue (retriable: the job pauses). */
  | { kind: 'raise'; error: unknown }
  | {
      kind: 'poll';
      lines: LogNote[];
      /** A log line for the service log (AWX unreachable). */
      warn: string | null;
      /** The run's new state, from AWX's. */
      transition: RunState | null;
      /** The run timeout is reached: ask AWX to cancel (once). */
      cancel: LogNote | null;
      follow: FollowState;
      after:
        | { kind: 'wait'; wait: Wait }
        | { kind: 'end'; end: RunEnd }
        /** Awaiting approval: the job gives its slot back and looks again at `at` (or when AWX notifies). */
        | { kind: 'hand-back'; at: Date };
    }
  | { kind: 'end'; end: RunEnd; lines: LogNote[]; retryAllowed: boolean }
  /** Stop at once and write nothing more (audit `run.fenced`, with the failure class `lease_lost`). */
  | { kind: 'fenced'; why: string; failureClass: FailureClass | null }
  | { kind: 'finish'; retry: RetryStep };
