/**
 * What one reconcile job's effects share: the ports, the clock and settings (a `Reconciling`), and
 * once the lease is held, the root and its lease (a `Leased`); the run being driven (`ActiveRun`);
 * and the effects every step uses — the fenced write of the run record, audit events. A write
 * refused by the fence marks the lease lost and throws `LeaseLostError`: the run stops at once and
 * writes nothing more (guarantee 2).
 */
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import type { EventLogMessage } from '../../core/event-log/port.js';
import { type AuditAction, rootAuditMessage } from '../../core/events/audit.js';
import type { EventData } from '../../core/events/catalogue.js';
import {
  PluginConflictError,
  type PluginRoot,
  type PluginRun,
  type RunCauseChainField,
  type RunCreate,
  type RunLogLine,
  type RunState,
  type RunWrite,
} from '../../core/plugin/client.js';
import type { ReconcileJobData } from '../reconcile-queue.js';
import { runTimeoutAtMeta } from './follow-step.js';
import type { ReconcilerDeps } from './ports.js';
import type { RootLease } from './root-lease.js';
import { RunLog } from './run-log.js';
import type { AwxJobKind, DecideSettings, FollowState, LogNote, RunMode, RunView } from './steps.js';

export const reconcilerSource = 'unicop/reconciler';

/** The reconciler's ports and clock, and the settings its decisions take. */
export interface Reconciling {
  deps: ReconcilerDeps;
  clock: Clock;
  settings: DecideSettings;
}

/** A job's effects once the root's lease is held. */
export interface Leased extends Reconciling {
  root: PluginRoot;
  lease: RootLease;
  log: Logger;
}

/** The run being driven: its record's facts and where its AWX job is. */
export interface ActiveRun {
  runId: string;
  snapshotHash: string;
  cause: ReconcileJobData['cause'];
  intentId: string | null;
  startedAt: Date;
  /** When the run took its lease for the work (the run timeout counts from here). */
  leasedAt: Date;
  /** apply, or check: a drift check run (docs/decisions/0054), set when its record is created. */
  mode: RunMode;
  /** The record's state; `created` false until the record exists in NetBox. */
  state: RunState;
  created: boolean;
  awx: { kind: AwxJobKind; id: number; url: string } | null;
  /**
   * Its verify job (docs/decisions/0066), launched after the apply job succeeded and recorded on the run
   * (`verify_job_id`) before anything waits on it; null: none (yet). `verifying`: that job is followed.
   */
  verify: { id: number; url: string } | null;
  verifying: boolean;
  follow: FollowState | null;
  /**
   * The run timeout it was handed back with while awaiting approval (its log says so): whoever
   * takes it up follows it to this deadline, not a new one (docs/decisions/0044). Null: none yet.
   */
  timeoutAt: Date | null;
  /** Its last log line is that hand-back: it waits for a human, no worker of it stopped. */
  handedBack: boolean;
  /** The run's log lines, sent whole with every write of the run record. */
  log: RunLog;
}

export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

/** What decide() is told of the run. */
export function viewOf(run: ActiveRun | null, cause: ReconcileJobData['cause']): RunView {
  if (!run) return { cause, state: null, awx: null, follow: null };
  return {
    cause: run.cause,
    state: run.created ? run.state : null,
    mode: run.mode,
    awx: run.verifying && run.verify ? { kind: 'job', id: run.verify.id } : run.awx,
    follow: run.follow,
    ...(run.verifying ? { verifying: true } : {}),
  };
}

export function newRun(
  job: ReconcileJobData,
  snapshotHash: string,
  at: Date,
  runId: string,
  mode: RunMode = 'apply',
): ActiveRun {
  return {
    runId,
    mode,
    snapshotHash,
    cause: job.cause,
    intentId: job.intentId,
    startedAt: at,
    leasedAt: at,
    state: 'queued',
    created: false,
    awx: null,
    verify: null,
    verifying: false,
    follow: null,
    timeoutAt: null,
    handedBack: false,
    log: new RunLog(),
  };
}

/**
 * A run record left open, as a run to drive on, with the cause chain it was created with (absent
 * from a record a NetBox without migration 0002 serves: read as none).
 */
