/**
 * `unicop root why` / `unicop status --root` / `GET /status?root=` for a root held in a rollout's wave
 * not opened yet (docs/decisions/0061, review-A #7), without services: the root stage and the root's
 * change both name the holding rollout (asked of `heldBy` only for a held root), never "the change did
 * not reach UNICOP". The live rollout lookup itself (core/status/sources.ts heldBy) is checked against the
 * real plugin in test/workers/rollout.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { PluginRoot } from '../../core/plugin/client.js';
import { whyItWaits } from '../../core/status/why-it-waits.js';

const root = (status: string): PluginRoot =>
  ({
    id: 7,
    key: 'site/7',
    kind: 'site',
    status,
    frozen: false,
    frozen_reason: '',
    current_hash: 'b'.repeat(64),
    last_reconciled_hash: 'a'.repeat(64),
    last_run: null,
    lease: { live: false, holder: null, token: null, expires_at: null, highest_token: 4 },
  }) as unknown as PluginRoot;

describe('why it waits: a root held by a rollout', () => {
  it('names the rollout in the root stage and the change; not asked for a root that is not held', async () => {
    const asked: string[] = [];
    const heldBy = async (key: string) => {
      asked.push(key);
      return { rolloutId: 'req-1', state: 'open', wave: 2, currentWave: 1, waves: 3 };
    };
    const status = await whyItWaits(
      { findRoot: async () => root('held'), heldBy, now: () => new Date('2026-12-02T18:00:00Z') },
      { rootKey: 'site/7' },
    );
    expect(status.change).toMatchObject({ stage: 'root', reason: 'rollout-held', reconciled: false });
    expect(status.change?.summary).toMatch(/held by rollout req-1 \(wave 2 of 3, the rollout at wave 1\)/);
    expect(status.change?.figures.heldBy).toMatchObject({ rolloutId: 'req-1' });
    const stage = status.stages.find((s) => s.stage === 'root');
    expect(stage).toMatchObject({ state: 'holding' });
    expect(stage?.summary).toMatch(/held by rollout req-1/);
    expect(asked).toEqual(['site/7']);

    const pending = await whyItWaits(
      { findRoot: async () => root('pending'), heldBy },
      { rootKey: 'site/7' },
    );
    expect(pending.change?.reason).not.toBe('rollout-held');
    expect(asked).toEqual(['site/7']);
  });
});
