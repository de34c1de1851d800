/**
 * The reconciler: one reconciliation of one root, given only its key (the job carries nothing else
 * worth trusting; everything is re-read). In order:
 *
 *   lease (fencing token; frozen → parked) → adopt or resume runs a dead worker left open → snapshot →
 *   skip if the hash is already reconciled → change window (wait, visibly) → run record →
 *   launch and follow (follow.ts) → outcome and retry (outcome.ts) → release the lease.
 *
 * The lease is asked for with its context: its answer carries the root's open runs, snapshot and last
 * reconciled hash, read by NetBox once the lease is taken, so a run with nothing to adopt makes one
 * request where it made four (docs/decisions/0045).
 *
 * What to do at each point is decide()'s (decide.ts, pure); this driver performs its steps through
 * the ports (ports.ts) and feeds back what it observed. Every transition is an audit event keyed by
 * the root, so `unicop.audit` holds each root's timeline in order; each step is also a line of the
 * run's own log (run-log.ts: the run page's Timeline in NetBox). A write refused by the fence means
 * another worker holds the root now: this run stops at once and writes nothing more (guarantee 2).
 * The result tells the queue what to do with the job (result.ts): done, or later at a given time.
 */
import { systemClock } from '../../core/clock.js';
import { configDefaults } from '../../core/config.js';
import { uuidv7 } from '../../core/ids.js';
import {
  PluginConflictError,
  type RootLease as PluginLease,
  type PluginRoot,
  type PluginRun,
  type RootSnapshot,
} from '../../core/plugin/client.js';
import { openRunStates } from '../../core/runs/state-machine.js';
import type { ReconcileJobData } from '../reconcile-queue.js';
import {
  blastLimitOf,
  gateDecisionOf,
  heldByGate,
  holdForBlastRadius,
  memberDigests,
} from './blast-radius.js';
import { decide } from './decide.js';
import { type Followed, follow, launchAndFollow, readJob } from './follow.js';
import { gateRun } from './gate.js';
import { finish } from './outcome.js';
import { changeWindows } from './policy.js';
import type { ReconcilerDeps } from './ports.js';
import { recheckSnapshot } from './recheck.js';
import { done, later, type ReconcileResult } from './result.js';
import { RootLease } from './root-lease.js';
import {
  type ActiveRun,
  activeRunOf,
  audit,
  correlation,
  jobUrl,
  type Leased,
  LeaseLostError,
  newRun,
  policyOf,
  type Reconciling,
  templateOf,
  viewOf,
  writeRun,
} from './scope.js';
import type { AwxJobKind, DecideSettings, Observation, RunMode, Step } from './steps.js';
import { verifyRun } from './verify.js';

export interface Reconciler {
  reconcile(job: ReconcileJobData): Promise<ReconcileResult>;
}

export function createReconciler(deps: ReconcilerDeps): Reconciler {
  const base = deps.clock ?? systemClock;
  const clock = deps.now ? { now: deps.now, sleep: base.sleep } : base;
  const { options } = deps;
  const settings: DecideSettings = {
    leaseBusyRetryMs: options.leaseBusyRetryMs,
    freezeRecheckMs: options.freezeRecheckMs ?? configDefaults.UNICOP_FREEZE_RECHECK_SECONDS * 1000,
    retry: options.retry,
    pollMinMs: options.pollMinMs,
    pollMaxMs: options.pollMaxMs,
    cancelGraceMs: options.cancelGraceMs,
    ...(options.approvalRecheckMs === undefined ? {} : { approvalRecheckMs: options.approvalRecheckMs }),
  };
  const scope: Reconciling = { deps, clock, settings };
  return { reconcile: (job) => reconcile(scope, job) };
}

