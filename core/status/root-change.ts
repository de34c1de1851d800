/**
 * Where a root's newest change is held (issue #16 item 5), from readings already made
 * (why-it-waits.ts): the root as the plugin holds it (hashes, freeze, lease, last run), the root's
 * job in the reconcile queue, the AWX status of its open run's job, and the pipeline's stages before
 * the queue. Pure: tested by table (test/core/root-change.test.ts).
 *
 * The root is reconciled when its current snapshot hash is the one last reconciled and nothing of it
 * is queued, leased or running. Otherwise the change is held by the furthest thing that is the
 * root's own — a frozen root, a root held in a rollout's wave not opened yet, its job in the queue (waiting with n ahead, or delayed), its open run
 * (awaiting approval, its AWX job pending or running, or the lease held) — and, when none is, by the
 * first stage before the queue that holds work (NetBox's background queue, a consumer group's lag):
 * a change is keyed by its NetBox object, not by its root, so which record there is the root's is
 * not known, only that it must pass them. Nothing anywhere: the change never reached UNICOP (webhook
 * not sent or refused) — the sweeper finds it.
 */
import type { PluginRoot } from '../plugin/client.js';
import { isTerminal, type RunState } from '../runs/state-machine.js';
import type { RootJob } from './readings.js';

/** The pipeline's stage names (why-it-waits.ts stageOrder), and the bridge for what never arrived. */
export type HoldingStage =
  | 'netbox'
  | 'bridge'
  | 'resolver'
  | 'dispatcher'
  | 'reconcile-queue'
  | 'root'
  | 'awx';

export const holdReasons = [
  'reconciled',
  'frozen',
  'rollout-held',
  'waiting-for-worker',
  'delayed',
  'awaiting-approval',
  'awx-pending',
  'awx-running',
  'lease-held',
  'last-run-failed',
  'upstream',
  'not-received',
  'unknown',
] as const;
export type HoldReason = (typeof holdReasons)[number];

export interface RootChange {
  rootKey: string;
  /** The current snapshot hash is the one last reconciled and nothing of the root is queued or running. */
  reconciled: boolean;
  /** The stage that holds the root's newest change; null when reconciled or unknown. */
  stage: HoldingStage | null;
  reason: HoldReason;
  summary: string;
  figures: Record<string, unknown>;
}

/** A stage reading as why-it-waits.ts makes it (only what is read here). */
export interface UpstreamReading {
  stage: string;
  state: 'holding' | 'clear' | 'unknown';
  summary: string;
  figures: Record<string, unknown>;
}

export interface RootChangeReadings {
  rootKey: string;
  /** The plugin's root; null: NetBox has none; an Error: it could not be read. */
  root: PluginRoot | null | Error;
  /** The root's job in the reconcile queue; null: none; an Error: the queue could not be read. */
  job: RootJob | null | Error;
  /** AWX's status of the open run's job; null when there is none or it could not be read. */
  awxStatus: string | null;
  /** The stages before the reconcile queue (netbox, resolver, dispatcher), in the change's order. */
  upstream: UpstreamReading[];
  /** For a root whose status is `held`: the live rollout holding it; null: none found; an Error: unread. */
  heldBy?: HeldBy | null | Error;
  now: Date;
}

/** The live rollout holding a root in a wave not opened yet (docs/decisions/0061). */
export interface HeldBy {
  rolloutId: string;
  state: string;
  /** The root's wave and the rollout's current one, from 1. */
  wave: number;
  currentWave: number;
  waves: number;
}

/** How a held root's wait reads, for root-change and the root stage alike. */
export function heldSummary(rootKey: string, heldBy: HeldBy | null | Error | undefined): string {
  if (heldBy && !(heldBy instanceof Error)) {
    const halted =
      heldBy.state === 'halted'
        ? ', halted: a person resumes or aborts it (`unicop rollout resume|abort`)'
        : '';
    return `the root is held by rollout ${heldBy.rolloutId} (wave ${heldBy.wave} of ${heldBy.waves}, the rollout at wave ${heldBy.currentWave}${halted}): nothing of it runs, and a newer change is parked, until its wave opens — \`unicop rollout show ${heldBy.rolloutId}\``;
  }
  const unread = heldBy instanceof Error ? ` (which one could not be read: ${heldBy.message})` : '';
  return `the root is held by a live rollout${unread}: nothing of it runs until its wave opens — \`unicop rollout list\` (NetBox: /api/plugins/unicop/rollouts/?root=${rootKey})`;
}

