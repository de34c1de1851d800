/**
 * The reconciler's decisions without services (workers/reconciler/decide.ts, follow-step.ts and
 * policy.ts's classify): tables of a run, an observation and the step that must follow — the job's
 * backoff and the global freeze, the lease (taken, busy, frozen, lost), adoption of runs a dead
 * worker left open, the skip rules, change windows, the template and the launch's answer, every AWX
 * status (unknown ones included) and approval state while following, the run timeout and its
 * cancel grace, AWX unreachable, the failure classes, and retries against the maximum.
 */
import { describe, expect, it } from 'vitest';
import {
  AwxAuthError,
  type AwxError,
  AwxLaunchUnconfirmedError,
  AwxNotFoundError,
  AwxPromptsIgnoredError,
  AwxProtocolError,
  AwxRequestError,
  AwxUnavailableError,
} from '../../core/awx/errors.js';
import { failureClasses } from '../../core/events/catalogue.js';
import { NetboxUnavailableError } from '../../core/plugin/client.js';
import type { RunState } from '../../core/runs/state-machine.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { decide, delayAfterWait } from '../../workers/reconciler/decide.js';
import { classify, type EndCause, endState, failureActions } from '../../workers/reconciler/policy.js';
import type {
  AwxJobKind,
  AwxRead,
  DecideSettings,
  FollowState,
  Observation,
  RunView,
  Step,
} from '../../workers/reconciler/steps.js';
import { cause, settings, t0 } from './decide-fixtures.js';

const at = (ms: number) => new Date(t0.getTime() + ms);

const fresh: RunView = { cause: cause(), state: null, awx: null, follow: null };

function following(state: RunState, kind: AwxJobKind = 'job', follow: Partial<FollowState> = {}): RunView {
  return {
    cause: cause(),
    state,
    awx: { kind, id: 42 },
    follow: {
      deadline: at(3600_000),
      timeoutMs: 3600_000,
      delayMs: 400,
      cancelAskedAt: null,
      unreachableSince: null,
      awxStatus: null,
      ...follow,
    },
  };
}

const read = (status: string, extra: Partial<Extract<AwxRead, { ok: true }>> = {}): AwxRead => ({
  ok: true,
  status,
  explanation: '',
  pendingApproval: false,
  refusedApproval: null,
  ...extra,
});

const step = (run: RunView, observation: Observation): Step => decide(run, observation, settings);
const follow = (run: RunView, r: AwxRead, now = at(1_000)) =>
  step(run, { kind: 'awx-job', at: now, read: r });

/** The run's end a step leads to (directly, or after its transition), or null when it waits on. */
function endOf(s: Step) {
  if (s.kind === 'end') return s.end;
  if (s.kind === 'poll' && s.after.kind === 'end') return s.after.end;
  return null;
}

describe('the job as the queue hands it', () => {
  it.each([
    ['no backoff, not frozen', undefined, null, { kind: 'read-root' }],
    ['backoff over', at(-1).toISOString(), null, { kind: 'read-root' }],
    [
      'backoff ahead',
      at(30_000).toISOString(),
      null,
      { kind: 'later', at: at(30_000), why: 'retry backoff' },
    ],
    [
      'frozen globally',
      undefined,
      { reason: 'storm' },
      { kind: 'later', at: at(15_000), why: 'frozen globally: storm' },
    ],
  ])('%s', (_name, notBefore, freeze, expected) => {
    const run = { ...fresh, cause: cause('retry', notBefore ? { notBefore } : {}) };
    expect(step(run, { kind: 'job', at: t0, freeze })).toEqual(expected);
  });

  it('a root that no longer exists is dropped; one that exists is leased', () => {
    expect(step(fresh, { kind: 'root', exists: false })).toEqual({
      kind: 'drop',
      why: 'the root no longer exists in NetBox',
    });
    expect(step(fresh, { kind: 'root', exists: true })).toEqual({ kind: 'acquire-lease' });
  });
});

