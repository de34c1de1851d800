/**
 * `unicop status` shows the global freeze (decision 0062): the compiled executable against the real
 * stack's Kafka reads `unicop.control` as the bridge and the workers do, and its answer (JSON and
 * text) is the state a freeze view replayed here reads — frozen or not, by whom, why. It does not
 * freeze or resume anything (the shared topic is left as it is).
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
