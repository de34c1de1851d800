/**
 * The run state machine's declaration (core/runs/state-machine.ts): it allows exactly the run writes
 * the reconciler makes — every allowed transition is walked, every other pair of states is tried
 * and refused by `canTransition` / `allowedNext` / `transitionEvent`; the terminal states are final
 * and reachable; each transition emits the audit action the reconciler writes for it, all of them in
 * the audit vocabulary; and the files generated from it (the plugin's run_states.json, the diagram
 * in docs/architecture.md) are what the generator makes, unchanged by a second run. The plugin side
 * (the run API refusing with 409 and `allowed`) is netbox-plugin/unicop/tests/test_run_states.py.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { auditActions } from '../../core/events/audit.js';
import {
  allowedNext,
  canCreate,
  canTransition,
  initialRunStates,
  isTerminal,
  openRunStates,
  type RunState,
  runStates,
  terminalRunStates,
  transitionEvent,
} from '../../core/runs/state-machine.js';
import {
  architecturePath,
  derivedFiles,
  runStatesJson,
  runStatesJsonPath,
  runStatesMarkdown,
  withGeneratedSection,
} from '../../scripts/export-run-states.js';

const outcomes = ['succeeded', 'failed', 'canceled', 'timed_out', 'denied'] as const;

/**
 * Every run write of the reconciler (workers/reconciler/), as [from, to]; null = the record is
 * created. Written out here, apart from the declaration, so that an edge added or dropped there
 * by mistake fails this test.
 */
const reconcilerWrites: [RunState | null, RunState][] = [
  [null, 'skipped'], // the hash is already reconciled
  [null, 'queued'], // the change window is closed
  [null, 'leased'], // the run starts
  ['queued', 'skipped'], // a waiting run whose hash got reconciled meanwhile
  ['queued', 'leased'], // a waiting run whose window opened
  ['leased', 'queued'], // a resumed run (0037) whose change window closed meanwhile
  ['leased', 'skipped'], // a resumed run whose hash got reconciled meanwhile, or superseded
  ['leased', 'launched'], // launch
  // the launch failed, or adoption: a leased run whose AWX job was (or was not) found by its run id
  ...(['running', 'awaiting_approval', ...outcomes] as const).map(
    (s) => ['leased', s] as [RunState, RunState],
  ),
  ...(['running', 'awaiting_approval', ...outcomes] as const).map(
    (s) => ['launched', s] as [RunState, RunState],
  ),
  ...(['awaiting_approval', ...outcomes] as const).map((s) => ['running', s] as [RunState, RunState]),
  ...(['running', ...outcomes] as const).map((s) => ['awaiting_approval', s] as [RunState, RunState]),
  // A blast-radius hold (decision 0065) approved in UNICOP launches; one whose snapshot changed since ends.
  ['awaiting_approval', 'launched'],
  ['awaiting_approval', 'skipped'],
  // A check run whose job found drift (decision 0054): only from where a job runs or was adopted.
  ...(['leased', 'launched', 'running'] as const).map((s) => [s, 'drifted'] as [RunState, RunState]),
];
const expected = new Set(reconcilerWrites.map(([from, to]) => `${from}->${to}`));

/** The audit action the reconciler writes for a transition (workers/reconciler/: its audit calls). */
function reconcilerAction(from: RunState | null, to: RunState): string {
  if (to === 'queued') return 'run.window_wait';
  if (to === 'awaiting_approval') return 'approval.requested';
  if (from === 'awaiting_approval' && to === 'running') return 'approval.given';
  return `run.${to}`;
}