describe('the lease', () => {
  const lease = (answer: Extract<Observation, { kind: 'lease' }>['answer']) =>
    step(fresh, { kind: 'lease', at: t0, answer });

  it.each([
    ['acquired', { kind: 'acquired', token: 7 } as const, { kind: 'lease-taken', token: 7 }],
    [
      'frozen root: parked',
      { kind: 'frozen', detail: 'root frozen: audit' } as const,
      { kind: 'park', why: 'root frozen: audit' },
    ],
    [
      'busy, expiring in 1 s: just after the expiry',
      { kind: 'busy', holder: 'w2', expiresAt: at(1_000) } as const,
      { kind: 'later', at: at(1_500), why: 'lease held by w2' },
    ],
    [
      'busy, expiring in 60 s: after leaseBusyRetryMs',
      { kind: 'busy', holder: 'w2', expiresAt: at(60_000) } as const,
      { kind: 'later', at: at(5_000), why: 'lease held by w2' },
    ],
    [
      'busy, expired already: not before 200 ms',
      { kind: 'busy', holder: 'w2', expiresAt: at(-5_000) } as const,
      { kind: 'later', at: at(200), why: 'lease held by w2' },
    ],
    [
      'busy, no expiry given: 2 s',
      { kind: 'busy', holder: null, expiresAt: null } as const,
      { kind: 'later', at: at(2_000), why: 'lease held by null' },
    ],
  ])('%s', (_name, answer, expected) => {
    expect(lease(answer)).toEqual(expected);
  });

  it('lost: a fence refusal stops the run, the one lease_lost', () => {
    expect(step(following('running'), { kind: 'fence', reason: 'token 8 > 7' })).toEqual({
      kind: 'fenced',
      why: 'token 8 > 7',
      failureClass: 'lease_lost',
    });
  });
});

describe('adoption of runs left open', () => {
  const open = (state: RunState, awx: boolean, lookedUp = false, continuing: string | null = null) =>
    step(
      { cause: cause(), state, awx: awx ? { kind: 'job', id: 9 } : null, follow: null },
      { kind: 'open-run', lookedUp, continuing },
    );
  const superseded = {
    kind: 'end',
    end: {
      state: 'skipped',
      failureClass: null,
      summary: 'superseded by run r-1, which converges the root; no AWX job carries this run',
    },
    lines: [],
    retryAllowed: false,
  };

  it.each([
    ['launched, with its AWX job: followed', 'launched', true, false, null, { kind: 'adopt' }],
    ['awaiting approval, with its job: followed', 'awaiting_approval', true, false, null, { kind: 'adopt' }],
    [
      'leased, no job recorded: AWX is asked by run id',
      'leased',
      false,
      false,
      null,
      { kind: 'find-launched' },
    ],
    ['leased, AWX found its job: followed', 'leased', true, true, null, { kind: 'adopt' }],
    [
      'leased, AWX has no job: resumed by this job, not failed',
      'leased',
      false,
      true,
      null,
      { kind: 'resume' },
    ],
    ['queued (waiting for its window): continued', 'queued', false, false, null, { kind: 'keep-waiting' }],
    [
      'leased, no job, another run continued already: superseded (skipped)',
      'leased',
      false,
      true,
      'r-1',
      superseded,
    ],
    ['a second queued run: superseded (skipped)', 'queued', false, false, 'r-1', superseded],
    [
      'a run with its job is followed even when another is continued',
      'running',
      true,
      false,
      'r-1',
      { kind: 'adopt' },
    ],
  ] as const)('%s', (_name, state, awx, lookedUp, continuing, expected) => {
    expect(open(state, awx, lookedUp, continuing)).toEqual(expected);
  });

  it("no run left open ends failed: lease_lost is never an open run's end", () => {
    for (const state of ['queued', 'leased'] as const) {
      for (const continuing of [null, 'r-1']) {
        const s = open(state, false, true, continuing);
        expect(s.kind === 'end' ? s.end.state : s.kind).not.toBe('failed');
      }
    }
  });
});

