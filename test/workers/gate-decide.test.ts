/**
 * The validation gate's decisions without services (docs/decisions/0060): what `checkSnapshot` says of
 * a snapshot under a kind's JSON Schema (none, passes, refuses with JSON Pointer paths, unusable), and
 * what decide() makes of it — on to the template, `failed`/`invalid_snapshot` naming the first ten
 * problems (the count of all), or `template_misconfigured` for a schema that cannot be compiled; and
 * that an invalid snapshot is terminal (never retried: the same data would be refused again).
 */
import { describe, expect, it } from 'vitest';
import { decide } from '../../workers/reconciler/decide.js';
import { checkSnapshot } from '../../workers/reconciler/gate.js';
import { endState, failureActions } from '../../workers/reconciler/policy.js';
import type { GateVerdict, RunView, Step } from '../../workers/reconciler/steps.js';
import { cause as causeOf, settings, t0 } from './decide-fixtures.js';

const cause = causeOf();
const leased: RunView = { cause, state: 'leased', mode: 'apply', awx: null, follow: null };
const gate = (verdict: GateVerdict): Step =>
  decide(leased, { kind: 'gate', rootKind: 'rir', verdict }, settings);

const lowerCaseNames = {
  type: 'object',
  properties: {
    members: { type: 'array', items: { properties: { name: { type: 'string', pattern: '^[a-z]+$' } } } },
  },
};
const snapshotNamed = (...names: unknown[]) => ({
  root: { kind: 'rir', key: 'rir/1', anchor: { object_type: 'ipam.rir', id: 1 } },
  members: names.map((name, id) => ({ object_type: 'ipam.aggregate', id, name })),
});

describe('checkSnapshot', () => {
  it('no schema: every snapshot passes', () => {
    expect(checkSnapshot(null, snapshotNamed('Bad'))).toEqual({ kind: 'pass' });
    expect(checkSnapshot(undefined, snapshotNamed('Bad'))).toEqual({ kind: 'pass' });
  });

  it('a snapshot the schema accepts passes', () => {
    expect(checkSnapshot(lowerCaseNames, snapshotNamed('good', 'fine'))).toEqual({ kind: 'pass' });
  });

  it('a refused snapshot: every problem, each with its JSON Pointer path', () => {
    expect(checkSnapshot(lowerCaseNames, snapshotNamed('good', 'Bad', 7))).toEqual({
      kind: 'invalid',
      problems: [
        { path: '/members/1/name', message: 'must match pattern "^[a-z]+$"' },
        { path: '/members/2/name', message: 'must be string' },
      ],
    });
    expect(checkSnapshot({ type: 'array' }, snapshotNamed())).toEqual({
      kind: 'invalid',
      problems: [{ path: '/', message: 'must be array' }],
    });
  });

  it('formats are annotations: a format never refuses a snapshot', () => {
    const schema = { properties: { members: { items: { properties: { name: { format: 'ipv4' } } } } } };
    expect(checkSnapshot(schema, snapshotNamed('not an address'))).toEqual({ kind: 'pass' });
  });

  it('a schema that cannot be compiled is unusable, with the reason', () => {
    const verdict = checkSnapshot({ $ref: '#/$defs/missing' }, snapshotNamed());
    expect(verdict.kind).toBe('unusable');
    expect((verdict as { reason: string }).reason).toContain('missing');
  });
});

describe('decide: the gate', () => {
  it('passed: on to the template', () => {
    expect(gate({ kind: 'pass' })).toEqual({ kind: 'gate-passed' });
  });

  it('refused: failed / invalid_snapshot, the first ten problems named and the count of all, a log line with the list', () => {
    const problems = Array.from({ length: 12 }, (_, i) => ({
      path: `/members/${i}/name`,
      message: 'must be string',
    }));
    const step = gate({ kind: 'invalid', problems });
    expect(step).toMatchObject({ kind: 'end', end: { state: 'failed', failureClass: 'invalid_snapshot' } });
    const { end, lines } = step as Extract<Step, { kind: 'end' }>;
    expect(end.summary).toMatch(
      /^snapshot refused by root kind rir's schema, nothing launched: \/members\/0\/name must be string; /,
    );
    expect(end.summary).toContain('/members/9/name');
    expect(end.summary).not.toContain('/members/10/name');
    expect(end.summary).toContain('(12 in all)');
    expect(lines).toEqual([
      {
        level: 'error',
        message: 'validation gate: 12 problem(s) in the snapshot',
        meta: { schema_problems: problems },
      },
    ]);
  });

  it('an unusable schema: failed / template_misconfigured (the kind policy must be fixed)', () => {
    expect(gate({ kind: 'unusable', reason: "can't resolve reference" })).toMatchObject({
      kind: 'end',
      end: {
        state: 'failed',
        failureClass: 'template_misconfigured',
        summary: "root kind rir's policy schema cannot be used: can't resolve reference",
      },
    });
  });

  it('invalid_snapshot is terminal: the run ends failed and no retry follows', () => {
    expect(endState('invalid_snapshot')).toBe('failed');
    expect(failureActions.invalid_snapshot.action).toBe('terminal');
    const end = { state: 'failed' as const, failureClass: 'invalid_snapshot' as const, summary: 'refused' };
    expect(decide(leased, { kind: 'ended', at: t0, end, retryAllowed: true }, settings)).toEqual({
      kind: 'finish',
      retry: null,
    });
  });
});
