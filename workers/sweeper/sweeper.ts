/**
 * The sweeper: the net under webhooks NetBox never delivered, and the way queue state comes back
 * after Redis lost its data. It walks the plugin's bulk listing and emits an intent (cause `sweep`,
 * or `resume` after a global freeze ends) for every root that needs work:
 *
 *   - its current snapshot hash differs from its last reconciled hash, unless the root is frozen,
 *     leased right now (a run is converging it), or its last run already ended terminally at this
 *     very hash (a terminal failure waits for a human or a new change, not for the next sweep);
 *   - or its current hash is stale (`hash_stale`: a change marked it and the plugin's background
 *     recompute has not stored the new hash yet, docs/decisions/0043), unless frozen or leased: the
 *     listing cannot say whether it drifted, so it is reconciled rather than skipped. The run reads
 *     the snapshot itself and ends skipped when that hash was already reconciled, and the snapshot
 *     read stores the fresh hash, so the next sweep decides from it;
 *   - or its last run is still open while nobody holds its lease (a worker died and its job was
 *     lost with Redis): the intent's run adopts it, and the intent says so (`openRun`), so its job
 *     goes ahead of fresh intents in the queue (workers/reconcile-queue.ts). Not while the root
 *     still has a job in the queue (given `jobs`): a run awaiting approval is left unleased by its
 *     job, which comes back to it (decision 0044).
 *
 * A lease is only held while a worker runs the root's job. Given the queue (`jobs`), the sweeper
 * frees a live lease held for that queue (the holder name carries the queue's tag) whose root has
 * no job in flight there — Redis lost it, so no worker will ever finish or release it — instead of
 * skipping the root until the lease expires: it releases the
 * lease with the very token the listing showed (refused, and left alone, if the lease changed
 * since), audits `lease.freed`, and the root is swept as unleased. Safe if the old holder is still
 * alive: its next renewal is refused (it stops), and the next holder's higher token fences its
 * writes (decision 0038).
 *
 * It sweeps on start, on an interval, on demand, when the global freeze is lifted, and when the
 * Redis epoch key is missing (Redis restarted empty: every queued job is gone, docs/runbooks). On
 * demand is also a request the admin API queued in Redis (`unicop sweep`): taken at the next check,
 * and its report recorded under the request's id (core/control/sweep-requests.ts).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../../core/clock.js';
import { configDefaults } from '../../core/config.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import { recordSweepReport, takeSweepRequests } from '../../core/control/sweep-requests.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import { auditMessage } from '../../core/events/audit.js';
import { terminalRunStates } from '../../core/events/catalogue.js';
import { intentMessage } from '../../core/events/intent.js';
import { type PluginClient, PluginConflictError, type PluginRoot } from '../../core/plugin/client.js';
import type { WorkerMetrics } from '../metrics.js';
import { holderQueueTag, type RootJobs } from '../reconcile-queue.js';

export const sweeperSource = 'unicop/sweeper';

/** Roots per page of the plugin's listing while sweeping. */
export const sweepPageSize = 1000;

/**
 * The fields of each root the sweep reads (the decision, the lost-lease check, the intent): the
 * listing is asked for these only, which spares NetBox loading anchors and tags (decision 0043).
 */
export const sweptFields = [
  'id',
  'key',
  'frozen',
  'status',
  'current_hash',
  'hash_stale',
  'last_reconciled_hash',
  'lease',
  'last_run',
] as const satisfies readonly (keyof PluginRoot)[];

/** The Redis key whose absence means Redis lost its data since the workers last looked. */
export const redisEpochKey = 'unicop:redis-epoch';

export interface SweeperDeps {
  plugin: Pick<PluginClient, 'allRoots' | 'releaseLease'>;
  eventLog: EventLog;
  log: Logger;
  freezeView?: FreezeView;
  redis?: Redis;
  intervalMs: number;
  /** How often the freeze switch and the Redis epoch are checked (cheap; UNICOP_SWEEP_CHECK_MS). */
  checkMs?: number;
  /** Where the sweeper reads the time and waits between checks; the system clock by default. */
  clock?: Clock;
  metrics?: WorkerMetrics;
  /** Sweep at once on start (catches webhooks lost while UNICOP was down); else after one interval. */
  sweepOnStart?: boolean;
  /** The reconcile queue: a live lease whose root has no job in it is freed. None: leases are left to expire. */
  jobs?: RootJobs;
}