describe('skip rules and change windows', () => {
  const snapshot = (
    kind: ReconcileJobData['cause']['kind'],
    seen: Partial<Extract<Observation, { kind: 'snapshot' }>> = {},
  ) =>
    step(
      { ...fresh, cause: cause(kind) },
      {
        kind: 'snapshot',
        at: t0, // a Monday, 12:00 UTC
        hash: 'h1',
        lastReconciledHash: 'h1',
        drifted: false,
        adoptedSucceeded: [],
        windows: [],
        ...seen,
      },
    );
  const skipped = {
    kind: 'skip',
    end: { state: 'skipped', failureClass: null, summary: 'snapshot already reconciled' },
  };

  it.each([
    ['change, hash reconciled: skipped', 'change', {}, skipped],
    ['sweep, hash reconciled: skipped', 'sweep', {}, skipped],
    ['change, new hash: run', 'change', { lastReconciledHash: 'h0' }, { kind: 'start', mode: 'apply' }],
    [
      'change, never reconciled: run',
      'change',
      { lastReconciledHash: null },
      { kind: 'start', mode: 'apply' },
    ],
    ['manual, hash reconciled: run (forced)', 'manual', {}, { kind: 'start', mode: 'apply' }],
    ['retry, hash reconciled: run (forced)', 'retry', {}, { kind: 'start', mode: 'apply' }],
    [
      'change, hash reconciled but drift flagged: run',
      'change',
      { drifted: true },
      { kind: 'start', mode: 'apply' },
    ],
    [
      'change, an adopted run converged this hash: done',
      'change',
      { lastReconciledHash: 'h0', adoptedSucceeded: ['h1'] },
      { kind: 'done', why: 'an adopted run already converged the root to this snapshot' },
    ],
    [
      'manual, an adopted run converged this hash: run all the same',
      'manual',
      { adoptedSucceeded: ['h1'] },
      { kind: 'start', mode: 'apply' },
    ],
    [
      'a run taken up after its approval wait, for this hash (denied, expired or succeeded): done',
      'manual',
      { lastReconciledHash: 'h0', takenUp: ['h1'] },
      { kind: 'done', why: 'the run taken up after its approval wait was for this snapshot' },
    ],
    [
      'a run taken up after its approval wait, for another hash (edited meanwhile): run',
      'change',
      { lastReconciledHash: 'h0', takenUp: ['h0'] },
      { kind: 'start', mode: 'apply' },
    ],
    [
      'adopted run converged another hash: run',
      'change',
      { lastReconciledHash: 'h0', adoptedSucceeded: ['h0'] },
      { kind: 'start', mode: 'apply' },
    ],
  ] as const)('%s', (_name, kind, seen, expected) => {
    expect(snapshot(kind, seen)).toEqual(expected);
  });

  it.each([
    ['no window: run', [], { kind: 'start', mode: 'apply' }],
    ['window open (11:00–13:00): run', [{ start: '11:00', end: '13:00' }], { kind: 'start', mode: 'apply' }],
    [
      'window closed (02:00–03:00): wait for tomorrow 02:00',
      [{ start: '02:00', end: '03:00' }],
      {
        kind: 'wait-window',
        opensAt: new Date('2026-11-24T02:00:00Z'),
        summary: 'waiting for the change window; opens at 2026-11-24T02:00:00.000Z',
      },
    ],
    [
      'window with no days: wait a day and look again',
      [{ days: [], start: '02:00', end: '03:00' }],
      {
        kind: 'wait-window',
        opensAt: at(24 * 3600_000),
        summary: `waiting for the change window; opens at ${at(24 * 3600_000).toISOString()}`,
      },
    ],
  ] as const)('%s', (_name, windows, expected) => {
    expect(snapshot('change', { lastReconciledHash: 'h0', windows: [...windows] as never })).toEqual(
      expected,
    );
  });

  it('a closed window does not hold a skip back', () => {
    expect(snapshot('change', { windows: [{ start: '02:00', end: '03:00' }] })).toEqual(skipped);
  });
});

