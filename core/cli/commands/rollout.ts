/**
 * The gradual rollouts, through the bridge's admin API (docs/decisions/0061):
 *   unicop rollout list [--state open|halted|aborted|done]   the newest rollouts (viewer)
 *   unicop rollout show <id>                                  one, with its roots per wave (viewer)
 *   unicop rollout resume <id> --reason TEXT                  a halted one opens its next wave (operator)
 *   unicop rollout abort <id> --reason TEXT                   its held roots never launch (operator)
 * A rollout's id is the NetBox request id of the change that touched its roots. Each decision carries
 * an `Idempotency-Key` and is audited with the person signed in.
 */
import { uuidv7 } from '../../ids.js';
import type { RolloutSummary } from '../../rollout/store.js';
import type { AdminClient } from './admin-client.js';
import type { Output } from './output.js';

function counts(r: Pick<RolloutSummary, 'counts'>): string {
  return Object.entries(r.counts)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
}

function line(r: RolloutSummary): string {
  return `${r.rollout_id}  ${r.state.padEnd(7)} wave ${r.current_wave + 1}/${r.waves.length} [${r.waves.join(', ')}]  ${counts(r)}${r.reason ? `  — ${r.reason}` : ''}`;
}

export async function listRollouts(
  admin: AdminClient,
  out: Output,
  state: string | undefined,
): Promise<number> {
  const { body } = await admin.call('GET', `/rollouts${state ? `?state=${encodeURIComponent(state)}` : ''}`);
  const rollouts = (Array.isArray(body.rollouts) ? body.rollouts : []) as RolloutSummary[];
  out.result({ rollouts }, rollouts.length === 0 ? 'no rollouts' : rollouts.map(line).join('\n'));
  return 0;
}

export async function showRollout(admin: AdminClient, out: Output, id: string): Promise<number> {
  const { body } = await admin.call('GET', `/rollouts/${encodeURIComponent(id)}`);
  const r = body.rollout as RolloutSummary;
  const waves = r.waves.map((size, i) => {
    const members = r.members.filter((m) => m.wave === i);
    return `  wave ${i + 1} (${size}): ${members.map((m) => `${m.root_key} ${m.state}${m.parked ? ` (${m.parked} parked)` : ''}`).join(', ')}`;
  });
  out.result({ rollout: r }, [line(r), ...waves].join('\n'));
  return 0;
}

export async function decideRollout(
  admin: AdminClient,
  out: Output,
  decision: 'resume' | 'abort',
  id: string,
  reason: string,
  key = uuidv7(),
): Promise<number> {
  const answer = await admin.call('POST', `/rollouts/${encodeURIComponent(id)}/${decision}`, { reason }, key);
  const b = answer.body;
  const never = Array.isArray(b.neverLaunched) ? (b.neverLaunched as string[]) : [];
  const what =
    decision === 'abort'
      ? `aborted: ${never.length} held root(s) will not launch for it${never.length ? ` (${never.join(', ')})` : ''}`
      : `resumed: ${String(b.released)} root(s) released, now ${String(b.state)} at wave ${String(b.wave)}`;
  out.result(
    { ...b, idempotencyKey: key, replayed: answer.replayed },
    `rollout ${id} ${what} by ${String(b.by)}${answer.replayed ? ' (replayed: nothing was done again)' : ''}`,
  );
  return 0;
}