async function reconcile(scope: Reconciling, job: ReconcileJobData): Promise<ReconcileResult> {
  const { deps, clock } = scope;
  const { plugin, options } = deps;
  const log = deps.log.child({ rootKey: job.rootKey, intentId: job.intentId });
  const decideFor = (observation: Observation): Step =>
    decide(viewOf(null, job.cause), observation, scope.settings);
  const freeze = deps.freezeView?.globalState();
  const first = decideFor({
    kind: 'job',
    at: clock.now(),
    freeze: freeze?.frozen ? { reason: freeze.reason } : null,
  });
  if (first.kind === 'later') return later(first.at, first.why);
  const root = await plugin.findRoot(job.rootKey);
  const found = decideFor({ kind: 'root', exists: root !== null });
  if (found.kind === 'drop' || !root) {
    const why = found.kind === 'drop' ? found.why : 'the root no longer exists in NetBox';
    await audit(scope, job.rootKey, 'intent.dropped', 'ignored', why, { intentId: job.intentId });
    return done;
  }
  const waiting = await approvalWait(scope, root);
  if (waiting?.kind === 'later') return later(waiting.at, waiting.why, waiting.wakeOn);
  let answer: Extract<Observation, { kind: 'lease' }>['answer'];
  let taken: PluginLease | null = null;
  try {
    taken = await plugin.acquireLease(root.id, options.holder, options.leaseTtlSeconds, { context: true });
    answer = { kind: 'acquired', token: taken.token };
  } catch (error) {
    if (!(error instanceof PluginConflictError)) throw error;
    answer = error.frozen
      ? { kind: 'frozen', detail: error.detail }
      : { kind: 'busy', holder: error.holder, expiresAt: error.expiresAt ? new Date(error.expiresAt) : null };
  }
  const leased = decideFor({ kind: 'lease', at: clock.now(), answer });
  if (leased.kind === 'later') return later(leased.at, leased.why);
  if (leased.kind === 'park') {
    // Parked, not lost: the sweeper emits an intent for the root once it is unfrozen.
    await audit(scope, job.rootKey, 'intent.parked', 'ignored', leased.why, { intentId: job.intentId });
    return done;
  }
  if (leased.kind !== 'lease-taken') throw new Error(`a lease answer cannot ${leased.kind}`);
  const token = leased.token;
  const leasedAt = clock.now();
  const lease = new RootLease(plugin, root.id, root.key, token, options.leaseTtlSeconds, log);
  const held: Leased = { ...scope, root, lease, log };
  try {
    await audit(scope, root.key, 'lease.acquired', 'ok', null, {
      intentId: job.intentId,
      fencingToken: token,
    });
    return await underLease(held, job, leasedAt, leaseContextOf(taken));
  } catch (error) {
    if (error instanceof LeaseLostError || (error instanceof PluginConflictError && lease.lost)) {
      const fenced = decideFor({ kind: 'fence', reason: (error as Error).message });
      const why = fenced.kind === 'fenced' ? fenced.why : (error as Error).message;
      // The one place `lease_lost` is said: this worker is alive and another holds the root.
      await audit(scope, root.key, 'run.fenced', 'rejected', why, {
        intentId: job.intentId,
        fencingToken: token,
        failureClass: fenced.kind === 'fenced' ? fenced.failureClass : null,
      });
      return done;
    }
    throw error;
  } finally {
    if (await lease.release()) {
      await audit(scope, root.key, 'lease.released', 'ok', null, { fencingToken: token }).catch(
        () => undefined,
      );
    }
  }
}

/**
 * What the lease's answer carried when asked for it (docs/decisions/0045): the root's open runs, its
 * snapshot, last reconciled hash and last run, read by NetBox once the lease was taken — what the
 * job would otherwise read in three more requests. Null from a plugin that sends none of it.
 */
interface LeaseContext {
  openRuns: PluginRun[];
  snapshot: RootSnapshot;
  root: Pick<PluginRoot, 'last_reconciled_hash' | 'last_run'>;
}

function leaseContextOf(lease: PluginLease | null): LeaseContext | null {
  if (!lease?.open_runs || !lease.snapshot || lease.last_reconciled_hash === undefined) return null;
  return {
    openRuns: lease.open_runs,
    snapshot: lease.snapshot,
    root: { last_reconciled_hash: lease.last_reconciled_hash, last_run: lease.last_run ?? null },
  };
}