describe('template and launch', () => {
  const template = (type: 'job' | 'workflow', id: number | null, approvalRequired = false) =>
    step(fresh, { kind: 'template', rootKind: 'dcim.site', template: { type, id }, approvalRequired });
  const launch = (answer: Extract<Observation, { kind: 'launch' }>['answer']) =>
    step(fresh, { kind: 'launch', templateId: 8, answer });

  it('launches a job or workflow template; refuses none, and approvals on a job template', () => {
    expect(template('job', 8)).toEqual({ kind: 'launch', templateId: 8, awxKind: 'job' });
    expect(template('workflow', 9, true)).toEqual({ kind: 'launch', templateId: 9, awxKind: 'workflow_job' });
    expect(endOf(template('job', null))).toEqual({
      state: 'failed',
      failureClass: 'template_misconfigured',
      summary: 'root kind dcim.site has no AWX template configured',
    });
    expect(endOf(template('job', 8, true))?.failureClass).toBe('template_misconfigured');
  });

  it('records an accepted launch', () => {
    expect(launch({ ok: true, id: 5, adopted: true })).toEqual({
      kind: 'record-launch',
      id: 5,
      adopted: true,
    });
  });

  it.each([
    [
      new AwxPromptsIgnoredError(8, 5, ['extra_vars']),
      'template_misconfigured',
      'AWX template 8 ignored launch fields',
    ],
    [new AwxNotFoundError('no template', 404), 'template_misconfigured', 'AWX template 8 does not exist'],
    [
      new AwxRequestError('bad request', 400),
      'template_misconfigured',
      'AWX refused the launch: bad request',
    ],
    [new AwxProtocolError('odd answer'), 'template_misconfigured', 'AWX refused the launch: odd answer'],
    [new AwxAuthError('401', 401), 'executor_unavailable', 'launch failed: 401'],
    [new AwxUnavailableError('502', 502), 'executor_unavailable', 'launch failed: 502'],
  ] as const)('launch refused with %s: %s', (error, failureClass, summary) => {
    const end = endOf(launch({ ok: false, error }));
    expect(end).toMatchObject({ state: 'failed', failureClass });
    expect(end?.summary.startsWith(summary)).toBe(true);
  });

  it.each([
    ['a lost launch answer (the job is adopted later)', new AwxLaunchUnconfirmedError(8, 'r1')],
    ['NetBox unavailable', new NetboxUnavailableError('down')],
    ['a programming error', new TypeError('x is undefined')],
  ])('%s is no run failure: raised to the queue', (_name, error) => {
    expect(launch({ ok: false, error })).toEqual({ kind: 'raise', error });
  });
});

describe('following: a job AWX failed itself after a restart', () => {
  it('is job_error (retried), not job_failed, and a playbook failure stays job_failed', () => {
    const explanation =
      'Task was marked as running at system start up. The system must have not shut down properly, so it has been marked as failed.';
    expect(endOf(follow(following('leased'), read('failed', { explanation })))?.failureClass).toBe(
      'job_error',
    );
    expect(
      endOf(follow(following('leased'), read('failed', { explanation: 'a playbook task failed' })))
        ?.failureClass,
    ).toBe('job_failed');
  });
});

describe('following: every AWX status', () => {
  it.each([
    ['new', 'launched', null],
    ['pending', 'launched', null],
    ['waiting', 'launched', null],
    ['running', 'running', null],
    ['a status AWX may add', 'launched', null],
    ['successful', null, { state: 'succeeded', failureClass: null, summary: 'AWX job 42 successful' }],
    ['failed', null, { state: 'failed', failureClass: 'job_failed', summary: 'AWX job 42 failed' }],
    ['error', null, { state: 'failed', failureClass: 'job_error', summary: 'AWX job 42 error:' }],
    [
      'canceled',
      null,
      { state: 'canceled', failureClass: 'canceled', summary: 'AWX job 42 canceled in AWX' },
    ],
  ] as const)('%s', (status, state, end) => {
    const s = follow(following('leased'), read(status));
    expect(endOf(s)).toEqual(end);
    if (state) {
      expect(s).toMatchObject({ kind: 'poll', transition: state, after: { kind: 'wait' } });
    }
  });

  it('a status seen again changes nothing and writes no line; news is one line', () => {
    const same = follow(following('running', 'job', { awxStatus: 'running' }), read('running'));
    expect(same).toMatchObject({ kind: 'poll', transition: null, lines: [] });
    const news = follow(following('running', 'job', { awxStatus: 'pending' }), read('running'));
    expect(news).toMatchObject({ lines: [{ message: 'AWX job 42 is running' }] });
  });

  it("an error's explanation is the summary's tail", () => {
    expect(endOf(follow(following('running'), read('error', { explanation: 'no capacity' })))?.summary).toBe(
      'AWX job 42 error: no capacity',
    );
  });
});

