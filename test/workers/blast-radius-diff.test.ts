/**
 * The blast-radius gate's pure parts (workers/reconciler/blast-radius.ts, docs/decisions/0065), no
 * services: member digests are the sha256 of each member's canonical JSON (key order does not matter,
 * any field does), keyed "<object_type>/<id>"; the diff against a baseline names added, removed and
 * changed members; the verdict is above the limit only past it (a count equal to max_changed_members,
 * a share equal to max_changed_share, is within), either limit alone holding; at most 20 keys shown.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  blastVerdict,
  canonicalJson,
  diffDigests,
  heldSummary,
  memberDigests,
} from '../../workers/reconciler/blast-radius.js';

const snapshot = (members: Record<string, unknown>[]) => ({ root: { kind: 'site', key: 'site/1' }, members });
const vlan = (id: number, name: string) => ({ object_type: 'ipam.vlan', id, name, vid: id });

describe('blast radius: digests, diff, verdict', () => {
  it('digests each member by its canonical JSON, whatever the key order', () => {
    const digests = memberDigests(
      snapshot([vlan(1, 'a'), { vid: 2, name: 'b', id: 2, object_type: 'ipam.vlan' }]),
    );
    expect(Object.keys(digests)).toEqual(['ipam.vlan/1', 'ipam.vlan/2']);
    const expected = createHash('sha256')
      .update('{"id":2,"name":"b","object_type":"ipam.vlan","vid":2}')
      .digest('hex');
    expect(digests['ipam.vlan/2']).toBe(expected);
    expect(memberDigests(snapshot([vlan(2, 'b')]))['ipam.vlan/2']).toBe(expected);
    expect(memberDigests(snapshot([vlan(2, 'c')]))['ipam.vlan/2']).not.toBe(expected);
    expect(canonicalJson({ b: [{ d: 1, c: null }], a: 'x' })).toBe('{"a":"x","b":[{"c":null,"d":1}]}');
    expect(memberDigests({ root: {} })).toEqual({});
  });

  it('names added, removed and changed members', () => {
    const before = memberDigests(snapshot([vlan(1, 'a'), vlan(2, 'b'), vlan(3, 'c')]));
    const after = memberDigests(snapshot([vlan(1, 'a'), vlan(2, 'B'), vlan(4, 'd')]));
    expect(diffDigests(before, after)).toEqual({
      added: ['ipam.vlan/4'],
      removed: ['ipam.vlan/3'],
      changed: ['ipam.vlan/2'],
      members: 4,
    });
  });

  it('is above the limit only past it, by count or by share', () => {
    const before = memberDigests(snapshot([vlan(1, 'a'), vlan(2, 'b'), vlan(3, 'c'), vlan(4, 'd')]));
    const after = memberDigests(snapshot([vlan(1, 'A'), vlan(2, 'B'), vlan(3, 'c'), vlan(4, 'd')]));
    const verdict = (limit: Parameters<typeof blastVerdict>[0]) =>
      blastVerdict(limit, 'run-0', before, after).kind;
    expect(verdict({ max_changed_members: 2 })).toBe('within');
    expect(verdict({ max_changed_members: 1 })).toBe('above');
    expect(verdict({ max_changed_share: 0.5 })).toBe('within');
    expect(verdict({ max_changed_share: 0.49 })).toBe('above');
    expect(verdict({ max_changed_members: 5, max_changed_share: 0.1 })).toBe('above');
    expect(blastVerdict({ max_changed_members: 0 }, 'run-0', before, before).kind).toBe('within');
    expect(blastVerdict({ max_changed_share: 0 }, 'run-0', {}, {}).diff.share).toBe(0);
  });

  it('shows at most 20 keys, and the summary says how many in all', () => {
    const after = memberDigests(snapshot(Array.from({ length: 25 }, (_, i) => vlan(i + 1, `v${i}`))));
    const { kind, diff } = blastVerdict({ max_changed_members: 3 }, 'run-0', {}, after);
    expect(kind).toBe('above');
    expect(diff).toMatchObject({ added: 25, removed: 0, changed: 0, members: 25, share: 1 });
    expect(diff.keys).toHaveLength(20);
    const summary = heldSummary(diff);
    expect(summary).toContain(
      '25 of 25 member(s) differ from run run-0 (25 added, 0 removed, 0 changed; share 1; limit max_changed_members 3)',
    );
    expect(summary).toMatch(/, … \(25 in all\)$/);
  });
});