async function underLease(
  scope: Leased,
  job: ReconcileJobData,
  leasedAt: Date,
  context: LeaseContext | null,
): Promise<ReconcileResult> {
  const { deps, root, lease, clock, settings } = scope;
  const adoption = await adoptOpenRuns(scope, context?.openRuns);
  const { adopted, handedBack } = adoption;
  let continued = adoption.continued;
  if (handedBack) return handBack(handedBack);
  if (adoption.gateHeld) {
    const at = new Date(clock.now().getTime() + (settings.approvalRecheckMs ?? 30_000));
    return later(at, `run ${adoption.gateHeld} awaiting blast-radius approval`);
  }
  let gateApproved = adoption.gateApproved === true;
  // No open run was adopted or continued: nothing was written since the lease's answer was read, so
  // its snapshot and root are current. Otherwise both are read again, after the adoption.
  const unchanged = context && context.openRuns.length === 0 ? context : null;
  const current = unchanged?.snapshot ?? (await deps.plugin.snapshot(root.id));
  const snapshotAt = clock.now();
  if (gateApproved && continued && continued.snapshotHash !== current.hash) {
    // Approved for the snapshot it was held with; NetBox changed since: a new run takes the new one
    // through the gate again (an approval covers what the approver saw).
    await finish(scope, continued, {
      state: 'skipped',
      failureClass: null,
      summary: `blast radius approved for snapshot ${continued.snapshotHash.slice(0, 12)}, which changed since (now ${current.hash.slice(0, 12)}): a new run takes it`,
    });
    continued = null;
    gateApproved = false;
  }
  /** The run's first lines: its lease and the snapshot it converges to (or, in check mode, checks). */
  const begin = (mode: RunMode = 'apply'): ActiveRun => {
    const run = continued
      ? { ...continued, snapshotHash: current.hash }
      : newRun(job, current.hash, clock.now(), uuidv7(), mode);
    run.log.add(leasedAt, 'info', `lease acquired with fencing token ${lease.fencingToken}`, {
      fencing_token: lease.fencingToken,
      holder: deps.options.holder,
    });
    run.log.add(snapshotAt, 'info', `snapshot read: ${current.hash.slice(0, 12)}`, {
      snapshot_hash: current.hash,
    });
    return run;
  };
  const fresh = unchanged?.root ?? (await deps.plugin.findRoot(root.key)) ?? root;
  const step = decide(
    viewOf(null, job.cause),
    {
      kind: 'snapshot',
      at: clock.now(),
      hash: current.hash,
      lastReconciledHash: fresh.last_reconciled_hash ?? null,
      // Drift is flagged by the last run's outcome class (a check-mode run that found the target
      // differing). Not by the root's status: while we hold the lease it reads `reconciling`.
      drifted: (fresh.last_run as { outcome_class?: string } | null)?.outcome_class === 'drift',
      // A check run that succeeded converged nothing: only apply runs count.
      adoptedSucceeded: adopted
        .filter((r) => r.state === 'succeeded' && r.mode === 'apply')
        .map((r) => r.snapshotHash),
      takenUp: adopted.filter((r) => r.handedBack).map((r) => r.snapshotHash),
      windows: changeWindows(policyOf(root).change_window),
    },
    settings,
  );
  switch (step.kind) {
    case 'done':
      // A run this job continues converges to the same snapshot: it ends with nothing to do.
      if (continued) {
        await finish(scope, begin(), {
          state: 'skipped',
          failureClass: null,
          summary: `${step.why}; nothing to launch`,
        });
      }
      return done;
    case 'skip': {
      const run = begin();
      await writeRun(scope, run, 'skipped');
      await finish(scope, run, step.end);
      return done;
    }
    case 'wait-window': {
      // An approved held run waits for the window as it is (still awaiting_approval, decided).
      if (gateApproved) return later(step.opensAt, 'change window closed');
      const run = begin();
      run.log.add(clock.now(), 'info', step.summary, { opens_at: step.opensAt.toISOString() });
      await writeRun(scope, run, 'queued', { summary: step.summary });
      await audit(scope, root.key, 'run.window_wait', 'ok', step.summary, correlation(run, lease));
      return later(step.opensAt, 'change window closed');
    }
    case 'start': {
      if (continued && continued.mode !== step.mode) {
        // A run of the other mode left before its launch cannot become this one (a run's mode never
        // changes): it ends superseded, and this job starts its own run.
        await finish(scope, begin(continued.mode), {
          state: 'skipped',
          failureClass: null,
          summary: `superseded: this job starts a ${step.mode} run instead`,
        });
        continued = null;
      }
      const run = begin(step.mode);
      run.leasedAt = clock.now();
      // Held by the blast-radius gate and approved (0065): it was written `leased` with its digests and
      // passed both gates before its hold; it goes on to the launch as it is.
      const resumed = gateApproved || (run.created && run.state === 'leased'); // audited run.resumed already
      // Its members' digests (0065), where the root has a blast-radius limit: the baseline of the next
      // run's blast radius once it succeeds (a root without one stores none).
      const limited = run.mode === 'apply' && !gateApproved && blastLimitOf(policyOf(root)) !== null;
      const digests = limited ? memberDigests(current.snapshot) : null;
      if (!gateApproved) {
        await writeRun(scope, run, 'leased', {
          summary: '',
          ...(digests ? { member_digests: digests } : {}),
        });
      }
      if (!resumed) {
        await audit(scope, root.key, 'run.leased', 'ok', run.mode === 'check' ? 'check mode' : null, {
          ...correlation(run, lease),
          cause: job.cause.kind,
          mode: run.mode,
        });
      }
      // The validation gate (docs/decisions/0060): a snapshot its kind's schema refuses never reaches AWX.
      const refused = gateApproved ? null : gateRun(scope, run, current.snapshot);
      if (refused) {
        await finish(scope, run, refused);
        return done;
      }
      // The blast-radius gate (0065): too many members changed since the last reconciled run → held.
      const held =
        digests && (await holdForBlastRadius(scope, run, digests, fresh.last_reconciled_hash ?? null));
      if (held) return held;
      // Fail-safe trigger (d) (0067): NetBox's hash re-read just before the launch, against the lease's.
      const inconsistent = await recheckSnapshot(scope, run, current);
      if (inconsistent) {
        await finish(scope, run, inconsistent);
        return done;
      }
      const followed = await launchAndFollow(scope, run, current.snapshot);
      if (followed.kind === 'handed-back') return handBack(followed);
      // A successful apply job is verified when the root's policy says so (docs/decisions/0066).
      await finish(scope, run, await verifyRun(scope, run, followed.end, current.snapshot));
      return done;
    }
    default:
      throw new Error(`a snapshot cannot ${step.kind}`);
  }
}

