/**
 * Issue #14 item 5 on the real stack: the bridge listens before it has connected to Kafka
 * (bridge/kafka-startup.ts). Kafka is reachable only through a port this test opens when it chooses
 * (a TCP relay to the stack's broker), so "not connected yet" lasts as long as the test needs:
 * /readyz answers not_ready with kafka false, a webhook is answered 503 with its reason and
 * Retry-After — never a 202 that is not durable — and the refusal is audited on unicop.audit once
 * Kafka is there; then /readyz turns ready and the same delivery is accepted and on unicop.changes.
 */
import type { AddressInfo } from 'node:net';
import { createConnection, createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { connectBridge } from '../../bridge/app.js';
import { parseConfig, readStackEnv } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { freePort } from '../support/ports.js';
import { stack, uniqueName } from '../support/stack.js';
import { netbox47Body, postWebhook } from '../support/webhooks.js';

const secret = 'startup-test-secret-0123456789abcdef';

/**
 * Relays `port` to the stack's broker (the bootstrap connection; kafkajs then uses the advertised
 * one). `close` drops the relayed connections too (a server's close waits for them otherwise).
 */
async function relayKafka(port: number): Promise<{ close(): Promise<void> }> {
  const [host, brokerPort] = (stack.kafkaBrokers()[0] ?? '').split(':');
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const broker = createConnection(Number(brokerPort), host);
    for (const socket of [client, broker]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(broker).pipe(client);
    client.on('close', () => broker.destroy());
    broker.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
  return {
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}

async function readyz(
  url: string,
): Promise<{ status: number; body: { status: string; checks: { kafka: boolean } } }> {
  const answer = await fetch(`${url}/readyz`);
  return {
    status: answer.status,
    body: (await answer.json()) as { status: string; checks: { kafka: boolean } },
  };
}

describe('bridge start-up', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });

  it('listens before Kafka is connected: not_ready and 503 (audited) until then, ready and 202 after', async () => {
    const kafkaPort = await freePort();
    const netboxUrl = process.env.UNICOP_NETBOX_URL ?? readStackEnv().UNICOP_NETBOX_URL;
    const config = parseConfig({
      ...(netboxUrl ? { UNICOP_NETBOX_URL: netboxUrl } : {}),
      UNICOP_KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`,
      UNICOP_REDIS_URL: stack.redisUrl(),
      UNICOP_WEBHOOK_SECRETS: secret,
      UNICOP_PUBLISH_TIMEOUT_MS: '2000',
    });
    const logs: string[] = [];
    const logger = createLogger(
      'bridge',
      'info',
      new Writable({
        write(chunk, _enc, done) {
          logs.push(String(chunk));
          done();
        },
      }),
    );
    const kafka = new Kafka({
      clientId: uniqueName('bridge-startup'),
      brokers: config.UNICOP_KAFKA_BROKERS,
      logLevel: logLevel.NOTHING,
      retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 },
    });
    const { server, ready, close } = await connectBridge(config, logger, kafka);
    let connected = false;
    void ready.then(() => {
      connected = true;
    });
    cleanup.push(close);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(connected).toBe(false); // listening, Kafka unreachable

    const early = await readyz(url);
    expect(early).toMatchObject({ status: 503, body: { status: 'not_ready', checks: { kafka: false } } });

    const tail = await TopicTail.start([topics.audit, topics.changes]); // the stack's Kafka, directly
    cleanup.push(() => tail.stop());
    const body = netbox47Body();
    const refused = await postWebhook(url, body, secret);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ status: 'rejected', reason: 'event_log_unavailable' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const refusedId = refused.headers.get('x-request-id');
    expect(connected).toBe(false);
    // Kafka stays away for two more connection attempts: longer than the publish timeout (2 s), which
    // an audit append that did not wait for the connection would have run out by then.
    const attempts = () => logs.filter((l) => l.includes('Kafka not reachable yet')).length;
    const seen = attempts();
    for (let i = 0; i < 600 && attempts() < seen + 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(attempts()).toBeGreaterThanOrEqual(seen + 2);

    const relay = await relayKafka(kafkaPort);
    cleanup.push(() => relay.close());
    await ready;
    let now = await readyz(url);
    for (let i = 0; i < 100 && now.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200)); // Redis and NetBox are checked too
      now = await readyz(url);
    }
    expect(now).toMatchObject({ status: 200, body: { status: 'ready', checks: { kafka: true } } });

    // The refusal made while Kafka was unreachable is on the audit trail now.
    const data = (m: TailedMessage) => (m.value.data ?? {}) as Record<string, unknown>;
    const [audit] = await tail.waitFor(
      (m) =>
        m.topic === topics.audit && data(m).action === 'webhook.rejected' && data(m).subjectId === refusedId,
    );
    expect(data(audit as TailedMessage)).toMatchObject({
      outcome: 'failed',
      reason: 'event_log_unavailable',
    });
    // Nothing of that delivery was made durable while it was refused.
    const mine = (m: TailedMessage) =>
      m.topic === topics.changes && (data(m) as { objectId?: number }).objectId === body.data.id;
    expect(tail.messages.filter(mine)).toEqual([]);

    const accepted = await postWebhook(url, body, secret); // NetBox's retry of the same delivery
    expect(accepted.status).toBe(202);
    await tail.waitFor(mine);
    expect(logs.join('')).toContain('Kafka connected: the bridge is ready');
    expect(logs.join('')).not.toContain('audit event could not be written');
  }, 180_000);
});