const secondsFrom = (from: string | Date, now: Date) =>
  Math.max(0, Math.round((now.getTime() - new Date(from).getTime()) / 1000));
const short = (hash: string | null | undefined) => (hash ? hash.slice(0, 12) : 'none');
const awxWaitingStates = new Set(['new', 'pending', 'waiting']);
const unsuccessful = new Set(['failed', 'canceled', 'timed_out', 'denied']);

export function locateRootChange(r: RootChangeReadings): RootChange {
  const { rootKey, now } = r;
  const held = (stage: HoldingStage | null, reason: HoldReason, summary: string, figures = {}) => ({
    rootKey,
    reconciled: reason === 'reconciled',
    stage,
    reason,
    summary,
    figures,
  });
  if (r.root instanceof Error) {
    return held(null, 'unknown', `the root could not be read: ${r.root.message}`);
  }
  if (r.root === null) return held(null, 'unknown', `NetBox has no root ${rootKey}`);
  const root = r.root;
  const job = r.job instanceof Error ? null : r.job;
  const run = root.last_run;
  const openRun = run && !isTerminal(run.state as RunState) ? run : null;
  const lease = root.lease;
  const leaseText = lease.live ? `lease held by ${lease.holder} (token ${lease.token})` : null;
  // A stale current hash (a change NetBox has not hashed yet: plugin decision 0043) differs, whatever it says.
  const stale = root.hash_stale === true;
  const figures = {
    currentHash: root.current_hash || null,
    hashStale: stale,
    lastReconciledHash: root.last_reconciled_hash || null,
    job: job
      ? { ...job, dueAt: job.dueAt?.toISOString() ?? null }
      : r.job instanceof Error
        ? { unknown: r.job.message }
        : null,
    run: run
      ? {
          runId: run.run_id,
          state: run.state,
          started: run.started,
          awxJobId: run.awx_job_id,
          awxStatus: openRun ? r.awxStatus : null,
        }
      : null,
    lease: { live: lease.live, holder: lease.holder, token: lease.token, expiresAt: lease.expires_at },
  };
  const hashDiffers = stale || !root.current_hash || root.current_hash !== root.last_reconciled_hash;
  const current = `${short(root.current_hash)}${stale ? ' (stale: a change not hashed yet)' : ''}`;
  const queueUnread =
    r.job instanceof Error ? ` (the reconcile queue could not be read: ${r.job.message})` : '';

  if (!job && !openRun && !lease.live && !hashDiffers && !(r.job instanceof Error)) {
    return held(
      null,
      'reconciled',
      `reconciled: the current snapshot hash ${short(root.current_hash)} is the one last reconciled; nothing queued or running`,
      figures,
    );
  }
  if (root.frozen) {
    return held(
      'root',
      'frozen',
      `the root is frozen (${root.frozen_reason || 'no reason recorded'}): nothing of it runs until it is resumed`,
      figures,
    );
  }
  if (root.status === 'held') {
    const heldBy = r.heldBy instanceof Error ? null : (r.heldBy ?? null);
    return held('root', 'rollout-held', heldSummary(rootKey, r.heldBy), {
      ...figures,
      heldBy: heldBy ?? (r.heldBy instanceof Error ? { unknown: r.heldBy.message } : null),
    });
  }
  if (job && (job.state === 'waiting' || job.state === 'prioritized')) {
    const ahead = job.ahead === null ? 'its place unknown' : `${job.ahead} job(s) ahead of it`;
    return held(
      'reconcile-queue',
      'waiting-for-worker',
      `job ${job.jobId} waits in the reconcile queue for a worker, ${ahead}${leaseText ? `; ${leaseText}` : ''}`,
      figures,
    );
  }
  if (job && job.state === 'delayed') {
    const due = job.dueAt
      ? ` until ${job.dueAt.toISOString()} (in ${Math.max(0, Math.round((job.dueAt.getTime() - now.getTime()) / 1000))} s)`
      : '';
    const why = leaseText ? `: ${leaseText}` : ' (a change window, a retry, or the lease was busy)';
    return held('reconcile-queue', 'delayed', `job ${job.jobId} is delayed${due}${why}`, figures);
  }
  const behind = job?.nextIntentId ? `; a newer intent (${job.nextIntentId}) waits for it to end` : '';
  if (openRun) {
    const since = `since ${secondsFrom(openRun.started, now)} s`;
    const awxJob = openRun.awx_job_id
      ? `${openRun.awx_job_type === 'workflow' ? 'workflow job' : 'job'} ${openRun.awx_job_id}`
      : null;
    if (openRun.state === 'awaiting_approval') {
      return held(
        'awx',
        'awaiting-approval',
        `run ${openRun.run_id} awaits approval in AWX (${awxJob ?? 'no job recorded'}) ${since}${behind}`,
        figures,
      );
    }
    if (awxJob && r.awxStatus && awxWaitingStates.has(r.awxStatus)) {
      return held(
        'awx',
        'awx-pending',
        `run ${openRun.run_id}: AWX ${awxJob} is ${r.awxStatus}, not started yet (AWX's capacity) ${since}${behind}`,
        figures,
      );
    }
    if (awxJob) {
      return held(
        'awx',
        'awx-running',
        `run ${openRun.run_id}: AWX ${awxJob} is ${r.awxStatus ?? openRun.state} ${since}${behind}`,
        figures,
      );
    }
    return held(
      'root',
      'lease-held',
      `run ${openRun.run_id} is ${openRun.state} ${since}${leaseText ? `; ${leaseText}` : ''}${behind}`,
      figures,
    );
  }
  if (job || lease.live) {
    const worked = job ? `job ${job.jobId} is being worked on` : 'no job of this queue has it';
    return held(
      'root',
      'lease-held',
      `${worked}; ${leaseText ?? 'lease free'}${lease.live ? ` until ${lease.expires_at}` : ''}${behind}`,
      figures,
    );
  }
  if (!hashDiffers) {
    // In step and nothing of the root open: only a queue that could not be read keeps this from reconciled.
    return held(
      null,
      'unknown',
      `in step with the last reconciled hash ${short(root.current_hash)}, but whether a job waits is not known${queueUnread}`,
      figures,
    );
  }
  if (run && !stale && run.snapshot_hash === root.current_hash && unsuccessful.has(run.state)) {
    return held(
      'root',
      'last-run-failed',
      `run ${run.run_id} of this state ended ${run.state}${run.outcome_class ? ` (${run.outcome_class})` : ''}: nothing retries it until a new change, a sweep or \`unicop reconcile\`${queueUnread}`,
      figures,
    );
  }
  const upstream = r.upstream.find((s) => s.state === 'holding');
  if (upstream) {
    return held(
      upstream.stage as HoldingStage,
      'upstream',
      `not queued yet (current hash ${current}, last reconciled ${short(root.last_reconciled_hash)}); it must pass ${upstream.stage}: ${upstream.summary}${queueUnread}`,
      { ...figures, upstream: upstream.figures },
    );
  }
  const unread = r.upstream.filter((s) => s.state === 'unknown').map((s) => s.stage);
  if (unread.length > 0 || r.job instanceof Error) {
    return held(
      null,
      'unknown',
      `not queued, and ${[...unread, ...(r.job instanceof Error ? ['reconcile-queue'] : [])].join(', ')} could not be read`,
      figures,
    );
  }
  return held(
    'bridge',
    'not-received',
    `the state differs from the last reconciled (${current} vs ${short(root.last_reconciled_hash)}) but nothing holds it: NetBox's queue is empty, both groups are at the end, no job — the change did not reach UNICOP (webhook not sent, or refused: the bridge's log, unicop.audit); the sweeper reconciles it at its next sweep`,
    figures,
  );
}
