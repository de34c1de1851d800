/**
 * The fault schedule is a function of its seed: the same seed gives the same faults, gaps,
 * downtimes and victims (a failing run is repeated from the seed it printed); another seed gives
 * another schedule; every round has every kind once. Pure: no stack.
 */
import { describe, expect, it } from 'vitest';
import { faultKinds, faultSchedule, seededRandom, seedFrom } from './schedule.js';

const options = {
  kinds: faultKinds,
  count: 21,
  workers: 3,
  gapMs: [3000, 10_000],
  downMs: [2000, 8000],
} as const;
const schedule = (seed: number) =>
  faultSchedule(seededRandom(seed), { ...options, gapMs: [...options.gapMs], downMs: [...options.downMs] });

describe('the seeded fault schedule', () => {
  it('is the same for the same seed and differs for another', () => {
    expect(schedule(1406)).toEqual(schedule(1406));
    expect(schedule(1407)).not.toEqual(schedule(1406));
  });

  it('has every kind once per round, gaps, downtimes and victims within their ranges', () => {
    const faults = schedule(99);
    for (let round = 0; round < 3; round++) {
      const kinds = faults
        .slice(round * faultKinds.length, (round + 1) * faultKinds.length)
        .map((f) => f.kind);
      expect(new Set(kinds)).toEqual(new Set(faultKinds));
    }
    for (const f of faults) {
      expect(f.gapMs).toBeGreaterThanOrEqual(3000);
      expect(f.gapMs).toBeLessThanOrEqual(10_000);
      expect(f.downMs).toBeGreaterThanOrEqual(2000);
      expect(f.downMs).toBeLessThanOrEqual(8000);
      expect([0, 1, 2]).toContain(f.target);
    }
  });

  it('takes its seed from UNICOP_FAULT_SEED, else the default; refuses a non-integer', () => {
    expect(seedFrom('42', 1406)).toBe(42);
    expect(seedFrom(undefined, 1406)).toBe(1406);
    expect(() => seedFrom('x', 1406)).toThrow(/UNICOP_FAULT_SEED/);
  });
});
