/**
 * How `unicop root why` puts the chain together from what it read (causeChain, no services): the run's
 * own chain fields first; for a run written without them (a plugin before migration 0002), the intent
 * named by the run's audit events; intents coalesced into the run's job counted from the dispatcher's
 * audit; links the log does not hold marked not found instead of guessed.
 */
import { describe, expect, it } from 'vitest';
import type { ShownEvent } from '../../core/cli/commands/events.js';
import { causeChain, describeChain } from '../../core/cli/commands/root-why.js';
import type { PluginRun } from '../../core/plugin/client.js';

const rootKey = 'site/7';
const intentId = '019ad3f0-1111-7000-8000-000000000001';
const changeId = '019ad3f0-2222-7000-8000-000000000002';
const laterIntent = '019ad3f0-3333-7000-8000-000000000003';

const run = (fields: Partial<PluginRun> = {}) =>
  ({
    run_id: 'run-1',
    state: 'failed',
    cause: 'change',
    fencing_token: 12,
    started: '2026-12-01T22:00:01Z',
    finished: '2026-12-01T22:01:00Z',
    awx_job_type: 'job',
    awx_job_id: 345,
    awx_job_url: 'https://awx.example/#/jobs/playbook/345/output',
    outcome_class: 'executor_unavailable',
    summary: 'AWX unreachable',
    runbook: 'docs/runbooks/awx-unavailable.md',
    ...fields,
  }) as PluginRun;

let offset = 0;
const event = (type: string, key: string, data: Record<string, unknown>): ShownEvent => ({
  time: '2026-12-01T22:00:00Z',
  topic: `unicop.${type}`,
  partition: 0,
  offset: String(offset++),
  key,
  type,
  subject: null,
  data,
});
const audit = (action: string, correlation: Record<string, unknown>, actor = 'unicop-dispatcher') =>
  event('audit', rootKey, { action, actor, correlation });

const log = [
  event('change', 'dcim.site:7', {
    changeId,
    event: 'updated',
    objectType: 'dcim.site',
    objectId: 7,
    actor: 'alice',
    requestId: 'req-9',
    occurredAt: '2026-12-01T22:00:00Z',
  }),
  event('intent', rootKey, {
    intentId,
    rootKey,
    cause: { kind: 'change', changeId, at: '2026-12-01T22:00:00Z' },
  }),
  audit('intent.queued', { intentId, changeId, jobId: intentId }),
  audit('intent.coalesced', { intentId: laterIntent, changeId: 'c-later', jobId: intentId }),
  audit('run.leased', { runId: 'run-1', intentId, fencingToken: 12 }, 'worker-a'),
];

describe('root why: the chain from the run and the log', () => {
  it('follows the run to its intent, change, queue, lease and outcome', () => {
    const chain = causeChain(rootKey, run({ intent_id: intentId, change_ids: [changeId] }), log);
    expect(chain).toMatchObject({
      change: {
        changeId,
        actor: 'alice',
        requestId: 'req-9',
        object: { type: 'dcim.site', id: 7 },
        onLog: true,
      },
      intent: { intentId, cause: 'change', onLog: true },
      queue: { action: 'queued', jobId: intentId, coalesced: 1, coalescedChangeIds: ['c-later'] },
      lease: { fencingToken: 12, holder: 'worker-a' },
      awx: { kind: 'job', jobId: 345, status: null },
      outcome: { state: 'failed', failureClass: 'executor_unavailable', onLog: false },
      runbook: 'docs/runbooks/awx-unavailable.md',
    });
    expect(describeChain(chain)).toContain('docs/runbooks/awx-unavailable.md');
  });

  it('finds the intent through the run audit events when the run has no chain fields', () => {
    const chain = causeChain(rootKey, run(), log);
    expect(chain.intent?.intentId).toBe(intentId);
    expect(chain.change?.changeId).toBe(changeId);
  });

  it('says not found for what the log does not hold', () => {
    const chain = causeChain(rootKey, run({ intent_id: intentId, change_ids: [changeId] }), []);
    expect(chain.change).toMatchObject({ changeId, onLog: false });
    expect(chain.intent).toMatchObject({ intentId, onLog: false });
    expect(chain.queue.action).toBeNull();
    expect(describeChain(chain)).toContain('not found on unicop.changes');
  });
});
