/**
 * What the reconciler's effects go through: small ports, each the few calls it makes of a client,
 * handed in by `createReconciler(deps)` (reconcile.ts). The real adapters are the clients themselves
 * (NetBox's plugin API, AWX's API, the Kafka event log, AWX notifications, the system clock); tests
 * hand in the same clients against the real stack, a clock they move, or a plugin cut off from
 * NetBox. Decisions take none of these (decide.ts).
 */
import type { Logger } from 'pino';
import type { AwxClient } from '../../core/awx/index.js';
import type { Clock } from '../../core/clock.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import type { EventLog } from '../../core/event-log/port.js';
import type { PluginClient } from '../../core/plugin/client.js';
import type { WorkerMetrics } from '../metrics.js';
import type { JobWakeups } from './awx-notifications.js';
import type { DecideSettings } from './steps.js';

/** NetBox's plugin API as the reconciler uses it: roots, the root lease, snapshots, run records. */
export type RunStore = Pick<
  PluginClient,
  | 'findRoot'
  | 'acquireLease'
  | 'renewLease'
  | 'releaseLease'
  | 'listRuns'
  | 'runsAtHash'
  | 'snapshot'
  | 'currentHash'
  | 'createRun'
  | 'writeRun'
>;

/** AWX as the reconciler uses it: launch (idempotent by run id), find by run id, read, cancel. */
export type Executor = Pick<
  AwxClient,
  | 'launchJobTemplate'
  | 'launchWorkflowJobTemplate'
  | 'findJobByRunId'
  | 'findWorkflowJobByRunId'
  | 'getJob'
  | 'getWorkflowJob'
  | 'approvalsOfWorkflowJob'
  | 'cancelJob'
  | 'cancelWorkflowJob'
>;

/** The event log the reconciler appends to: audit, outcomes, retry intents. */
export type EventAppender = Pick<EventLog, 'append'>;

export interface ReconcilerOptions extends Omit<DecideSettings, 'freezeRecheckMs'> {
  /** This worker's lease holder name (host, pid, a random part): shown in NetBox and audit. */
  holder: string;
  leaseTtlSeconds: number;
  /** AWX's base URL for links in NetBox (the UI's job pages). */
  awxUiUrl: string;
  /** Frozen globally: the job looks again after this long (UNICOP_FREEZE_RECHECK_SECONDS' default when not given). */
  freezeRecheckMs?: number;
  /** Attempts to append a run's outcome events before giving up loudly (UNICOP_OUTCOME_APPEND_ATTEMPTS' default when not given). */
  outcomeAppendAttempts?: number;
}

export interface ReconcilerDeps {
  plugin: RunStore;
  awx: Executor;
  eventLog: EventAppender;
  wakeups: JobWakeups;
  log: Logger;
  options: ReconcilerOptions;
  /** The clock (the system's when not given). */
  clock?: Clock;
  /** Only the time of `clock`, for tests that move it to cross change windows and run timeouts. */
  now?: () => Date;
  metrics?: WorkerMetrics;
  /** The global freeze switch; jobs wait in the queue while it is on. */
  freezeView?: FreezeView;
  /**
   * Tests only: awaited between the lease's snapshot and the hash re-read before the launch, so a test
   * can change NetBox in exactly that window (docs/decisions/0067). Never set in production.
   */
  beforeRecheck?: (rootKey: string) => Promise<void>;
}
