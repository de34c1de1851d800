/**
 * Trigger (d)'s comparison by table (workers/reconciler/recheck.ts, decision 0067): the hash re-read
 * before the launch against the lease's answer. Only a different hash with the same generation is
 * NetBox answering inconsistently — unless NetBox says it is rewriting custom field data (`settled`
 * false); a plugin that sends no generation never trips it.
 */
import { describe, expect, it } from 'vitest';
import { compareHashes, inconsistencyFigures } from '../../workers/reconciler/recheck.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('trigger (d): the hash before launch against the lease', () => {
  it.each([
    ['same hash, same generation', { hash: A, hash_generation: 7 }, { hash: A, hash_generation: 7 }, 'same'],
    ['same hash, new generation', { hash: A, hash_generation: 7 }, { hash: A, hash_generation: 9 }, 'same'],
    ['new hash, new generation', { hash: A, hash_generation: 7 }, { hash: B, hash_generation: 8 }, 'changed'],
    [
      'new hash, same generation',
      { hash: A, hash_generation: 7 },
      { hash: B, hash_generation: 7 },
      'inconsistent',
    ],
    [
      'new hash, same generation, NetBox rewriting custom field data',
      { hash: A, hash_generation: 7 },
      { hash: B, hash_generation: 7, settled: false },
      'unsettled',
    ],
    [
      'new hash, same generation, settled',
      { hash: A, hash_generation: 7 },
      { hash: B, hash_generation: 7, settled: true },
      'inconsistent',
    ],
    ['new hash, no generation leased', { hash: A }, { hash: B, hash_generation: 7 }, 'changed'],
    [
      'new hash, null generation leased',
      { hash: A, hash_generation: null },
      { hash: B, hash_generation: 0 },
      'changed',
    ],
  ])('%s → %s', (_name, leased, now, kind) => {
    expect(compareHashes(leased, now).kind).toBe(kind);
  });

  it('names the root, both hashes and the generation, nothing else', () => {
    expect(inconsistencyFigures('site/3', A, B, 7)).toBe(
      `root site/3 snapshot hash ${A} at lease, ${B} before launch, hash_generation 7 unchanged (no change through NetBox)`,
    );
  });
});