describe('run state machine', () => {
  it('holds the states and terminal set of DESIGN.md §2', () => {
    expect(runStates).toEqual([
      'queued',
      'leased',
      'launched',
      'awaiting_approval',
      'running',
      'succeeded',
      'drifted',
      ...outcomes.slice(1),
      'skipped',
    ]);
    expect([...terminalRunStates].sort()).toEqual([...outcomes, 'drifted', 'skipped'].sort());
    expect(openRunStates).toEqual(['queued', 'leased', 'launched', 'awaiting_approval', 'running']);
  });

  it('a run is created only in an initial state', () => {
    for (const state of runStates) {
      expect(canCreate(state), state).toBe(expected.has(`null->${state}`));
      expect(transitionEvent(null, state) !== null, state).toBe(expected.has(`null->${state}`));
    }
    expect(initialRunStates).toEqual(['queued', 'leased', 'skipped']);
  });

  it('allows every transition the reconciler makes', () => {
    let walked = 0;
    for (const [from, to] of reconcilerWrites) {
      if (from === null) continue;
      expect(canTransition(from, to), `${from} -> ${to}`).toBe(true);
      expect(allowedNext(from), `${from} -> ${to}`).toContain(to);
      expect(transitionEvent(from, to), `${from} -> ${to}`).not.toBeNull();
      walked++;
    }
    expect(walked).toBe(runStates.reduce((n, s) => n + allowedNext(s).length, 0));
    expect(walked).toBe(36);
  });

  it('refuses every other pair of states', () => {
    let tried = 0;
    for (const from of runStates) {
      for (const to of runStates) {
        if (to === from || expected.has(`${from}->${to}`)) continue;
        expect(canTransition(from, to), `${from} -> ${to}`).toBe(false);
        expect(allowedNext(from), `${from} -> ${to}`).not.toContain(to);
        expect(transitionEvent(from, to), `${from} -> ${to}`).toBeNull();
        tried++;
      }
      // Keeping the state is a write, never a transition.
      expect(canTransition(from, from), from).toBe(false);
    }
    const n = runStates.length;
    expect(tried).toBe(n * (n - 1) - 36);
  });

  it('lists the next states in the order of runStates, as the plugin answers them', () => {
    for (const from of runStates) {
      const next = allowedNext(from);
      expect(next).toEqual(runStates.filter((s) => next.includes(s)));
    }
  });

  it('ends every run: terminal states are final, every state is reachable and can reach an end', () => {
    for (const state of runStates) {
      expect(isTerminal(state), state).toBe(allowedNext(state).length === 0);
    }
    const reachable = new Set<RunState>(initialRunStates);
    for (const state of reachable) for (const next of allowedNext(state)) reachable.add(next);
    expect([...reachable].sort()).toEqual([...runStates].sort());
    for (const state of openRunStates) {
      const seen = new Set<RunState>([state]);
      for (const s of seen) for (const next of allowedNext(s)) seen.add(next);
      expect([...seen].some(isTerminal), state).toBe(true);
    }
  });

  it('each transition emits the audit action the reconciler writes, from the audit vocabulary', () => {
    for (const [from, to] of reconcilerWrites) {
      const event = transitionEvent(from, to);
      expect(event, `${from} -> ${to}`).toBe(reconcilerAction(from, to));
      expect(Object.keys(auditActions), `${from} -> ${to}`).toContain(event);
    }
  });

  it('the generated files are what the declaration makes, and a second run changes no byte', () => {
    for (const { path, text } of derivedFiles()) {
      expect(readFileSync(path, 'utf8'), `${path} is stale: npm run gen:run-states`).toBe(text);
    }
    const doc = readFileSync(architecturePath, 'utf8');
    expect(withGeneratedSection(doc, runStatesMarkdown())).toBe(doc);
    expect(runStatesJson()).toBe(readFileSync(runStatesJsonPath, 'utf8'));
    const json = JSON.parse(readFileSync(runStatesJsonPath, 'utf8'));
    expect(json.states).toEqual(runStates);
    expect(json.initial).toEqual(initialRunStates);
    expect(json.terminal).toEqual(terminalRunStates);
    const pairs = Object.entries(json.transitions as Record<string, string[]>).flatMap(([from, targets]) =>
      targets.map((to) => `${from}->${to}`),
    );
    expect(new Set([...initialRunStates.map((s) => `null->${s}`), ...pairs])).toEqual(expected);
  });

  it('the diagram draws every transition with its action, and every end', () => {
    const diagram = runStatesMarkdown();
    for (const [from, to] of reconcilerWrites) {
      expect(diagram).toContain(`  ${from ?? '[*]'} --> ${to}: ${reconcilerAction(from, to)}\n`);
    }
    for (const state of terminalRunStates) expect(diagram).toContain(`  ${state} --> [*]\n`);
    expect(diagram.match(/ --> /g)).toHaveLength(reconcilerWrites.length + terminalRunStates.length);
  });
});
