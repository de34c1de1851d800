/**
 * Fail-safe trigger (d), NetBox answering inconsistently (issue #17 item 4, docs/decisions/0067): just
 * before a launch the reconciler asks NetBox once more for the root's hash and `hash_generation`
 * (`GET roots/{id}/hash/`, computed now) and compares them with what the lease's answer carried.
 *
 * The plugin bumps a root's generation in the transaction of every change NetBox's ORM signals see —
 * of its anchor, its members, and the objects it only shows (foreign keys' targets, tags, custom
 * fields: referrers.py) — the same signals NetBox's event rules send webhooks from. So:
 *
 * - same hash: launch;
 * - a different hash with a new generation: an ordinary change through NetBox, whose webhook and intent
 *   follow; the run launches the snapshot it leased (its record names that hash) and the change's
 *   intent runs next, at the newest snapshot (guarantee 3's one follow-up run);
 * - a different hash with the same generation: NetBox's data changed by a path that bypasses NetBox
 *   (SQL, a restore, a replica answering from elsewhere) — the state UNICOP reads cannot be trusted.
 *   Automation is frozen globally (`automaticFreeze('snapshot_changed', …)`: the freeze record and its
 *   `automation.frozen` audit), and the run ends `failed`, class `netbox_inconsistent`, with nothing
 *   launched. The reason names the root, both hashes and the generation — never a value.
 */
import { automaticFreeze } from '../../core/control/automatic-freeze.js';
import type { RootCurrentHash, RootSnapshot } from '../../core/plugin/client.js';
import { classify, endState } from './policy.js';
import { type ActiveRun, type Leased, reconcilerSource } from './scope.js';
import type { RunEnd } from './steps.js';

export type HashComparison =
  | { kind: 'same' }
  | { kind: 'changed'; from: number; to: number }
  /** NetBox is rewriting custom field data in a background job: hashes move with no generation. */
  | { kind: 'unsettled'; generation: number }
  | { kind: 'inconsistent'; generation: number };

/**
 * Pure: what the re-read says against the lease's answer (null generation: a plugin that sends none;
 * `settled` false: a custom field provisioning or being purged in NetBox, decision 0067).
 */
export function compareHashes(
  leased: { hash: string; hash_generation?: number | null },
  now: { hash: string; hash_generation: number; settled?: boolean },
): HashComparison {
  if (now.hash === leased.hash) return { kind: 'same' };
  const generation = leased.hash_generation;
  if (generation === undefined || generation === null || now.hash_generation !== generation) {
    return { kind: 'changed', from: generation ?? -1, to: now.hash_generation };
  }
  if (now.settled === false) return { kind: 'unsettled', generation };
  return { kind: 'inconsistent', generation };
}

/** The reason of the freeze (and the run's summary): the root, both hashes, the generation. */
export function inconsistencyFigures(
  rootKey: string,
  leasedHash: string,
  nowHash: string,
  generation: number,
) {
  return (
    `root ${rootKey} snapshot hash ${leasedHash} at lease, ${nowHash} before launch, ` +
    `hash_generation ${generation} unchanged (no change through NetBox)`
  );
}

/**
 * Re-reads the root's hash before the launch: null when the run may launch, else how it ends (the
 * caller writes that end through finish()). On an inconsistency the freeze is appended first; if the
 * event log refuses it the run still ends without launching (logged: the next run trips it again).
 */
export async function recheckSnapshot(
  scope: Leased,
  run: ActiveRun,
  leased: RootSnapshot,
): Promise<RunEnd | null> {
  const { deps, root, clock, log } = scope;
  if (leased.hash_generation === undefined || leased.hash_generation === null) return null;
  await deps.beforeRecheck?.(root.key);
  const now: RootCurrentHash = await deps.plugin.currentHash(root.id);
  const verdict = compareHashes(leased, now);
  if (verdict.kind === 'same') return null;
  if (verdict.kind === 'unsettled') {
    run.log.add(
      clock.now(),
      'warning',
      'the snapshot hash moved since the lease while NetBox rewrites custom field data (a field ' +
        `provisioning or being purged): not taken for an inconsistency; launching the leased snapshot ${leased.hash.slice(0, 12)}`,
      { leased_hash: leased.hash, current_hash: now.hash },
    );
    return null;
  }
  if (verdict.kind === 'changed') {
    run.log.add(
      clock.now(),
      'info',
      `NetBox changed the root since the lease (hash_generation ${verdict.from} → ${verdict.to}): ` +
        `launching the leased snapshot ${leased.hash.slice(0, 12)}; the change runs next`,
      { leased_hash: leased.hash, current_hash: now.hash },
    );
    return null;
  }
  const figures = inconsistencyFigures(root.key, leased.hash, now.hash, verdict.generation);
  const at = clock.now();
  try {
    await deps.eventLog.append(automaticFreeze('snapshot_changed', figures, at, reconcilerSource).messages);
    deps.metrics?.failsafeTrips.inc({ trigger: 'snapshot_changed' });
  } catch (error) {
    log.error({ err: error }, 'fail-safe snapshot_changed: the freeze could not be appended');
  }
  log.error(
    { trigger: 'snapshot_changed', reason: figures },
    'fail-safe tripped: automation frozen globally until a person resumes it',
  );
  run.log.add(at, 'error', `NetBox answered inconsistently: ${figures}`, {
    leased_hash: leased.hash,
    current_hash: now.hash,
    hash_generation: verdict.generation,
  });
  const failureClass = classify({ kind: 'netbox-inconsistent' });
  return {
    state: endState(failureClass),
    failureClass,
    summary: `NetBox answered inconsistently (${figures}); automation frozen globally (fail-safe snapshot_changed); nothing launched`,
  };
}
