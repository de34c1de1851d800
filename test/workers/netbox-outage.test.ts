/**
 * Guarantee 7 at the front door: with NetBox stopped (the real one, stopped by the stack script)
 * the bridge still accepts changes — it never calls NetBox — and the resolver holds them, committing
 * nothing; once NetBox is back, the intents follow.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { consumerGroupLag } from '../../core/event-log/consumer.js';
import { topics } from '../../core/events/catalogue.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail, testKafka } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { startTestResolver } from '../support/pipeline.js';
import { netbox47Body, postWebhook } from '../support/webhooks.js';

const netboxScript = join(repoRoot, 'scripts', 'stack.d', 'netbox.sh');
const secret = 'netbox-outage-secret-0123456789';
const octet = () => 16 + Math.floor(Math.random() * 200);

describe('NetBox down', () => {
  let bridge: RunningBridge;
  let resolver: Awaited<ReturnType<typeof startTestResolver>>;
  let tail: TopicTail;
  let prefix: { id: number };
  let ip: { id: number; address: string };

  beforeAll(async () => {
    const net = `10.${octet()}.${octet()}`;
    prefix = await netbox('POST', '/api/ipam/prefixes/', { prefix: `${net}.0/24` });
    ip = await netbox('POST', '/api/ipam/ip-addresses/', { address: `${net}.9/24` });
    tail = await TopicTail.start([topics.intents]);
    bridge = await startBridge({ UNICOP_WEBHOOK_SECRETS: secret });
    resolver = await startTestResolver();
  });
  afterAll(async () => {
    execFileSync(netboxScript, ['up'], { stdio: 'ignore' }); // leave the stack as we found it
    await netbox('DELETE', `/api/ipam/ip-addresses/${ip.id}/`).catch(() => undefined);
    await netbox('DELETE', `/api/ipam/prefixes/${prefix.id}/`).catch(() => undefined);
    await resolver?.stop();
    await bridge?.close();
    await tail?.stop();
  });

  it('accepts the change while NetBox is down; the intent follows once it is back', async () => {
    execFileSync(netboxScript, ['down'], { stdio: 'ignore' });
    const body = netbox47Body({
      object_type: 'ipam.ipaddress',
      data: { id: ip.id, address: ip.address, last_updated: new Date().toISOString() },
      snapshots: { prechange: null, postchange: { id: ip.id, address: ip.address } },
    });
    const res = await postWebhook(bridge.url, body, secret);
    expect(res.status).toBe(202);

    const mine = (m: TailedMessage) =>
      (m.value.data as { cause: { objectId: number; changeId: string } }).cause.changeId ===
      res.body.changeId;
    expect(await tail.settle(mine, 3000)).toHaveLength(0); // held: NetBox cannot be asked
    expect(await consumerGroupLag(testKafka(), resolver.groupId, topics.changes)).toBeGreaterThan(0); // nothing committed

    execFileSync(netboxScript, ['up'], { stdio: 'ignore' });
    const [intent] = await tail.waitFor(mine, 1, 60_000);
    expect(intent?.value.data).toMatchObject({ rootKey: `prefix/${prefix.id}` });
  }, 180_000);
});
