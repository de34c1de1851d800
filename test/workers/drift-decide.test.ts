/**
 * Drift runs' decisions (docs/decisions/0054), without services: when a job runs in check mode, how
 * a check run's successful AWX job ends from the playbook's summary (in sync, drifted naming the
 * files, or unknown — never succeeded), that a check run needs a job template, the states and
 * failure classes it ends in, and the queue priority of its intents. The real-stack side is
 * test/workers/drift.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { canTransition, isTerminal } from '../../core/runs/state-machine.js';
import { priorityOf, reconcilePriority } from '../../workers/reconcile-queue.js';
import { decide } from '../../workers/reconciler/decide.js';
import { driftSummary, endState, failureActions } from '../../workers/reconciler/policy.js';
import type { AwxRead, Observation, RunView } from '../../workers/reconciler/steps.js';
import { cause, settings, t0 } from './decide-fixtures.js';

const snapshotSeen = (seen: Partial<Extract<Observation, { kind: 'snapshot' }>> = {}): Observation => ({
  kind: 'snapshot',
  at: t0,
  hash: 'h1',
  lastReconciledHash: 'h1',
  drifted: false,
  adoptedSucceeded: [],
  // Closed all day every day but Sunday 03:00: an apply run would wait; a check does not.
  windows: [{ days: ['sun'], start: '03:00', end: '04:00' }],
  ...seen,
});

const checkRun = (mode: 'check' | 'apply' = 'check'): RunView => ({
  cause: cause('drift_check'),
  state: 'running',
  mode,
  awx: { kind: 'job', id: 7 },
  follow: {
    deadline: new Date(t0.getTime() + 3600_000),
    timeoutMs: 3600_000,
    delayMs: 100,
    cancelAskedAt: null,
    unreachableSince: null,
    awxStatus: 'running',
  },
});

const successful = (artifacts: unknown): AwxRead => ({
  ok: true,
  status: 'successful',
  explanation: '',
  pendingApproval: false,
  refusedApproval: null,
  artifacts,
});

const endOf = (run: RunView, read: AwxRead) => {
  const s = decide(run, { kind: 'awx-job', at: t0, read }, settings);
  if (s.kind !== 'end') throw new Error(`expected an end, got ${s.kind}`);
  return s.end;
};

describe('drift: which runs are check runs', () => {
  it('a drift check of a root reconciled at its snapshot starts a check run, change window or not', () => {
    expect(
      decide({ cause: cause('drift_check'), state: null, awx: null, follow: null }, snapshotSeen(), settings),
    ).toEqual({
      kind: 'start',
      mode: 'check',
    });
  });

  it('a drift check of a drifted root checks again (it may have been put right by hand)', () => {
    const view: RunView = { cause: cause('drift_check'), state: null, awx: null, follow: null };
    expect(decide(view, snapshotSeen({ drifted: true }), settings)).toEqual({ kind: 'start', mode: 'check' });
  });

  it('a drift check whose snapshot is not reconciled (an edit coalesced into its job) applies the change instead', () => {
    const view: RunView = { cause: cause('drift_check'), state: null, awx: null, follow: null };
    const step = decide(view, snapshotSeen({ lastReconciledHash: 'h0', windows: [] }), settings);
    expect(step).toEqual({ kind: 'start', mode: 'apply' });
    // …under the change window like any apply run.
    expect(decide(view, snapshotSeen({ lastReconciledHash: 'h0' }), settings).kind).toBe('wait-window');
  });

  it('a remediation (cause drift) of a drifted root applies; once the root is no longer drifted it is skipped', () => {
    const view: RunView = { cause: cause('drift'), state: null, awx: null, follow: null };
    expect(decide(view, snapshotSeen({ drifted: true, windows: [] }), settings)).toEqual({
      kind: 'start',
      mode: 'apply',
    });
    expect(decide(view, snapshotSeen({ windows: [] }), settings).kind).toBe('skip');
  });

  it('a check run needs a job template: a workflow template ends it template_misconfigured', () => {
    const view: RunView = {
      cause: cause('drift_check'),
      state: 'leased',
      mode: 'check',
      awx: null,
      follow: null,
    };
    const s = decide(
      view,
      { kind: 'template', rootKind: 'site', template: { type: 'workflow', id: 12 }, approvalRequired: false },
      settings,
    );
    expect(s.kind).toBe('end');
    expect(s.kind === 'end' && s.end).toMatchObject({
      state: 'failed',
      failureClass: 'template_misconfigured',
    });
    const apply = decide(
      { ...view, mode: 'apply' },
      { kind: 'template', rootKind: 'site', template: { type: 'workflow', id: 12 }, approvalRequired: false },
      settings,
    );
    expect(apply).toEqual({ kind: 'launch', templateId: 12, awxKind: 'workflow_job' });
  });
});

describe('drift: how a check run ends', () => {
  it('drift false: succeeded, outcome class in_sync', () => {
    const end = endOf(
      checkRun(),
      successful({ unicop_summary: { mode: 'check', drift: false, changed_files: [] } }),
    );
    expect(end).toMatchObject({ state: 'succeeded', failureClass: null, outcomeClass: 'in_sync' });
  });

  it('drift true: drifted, class drift, naming the changed and the removed files', () => {
    const end = endOf(
      checkRun(),
      successful({
        unicop_summary: {
          mode: 'check',
          drift: true,
          changed_files: ['inventory.json'],
          removed_files: ['devices/ghost.json'],
        },
      }),
    );
    expect(end).toMatchObject({
      state: 'drifted',
      failureClass: 'drift',
      changedFiles: ['devices/ghost.json', 'inventory.json'],
    });
    expect(end.summary).toContain('inventory.json');
    expect(end.summary).toContain('devices/ghost.json');
  });

  it.each([
    ['no artifacts', undefined],
    ['no summary', {}],
    [
      'a summary of an apply (the playbook did not run in check mode)',
      { unicop_summary: { mode: 'apply', drift: false } },
    ],
    ['drift not a boolean', { unicop_summary: { mode: 'check', drift: 'no' } }],
  ])('%s: failed, class drift_unknown, never succeeded', (_name, artifacts) => {
    expect(endOf(checkRun(), successful(artifacts))).toMatchObject({
      state: 'failed',
      failureClass: 'drift_unknown',
    });
  });

  it('an apply run ignores the summary: successful is succeeded with no outcome class', () => {
    const end = endOf(checkRun('apply'), successful({ unicop_summary: { mode: 'apply', drift: true } }));
    expect(end).toEqual({ state: 'succeeded', failureClass: null, summary: 'AWX job 7 successful' });
  });

  it('a check job that failed is a failed run like any other (job_failed)', () => {
    const end = endOf(checkRun(), { ...successful(undefined), status: 'failed' } as AwxRead);
    expect(end).toMatchObject({ state: 'failed', failureClass: 'job_failed' });
  });

  it.each([
    ['job_error', 'check', null],
    ['executor_unavailable', 'check', null],
    ['executor_unavailable', 'apply', 'retry'],
  ] as const)(
    'a %s end of a %s run: retry %s (a retry is forced: it would apply over a hand edit; the scheduler checks again)',
    (failureClass, mode, retry) => {
      const step = decide(
        checkRun(mode),
        {
          kind: 'ended',
          at: t0,
          end: { state: endState(failureClass), failureClass, summary: 'x' },
          retryAllowed: true,
        },
        settings,
      );
      expect(step.kind).toBe('finish');
      expect(step.kind === 'finish' && (step.retry?.kind ?? null)).toBe(retry);
    },
  );

  it('driftSummary keeps only strings and sorts the files', () => {
    expect(
      driftSummary({ unicop_summary: { mode: 'check', drift: true, changed_files: ['b', 3, 'a', 'b'] } }),
    ).toEqual({
      drift: true,
      changedFiles: ['a', 'b'],
    });
  });
});

describe('drift: states, classes, priorities', () => {
  it('drifted is terminal, reached from leased, launched and running; drift is never retried', () => {
    expect(isTerminal('drifted')).toBe(true);
    for (const from of ['leased', 'launched', 'running'] as const)
      expect(canTransition(from, 'drifted')).toBe(true);
    expect(canTransition('queued', 'drifted')).toBe(false);
    expect(canTransition('drifted', 'leased')).toBe(false);
    expect(endState('drift')).toBe('drifted');
    expect(endState('drift_unknown')).toBe('failed');
    expect(failureActions.drift.action).toBe('terminal');
    expect(failureActions.drift_unknown.action).toBe('terminal');
  });

  it('drift checks queue behind everything, even sweeps; a remediation goes like a fresh edit', () => {
    expect(priorityOf(cause('drift_check'))).toBe(reconcilePriority.driftCheck);
    expect(reconcilePriority.driftCheck).toBeGreaterThan(reconcilePriority.sweep);
    expect(priorityOf(cause('drift'))).toBe(reconcilePriority.fresh);
  });
});