/** The job's answer when its run, awaiting approval, was handed back: later, woken by AWX's notifications. */
function handBack(followed: Extract<Followed, { kind: 'handed-back' }>): ReconcileResult {
  return later(followed.at, `awaiting approval of AWX workflow job ${followed.awx.id}`, followed.awx);
}

/**
 * Before any lease: is the root's last run one handed back awaiting approval, still pending in AWX
 * and within its run timeout? Then the job goes back to the queue (decide()'s `approval-wait`)
 * without taking the lease or writing anything — a wait of days costs a read of NetBox and two of
 * AWX per look, and no worker slot. Null when there is no such run (the job goes on as usual: an
 * approved, denied or expired run is adopted and followed to its end).
 */
async function approvalWait(scope: Reconciling, root: PluginRoot): Promise<Step | null> {
  const { deps, clock, settings } = scope;
  const last = root.last_run;
  if (settings.approvalRecheckMs === undefined || root.lease.live) return null;
  if (last && heldByGate(last)) return gateWait(scope, root, last.run_id, settings.approvalRecheckMs);
  if (last?.state !== 'awaiting_approval' || last.awx_job_type !== 'workflow' || !last.awx_job_id)
    return null;
  const record = (await deps.plugin.listRuns(root.key, ['awaiting_approval'])).find(
    (r) => r.run_id === last.run_id,
  );
  const run = record ? activeRunOf(record) : null;
  if (!run?.handedBack || !run.timeoutAt) return null; // not handed back: its worker stopped (adopted)
  const workflowJobId = last.awx_job_id;
  const read = await readJob(deps.awx, { kind: 'workflow_job', id: workflowJobId });
  return decide(
    viewOf(run, run.cause),
    { kind: 'approval-wait', at: clock.now(), workflowJobId, deadline: run.timeoutAt, read },
    settings,
  );
}

