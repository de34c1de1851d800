/**
 * Guarantee 7 at the front door: with NetBox stopped (the real one, stopped by the stack script)
 * the bridge still accepts changes — it never calls NetBox — and the resolver holds them: it has
 * read the change and failed to resolve it, yet its group's committed offset on the change's own
 * partition has not passed the change's own offset (a lag on the topic could be other traffic).
 * Once NetBox is back, the intent follows and only then is the change committed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { eventually } from '../awx/support.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { committedOffset, type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { startTestResolver } from '../support/pipeline.js';
import { netbox47Body, postWebhook } from '../support/webhooks.js';

const netboxScript = join(repoRoot, 'scripts', 'stack.d', 'netbox.sh');
const secret = 'netbox-outage-secret-0123456789';
/**
 * Stops or starts the real NetBox without blocking this process: the resolver under test runs in
 * it, and a synchronous call (NetBox takes a minute or more to start here) stopped its Kafka
 * heartbeats, so the group dropped it and its commit after the outage was lost.
 */
const netboxStack = (action: 'up' | 'down') => promisify(execFile)(netboxScript, [action]);
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
    tail = await TopicTail.start([topics.changes, topics.intents]);
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

  it('accepts the change while NetBox is down and commits nothing of it; once NetBox is back the intent follows, then the commit', async () => {
    await netboxStack('down');
    const body = netbox47Body({
      object_type: 'ipam.ipaddress',
      data: { id: ip.id, address: ip.address, last_updated: new Date().toISOString() },
      snapshots: { prechange: null, postchange: { id: ip.id, address: ip.address } },
    });
    const res = await postWebhook(bridge.url, body, secret);
    expect(res.status).toBe(202);

    const change = (m: TailedMessage) =>
      m.topic === topics.changes && (m.value.data as { changeId: string }).changeId === res.body.changeId;
    const mine = (m: TailedMessage) =>
      m.topic === topics.intents &&
      (m.value.data as { cause: { changeId: string } }).cause.changeId === res.body.changeId;
    const [accepted] = await tail.waitFor(change, 1, 60_000);
    if (!accepted) throw new Error('the change is not on unicop.changes');
    const { partition, offset } = accepted;
    // The resolver has read this partition and failed on it (NetBox cannot be asked) ...
    const failedHere = (line: string) =>
      line.includes('batch not handled; retrying after backoff') &&
      line.includes(`"partition":${partition},`);
    await eventually(
      async () => (resolver.logs.some(failedHere) ? true : undefined),
      'the resolver retrying the batch of the change',
      60_000,
    );
    expect(await tail.settle(mine, 3000)).toHaveLength(0); // held: no intent
    // ... and has committed nothing up to and including the change itself.
    expect(await committedOffset(resolver.groupId, topics.changes, partition)).toBeLessThanOrEqual(
      BigInt(offset),
    );

    await netboxStack('up');
    const [intent] = await tail.waitFor(mine, 1, 120_000);
    expect(intent?.value.data).toMatchObject({ rootKey: `prefix/${prefix.id}` });
    const after = await eventually(
      async () => {
        const at = await committedOffset(resolver.groupId, topics.changes, partition);
        return at > BigInt(offset) ? at : undefined;
      },
      'the change committed once its intent is on Kafka',
      60_000,
    );
    expect(after).toBeGreaterThan(BigInt(offset));
  }, 300_000);
});
