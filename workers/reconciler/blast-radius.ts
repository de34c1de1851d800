/**
 * The blast-radius gate before launch (docs/decisions/0065): an apply run of a root whose policy sets
 * `blast_radius` records the digest of each member of the snapshot it launches with (`member_digests`:
 * `"<object_type>/<id>"` → sha256 of the member's canonical JSON; a root without a limit stores none),
 * and has its members compared with those of the run that set the root's last reconciled hash (its baseline): added,
 * removed and changed keys. Above the limit the run is held `awaiting_approval` — the diff on the run
 * (counts, share, the limit, up to 20 keys), in its summary, journal and `approval.requested` — and the
 * job gives its slot and the lease back (as an AWX approval wait does, decision 0044). A person decides
 * through the admin API (bridge/admin/approvals.ts writes `gate_decision` on the run); the next job of
 * the root takes the run up: approved → the same run launches (`awaiting_approval → launched`), denied
 * → it ends `denied`. No baseline (the root's first run, or a baseline run recorded before 0006): not
 * held. A check run is never held: it changes nothing.
 */
import { createHash } from 'node:crypto';
import type { PluginRun } from '../../core/plugin/client.js';
import { later, type ReconcileResult } from './result.js';
import { type ActiveRun, audit, correlation, type Leased, policyOf, writeRun } from './scope.js';

/** The policy key: at least one of the two limits (the plugin checks it at load). */
export interface BlastLimit {
  max_changed_members?: number;
  max_changed_share?: number;
}

export type MemberDigests = Record<string, string>;

/** The diff that held a run, as the run records it (`blast_radius`). */
export interface BlastDiff {
  baseline_run_id: string;
  added: number;
  removed: number;
  changed: number;
  /** The members of the baseline and the snapshot together: what `share` is a share of. */
  members: number;
  share: number;
  limit: BlastLimit;
  /** Up to `blastKeysShown` member keys: added, then removed, then changed. */
  keys: string[];
}

/** A person's decision on a held run, written once by the bridge (`gate_decision`). */
export interface GateDecision {
  decision: 'approved' | 'denied';
  by: string;
  sub: string;
  reason: string | null;
  at: string;
}

export const blastKeysShown = 20;

/** JSON with every object's keys sorted: the same member gives the same bytes, whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The digest of each member of a snapshot (`{root, members: [{object_type, id, …}]}`). */
export function memberDigests(snapshot: unknown): MemberDigests {
  const members = (snapshot as { members?: unknown } | null)?.members;
  const digests: MemberDigests = {};
  if (!Array.isArray(members)) return digests;
  for (const member of members as { object_type?: unknown; id?: unknown }[]) {
    if (typeof member?.object_type !== 'string' || typeof member.id !== 'number') continue;
    digests[`${member.object_type}/${member.id}`] = createHash('sha256')
      .update(canonicalJson(member))
      .digest('hex');
  }
  return digests;
}

/** What differs between the baseline's members and the snapshot's, by key, each list sorted. */
export function diffDigests(
  baseline: MemberDigests,
  current: MemberDigests,
): { added: string[]; removed: string[]; changed: string[]; members: number } {
  const added = Object.keys(current).filter((k) => !Object.hasOwn(baseline, k));
  const removed = Object.keys(baseline).filter((k) => !Object.hasOwn(current, k));
  const changed = Object.keys(current).filter(
    (k) => Object.hasOwn(baseline, k) && baseline[k] !== current[k],
  );
  const members = Object.keys(baseline).length + added.length;
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort(), members };
}

/**
 * The gate's word (pure): `within` the limit, or `above` it, with the diff as the run records it.
 * A share is of the members before and after together; with none at all it is 0.
 */
export function blastVerdict(
  limit: BlastLimit,
  baselineRunId: string,
  baseline: MemberDigests,
  current: MemberDigests,
): { kind: 'within' | 'above'; diff: BlastDiff } {
  const d = diffDigests(baseline, current);
  const count = d.added.length + d.removed.length + d.changed.length;
  const share = d.members === 0 ? 0 : count / d.members;
  const diff: BlastDiff = {
    baseline_run_id: baselineRunId,
    added: d.added.length,
    removed: d.removed.length,
    changed: d.changed.length,
    members: d.members,
    share: Math.round(share * 10_000) / 10_000,
    limit,
    keys: [...d.added, ...d.removed, ...d.changed].slice(0, blastKeysShown),
  };
  const above =
    (limit.max_changed_members !== undefined && count > limit.max_changed_members) ||
    (limit.max_changed_share !== undefined && share > limit.max_changed_share);
  return { kind: above ? 'above' : 'within', diff };
}

