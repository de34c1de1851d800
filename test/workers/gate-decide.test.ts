/**
 * The validation gate's decisions without services (docs/decisions/0060): what `checkSnapshot` says of
 * a snapshot under a kind's JSON Schema (none, passes, refuses with JSON Pointer paths, unusable), and
 * what decide() makes of it — on to the template, `failed`/`invalid_snapshot` naming the first ten
 * problems (the count of all), or `template_misconfigured` for a schema that cannot be compiled; and
 * that an invalid snapshot is terminal (never retried: the same data would be refused again).
 */
import { describe, expect, it } from 'vitest';
import { decide, gateLimits } from '../../workers/reconciler/decide.js';
import { checkSnapshot } from '../../workers/reconciler/gate.js';
import { journalLimit, journalText } from '../../workers/reconciler/outcome.js';
import { checkRunEnd, endState, failureActions } from '../../workers/reconciler/policy.js';
import { RunLog, runLogLimits } from '../../workers/reconciler/run-log.js';
import { newRun } from '../../workers/reconciler/scope.js';
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

  it('two different schemas with the same $id are each used, not refused as already existing', () => {
    // A kind's schema edited while the workers run, or an override copying it with a tweak.
    const $id = 'https://example.net/schemas/rir';
    const lower = { $id, ...lowerCaseNames };
    const digits = {
      $id,
      properties: { members: { items: { properties: { name: { pattern: '^[0-9]+$' } } } } },
    };
    expect(checkSnapshot(lower, snapshotNamed('good'))).toEqual({ kind: 'pass' });
    expect(checkSnapshot(digits, snapshotNamed('good'))).toEqual({
      kind: 'invalid',
      problems: [{ path: '/members/0/name', message: 'must match pattern "^[0-9]+$"' }],
    });
    expect(checkSnapshot(lower, snapshotNamed('good'))).toEqual({ kind: 'pass' }); // still cached
  });

  it("the plugin's combination of a kind's and an override's schema: each part's #/$defs refs resolve in it (0068)", () => {
    // As policy_overrides._schema serves it: allOf both, each part its own resource ($id).
    const part = (id: string, n: Record<string, unknown>) => ({
      $id: id,
      $defs: { n },
      properties: { members: { items: { properties: { id: { $ref: '#/$defs/n' } } } } },
    });
    const combined = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      allOf: [
        part('urn:unicop:policy-schema:kind', { type: 'integer', minimum: 1 }),
        part('urn:unicop:policy-schema:root-override', { type: 'integer', maximum: 1 }),
      ],
    };
    // Member ids 0, 1, 2: 0 breaks the kind's minimum, 2 the override's maximum, 1 passes both.
    expect(checkSnapshot(combined, snapshotNamed('a', 'b', 'c'))).toEqual({
      kind: 'invalid',
      problems: [
        { path: '/members/0/id', message: 'must be >= 1' },
        { path: '/members/2/id', message: 'must be <= 1' },
      ],
    });
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
        message: `validation gate: 12 problem(s) in the snapshot: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
        meta: { problems: 12 },
      },
    ]);
  });

  it('the run log as stored keeps the problems that fit its message and the count of all', () => {
    // What gateRun does with the lines: RunLog.add, whose lines() are what the run write sends.
    const problems = Array.from({ length: 30 }, (_, i) => ({
      path: `/members/${i}/name`,
      message: 'must be string',
    }));
    const { lines } = gate({ kind: 'invalid', problems }) as Extract<Step, { kind: 'end' }>;
    const log = new RunLog();
    for (const line of lines) log.add(t0, line.level, line.message, line.meta);
    const [stored] = log.lines();
    expect(stored?.message).toMatch(
      /^validation gate: 30 problem\(s\) in the snapshot: \/members\/0\/name must be string; \/members\/1\/name must be string; /,
    );
    expect(stored?.message.length).toBeLessThanOrEqual(runLogLimits.maxMessage);
    expect(stored?.meta).toEqual({ problems: 30 });
  });

  it("a refusal whose ajv messages repeat a long pattern still fits the summary's and the journal's limits", () => {
    // A long allow-list pattern, 12 members failing it: unbounded, a summary of many thousand characters
    // and a journal entry the plugin refuses (RunJournalSerializer.comments max_length 4000), so the
    // terminal write failed and the run stayed leased (review B #2).
    const names = Array.from({ length: 90 }, (_, i) => `allowed-name-${String(i).padStart(2, '0')}`);
    const pattern = `^(${names.join('|')})$`;
    expect(pattern.length).toBeGreaterThan(600);
    const schema = {
      properties: { members: { items: { properties: { name: { type: 'string', pattern } } } } },
    };
    const verdict = checkSnapshot(schema, snapshotNamed(...Array.from({ length: 12 }, (_, i) => `Bad${i}`)));
    expect(verdict.kind).toBe('invalid');
    const { end } = gate(verdict) as Extract<Step, { kind: 'end' }>;
    expect(end.summary.length).toBeLessThanOrEqual(gateLimits.summary);
    expect(end.summary).toContain('/members/0/name must match pattern');
    expect(end.summary).toContain('(12 in all)');
    for (const named of end.summary.split('; ').slice(1, -1))
      expect(named.length).toBeLessThanOrEqual(gateLimits.problem);
    const run = newRun(
      { rootKey: 'rir/1', intentId: 'intent-1', cause },
      'a'.repeat(64),
      t0,
      'run-1',
      'apply',
    );
    expect(journalText(run, end).length).toBeLessThanOrEqual(journalLimit);
    // The same bound for any summary, e.g. a check run's changed files with long paths.
    const files = Array.from({ length: 70 }, (_, i) => `/srv/${'deep/'.repeat(30)}file-${i}`);
    const drifted = checkRunEnd({ drift: true, changedFiles: files }, 'AWX job 5');
    const text = journalText(run, drifted);
    expect(text.length).toBeLessThanOrEqual(journalLimit);
    expect(text).toMatch(/cause [a-z_]+\.$/);
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

  it("a refusal names where the schema came from: the kind's, the root's override's, or both (review B #10)", () => {
    const invalid: GateVerdict = {
      kind: 'invalid',
      problems: [{ path: '/members/0/name', message: 'must be string' }],
    };
    const summaryOf = (schemaFrom: 'kind' | 'override' | 'kind+override', verdict: GateVerdict = invalid) =>
      (
        decide(
          leased,
          { kind: 'gate', rootKind: 'rir', verdict, schemaFrom, rootKey: 'rir/1' },
          settings,
        ) as Extract<Step, { kind: 'end' }>
      ).end.summary;
    expect(summaryOf('kind')).toMatch(/^snapshot refused by root kind rir's schema, nothing launched: /);
    expect(summaryOf('override')).toMatch(
      /^snapshot refused by rir\/1's unicop_policy override's schema, nothing launched: \/members\/0\/name/,
    );
    expect(summaryOf('kind+override')).toMatch(
      /^snapshot refused by root kind rir's schema with rir\/1's unicop_policy override's \(both apply\), nothing launched: /,
    );
    expect(summaryOf('override', { kind: 'unusable', reason: 'bad $ref' })).toBe(
      "rir/1's unicop_policy override's schema cannot be used: bad $ref",
    );
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
