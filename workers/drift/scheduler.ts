/**
 * The drift scheduler (docs/decisions/0054): beside the sweeper, it asks for a check run of every
 * root whose policy wants drift detected, on the kind's `policy.drift_interval_seconds`. Every
 * `checkMs` it walks the plugin's root listing and emits an intent with cause `drift_check` for each
 * root that is due:
 *
 *   - its kind's `drift_mode` is `detect` or `remediate` (`off`: never), and its kind's AWX template
 *     is a job template (a workflow has no check mode: never checked);
 *   - in sync: status `in_sync` (current hash reconciled and not stale, last run ended well — a
 *     drifted or failed root waits for its apply run, not for another check), not frozen, no lease
 *     held, no job of the root in the queue;
 *   - its last check (the root's `last_drift_check`, kept by the plugin, so a restarted process does
 *     not check everything again) — or, never checked, its last run's end — is older than the
 *     interval times the root's jitter: 0.9–1.1, from a hash of the root key, so roots of one kind
 *     spread out and a restart does not bunch them.
 *
 * At most `maxInFlight` check intents are outstanding: one counts from its emission until its root
 * has no job in the queue any more (its check run ended, or it was coalesced into other work). Not
 * while automation is frozen globally. The intents queue at the lowest priority
 * (`reconcilePriority.driftCheck`), behind edits and sweeps (decision 0038); the reconciler turns
 * one into a check run, or — the snapshot changed meanwhile — into the apply run it needs.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../../core/clock.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import { auditMessage } from '../../core/events/audit.js';
import { intentMessage } from '../../core/events/intent.js';
import type { PluginClient, PluginRoot } from '../../core/plugin/client.js';
import type { RootJobs } from '../reconcile-queue.js';

export const driftSource = 'unicop/drift';

/** The fields of each root the scheduler reads. */
export const driftFields = [
  'id',
  'key',
  'status',
  'frozen',
  'lease',
  'last_run',
  'policy',
  'awx_template',
  'last_drift_check',
] as const satisfies readonly (keyof PluginRoot)[];

export interface DriftSchedulerDeps {
  plugin: Pick<PluginClient, 'allRoots'>;
  eventLog: Pick<EventLog, 'append'>;
  /** Whether a root has a job in the reconcile queue (waiting, delayed or running). */
  jobs: Pick<RootJobs, 'inFlight'>;
  log: Logger;
  freezeView?: Pick<FreezeView, 'globalState'>;
  /** How often the listing is walked (UNICOP_DRIFT_CHECK_SECONDS). */
  checkMs: number;
  /** Check intents outstanding at once (UNICOP_DRIFT_MAX_IN_FLIGHT). */
  maxInFlight: number;
  clock?: Clock;
}

/** The default drift interval when a kind's policy has none (the plugin's default). */
export const defaultDriftIntervalSeconds = 3600;

/** A root's share of its interval, 0.9–1.1, the same for its key on every process and every start. */
export function driftJitter(rootKey: string): number {
  const n = createHash('sha256').update(rootKey).digest().readUInt32BE(0);
  return 0.9 + (0.2 * n) / 0xffff_ffff;
}

/** When the root is next due for a check, or null when it is never checked (drift_mode off, or never reconciled). */
export function nextCheckAt(
  root: Pick<PluginRoot, 'key' | 'policy' | 'last_run' | 'last_drift_check'>,
): Date | null {
  const policy = (root.policy ?? {}) as { drift_mode?: string; drift_interval_seconds?: number };
  if (policy.drift_mode !== 'detect' && policy.drift_mode !== 'remediate') return null;
  const since = root.last_drift_check ?? root.last_run?.finished;
  if (!since) return null;
  const intervalMs = (policy.drift_interval_seconds ?? defaultDriftIntervalSeconds) * 1000;
  return new Date(Date.parse(since) + intervalMs * driftJitter(root.key));
}

