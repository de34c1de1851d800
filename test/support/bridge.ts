/**
 * Starts a real bridge in-process (the same wiring as bridge/main.ts) against the stack's Kafka and
 * Redis, on a free port, capturing every log line it writes so tests can inspect them.
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { createBridge } from '../../bridge/app.js';
import { parseConfig, readStackEnv } from '../../core/config.js';
import { FreezeView } from '../../core/control/freeze-view.js';
import { consumerGroupLag, KafkaEventStream } from '../../core/event-log/consumer.js';
import { consumerGroups } from '../../core/event-log/groups.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { stack, uniqueName } from './stack.js';

export interface RunningBridge {
  url: string;
  routes: { method: string; path: string }[];
  logs: string[];
  close(): Promise<void>;
}

export async function startBridge(env: Record<string, string> = {}): Promise<RunningBridge> {
  const netboxUrl = process.env.UNICOP_NETBOX_URL ?? readStackEnv().UNICOP_NETBOX_URL;
  const config = parseConfig({
    ...(netboxUrl ? { UNICOP_NETBOX_URL: netboxUrl } : {}),
    UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
    UNICOP_REDIS_URL: stack.redisUrl(),
    UNICOP_LOG_LEVEL: 'debug',
    UNICOP_PUBLISH_TIMEOUT_MS: '3000',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const logger = createLogger('bridge', config.UNICOP_LOG_LEVEL, sink);
  const kafka = new Kafka({
    clientId: uniqueName('bridge'),
    brokers: config.UNICOP_KAFKA_BROKERS,
    logLevel: logLevel.NOTHING,
    retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 },
  });
  const eventLog = new KafkaEventLog(kafka, {
    lingerMs: config.UNICOP_PUBLISH_LINGER_MS,
    ackTimeoutMs: config.UNICOP_PUBLISH_TIMEOUT_MS,
  });
  const redis = new Redis(config.UNICOP_REDIS_URL, { maxRetriesPerRequest: 1 });
  const freezeView = new FreezeView(
    new KafkaEventStream(kafka, { topic: topics.control, groupId: uniqueName('control') }, logger),
  );
  await freezeView.start();
  const { server, routes } = createBridge({
    config,
    eventLog,
    redis,
    logger,
    freezeView,
    resolverLag: () => consumerGroupLag(kafka, consumerGroups.resolver, topics.changes),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    routes,
    logs,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await eventLog.close();
      await freezeView.stop();
      redis.disconnect();
    },
  };
}
