/**
 * The global freeze reaches NetBox (decision 0062): the bridge's GlobalFreezeMirror puts the freeze
 * view's latest global record into the real plugin (`/api/plugins/unicop/global-freeze/`), which NetBox
 * shows as a banner on every page (the banner itself: the plugin's test_global_freeze.py). The view
 * here is fed records directly, as the bridge's view is fed by unicop.control, so nothing is frozen on
 * the shared topic; at the end NetBox is given the topic's real latest record again (a newer `at`).
 */
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import {
  GlobalFreezeMirror,
  globalFreezeLimits,
  globalFreezePath,
} from '../../core/control/freeze-mirror.js';
import { FreezeView } from '../../core/control/freeze-view.js';
import type { EventData } from '../../core/events/catalogue.js';
import { netboxRest } from '../../core/netbox/rest.js';
import { startControlView } from '../support/freeze.js';
import { testKafka } from '../support/kafka.js';
import { eventually } from '../support/reconciler.js';
import { stack } from '../support/stack.js';

const log = pino({ level: 'silent' });
const netbox = netboxRest(stack.netboxUrl(), stack.netboxToken());
type Held = { record: { frozen: boolean; actor: string; reason: string; at: string } | null };
const held = () => netbox<Held>('GET', globalFreezePath);
const record = (frozen: boolean, actor: string, reason: string): EventData<'freeze'> => ({
  scope: 'global',
  rootKey: null,
  frozen,
  reason,
  actor,
  at: new Date().toISOString(),
});

describe('global freeze mirrored to NetBox', () => {
  afterAll(async () => {
    // NetBox shows what unicop.control says again (the test's records carried newer times).
    const real = await startControlView(testKafka(), log);
    const state = real.globalState();
    await real.stop();
    // No global record on the topic: NetBox must not keep a test's freeze (nothing would overwrite it).
    const { frozen, actor, reason } = state ?? {
      frozen: false,
      actor: 'global-freeze-mirror test',
      reason: 'test over: no global record on unicop.control',
    };
    await netbox('PUT', globalFreezePath, { frozen, actor, reason, at: new Date().toISOString() });
  }, 120_000);

  it('puts the latest global record once replayed and at each record after, frozen then resumed', async () => {
    const view = new FreezeView({
      start: async () => undefined,
      stop: async () => undefined,
      lag: async () => 0,
      offsets: async () => [],
    });
    const reason = `mirror test ${Date.now()}`;
    view.apply(record(true, 'unicop', `fail-safe failed_roots: ${reason}`));
    await view.start();
    // The plugin keeps the last put: another bridge's put (a test's bridge on the shared topic) may
    // come between; this mirror puts again each second.
    const mirror = new GlobalFreezeMirror(view, netbox, log, 1000);
    try {
      await mirror.start();
      expect(mirror.puts).toBe(1);
      await eventually(
        async () =>
          (await held()).record?.reason === `fail-safe failed_roots: ${reason}` ? true : undefined,
        'NetBox holding the freeze',
        60_000,
      );
      expect((await held()).record).toMatchObject({ frozen: true, actor: 'unicop' });

      view.apply(record(false, 'alice', `resumed: ${reason}`));
      await eventually(
        async () => ((await held()).record?.reason === `resumed: ${reason}` ? true : undefined),
        'NetBox holding the resume',
        60_000,
      );
      expect((await held()).record).toMatchObject({ frozen: false, actor: 'alice' });
    } finally {
      await mirror.stop();
      await view.stop();
    }
  }, 180_000);

  it('cuts a reason and an actor longer than the plugin takes, so NetBox still shows the record', async () => {
    const view = new FreezeView({
      start: async () => undefined,
      stop: async () => undefined,
      lag: async () => 0,
      offsets: async () => [],
    });
    const reason = `fail-safe failed_roots: long ${Date.now()} ${'x'.repeat(3000)}`;
    view.apply(record(true, 'a'.repeat(400), reason));
    await view.start();
    // The plugin keeps the last put: another bridge's put could come between (it re-puts each second).
    const mirror = new GlobalFreezeMirror(view, netbox, log, 1000);
    try {
      await mirror.start();
      expect(mirror.puts).toBe(1); // accepted: not refused 400 and only logged
      const shown = await eventually(
        async () =>
          (await held()).record?.reason.startsWith('fail-safe failed_roots: long')
            ? (await held()).record
            : undefined,
        'NetBox holding the long record, cut',
        60_000,
      );
      expect(shown?.frozen).toBe(true);
      expect(shown?.reason.length).toBe(globalFreezeLimits.reason);
      expect(shown?.reason.startsWith(reason.slice(0, 40))).toBe(true);
      expect(shown?.actor.length).toBe(globalFreezeLimits.actor);
    } finally {
      await mirror.stop();
      await view.stop();
    }
  }, 180_000);
});
