/**
 * The per-peer token bucket behind the bridge's refusal audit events (bridge/ingress/refusal-budget.ts):
 * a burst, a refill rate, counts by reason for the summary, and a bounded number of peers whose
 * suppressions are not lost when they are forgotten. Pure: a fake clock, no stack.
 */
import { describe, expect, it } from 'vitest';
import { RefusalBudget } from '../../bridge/ingress/refusal-budget.js';

function budget(options: { burst: number; perMinute: number; maxSources: number }) {
  let now = Date.parse('2026-12-02T08:00:00Z');
  const b = new RefusalBudget(options, () => now);
  return { b, advance: (ms: number) => (now += ms) };
}

describe('RefusalBudget', () => {
  it('lets a peer write its burst, then counts the rest by reason for one summary', () => {
    const { b } = budget({ burst: 3, perMinute: 0, maxSources: 10 });
    const taken = Array.from({ length: 10 }, (_, i) => b.take('10.0.0.1', i % 2 ? 'sig' : 'body'));
    expect(taken.filter(Boolean)).toHaveLength(3);
    expect(taken.slice(0, 3)).toEqual([true, true, true]);
    expect(b.drain()).toEqual([
      { source: '10.0.0.1', count: 7, byReason: { sig: 4, body: 3 }, since: '2026-12-02T08:00:00.000Z' },
    ]);
    expect(b.drain()).toEqual([]);
  });

  it("one peer's flood leaves another peer's budget whole", () => {
    const { b } = budget({ burst: 2, perMinute: 0, maxSources: 10 });
    for (let i = 0; i < 100; i++) b.take('10.0.0.1', 'sig');
    expect(b.take('10.0.0.2', 'sig')).toBe(true);
    expect(b.drain().map((s) => [s.source, s.count])).toEqual([['10.0.0.1', 98]]);
  });

  it('gives tokens back at the refill rate, never above the burst', () => {
    const { b, advance } = budget({ burst: 2, perMinute: 60, maxSources: 10 });
    expect([b.take('p', 'r'), b.take('p', 'r'), b.take('p', 'r')]).toEqual([true, true, false]);
    advance(1000);
    expect([b.take('p', 'r'), b.take('p', 'r')]).toEqual([true, false]);
    advance(3_600_000);
    expect([b.take('p', 'r'), b.take('p', 'r'), b.take('p', 'r')]).toEqual([true, true, false]);
  });

  it('remembers at most maxSources peers; a forgotten peer\'s suppressions go to the "*" summary', () => {
    const { b } = budget({ burst: 1, perMinute: 0, maxSources: 3 });
    for (const peer of ['a', 'b', 'c']) {
      b.take(peer, 'sig');
      b.take(peer, 'sig');
    }
    for (let i = 0; i < 1000; i++) b.take(`other-${i}`, 'body');
    expect(b.size).toBe(3);
    const drained = b.drain();
    expect(drained.find((s) => s.source === '*')).toMatchObject({ count: 3, byReason: { sig: 3 } });
    expect(drained.reduce((n, s) => n + s.count, 0)).toBe(3);
  });

  it('forgets the least recently refused peer first', () => {
    const { b } = budget({ burst: 1, perMinute: 0, maxSources: 2 });
    b.take('a', 'r');
    b.take('b', 'r');
    b.take('a', 'r'); // a is now the most recent: b goes when c comes
    b.take('c', 'r');
    expect(b.take('a', 'r')).toBe(false); // still remembered, bucket empty
    expect(b.take('b', 'r')).toBe(true); // forgotten, back with a full bucket
  });
});