describe('following: approvals', () => {
  const workflow = (state: RunState) => following(state, 'workflow_job', { awxStatus: 'running' });
  it.each([
    [
      'requested',
      'running',
      read('running', { pendingApproval: true }),
      'awaiting_approval',
      'approval requested',
    ],
    ['still pending', 'awaiting_approval', read('running', { pendingApproval: true }), null, null],
    ['given', 'awaiting_approval', read('running'), 'running', 'approval given'],
  ] as const)('%s', (_name, state, r, transition, line) => {
    const s = follow(workflow(state), r);
    expect(s).toMatchObject({ kind: 'poll', transition });
    if (s.kind !== 'poll') return;
    expect(s.lines.map((l) => l.message).find((m) => m.startsWith('approval')) ?? null).toSatisfy(
      (m: string | null) => (line === null ? m === null : m?.startsWith(line) === true),
    );
    if (transition) expect(s.follow.delayMs).toBe(settings.pollMinMs);
  });

  it.each([
    [
      'denied',
      { name: 'Approve', timedOut: false },
      'workflow_job',
      'denied',
      'denied',
      'approval "Approve" denied',
    ],
    [
      'expired',
      { name: 'Approve', timedOut: true },
      'workflow_job',
      'timed_out',
      'timed_out',
      'approval "Approve" expired',
    ],
    ['none refused', null, 'workflow_job', 'failed', 'job_failed', 'AWX workflow job 42 failed'],
    [
      'refused, but a plain job (ignored)',
      { name: 'x', timedOut: false },
      'job',
      'failed',
      'job_failed',
      'AWX job 42 failed',
    ],
  ] as const)('workflow failed, approval %s', (_name, refused, kind, state, failureClass, summary) => {
    const s = follow(following('awaiting_approval', kind), read('failed', { refusedApproval: refused }));
    expect(endOf(s)).toEqual({ state, failureClass, summary });
  });
});

