/**
 * Which run ends the rollout worker reports to the plugin (docs/decisions/0061, review-A #5), without
 * services: `handleOutcomes` is given unicop.outcomes records and a store that writes down what it is
 * asked. A failed attempt that a retry follows (`retryScheduled`) is not the root's end, so it must not
 * end the root's member `failed` (a false failure could halt the wave); the retry's own end is reported.
 * The plugin's side of a reported end is tested against the real plugin (test_rollouts).
 */
import { describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { stepMessages } from '../../core/rollout/events.js';
import type { RolloutStep, RolloutSummary } from '../../core/rollout/store.js';
import { handleOutcomes } from '../../workers/rollout/rollout.js';
import { keepingEventLog, outcomeRecord } from '../support/rollout-records.js';

describe('rollout worker: which run ends count', () => {
  it('a failed attempt with a retry scheduled is not reported; the retry’s end and a last failed attempt are', async () => {
    const asked: { run_id: string; state: string }[] = [];
    const store = {
      outcome: async (end: { run_id: string; state: string }): Promise<RolloutStep> => {
        asked.push({ run_id: end.run_id, state: end.state });
        return { rollout: null, transition: null, release: [] };
      },
    };
    const { eventLog, batches: appended } = keepingEventLog();
    await handleOutcomes(
      [
        outcomeRecord('run-1', 'site/7', 1, {
          state: 'failed',
          failureClass: 'executor_unavailable',
          retryScheduled: true,
        }),
        outcomeRecord('run-2', 'site/7', 2, { state: 'succeeded' }),
        outcomeRecord('run-3', 'site/7', 3, { state: 'failed', failureClass: 'job_failed' }),
        outcomeRecord('run-4', 'site/7', 4, { state: 'drifted', mode: 'check' }),
      ],
      { store, eventLog },
    );
    expect(asked).toEqual([
      { run_id: 'run-2', state: 'succeeded' },
      { run_id: 'run-3', state: 'failed' },
    ]);
    expect(appended).toEqual([]); // no step asked for anything
  });

  it('a step told again (a replayed end or gate batch) gives the same messages: the same event and intent ids', () => {
    const rollout: RolloutSummary = {
      rollout_id: 'req-1',
      state: 'open',
      plan: '1,2,rest',
      waves: [1, 2, 2],
      current_wave: 1,
      wave_started: '2026-12-02T18:00:00.000Z',
      failure_threshold: 0.4,
      roots_total: 5,
      counts: { held: 2, released: 2, succeeded: 1, failed: 0, aborted: 0 },
      change_ids: ['c1'],
      actor: 'alice',
      reason: '',
      decided_by: '',
      opened: '2026-12-02T17:59:00.000Z',
      ended: null,
      members: [],
    };
    const step: RolloutStep = {
      rollout,
      transition: 'wave_started',
      release: [
        { root_key: 'site/2', intent: {} },
        { root_key: 'site/3', intent: {} },
      ],
    };
    const ids = (at: string) =>
      stepMessages(step, 'unicop-rollout', new Date(at)).map(
        (m) => (JSON.parse(m.value) as { id: string }).id,
      );
    const first = ids('2026-12-02T18:00:01.000Z');
    expect(first).toHaveLength(5); // two intents, their two audits, the wave_started event
    // The audits are new events each time (an audit records each telling); the intents and the event are not.
    const again = ids('2026-12-02T18:07:00.000Z');
    for (const i of [0, 2, 4]) expect(again[i]).toBe(first[i]);
  });

  it('an end credited to two live rollouts: each one’s step is appended (the answer’s `also`)', async () => {
    const summary = (id: string, state: RolloutSummary['state']): RolloutSummary => ({
      rollout_id: id,
      state,
      plan: '1,rest',
      waves: [1, 1],
      current_wave: 1,
      wave_started: '2026-12-02T18:00:00.000Z',
      failure_threshold: 0.4,
      roots_total: 2,
      counts: { held: 0, released: 1, succeeded: 1, failed: 0, aborted: 0 },
      change_ids: [],
      actor: 'alice',
      reason: '',
      decided_by: '',
      opened: '2026-12-02T17:59:00.000Z',
      ended: state === 'done' ? '2026-12-02T18:01:00.000Z' : null,
      members: [],
    });
    const store = {
      outcome: async (): Promise<RolloutStep> => ({
        rollout: summary('req-a', 'open'),
        transition: 'wave_started',
        release: [{ root_key: 'site/8', intent: {} }],
        also: [{ rollout: summary('req-b', 'done'), transition: 'done', release: [] }],
      }),
    };
    const { eventLog, batches } = keepingEventLog();
    await handleOutcomes([outcomeRecord('run-5', 'site/7', 5)], { store, eventLog });
    const appended = batches.flat();
    const events = appended
      .filter((m) => m.topic === topics.control)
      .map((m) => (JSON.parse(m.value) as { data: { rolloutId: string; transition: string } }).data);
    expect(events.map((e) => [e.rolloutId, e.transition])).toEqual([
      ['req-a', 'wave_started'],
      ['req-b', 'done'],
    ]);
    expect(appended.filter((m) => m.topic === topics.intents).map((m) => m.key)).toEqual(['site/8']);
  });
});
