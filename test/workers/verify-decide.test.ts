/**
 * Post-run verification's decisions, without services (docs/decisions/0066): following a run's verify
 * job (RunView.verifying) moves no run state whatever AWX says of the job while it runs, and its end is
 * the verification's — passed → succeeded, failed → failed / verify_failed (terminal: no retry), AWX's
 * error or a reaped job → job_error (retried), canceled on the run timeout → timed_out; the summaries
 * name the verify job. And the policy's `verify` as the workers read it (verifyPolicyOf).
 */
import { describe, expect, it } from 'vitest';
import { decide } from '../../workers/reconciler/decide.js';
import type { AwxRead, RunView } from '../../workers/reconciler/steps.js';
import { verifyPolicyOf } from '../../workers/reconciler/verify.js';
import { cause, settings, t0 } from './decide-fixtures.js';

const verifying = (state: 'launched' | 'running', awxStatus: string | null = null): RunView => ({
  cause: cause('change'),
  state,
  mode: 'apply',
  awx: { kind: 'job', id: 42 },
  verifying: true,
  follow: {
    deadline: new Date(t0.getTime() + 3600_000),
    timeoutMs: 3600_000,
    delayMs: 100,
    cancelAskedAt: null,
    unreachableSince: null,
    awxStatus,
  },
});

const read = (status: string, explanation = ''): AwxRead => ({
  ok: true,
  status,
  explanation,
  pendingApproval: false,
  refusedApproval: null,
});

describe('following a verify job', () => {
  it.each([
    ['launched', 'pending'],
    ['launched', 'waiting'],
    ['launched', 'running'],
    ['running', 'pending'],
    ['running', 'running'],
  ] as const)('a run %s whose verify job is %s keeps its state (no transition)', (state, status) => {
    const step = decide(verifying(state), { kind: 'awx-job', at: t0, read: read(status) }, settings);
    expect(step.kind).toBe('poll');
    if (step.kind !== 'poll') return;
    expect(step.transition).toBeNull();
    expect(step.after.kind).toBe('wait');
  });

  it('the same reads of an apply job move the run (the contrast: launched → running)', () => {
    const { verifying: _v, ...apply } = verifying('launched');
    const step = decide(apply, { kind: 'awx-job', at: t0, read: read('running') }, settings);
    expect(step.kind === 'poll' && step.transition).toBe('running');
  });

  const endOf = (status: string, cancelAsked = false, explanation = '') => {
    const view = verifying('running', 'running');
    if (cancelAsked && view.follow) view.follow.cancelAskedAt = t0;
    const step = decide(view, { kind: 'awx-job', at: t0, read: read(status, explanation) }, settings);
    if (step.kind !== 'end') throw new Error(`expected an end, got ${step.kind}`);
    return step.end;
  };

  it('passed: succeeded, the summary naming the verify job', () => {
    expect(endOf('successful')).toEqual({
      state: 'succeeded',
      failureClass: null,
      summary: 'verified: AWX job 42 (verify) passed',
    });
  });

  it('failed: failed / verify_failed, never retried', () => {
    const end = endOf('failed');
    expect(end).toMatchObject({ state: 'failed', failureClass: 'verify_failed' });
    expect(end.summary).toBe(
      'verification failed: AWX job 42 (verify) failed: the target does not hold what the snapshot renders',
    );
    const after = decide(verifying('running'), { kind: 'ended', at: t0, end, retryAllowed: true }, settings);
    expect(after).toEqual({ kind: 'finish', retry: null });
  });

  it("AWX's own failures are not the verification's: error and a reaped job are job_error, retried", () => {
    expect(endOf('error', false, 'receptor lost it')).toMatchObject({
      state: 'failed',
      failureClass: 'job_error',
      summary: 'AWX job 42 (verify) error: receptor lost it',
    });
    const reaped = endOf(
      'failed',
      false,
      'Task was marked as running at system start up. The system must have not shut down properly',
    );
    expect(reaped.failureClass).toBe('job_error');
    const after = decide(
      verifying('running'),
      { kind: 'ended', at: t0, end: reaped, retryAllowed: true },
      settings,
    );
    expect(after.kind === 'finish' && after.retry?.kind).toBe('retry');
  });

  it('canceled: on the run timeout timed_out, by a person canceled', () => {
    expect(endOf('canceled', true)).toMatchObject({ state: 'timed_out', failureClass: 'timed_out' });
    expect(endOf('canceled')).toMatchObject({ state: 'canceled', failureClass: 'canceled' });
  });
});

describe("the policy's verify as the workers read it", () => {
  it.each([
    [{ verify: { tags: 'verify' } }, { tags: 'verify' }],
    [{ verify: { template: 12 } }, { template: 12 }],
    [{ verify: null }, null],
    [{}, null],
    [{ verify: { tags: '' } }, null],
    [{ verify: { template: '12' } }, null],
    [{ verify: 'verify' }, null],
  ])('%j → %j', (policy, expected) => {
    expect(verifyPolicyOf(policy as Record<string, unknown>)).toEqual(expected);
  });
});