export interface SweepReport {
  scanned: number;
  emitted: string[];
  /** Roots whose lease was freed: live, but no job of the root was in the queue. */
  freed: string[];
}

/** What the sweep decision reads of a root, as the plugin's bulk listing gives it. */
export type SweptRoot = Pick<PluginRoot, 'frozen' | 'current_hash' | 'last_reconciled_hash'> &
  Partial<Pick<PluginRoot, 'hash_stale' | 'status'>> & {
    lease: Pick<PluginRoot['lease'], 'live'>;
    last_run: Pick<NonNullable<PluginRoot['last_run']>, 'state' | 'snapshot_hash'> | null;
  };

/** Whether the root's last run has not ended (a worker holds it, or died holding it). */
export function lastRunOpen(root: Pick<SweptRoot, 'last_run'>): boolean {
  const last = root.last_run;
  return last !== null && !(terminalRunStates as readonly string[]).includes(last.state);
}

/** Why a root needs an intent, or null when it does not. */
export function sweepReason(root: SweptRoot): string | null {
  // Frozen, or held in a rollout wave not opened yet (docs/decisions/0061): its lease is refused, so an
  // intent would only be parked; the wave's release reconciles the newest snapshot.
  if (root.frozen || root.status === 'held') return null;
  if (root.lease.live) return null;
  const last = root.last_run;
  if (lastRunOpen(root)) return 'its last run is open and nobody holds its lease';
  if (root.hash_stale) return 'current hash is stale (a change not yet hashed): the run reads the snapshot';
  if (!root.current_hash || root.current_hash === root.last_reconciled_hash) return null;
  if (last?.snapshot_hash === root.current_hash) return null;
  return 'current hash differs from the last reconciled hash';
}

export class Sweeper {
  private checking: AbortController | undefined;
  private running: Promise<SweepReport> | null = null;
  private lastSweep = 0;
  private wasFrozen = false;
  private owed: 'sweep' | 'resume' | null = null;
  /** Sweep requests taken from Redis and not yet answered with a report. */
  private requests: { requestId: string; requestedAt: string }[] = [];

  private readonly clock: Clock;