describe('awaiting approval without a worker slot (decision 0044)', () => {
  const handingBack: DecideSettings = { ...settings, approvalRecheckMs: 30_000 };
  const workflow = (state: RunState, extra: Partial<FollowState> = {}) =>
    following(state, 'workflow_job', { awxStatus: 'running', ...extra });
  const pending = read('running', { pendingApproval: true });

  it.each([
    ['requested: handed back, its run timeout on the record', 'running', 'awaiting_approval'],
    ['still pending (a run taken up again): handed back', 'awaiting_approval', null],
  ] as const)('%s', (_name, state, transition) => {
    const s = decide(workflow(state), { kind: 'awx-job', at: at(1_000), read: pending }, handingBack);
    expect(s).toMatchObject({ kind: 'poll', transition, after: { kind: 'hand-back', at: at(31_000) } });
    if (s.kind !== 'poll') return;
    expect(s.lines.at(-1)?.meta).toEqual({ run_timeout_at: at(3600_000).toISOString() });
  });

  it('the look again is never after the run timeout', () => {
    const s = decide(
      workflow('awaiting_approval'),
      { kind: 'awx-job', at: at(3590_000), read: pending },
      handingBack,
    );
    expect(s).toMatchObject({ kind: 'poll', after: { kind: 'hand-back', at: at(3600_000) } });
  });

  it.each([
    ['without a re-check setting (driven once, outside a queue): followed in the job', settings, at(1_000)],
    ['the run timeout reached: cancel asked, its grace waited in the job', handingBack, at(3600_000)],
  ] as const)('%s', (_name, given, now) => {
    const s = decide(workflow('awaiting_approval'), { kind: 'awx-job', at: now, read: pending }, given);
    expect(s).toMatchObject({ kind: 'poll', after: { kind: 'wait' } });
  });

  it('approval given, or a plain job running: no hand-back', () => {
    for (const [run, r] of [
      [workflow('awaiting_approval'), read('running')],
      [following('running', 'job', { awxStatus: 'running' }), read('running')],
    ] as const) {
      const s = decide(run, { kind: 'awx-job', at: at(1_000), read: r }, handingBack);
      expect(s).toMatchObject({ kind: 'poll', after: { kind: 'wait' } });
    }
  });

  const look = (r: AwxRead, now = at(1_000), given: DecideSettings = handingBack) =>
    decide(
      workflow('awaiting_approval'),
      { kind: 'approval-wait', at: now, workflowJobId: 42, deadline: at(3600_000), read: r },
      given,
    );
  it('before any lease, still pending: later, woken by its workflow job, nothing taken', () => {
    expect(look(pending)).toEqual({
      kind: 'later',
      at: at(31_000),
      why: 'awaiting approval of AWX workflow job 42',
      wakeOn: { kind: 'workflow_job', id: 42 },
    });
  });

  it.each([
    ['approved', read('running')],
    [
      'denied or expired (the workflow failed)',
      read('failed', { refusedApproval: { name: 'A', timedOut: false } }),
    ],
    ['ended', read('successful')],
    [
      'AWX not answering (followed, as any run)',
      { ok: false, error: new AwxUnavailableError('down') } as AwxRead,
    ],
  ] as const)('before any lease, %s: the lease is taken and the run adopted', (_name, r) => {
    expect(look(r)).toEqual({ kind: 'acquire-lease' });
  });

  it('before any lease, the run timeout reached or no re-check setting: the lease is taken', () => {
    expect(look(pending, at(3600_000))).toEqual({ kind: 'acquire-lease' });
    expect(look(pending, at(1_000), settings)).toEqual({ kind: 'acquire-lease' });
  });
});

describe('following: run timeout and cancel grace', () => {
  it.each([
    ['before the deadline: no cancel', at(3599_000), null],
    ['at the deadline: cancel once', at(3600_000), 'run timeout of 3600 s reached; asking AWX to cancel'],
    ['after the deadline: cancel once', at(7200_000), 'run timeout of 3600 s reached; asking AWX to cancel'],
  ])('%s', (_name, now, message) => {
    const s = follow(following('running', 'job', { awxStatus: 'running' }), read('running'), now);
    expect(s).toMatchObject({ kind: 'poll', after: { kind: 'wait' } });
    if (s.kind !== 'poll') return;
    expect(s.cancel?.message ?? null).toBe(message);
    expect(s.follow.cancelAskedAt).toEqual(message ? now : null);
  });

  it.each([
    ['within the grace: waits on, no second cancel', 19_000, null],
    [
      'past the grace: timed_out',
      21_000,
      {
        state: 'timed_out',
        failureClass: 'timed_out',
        summary: 'run timeout reached; AWX job 42 did not stop after the cancel request',
      },
    ],
  ])('cancel asked, %s', (_name, elapsed, end) => {
    const asked = at(3600_000);
    const run = following('running', 'job', { awxStatus: 'running', cancelAskedAt: asked });
    const s = follow(run, read('running'), new Date(asked.getTime() + elapsed));
    expect(s).toMatchObject({ kind: 'poll', cancel: null });
    expect(endOf(s)).toEqual(end);
  });

  it('canceled after the run asked: timed_out, not canceled', () => {
    const run = following('running', 'job', { cancelAskedAt: at(3600_000) });
    expect(endOf(follow(run, read('canceled'), at(3601_000)))).toEqual({
      state: 'timed_out',
      failureClass: 'timed_out',
      summary: 'run timeout reached; AWX job 42 canceled',
    });
  });
});

