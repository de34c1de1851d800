/**
 * Issue #14 item 4 on the real stack: NetBox retries a webhook the bridge did not take (the stack
 * sets RQ_RETRY_MAX / RQ_RETRY_INTERVAL: scripts/stack.d/netbox.sh, decision 0036). A bridge this
 * test started is stopped; an edit made in NetBox meanwhile is refused at the bridge's address (the
 * test sees NetBox's attempt arrive there and drops the connection, as a dead process would); a
 * bridge started again on the same address receives NetBox's retry, and the change is on
 * unicop.changes — with no sweeper anywhere in the test. Only this test's bridge is stopped.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { connectBridge } from '../../bridge/app.js';
import { parseConfig } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { hookNetboxTo } from '../support/pipeline.js';
import { stack, uniqueName } from '../support/stack.js';

const secret = randomBytes(24).toString('hex');

/** A bridge on `port` (the address NetBox's webhook points at), once Kafka is connected. */
async function startBridgeOn(port: number): Promise<{ close(): Promise<void> }> {
  const config = parseConfig({
    UNICOP_NETBOX_URL: stack.netboxUrl(),
    UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
    UNICOP_REDIS_URL: stack.redisUrl(),
    UNICOP_WEBHOOK_SECRETS: secret,
  });
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const kafka = new Kafka({
    clientId: uniqueName('bridge'),
    brokers: config.UNICOP_KAFKA_BROKERS,
    logLevel: logLevel.NOTHING,
  });
  const { server, ready, close } = await connectBridge(config, createLogger('bridge', 'info', sink), kafka);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  await ready;
  return {
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await close();
    },
  };
}

/**
 * Holds `port` while no bridge runs there: every connection is read, then dropped unanswered (as a
 * process dying would); resolves `attempted` once a request carrying `marker` came in.
 */
async function deadAddress(
  port: number,
  marker: string,
): Promise<{ attempted: Promise<void>; server: Server }> {
  let seen: () => void = () => undefined;
  const attempted = new Promise<void>((resolve) => {
    seen = resolve;
  });
  const server = createServer((socket) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes(marker)) {
        seen();
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    setTimeout(() => socket.destroy(), 2_000).unref(); // someone else's delivery: dropped too
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { attempted, server };
}

describe('NetBox webhook retries', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });

  it('an edit made while the bridge is stopped arrives once it is started again, without a sweep', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const tail = await TopicTail.start([topics.changes]);
    cleanup.push(() => tail.stop());
    let bridge = await startBridgeOn(port);
    cleanup.push(() => bridge.close());
    const unhook = await hookNetboxTo(`http://127.0.0.1:${port}`, secret, ['dcim.site']);
    const name = uniqueName('retry-site');
    const site = await netbox<{ id: number }>('POST', '/api/dcim/sites/', { name, slug: name });
    // Removed in this order: no delivery of the deletion is left to retry.
    cleanup.push(() => netbox('DELETE', `/api/dcim/sites/${site.id}/`));
    cleanup.push(unhook);
    const ofSite = (event: string, description?: string) => (m: TailedMessage) => {
      const data = m.value.data as { objectId?: number; event?: string; data?: { description?: string } };
      return (
        data.objectId === site.id &&
        data.event === event &&
        (description === undefined || data.data?.description === description)
      );
    };
    await tail.waitFor(ofSite('created')); // the hook works while the bridge runs

    await bridge.close();
    const description = `edited while the bridge was stopped ${uniqueName('d')}`;
    const dead = await deadAddress(port, description);
    await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description });
    await dead.attempted; // NetBox tried to deliver the edit; it was not taken
    await new Promise<void>((resolve) => dead.server.close(() => resolve()));
    expect(tail.messages.filter(ofSite('updated', description))).toEqual([]);

    bridge = await startBridgeOn(port);
    const arrived = await tail.waitFor(ofSite('updated', description));
    expect(arrived).toHaveLength(1);
  }, 300_000);
});