/** Why the root is not checked now, or null when it is due at `now`. */
export function notDue(
  root: Pick<PluginRoot, 'key' | 'policy' | 'last_run' | 'status' | 'frozen' | 'last_drift_check'> & {
    lease: Pick<PluginRoot['lease'], 'live'>;
    awx_template?: PluginRoot['awx_template'];
  },
  now: Date,
): string | null {
  if (root.frozen) return 'frozen';
  // A check run needs a job template (job_type check); a workflow's would end template_misconfigured,
  // the root failed — and the fail-safe counts failed roots.
  if (root.awx_template?.type === 'workflow') return 'workflow template: no check mode';
  if (root.status !== 'in_sync') return `status ${root.status}`;
  if (root.lease.live) return 'leased';
  const at = nextCheckAt(root);
  if (!at) return 'drift_mode off or never reconciled';
  return at > now ? `due at ${at.toISOString()}` : null;
}

export interface DriftPass {
  scanned: number;
  emitted: string[];
  /** Check intents still outstanding after the pass. */
  inFlight: number;
}

export class DriftScheduler {
  private readonly clock: Clock;
  /** Roots whose check intent was emitted and whose job may still be in the queue. */
  private readonly outstanding = new Set<string>();
  private running: Promise<DriftPass> | null = null;
  private checking: AbortController | undefined;

  constructor(private readonly deps: DriftSchedulerDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  start(): void {
    const checking = new AbortController();
    this.checking = checking;
    void (async () => {
      while (!checking.signal.aborted) {
        await this.pass().catch((error: unknown) =>
          this.deps.log.warn({ err: error }, 'drift pass failed; trying again at the next check'),
        );
        await this.clock.sleep(this.deps.checkMs, checking.signal).catch(() => undefined);
      }
    })();
  }

  stop(): void {
    this.checking?.abort();
  }

  /** One walk of the listing (a walk already under way is joined, not doubled). */
  pass(): Promise<DriftPass> {
    this.running ??= this.walk().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async walk(): Promise<DriftPass> {
    const { deps } = this;
    const pass: DriftPass = { scanned: 0, emitted: [], inFlight: 0 };
    if (deps.freezeView?.globalState()?.frozen) return pass;
    for (const key of [...this.outstanding]) {
      if (!(await deps.jobs.inFlight(key))) this.outstanding.delete(key);
    }
    const batch: EventLogMessage[] = [];
    const now = this.clock.now();
    for await (const root of deps.plugin.allRoots(1000, driftFields)) {
      pass.scanned++;
      if (this.outstanding.size >= deps.maxInFlight) break;
      if (this.outstanding.has(root.key) || notDue(root, now) !== null) continue;
      if (await deps.jobs.inFlight(root.key)) continue;
      batch.push(...this.intentFor(root, now));
      this.outstanding.add(root.key);
      pass.emitted.push(root.key);
    }
    if (batch.length > 0) await deps.eventLog.append(batch);
    pass.inFlight = this.outstanding.size;
    if (pass.emitted.length > 0) {
      deps.log.info({ emitted: pass.emitted.length, inFlight: pass.inFlight }, 'drift checks asked for');
    }
    return pass;
  }

  private intentFor(root: PluginRoot, at: Date): EventLogMessage[] {
    const policy = (root.policy ?? {}) as { drift_mode?: string };
    return driftCheckMessages(root, at, 'unicop-drift', `drift check due (drift_mode ${policy.drift_mode})`);
  }
}

/**
 * A drift check of one root: the intent (cause `drift_check`) the dispatcher queues like any other —
 * the reconciler runs it in check mode when the root is reconciled at its snapshot — and its audit
 * event `intent.drift_check` naming who asked and why. The scheduler appends it when a check is due;
 * the demo appends it to check its site at once (scripts/demo.ts).
 */
export function driftCheckMessages(
  root: Pick<PluginRoot, 'key'> & Partial<Pick<PluginRoot, 'last_drift_check'>>,
  at: Date,
  actor: string,
  reason: string,
  source = driftSource,
): EventLogMessage[] {
  const { intentId, message } = intentMessage(source, root.key, { kind: 'drift_check', actor }, { at });
  return [
    message,
    auditMessage(
      source,
      {
        action: 'intent.drift_check',
        actor,
        subjectType: 'root',
        subjectId: root.key,
        outcome: 'ok',
        reason,
        correlation: { intentId, lastDriftCheck: root.last_drift_check ?? null },
        metadata: {},
      },
      root.key,
    ),
  ];
}
