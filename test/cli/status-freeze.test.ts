/**
 * `unicop status` shows the global freeze (decision 0062): the compiled executable against the real
 * stack's Kafka reads `unicop.control` as the bridge and the workers do, and its answer (JSON and
 * text) is the state a freeze view replayed here reads — frozen or not, by whom, why. It does not
 * freeze or resume anything (the shared topic is left as it is), and leaves no consumer group behind.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusControlGroupPrefix } from '../../core/cli/commands/status.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import { startControlView } from '../support/freeze.js';
import { testKafka } from '../support/kafka.js';
import { stack } from '../support/stack.js';
import { assertBuilt, runUnicop } from './run-unicop.js';

describe('unicop status: the global freeze', () => {
  let view: FreezeView;
  beforeAll(async () => {
    assertBuilt();
    view = await startControlView(testKafka(), pino({ level: 'silent' }));
  }, 120_000);
  afterAll(async () => {
    await view?.stop();
  });

  const env = () => ({
    UNICOP_VAR: '/nonexistent', // nothing from var/stack.env: only Kafka is given
    UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
  });

  it('says what unicop.control says: the latest global record, in JSON and in its first text line', async () => {
    const json = await runUnicop(['status', '--json'], env());
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as { globalFreeze: unknown; stages: unknown[] };
    expect(body.stages.length).toBeGreaterThan(0);
    // Compared with this test's own replay (nothing else freezes while both read: checked after).
    const seen = view.globalState();
    expect(body.globalFreeze).toEqual(seen);

    const text = await runUnicop(['status'], env());
    expect(text.code).toBe(0);
    const [first] = text.stdout.split('\n');
    if (seen?.frozen) {
      expect(first).toBe(
        `automation: FROZEN globally by ${seen.actor} since ${seen.at}: ${seen.reason} (a person lifts it: unicop resume)`,
      );
    } else {
      expect(first).toMatch(/^automation: not frozen globally/);
    }
    expect(view.globalState()).toEqual(seen);
  }, 180_000);

  it('leaves no consumer group of its own on Kafka (a monitor may run it every few seconds)', async () => {
    const admin = testKafka().admin();
    await admin.connect();
    try {
      const statusGroups = async () =>
        (await admin.listGroups()).groups
          .map((g) => g.groupId)
          .filter((id) => id.startsWith(statusControlGroupPrefix));
      const before = new Set(await statusGroups());
      const ran = await runUnicop(['status', '--json'], env());
      expect(ran.code).toBe(0);
      // Read through its own group: a freeze state (null or a record), not 'unknown'.
      const { globalFreeze } = JSON.parse(ran.stdout) as { globalFreeze: object | null };
      expect(globalFreeze === null || !('unknown' in globalFreeze)).toBe(true);
      // Other status runs may be under way on the shared stack: poll until none added here is left.
      let left: string[] = [];
      for (const deadline = Date.now() + 60_000; ; await sleep(1_000)) {
        left = (await statusGroups()).filter((id) => !before.has(id));
        if (left.length === 0 || Date.now() > deadline) break;
      }
      expect(left).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  }, 180_000);
});