describe('following: AWX unreachable or refusing', () => {
  const unavailable: AwxRead = { ok: false, error: new AwxUnavailableError('ECONNREFUSED') };

  it('first time unreachable: one line, polls on plainly at twice the delay', () => {
    const s = follow(following('running'), unavailable);
    expect(s).toMatchObject({
      kind: 'poll',
      transition: null,
      cancel: null,
      lines: [{ level: 'warning', message: 'AWX unreachable while following AWX job 42; polling on' }],
      follow: { unreachableSince: at(1_000) },
      after: { kind: 'wait', wait: { ms: 800, notifications: false } },
    });
  });

  it.each([
    ['still within max(timeout, 60 s): polls on without a new line', 3600_000, null],
    [
      'beyond max(timeout, 60 s): executor_unavailable',
      3600_001,
      {
        state: 'failed',
        failureClass: 'executor_unavailable',
        summary: 'AWX unreachable while following job 42: ECONNREFUSED',
      },
    ],
  ])('%s', (_name, elapsed, end) => {
    const run = following('running', 'job', { unreachableSince: t0 });
    const s = follow(run, unavailable, at(elapsed));
    expect(endOf(s)).toEqual(end);
    if (!end) expect(s).toMatchObject({ kind: 'poll', lines: [] });
  });

  it('answering again clears the unreachable mark', () => {
    const s = follow(following('running', 'job', { unreachableSince: t0 }), read('running'));
    expect(s).toMatchObject({ kind: 'poll', follow: { unreachableSince: null } });
  });

  it.each([
    [new AwxNotFoundError('gone', 404), 'job_error'],
    [new AwxAuthError('403', 403), 'executor_unavailable'],
    [new AwxProtocolError('odd'), 'executor_unavailable'],
  ] as const)('AWX refusing to show the job (%s): %s', (error, failureClass) => {
    expect(endOf(follow(following('running'), { ok: false, error }))).toMatchObject({
      state: 'failed',
      failureClass,
    });
  });

  it('the wait: back to the minimum when a notification woke it, doubled (capped) when not', () => {
    expect(delayAfterWait(400, true, settings)).toBe(100);
    expect(delayAfterWait(400, false, settings)).toBe(800);
    expect(delayAfterWait(1_200, false, settings)).toBe(1_600);
  });
});

