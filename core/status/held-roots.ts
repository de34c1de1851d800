/**
 * The roots a live gradual rollout holds (docs/decisions/0061, 0068): their intents wait in a wave not
 * opened yet, until the wave before ends under the failure threshold or a person resumes or aborts the
 * rollout. Read from the plugin's rollouts (open and halted), for `unicop status`: how many roots are
 * held and the first few, each with its rollout — so a person asking "why does nothing run" sees them
 * without naming a root.
 */
import type { RolloutState, RolloutStore } from '../rollout/store.js';

/** One held root: the rollout holding it, that rollout's state, the wave it waits in (1-based). */
export interface HeldRoot {
  rootKey: string;
  rolloutId: string;
  state: RolloutState;
  wave: number;
  waves: number;
}

export interface HeldRoots {
  /** Held roots in all the live rollouts read. */
  count: number;
  /** The live rollouts read (the plugin answers at most 100 per state, newest first). */
  rollouts: number;
  /** The first `limit` held roots: halted rollouts' first (a person must decide), then by rollout and wave. */
  shown: HeldRoot[];
}

/** How many held roots `unicop status` names; the rest are counted. */
export const heldRootsShown = 10;

export async function readHeldRoots(
  store: Pick<RolloutStore, 'list'>,
  limit = heldRootsShown,
): Promise<HeldRoots> {
  const held: HeldRoot[] = [];
  let rollouts = 0;
  for (const state of ['halted', 'open'] as const) {
    for (const rollout of await store.list({ state })) {
      rollouts += 1;
      for (const member of rollout.members) {
        if (member.state !== 'held') continue;
        held.push({
          rootKey: member.root_key,
          rolloutId: rollout.rollout_id,
          state: rollout.state,
          wave: member.wave + 1,
          waves: rollout.waves.length,
        });
      }
    }
  }
  return { count: held.length, rollouts, shown: held.slice(0, limit) };
}

/** One line for `unicop status`: the count and the roots shown, or why it could not be read. */
export function describeHeldRoots(held: HeldRoots | { unknown: string }): string {
  if ('unknown' in held) return `held roots: unknown (${held.unknown})`;
  if (held.count === 0) return 'held roots: none (no live rollout holds a root)';
  const named = held.shown
    .map((r) => `${r.rootKey} (rollout ${r.rolloutId}, ${r.state}, wave ${r.wave} of ${r.waves})`)
    .join(', ');
  const more = held.count > held.shown.length ? `, and ${held.count - held.shown.length} more` : '';
  const rollouts = `${held.rollouts} live rollout${held.rollouts === 1 ? '' : 's'}`;
  return `held roots: ${held.count} (${rollouts}): ${named}${more} (a person decides: unicop rollout resume|abort <id>)`;
}