/**
 * The root's last run is held by the blast-radius gate (docs/decisions/0065): while no one decided, the
 * job goes back to the queue without the lease (a read of NetBox per look); once decided, null — the
 * job takes the lease and adoptOpenRuns takes the run up (launch, or `denied`).
 */
async function gateWait(
  scope: Reconciling,
  root: PluginRoot,
  runId: string,
  recheckMs: number,
): Promise<Step | null> {
  const record = (await scope.deps.plugin.listRuns(root.key, ['awaiting_approval'])).find(
    (r) => r.run_id === runId,
  );
  if (!record || gateDecisionOf(record)) return null;
  const at = new Date(scope.clock.now().getTime() + recheckMs);
  return { kind: 'later', at, why: `run ${runId} awaiting blast-radius approval` };
}

/**
 * Runs of this root still open in NetBox belong to a worker that stopped (we hold the lease now).
 * One with an AWX job is adopted: the job is followed to its end, never launched again. One that
 * never reached AWX (none carries its run id) is continued by this job (returned): a run waiting
 * for its change window goes on waiting; one left before its launch is resumed — same run id,
 * this lease's token recorded on it at once, a warning line in its log, `run.resumed` — and
 * launched by this job (docs/decisions/0037). Any other such run is superseded (`skipped`).
 */
async function adoptOpenRuns(
  scope: Leased,
  openRuns?: PluginRun[],
): Promise<{
  continued: ActiveRun | null;
  adopted: ActiveRun[];
  /** An adopted run still awaiting approval, handed back again: the job stops here. */
  handedBack?: Extract<Followed, { kind: 'handed-back' }>;
  /** A run the blast-radius gate holds, not decided yet: the job stops here (0065). */
  gateHeld?: string;
  /** The continued run is one the blast-radius gate held, approved: it launches as it is (0065). */
  gateApproved?: boolean;
}> {
  const { deps, root, lease, clock, settings } = scope;
  let continued: ActiveRun | null = null;
  const adopted: ActiveRun[] = [];
  let gateApproved = false;
  for (const record of openRuns ?? (await deps.plugin.listRuns(root.key, openRunStates))) {
    const run = activeRunOf(record);
    if (heldByGate(record)) {
      // Held by the blast-radius gate (0065): taken up once a person decided.
      const decision = gateDecisionOf(record);
      if (!decision) return { continued, adopted, gateHeld: run.runId };
      if (decision.decision === 'approved' && continued === null) {
        run.log.add(clock.now(), 'info', `blast radius approved by ${decision.by}; launching`, {});
        continued = run;
        gateApproved = true;
        continue;
      }
      const why =
        decision.decision === 'denied' ? `denied by ${decision.by}` : `superseded by run ${continued?.runId}`;
      await finish(
        scope,
        run,
        decision.decision === 'denied'
          ? {
              state: 'denied',
              failureClass: 'denied',
              summary: `blast radius ${why}${decision.reason ? `: ${decision.reason}` : ''}; nothing launched`,
            }
          : { state: 'skipped', failureClass: null, summary: `${why}; nothing launched` },
        { retry: false },
      );
      // Its job ends with it, as after an AWX approval wait: the snapshot it was held for is taken up.
      run.handedBack = true;
      adopted.push(run);
      continue;
    }
    let step = decide(
      viewOf(run, run.cause),
      { kind: 'open-run', lookedUp: false, continuing: continued?.runId ?? null },
      settings,
    );
    if (step.kind === 'find-launched') {
      run.awx = await findLaunched(scope, record);
      step = decide(
        viewOf(run, run.cause),
        { kind: 'open-run', lookedUp: true, continuing: continued?.runId ?? null },
        settings,
      );
    }
    if (step.kind === 'adopt' && run.awx) {
      const jobRef = run.awx;
      // The run timeout starts again with the new holder, unless the run was handed back
      // awaiting approval: then it keeps the one its log records (run.timeoutAt).
      run.leasedAt = clock.now();
      const why = run.handedBack
        ? `taken up by ${deps.options.holder} after waiting for approval; following AWX ${jobRef.kind} ${jobRef.id}`
        : `adopted by ${deps.options.holder} (its worker stopped); following AWX ${jobRef.kind} ${jobRef.id}`;
      run.log.add(run.leasedAt, run.handedBack ? 'info' : 'warning', why, {
        fencing_token: lease.fencingToken,
        awx_job_id: jobRef.id,
      });
      await writeRun(scope, run, record.state, {
        awx_job_id: jobRef.id,
        awx_job_type: jobRef.kind === 'job' ? 'job' : 'workflow',
        awx_job_url: jobRef.url,
      });
      const reason = run.handedBack
        ? `taken up after waiting for approval; following AWX ${jobRef.kind} ${jobRef.id}`
        : `following AWX ${jobRef.kind} ${jobRef.id}`;
      await audit(scope, root.key, 'run.adopted', 'ok', reason, {
        ...correlation(run, lease),
        awxJobId: jobRef.id,
      });
      const followed = await follow(scope, run);
      if (followed.kind === 'handed-back') return { continued, adopted, handedBack: followed };
      // Its verify job, if it recorded one, is followed; else launched if its policy asks (0066).
      await finish(scope, run, await verifyRun(scope, run, followed.end, null));
      adopted.push(run);
    } else if (step.kind === 'keep-waiting') {
      continued = run;
    } else if (step.kind === 'resume') {
      await resume(scope, run, record);
      continued = run;
    } else if (step.kind === 'end') {
      await finish(scope, run, step.end, { retry: step.retryAllowed });
    } else {
      throw new Error(`an open run cannot ${step.kind}`);
    }
  }
  return { continued, adopted, gateApproved };
}