describe('classify: the failure classes', () => {
  // The run's verify job (docs/decisions/0066): failed is verify_failed, the rest as for any job.
  const verify = (s: string, cancelAsked = false, reaped = false): EndCause => ({
    kind: 'verify',
    status: s,
    cancelAsked,
    reaped,
  });
  const status = (
    s: string,
    cancelAsked = false,
    approval: 'denied' | 'expired' | null = null,
  ): EndCause => ({
    kind: 'status',
    status: s,
    cancelAsked,
    approval,
  });
  const table: [string, EndCause, (typeof failureClasses)[number] | null][] = [
    [
      'launch: prompts ignored',
      { kind: 'launch-error', error: new AwxPromptsIgnoredError(1, 2, ['x']) },
      'template_misconfigured',
    ],
    [
      'launch: template not found',
      { kind: 'launch-error', error: new AwxNotFoundError('404') },
      'template_misconfigured',
    ],
    [
      'launch: refused',
      { kind: 'launch-error', error: new AwxRequestError('400') },
      'template_misconfigured',
    ],
    ['launch: auth', { kind: 'launch-error', error: new AwxAuthError('401') }, 'executor_unavailable'],
    [
      'launch: unavailable',
      { kind: 'launch-error', error: new AwxUnavailableError('502') },
      'executor_unavailable',
    ],
    ['read: job gone', { kind: 'read-error', error: new AwxNotFoundError('404') as AwxError }, 'job_error'],
    ['read: refused', { kind: 'read-error', error: new AwxAuthError('403') }, 'executor_unavailable'],
    ['unreachable too long', { kind: 'unreachable' }, 'executor_unavailable'],
    ['successful', status('successful'), null],
    ['failed', status('failed'), 'job_failed'],
    ['unknown terminal status', status('exploded'), 'job_failed'],
    ['error', status('error'), 'job_error'],
    ['canceled in AWX', status('canceled'), 'canceled'],
    ['canceled on the run timeout', status('canceled', true), 'timed_out'],
    ['approval denied', status('failed', false, 'denied'), 'denied'],
    ['approval expired', status('failed', false, 'expired'), 'timed_out'],
    [
      'failed by AWX itself (reaped)',
      { kind: 'status', status: 'failed', cancelAsked: false, approval: null, reaped: true },
      'job_error',
    ],
    ['cancel ignored', { kind: 'cancel-ignored' }, 'timed_out'],
    ['misconfigured', { kind: 'misconfigured' }, 'template_misconfigured'],
    ['fenced while alive', { kind: 'fenced' }, 'lease_lost'],
    ['check: in sync', { kind: 'check', summary: { drift: false, changedFiles: [] } }, null],
    ['check: drift', { kind: 'check', summary: { drift: true, changedFiles: ['a'] } }, 'drift'],
    ['check: no summary', { kind: 'check', summary: null }, 'drift_unknown'],
    ['gate: snapshot refused by its schema', { kind: 'invalid-snapshot' }, 'invalid_snapshot'],
    ['fail-safe: NetBox answered inconsistently', { kind: 'netbox-inconsistent' }, 'netbox_inconsistent'],
    ['verify: passed', verify('successful'), null],
    ['verify: failed', verify('failed'), 'verify_failed'],
    ['verify: failed by AWX itself (reaped)', verify('failed', false, true), 'job_error'],
    ['verify: error', verify('error'), 'job_error'],
    ['verify: canceled on the run timeout', verify('canceled', true), 'timed_out'],
  ];

  it.each(table)('%s', (_name, endCause, failureClass) => {
    expect(classify(endCause)).toBe(failureClass);
  });

  it('every failure class the catalogue knows is reachable, and ends in its state', () => {
    const reached = new Set(table.map(([, c]) => classify(c)));
    for (const failureClass of failureClasses) expect(reached).toContain(failureClass);
    expect(endState(null)).toBe('succeeded');
    expect(endState('canceled')).toBe('canceled');
    expect(endState('timed_out')).toBe('timed_out');
    expect(endState('denied')).toBe('denied');
    for (const c of [
      'executor_unavailable',
      'template_misconfigured',
      'job_failed',
      'job_error',
      'lease_lost',
    ] as const) {
      expect(endState(c)).toBe('failed');
    }
  });
});

describe('outcome and retry', () => {
  const ended = (
    failureClass: (typeof failureClasses)[number] | null,
    attempt: number | undefined,
    retryAllowed = true,
  ) =>
    step(
      { ...fresh, cause: cause(attempt ? 'retry' : 'change', attempt ? { attempt } : {}) },
      {
        kind: 'ended',
        at: t0,
        end: { state: endState(failureClass), failureClass, summary: 's' },
        retryAllowed,
      },
    );

  it.each(failureClasses.map((c) => [c, failureActions[c].action] as const))(
    '%s on a first attempt: %s',
    (failureClass, action) => {
      const s = ended(failureClass, undefined);
      expect(s).toEqual({
        kind: 'finish',
        retry:
          action === 'retry'
            ? { kind: 'retry', attempt: 2, notBefore: at(1_000), why: failureActions[failureClass].why }
            : null,
      });
    },
  );

  it.each([
    [
      'attempt 2 of 3: attempt 3 after twice the base',
      2,
      { kind: 'retry', attempt: 3, notBefore: at(2_000) },
    ],
    ['attempt 3 of 3: exhausted', 3, { kind: 'exhausted', why: '3 attempts failed' }],
    ['attempt 5 of 3 (max lowered): exhausted', 5, { kind: 'exhausted', why: '3 attempts failed' }],
  ] as const)('executor_unavailable, %s', (_name, attempt, retry) => {
    expect(ended('executor_unavailable', attempt)).toMatchObject({ kind: 'finish', retry });
  });

  it('no retry after success, or when the end forbids it (an orphaned run)', () => {
    expect(ended(null, undefined)).toEqual({ kind: 'finish', retry: null });
    expect(ended('executor_unavailable', undefined, false)).toEqual({ kind: 'finish', retry: null });
  });
});
