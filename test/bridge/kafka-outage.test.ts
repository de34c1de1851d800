/**
 * Guarantee 1 and 7 at the bridge: with Kafka stopped (the real broker, stopped by the stack
 * script) a delivery is answered 503 with Retry-After and nothing is acknowledged; once Kafka is
 * back, the retried delivery is accepted and appears on unicop.changes exactly once.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { TopicTail } from '../support/kafka.js';
import { netbox47Body, postWebhook } from '../support/webhooks.js';

const kafkaScript = join(repoRoot, 'scripts', 'stack.d', 'kafka.sh');
const secret = 'outage-test-secret-0123456789abcdef';

describe('bridge while Kafka is down', () => {
  let bridge: RunningBridge | undefined;
  afterAll(async () => {
    execFileSync(kafkaScript, ['up'], { stdio: 'ignore' }); // leave the stack as we found it
    await bridge?.close();
  });

  it('answers 503 with Retry-After, then accepts the retry once Kafka is back', async () => {
    bridge = await startBridge({ UNICOP_WEBHOOK_SECRETS: secret, UNICOP_PUBLISH_TIMEOUT_MS: '2000' });
    const body = netbox47Body();

    execFileSync(kafkaScript, ['down'], { stdio: 'ignore' });
    const refused = await postWebhook(bridge.url, body, secret);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ status: 'rejected', reason: 'event_log_unavailable' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

    const ready = await fetch(`${bridge.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { checks: { kafka: boolean } }).checks.kafka).toBe(false);

    execFileSync(kafkaScript, ['up'], { stdio: 'ignore' });
    const tail = await TopicTail.start([topics.changes]);
    try {
      const retried = await postWebhook(bridge.url, body, secret);
      expect(retried.status).toBe(202);
      const mine = (m: { value: Record<string, unknown> }) =>
        (m.value.data as { objectId: number }).objectId === body.data.id;
      await tail.waitFor(mine);
      const again = await postWebhook(bridge.url, body, secret);
      expect(again.body.status).toBe('duplicate');
      expect(await tail.settle(mine)).toHaveLength(1);
    } finally {
      await tail.stop();
    }
  }, 120_000);
});
