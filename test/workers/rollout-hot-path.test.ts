/**
 * The rollout's calls on a run's path (docs/decisions/0069), against the real NetBox plugin: the
 * resolver's gate asks the plugin once for all the requests of a batch (rollouts/gate/), not once per
 * request; the rollout worker reports a run's end only when a live rollout may be credited with it —
 * the root listed by rollouts/live/, or a run started after the list was read, which reads a newer one —
 * so an end no rollout holds costs no plugin call, and a rollout opened after the list was read is not
 * missed. The calls are counted on a RolloutStore talking to the plugin.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { LogRecord } from '../../core/event-log/consumer.js';
import type { EventLogMessage } from '../../core/event-log/port.js';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { RolloutStore } from '../../core/rollout/store.js';
import { gateIntents, handleOutcomes, LiveRolloutView } from '../../workers/rollout/rollout.js';
import { netbox } from '../support/netbox.js';
import { createSite } from '../support/reconciler.js';
import { keepingEventLog, outcomeRecord, requestIntents } from '../support/rollout-records.js';
import { stack, uniqueName } from '../support/stack.js';

const settings = { minRoots: 2, plan: '1,rest', failureThreshold: 0.4 };

/** The real store, each call counted by name. */
function countedStore() {
  const real = new RolloutStore({
    baseUrl: stack.netboxUrl(),
    token: stack.netboxToken(),
    timeoutMs: 60_000,
  });
  const calls: Record<string, number> = {};
  const counted =
    <A extends unknown[], R>(name: string, call: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      calls[name] = (calls[name] ?? 0) + 1;
      return call(...args);
    };
  const store = {
    gate: counted('gate', (r: Parameters<RolloutStore['gate']>[0]) => real.gate(r)),
    gateMany: counted('gateMany', (r: Parameters<RolloutStore['gateMany']>[0]) => real.gateMany(r)),
    outcome: counted('outcome', (e: Parameters<RolloutStore['outcome']>[0]) => real.outcome(e)),
    live: counted('live', () => real.live()),
  };
  return { store, calls };
}

let offset = 0;
/** A run's end of `rootKey` whose run started at `startedAt`. */
const end = (rootKey: string, startedAt: Date): LogRecord =>
  outcomeRecord(uniqueName('run'), rootKey, ++offset, {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
  });

const { eventLog, batches } = keepingEventLog();
const rolloutsOf = (messages: EventLogMessage[]) =>
  messages
    .filter((m) => m.topic === topics.control)
    .map((m) => (JSON.parse(m.value) as { data: EventData<'rollout'> }).data)
    .map((d) => [d.rolloutId, d.transition]);

describe('rollout calls on the run path', () => {
  const sites: { id: number; rootKey: string }[] = [];
  const opened: string[] = [];
  afterAll(async () => {
    for (const id of opened)
      await netbox('POST', `/api/plugins/unicop/rollouts/${id}/abort/`, {
        by: 'test',
        reason: 'cleanup',
      }).catch(() => undefined);
    for (const site of sites) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });
  const newSites = async (n: number) => {
    const made = [];
    for (let i = 0; i < n; i++) made.push(await createSite());
    sites.push(...made);
    return made.map((s) => s.rootKey).sort();
  };

  it('the gate asks once for every request of a batch, each answered as alone', async () => {
    const many = await newSites(3);
    const one = await newSites(1);
    const [a, b] = [uniqueName('hot-a'), uniqueName('hot-b')];
    opened.push(a);
    const { store, calls } = countedStore();
    const out = await gateIntents([...requestIntents(a, many), ...requestIntents(b, one)], store, settings);
    expect(calls).toEqual({ gateMany: 1 });
    // a: more than 2 roots → a rollout [1, 2], its held roots' intents not appended; b: one root, none.
    const published = out
      .filter((m) => m.topic === topics.intents)
      .map((m) => m.key)
      .sort();
    expect(published).toEqual([many[0], one[0]].sort());
    expect(rolloutsOf(out)).toEqual([[a, 'opened']]);
  }, 120_000);

  it('an end no live rollout may be credited with is not reported; a released member’s is, and opens its next wave', async () => {
    const members = await newSites(3);
    const [outside] = await newSites(1);
    const id = uniqueName('hot-c');
    opened.push(id);
    await gateIntents(requestIntents(id, members), countedStore().store, settings);
    const { store, calls } = countedStore();
    const live = new LiveRolloutView(store);
    const minuteAgo = new Date(Date.now() - 60_000);
    await handleOutcomes([end(outside as string, minuteAgo)], { store, eventLog, live });
    expect(calls).toEqual({ live: 1 }); // read once; the outside root's end not reported
    batches.length = 0;
    await handleOutcomes([end(members[0] as string, new Date()), end(outside as string, minuteAgo)], {
      store,
      eventLog,
      live,
    });
    expect(calls).toEqual({ live: 1, outcome: 1 }); // the member listed: reported, no new read
    expect(rolloutsOf(batches.flat())).toEqual([[id, 'wave_started']]);
    const released = batches
      .flat()
      .filter((m) => m.topic === topics.intents)
      .map((m) => m.key);
    expect(released.sort()).toEqual(members.slice(1));
  }, 120_000);

  it('an end of a run started after the list was read reads a newer one: a rollout opened since is not missed', async () => {
    const { store, calls } = countedStore();
    const live = new LiveRolloutView(store);
    const [before] = await newSites(1);
    await handleOutcomes([end(before as string, new Date(Date.now() - 60_000))], { store, eventLog, live });
    expect(calls).toEqual({ live: 1 });
    // A rollout opened after that read, its first wave's run started after it too.
    const members = await newSites(3);
    const id = uniqueName('hot-d');
    opened.push(id);
    await gateIntents(requestIntents(id, members), countedStore().store, settings);
    batches.length = 0;
    await handleOutcomes([end(members[0] as string, new Date())], { store, eventLog, live });
    expect(calls).toEqual({ live: 2, outcome: 1 });
    expect(rolloutsOf(batches.flat())).toEqual([[id, 'wave_started']]);
  }, 120_000);
});