export function activeRunOf(record: PluginRun): ActiveRun {
  const kind: AwxJobKind = record.awx_job_type === 'workflow' ? 'workflow_job' : 'job';
  const lines = (record as { log_lines?: RunLogLine[] }).log_lines ?? [];
  const timeoutAtOf = (line: RunLogLine | undefined) => {
    const at = (line?.meta as Record<string, unknown> | undefined)?.[runTimeoutAtMeta];
    return typeof at === 'string' ? new Date(at) : null;
  };
  const handBack = [...lines].reverse().find((line) => timeoutAtOf(line) !== null);
  return {
    runId: record.run_id,
    // Absent from a record a NetBox without migration 0004 serves: every run was an apply run then.
    mode: record.mode === 'check' ? 'check' : 'apply',
    snapshotHash: record.snapshot_hash,
    cause: {
      kind: record.cause as ReconcileJobData['cause']['kind'],
      changeId: record.change_ids?.[0] ?? null,
      requestId: record.request_ids?.[0] ?? null,
      event: record.cause_event || null,
      objectType: record.cause_object_type || null,
      objectId: record.cause_object_id ?? null,
      actor: record.actor || null,
      at: record.started,
    },
    intentId: record.intent_id || null,
    startedAt: new Date(record.started),
    leasedAt: new Date(record.started),
    state: record.state,
    created: true,
    awx: record.awx_job_id ? { kind, id: record.awx_job_id, url: record.awx_job_url } : null,
    // Absent from a NetBox without migration 0007: no verify job recorded (its URL is the AWX UI's).
    verify: record.verify_job_id ? { id: record.verify_job_id, url: '' } : null,
    verifying: false,
    follow: null,
    timeoutAt: timeoutAtOf(handBack),
    handedBack: handBack !== undefined && handBack === lines[lines.length - 1],
    log: new RunLog(lines),
  };
}

/** Adds the decision's log lines to the run's log, at `at`. */
export function note(run: ActiveRun, at: Date, lines: readonly LogNote[]): void {
  for (const line of lines) run.log.add(at, line.level, line.message, line.meta ?? {});
}

/**
 * One fenced write of the run record: created the first time, patched after. A refusal by the
 * fence marks the lease lost and throws LeaseLostError.
 */
export async function writeRun(
  scope: Leased,
  run: ActiveRun,
  state: RunState,
  fields: Omit<RunWrite, 'fencing_token' | 'state'> = {},
): Promise<void> {
  const { plugin } = scope.deps;
  const write: RunWrite = {
    fencing_token: scope.lease.fencingToken,
    state,
    snapshot_hash: run.snapshotHash,
    log_lines: run.log.lines(),
    ...fields,
  };
  try {
    if (run.created) {
      await plugin.writeRun(run.runId, write);
    } else {
      await plugin.createRun({
        ...write,
        run_id: run.runId,
        root: scope.root.key,
        snapshot_hash: run.snapshotHash,
        cause: run.cause.kind,
        // Written only for a check run: an apply run is the plugin's default (and a NetBox without
        // migration 0004 still takes it).
        ...(run.mode === 'check' ? { mode: run.mode } : {}),
        ...causeChainOf(run),
      });
    }
  } catch (error) {
    // A 409 on a run write is the fence (this lease is no longer ours) or the run state machine,
    // whose refusal names the `allowed` next states; never told apart by the message's words.
    if (error instanceof PluginConflictError && error.allowed === null) {
      scope.lease.markLost(error.detail);
      throw new LeaseLostError(error.detail);
    }
    throw error;
  }
  run.state = state;
  run.created = true;
}

/** The run record's cause chain (docs/decisions/0039): the intent and the NetBox change it came from. */
export function causeChainOf(run: ActiveRun): Pick<RunCreate, RunCauseChainField> {
  const { cause } = run;
  return {
    intent_id: run.intentId ?? '',
    change_ids: cause.changeId ? [cause.changeId] : [],
    request_ids: cause.requestId ? [cause.requestId] : [],
    actor: cause.actor ?? '',
    cause_event: cause.event ?? '',
    cause_object_type: cause.objectType ?? '',
    cause_object_id: cause.objectId,
  };
}

export type Correlation = Record<string, string | number | null>;

export function correlation(run: ActiveRun, lease: RootLease): Correlation {
  return {
    runId: run.runId,
    intentId: run.intentId,
    fencingToken: lease.fencingToken,
    snapshotHash: run.snapshotHash,
  };
}

export function auditEvent(
  scope: Reconciling,
  rootKey: string,
  action: AuditAction,
  outcome: EventData<'audit'>['outcome'],
  reason: string | null,
  correlation: Correlation,
): EventLogMessage {
  return rootAuditMessage(
    reconcilerSource,
    scope.deps.options.holder,
    rootKey,
    action,
    outcome,
    reason,
    correlation,
  );
}

/** auditEvent(), appended on its own. */
export function audit(...args: Parameters<typeof auditEvent>): Promise<void> {
  return args[0].deps.eventLog.append([auditEvent(...args)]);
}

/** The AWX UI's page of a job. */
export function jobUrl(scope: Reconciling, kind: AwxJobKind, id: number): string {
  const base = scope.deps.options.awxUiUrl.replace(/\/+$/, '');
  return `${base}/#/jobs/${kind === 'job' ? 'playbook' : 'workflow'}/${id}/output`;
}

export function policyOf(root: PluginRoot): Record<string, unknown> {
  return (root.policy ?? {}) as Record<string, unknown>;
}

export function templateOf(root: PluginRoot): { type: 'job' | 'workflow'; id: number | null } {
  const template = (root.awx_template ?? {}) as { type?: string; id?: number | null };
  return { type: template.type === 'workflow' ? 'workflow' : 'job', id: template.id ?? null };
}