/** The held run's summary: what changed, against which run, which limit, and what to do. */
export function heldSummary(diff: BlastDiff): string {
  const count = diff.added + diff.removed + diff.changed;
  const limits = [
    diff.limit.max_changed_members !== undefined
      ? `max_changed_members ${diff.limit.max_changed_members}`
      : null,
    diff.limit.max_changed_share !== undefined ? `max_changed_share ${diff.limit.max_changed_share}` : null,
  ].filter((l): l is string => l !== null);
  const more = count > diff.keys.length ? `, … (${count} in all)` : '';
  return (
    `blast radius above the limit, waiting for approval (unicop approve|deny <run>): ${count} of ${diff.members} ` +
    `member(s) differ from run ${diff.baseline_run_id} (${diff.added} added, ${diff.removed} removed, ` +
    `${diff.changed} changed; share ${diff.share}; limit ${limits.join(', ')}): ${diff.keys.join(', ')}${more}`
  );
}

/** The limit the root's policy sets, or null: none, or not an object the plugin would have let by. */
export function blastLimitOf(policy: Record<string, unknown>): BlastLimit | null {
  const limit = policy.blast_radius as BlastLimit | null | undefined;
  if (!limit || typeof limit !== 'object') return null;
  return limit;
}

/** The recorded decision of a held run, or null: none yet (or not one of ours). */
export function gateDecisionOf(run: Pick<PluginRun, 'gate_decision'>): GateDecision | null {
  const decision = run.gate_decision as GateDecision | null | undefined;
  if (!decision || (decision.decision !== 'approved' && decision.decision !== 'denied')) return null;
  return decision;
}

/** A run the blast-radius gate holds: awaiting approval with no AWX job (an AWX approval has one). */
export function heldByGate(run: Pick<PluginRun, 'state' | 'awx_job_id'>): boolean {
  return run.state === 'awaiting_approval' && !run.awx_job_id;
}

/**
 * The baseline of the root: its newest succeeded apply run at the last reconciled hash that recorded
 * its member digests, or null (none: the root's first run, or a baseline from before 0006).
 */
async function baselineOf(
  scope: Leased,
  lastReconciledHash: string | null,
): Promise<{ runId: string; digests: MemberDigests } | null> {
  if (!lastReconciledHash) return null;
  // Only the runs at that hash: a listing of the root's runs would carry every run's digests and log.
  const runs = await scope.deps.plugin.runsAtHash(scope.root.key, 'succeeded', lastReconciledHash);
  const run = runs.find(
    (r) =>
      r.snapshot_hash === lastReconciledHash &&
      r.mode !== 'check' &&
      r.member_digests !== null &&
      typeof r.member_digests === 'object',
  );
  return run ? { runId: run.run_id, digests: run.member_digests as MemberDigests } : null;
}

/**
 * The gate on an apply run just written `leased` with its member digests: null when it may launch,
 * else the job's answer once the run is held (written `awaiting_approval` with the diff, its summary
 * and a warning journal entry, `approval.requested` audited) — the job comes back after the approval
 * recheck interval, without the lease (reconcile.ts: approvalWait).
 */
export async function holdForBlastRadius(
  scope: Leased,
  run: ActiveRun,
  digests: MemberDigests,
  lastReconciledHash: string | null,
): Promise<ReconcileResult | null> {
  const limit = run.mode === 'apply' ? blastLimitOf(policyOf(scope.root)) : null;
  if (!limit) return null;
  const { clock, root, lease } = scope;
  const baseline = await baselineOf(scope, lastReconciledHash);
  if (!baseline) {
    run.log.add(clock.now(), 'info', 'blast radius: no baseline run with member digests; not held', {});
    return null;
  }
  const verdict = blastVerdict(limit, baseline.runId, baseline.digests, digests);
  const { diff } = verdict;
  const counts = { added: diff.added, removed: diff.removed, changed: diff.changed, share: diff.share };
  if (verdict.kind === 'within') {
    run.log.add(
      clock.now(),
      'info',
      `blast radius within the limit: ${diff.added + diff.removed + diff.changed} member(s) differ from run ${baseline.runId}`,
      counts,
    );
    return null;
  }
  const summary = heldSummary(diff);
  run.log.add(clock.now(), 'warning', summary, { ...counts, baseline_run_id: baseline.runId });
  await writeRun(scope, run, 'awaiting_approval', {
    blast_radius: diff,
    summary,
    journal: { kind: 'warning', comments: `Run ${run.runId} held: ${summary}` },
  });
  await audit(scope, root.key, 'approval.requested', 'ok', summary, {
    ...correlation(run, lease),
    approvalKind: 'gate',
    baselineRunId: baseline.runId,
  });
  const recheckMs = scope.settings.approvalRecheckMs ?? 30_000;
  return later(
    new Date(clock.now().getTime() + recheckMs),
    `run ${run.runId} awaiting blast-radius approval`,
  );
}