  constructor(private readonly deps: SweeperDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  private nowMs(): number {
    return this.clock.now().getTime();
  }

  /** Sweeps now (a sweep already under way is joined, not doubled). */
  sweep(cause: 'sweep' | 'resume' = 'sweep'): Promise<SweepReport> {
    this.running ??= this.walk(cause).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  start(): void {
    if (this.deps.sweepOnStart === false) this.lastSweep = this.nowMs();
    const check = async () => {
      try {
        await this.tick();
      } catch (error) {
        this.deps.log.warn({ err: error }, 'sweep failed; trying again at the next tick');
      }
    };
    // A check every checkMs, whether or not the one before has finished (a sweep is joined, not doubled).
    const checkMs = this.deps.checkMs ?? configDefaults.UNICOP_SWEEP_CHECK_MS;
    const checking = new AbortController();
    this.checking = checking;
    void (async () => {
      while (!checking.signal.aborted) {
        void check();
        await this.clock.sleep(checkMs, checking.signal);
      }
    })();
  }

  stop(): void {
    this.checking?.abort();
  }

  /**
   * A sweep owed (after a resume, or because Redis lost its data) stays owed until one succeeds:
   * a sweep that fails (NetBox or Kafka away) is tried again at the next tick. The epoch key is
   * written only after the rebuilding sweep went through.
   */
  private async tick(): Promise<void> {
    const frozen = this.deps.freezeView?.globalState()?.frozen === true;
    if (this.wasFrozen && !frozen) this.owed = 'resume';
    this.wasFrozen = frozen;
    if (frozen) return;
    const epochMissing = this.deps.redis ? (await this.deps.redis.exists(redisEpochKey)) === 0 : false;
    if (epochMissing && !this.owed) {
      this.deps.log.warn('Redis epoch key missing (first start, or Redis lost its data): sweeping');
      this.owed = 'sweep';
    }
    if (this.deps.redis) this.requests.push(...(await takeSweepRequests(this.deps.redis)));
    if (!this.owed && this.requests.length > 0) this.owed = 'sweep';
    if (!this.owed && this.nowMs() - this.lastSweep >= this.deps.intervalMs) this.owed = 'sweep';
    if (!this.owed) return;
    const report = await this.sweep(this.owed);
    this.owed = null;
    await this.answerRequests(report);
    if (epochMissing) await this.deps.redis?.set(redisEpochKey, this.clock.now().toISOString());
  }

  /** Records the report under every request this sweep answered (kept until that succeeds). */
  private async answerRequests(report: SweepReport): Promise<void> {
    const redis = this.deps.redis;
    if (!redis) return;
    const finishedAt = this.clock.now().toISOString();
    while (this.requests.length > 0) {
      const request = this.requests[0] as { requestId: string; requestedAt: string };
      await recordSweepReport(redis, { ...request, finishedAt, ...report });
      this.requests.shift();
    }
  }

  private async walk(cause: 'sweep' | 'resume'): Promise<SweepReport> {
    const started = this.nowMs();
    this.lastSweep = started;
    const report: SweepReport = { scanned: 0, emitted: [], freed: [] };
    let batch: EventLogMessage[] = [];
    // Pages of 1,000 (the plugin's largest), only the fields read: the listing computes no hash
    // and loads no anchor (docs/decisions/0043).
    for await (const listed of this.deps.plugin.allRoots(sweepPageSize, sweptFields)) {
      report.scanned++;
      let root = listed;
      const freed = await this.freeLostLease(root);
      if (freed) {
        batch.push(freed);
        report.freed.push(root.key);
        root = { ...root, lease: { ...root.lease, live: false } };
      }
      const reason = sweepReason(root);
      if (!reason) continue;
      // An open run whose root still has a job in the queue (handed back while it awaits approval,
      // decision 0044): that job takes it up; an intent every sweep would only crowd its timeline.
      if (lastRunOpen(root) && (await this.deps.jobs?.inFlight(root.key))) continue;
      batch.push(...this.intentFor(root, cause, reason));
      report.emitted.push(root.key);
      this.deps.metrics?.swept.inc({ cause });
      if (batch.length >= 500) {
        await this.deps.eventLog.append(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await this.deps.eventLog.append(batch);
    this.deps.log.info(
      {
        scanned: report.scanned,
        emitted: report.emitted.length,
        freed: report.freed.length,
        ms: this.nowMs() - started,
        cause,
      },
      'sweep done',
    );
    this.deps.metrics?.sweeps.inc({ cause });
    this.deps.metrics?.lastSweep.set(this.nowMs() / 1000);
    return report;
  }

  /**
   * Releases a live lease whose root has no job in the queue, with the token the listing showed; its
   * audit event when it did. A lease that changed since (released, expired, taken) is refused by
   * the plugin and left to whoever holds it now.
   */
  private async freeLostLease(root: PluginRoot): Promise<EventLogMessage | null> {
    const { jobs, plugin, log } = this.deps;
    const { live, token, holder } = root.lease;
    if (!jobs || !live || token === null) return null;
    if (holderQueueTag(holder) !== jobs.tag) return null; // another queue's lease: not ours to judge
    if (await jobs.inFlight(root.key)) return null;
    try {
      await plugin.releaseLease(root.id, token);
    } catch (error) {
      if (error instanceof PluginConflictError) return null;
      throw error;
    }
    const reason = `lease of ${holder ?? 'an unknown holder'} (token ${token}) freed: the root has no job in the queue`;
    log.warn({ rootKey: root.key, holder, fencingToken: token }, reason);
    return auditMessage(
      sweeperSource,
      {
        action: 'lease.freed',
        actor: 'unicop-sweeper',
        subjectType: 'root',
        subjectId: root.key,
        outcome: 'ok',
        reason,
        correlation: { fencingToken: token, holder: holder ?? null },
        metadata: {},
      },
      root.key,
    );
  }

  private intentFor(root: PluginRoot, cause: 'sweep' | 'resume', reason: string): EventLogMessage[] {
    const { intentId, message } = intentMessage(
      sweeperSource,
      root.key,
      { kind: cause, actor: 'unicop-sweeper', ...(lastRunOpen(root) ? { openRun: true } : {}) },
      { at: this.clock.now() },
    );
    return [
      message,
      auditMessage(
        sweeperSource,
        {
          action: 'intent.swept',
          actor: 'unicop-sweeper',
          subjectType: 'root',
          subjectId: root.key,
          outcome: 'ok',
          reason,
          correlation: {
            intentId,
            currentHash: root.current_hash ?? null,
            lastReconciledHash: root.last_reconciled_hash ?? null,
          },
          metadata: {},
        },
        root.key,
      ),
    ];
  }
}