/**
 * Resumes a run its worker left before launching: this lease's token is written on the run at once
 * (from here on the dead holder's token is refused on it, as it is on the root), with a warning line
 * naming the holder it is resumed from, and `run.resumed`. The launch that follows asks AWX for a job
 * carrying the run id first (AwxClient's launch), so a job the dead worker did start is taken, not
 * doubled.
 */
async function resume(scope: Leased, run: ActiveRun, record: PluginRun): Promise<void> {
  const { deps, root, lease, clock, log } = scope;
  const formerToken = record.fencing_token;
  const formerHolder = holderOf(run) ?? 'a worker that stopped';
  const why = `resumed from ${formerHolder} (fencing token ${formerToken} → ${lease.fencingToken}): its holder stopped before the launch and no AWX job carries this run`;
  run.leasedAt = clock.now();
  run.log.add(run.leasedAt, 'warning', `${why}; ${deps.options.holder} launches it`, {
    fencing_token: lease.fencingToken,
    former_fencing_token: formerToken,
    former_holder: formerHolder,
    holder: deps.options.holder,
  });
  log.warn({ runId: run.runId, formerHolder, formerToken, fencingToken: lease.fencingToken }, 'run resumed');
  await writeRun(scope, run, record.state);
  await audit(scope, root.key, 'run.resumed', 'ok', why, {
    ...correlation(run, lease),
    formerFencingToken: formerToken,
    formerHolder,
  });
}

/** The holder that last took a lease for the run, from its log (the `lease acquired` line's meta). */
function holderOf(run: ActiveRun): string | null {
  for (const line of [...run.log.lines()].reverse()) {
    const holder = (line.meta as Record<string, unknown> | undefined)?.holder;
    if (typeof holder === 'string' && holder) return holder;
  }
  return null;
}

/** An open run whose AWX job id was never recorded: AWX is asked for a job carrying its run id. */
async function findLaunched(scope: Leased, record: PluginRun): Promise<ActiveRun['awx']> {
  const template = templateOf(scope.root);
  if (template.id === null) return null;
  const since = new Date(Date.parse(record.started) - 60_000);
  const found =
    template.type === 'workflow'
      ? await scope.deps.awx.findWorkflowJobByRunId(template.id, record.run_id, since)
      : await scope.deps.awx.findJobByRunId(template.id, record.run_id, since);
  if (!found) return null;
  const kind: AwxJobKind = template.type === 'workflow' ? 'workflow_job' : 'job';
  return { kind, id: found.id as number, url: jobUrl(scope, kind, found.id as number) };
}
