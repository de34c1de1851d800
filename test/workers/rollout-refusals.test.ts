/**
 * A plugin refusal (a 4xx) of a rollout call is not fatal to the workers (docs/decisions/0061,
 * review-A #1), without services: `gateIntents` and `handleOutcomes` are given a store that refuses
 * the way the plugin does (the RolloutStore's PluginRequestError; NetboxUnavailableError for NetBox
 * away). A refused gate lets the request's intents out ungated with a `rollout.gate_refused` audit per
 * root naming the refusal; a refused run end is audited `rollout.outcome_refused` and skipped, the next
 * end still reported; a refused read of the live rollouts (0069) reports the end as before; NetBox away
 * still throws (the batch comes again). And UNICOP_ROLLOUT_WAVES is
 * refused at start by the plugin's cut_waves rule. The plugin's side: test_rollouts (CutWavesTestCase).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, wavePlanError } from '../../core/config.js';
import type { EventLogMessage } from '../../core/event-log/port.js';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { NetboxUnavailableError } from '../../core/netbox/http.js';
import { PluginRequestError } from '../../core/plugin/client.js';
import type { RolloutStep } from '../../core/rollout/store.js';
import { gateIntents, handleOutcomes, LiveRolloutView } from '../../workers/rollout/rollout.js';
import { keepingEventLog, outcomeRecord, requestIntents } from '../support/rollout-records.js';

const settings = { minRoots: 2, plan: '1,10%,rest', failureThreshold: 0.1 };
const forbidden = () =>
  new PluginRequestError(403, 'rollouts/', { detail: 'You do not have permission to perform this action.' });

function audits(messages: EventLogMessage[]) {
  return messages
    .filter((m) => m.topic === topics.audit)
    .map((m) => JSON.parse(m.value) as { data: EventData<'audit'> })
    .map((e) => e.data);
}

describe('rollout calls the plugin refuses', () => {
  it('a refused gate (403) lets the request’s intents out ungated, each root audited rollout.gate_refused with the refusal', async () => {
    const messages = requestIntents('req-403', ['site/1', 'site/2', 'site/3']);
    const noRollout = new Set<string>();
    let asked = 0;
    const store = {
      gate: async (): Promise<RolloutStep> => {
        asked += 1;
        throw forbidden();
      },
    };
    const out = await gateIntents(messages, store, settings, undefined, noRollout);
    expect(out.filter((m) => m.topic === topics.intents)).toEqual(messages); // every intent goes out
    const refused = audits(out);
    expect(refused.map((a) => [a.action, a.subjectId, a.outcome])).toEqual([
      ['rollout.gate_refused', 'site/1', 'rejected'],
      ['rollout.gate_refused', 'site/2', 'rejected'],
      ['rollout.gate_refused', 'site/3', 'rejected'],
    ]);
    expect(refused[0]?.reason).toContain('answered 403');
    expect(refused[0]?.correlation).toMatchObject({ requestId: 'req-403', status: 403 });
    // The request is not asked about again (its later changes go out ungated, without a refusal each).
    await gateIntents(requestIntents('req-403', ['site/4']), store, settings, undefined, noRollout);
    expect(asked).toBe(1);
  });

  it('NetBox away at the gate still throws: the batch comes again', async () => {
    const store = {
      gate: async (): Promise<RolloutStep> => {
        throw new NetboxUnavailableError('NetBox answered 503 (POST rollouts/)');
      },
    };
    await expect(gateIntents(requestIntents('req-503', ['site/1']), store, settings)).rejects.toBeInstanceOf(
      NetboxUnavailableError,
    );
  });

  it('a refused run end is audited rollout.outcome_refused and skipped; the next end is still reported', async () => {
    const reported: string[] = [];
    const store = {
      outcome: async (end: { run_id: string }): Promise<RolloutStep> => {
        if (end.run_id === 'run-1') throw forbidden();
        reported.push(end.run_id);
        return { rollout: null, transition: null, release: [] };
      },
    };
    const { eventLog, batches: appended } = keepingEventLog();
    const warned: unknown[] = [];
    await handleOutcomes([outcomeRecord('run-1', 'site/7', 1), outcomeRecord('run-2', 'site/8', 2)], {
      store,
      eventLog,
      log: { warn: (o: unknown) => warned.push(o) },
    });
    expect(reported).toEqual(['run-2']);
    expect(warned).toHaveLength(1);
    const [audit] = audits(appended.flat());
    expect(audit).toMatchObject({
      action: 'rollout.outcome_refused',
      subjectId: 'site/7',
      outcome: 'rejected',
      correlation: { runId: 'run-1', status: 403 },
    });
    expect(audit?.reason).toContain('answered 403');
  });

  it('a refused read of the live rollouts (decision 0069) is not fatal: the end is reported, as before; NetBox away still throws', async () => {
    const reported: string[] = [];
    const store = {
      outcome: async (end: { run_id: string }): Promise<RolloutStep> => {
        reported.push(end.run_id);
        return { rollout: null, transition: null, release: [] };
      },
    };
    const { eventLog } = keepingEventLog();
    const refusing = new LiveRolloutView({ live: async () => Promise.reject(forbidden()) }, undefined, 0);
    await handleOutcomes([outcomeRecord('run-1', 'site/7', 1)], { store, eventLog, live: refusing });
    expect(reported).toEqual(['run-1']);
    const away = new LiveRolloutView(
      { live: async () => Promise.reject(new NetboxUnavailableError('NetBox answered 503')) },
      undefined,
      0,
    );
    await expect(
      handleOutcomes([outcomeRecord('run-2', 'site/8', 2)], { store, eventLog, live: away }),
    ).rejects.toBeInstanceOf(NetboxUnavailableError);
    expect(reported).toEqual(['run-1']);
  });

  it('UNICOP_ROLLOUT_WAVES: what the plugin’s cut_waves refuses is refused at start, naming the key', () => {
    for (const plan of ['0,rest', 'rest,1', '1,0,rest', '1,rest,rest']) {
      expect(wavePlanError(plan), plan).not.toBeNull();
      try {
        parseConfig({ UNICOP_ROLLOUT_WAVES: plan });
        expect.unreachable(plan);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).fields.map((f) => f.field)).toEqual(['UNICOP_ROLLOUT_WAVES']);
      }
    }
    for (const plan of ['1,10%,rest', '0%,rest', '5', '1, 2 ,rest']) {
      expect(parseConfig({ UNICOP_ROLLOUT_WAVES: plan }).UNICOP_ROLLOUT_WAVES).toBe(plan);
    }
  });
});
