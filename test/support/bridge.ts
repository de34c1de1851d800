/**
 * Starts a real bridge in-process (the same wiring as bridge/main.ts) against the stack's Kafka and
 * Redis, on a free port, capturing every log line it writes so tests can inspect them.
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Kafka, logLevel } from 'kafkajs';
import { connectBridge } from '../../bridge/app.js';
import { parseConfig, readStackEnv } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { stack, uniqueName } from './stack.js';

export interface RunningBridge {
  url: string;
  routes: { method: string; path: string }[];
  logs: string[];
  close(): Promise<void>;
}

export interface BridgeTestOptions {
  /**
   * Awaited after each produce request Kafka acknowledged, before the bridge learns of it: holds
   * acknowledgements back, to show what the bridge does (not) answer meanwhile.
   */
  holdAcks?: () => Promise<void>;
}

export async function startBridge(
  env: Record<string, string> = {},
  options: BridgeTestOptions = {},
): Promise<RunningBridge> {
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
  const { holdAcks } = options;
  if (holdAcks) {
    const producer = kafka.producer.bind(kafka);
    kafka.producer = (producerConfig) => {
      const real = producer(producerConfig);
      const sendBatch = real.sendBatch.bind(real);
      real.sendBatch = async (batch) => {
        const acknowledged = await sendBatch(batch);
        await holdAcks();
        return acknowledged;
      };
      return real;
    };
  }
  const { server, routes, ready, close } = await connectBridge(config, logger, kafka);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await ready; // Kafka connected: the tests' webhooks are not refused as arriving too early
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    routes,
    logs,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await close();
    },
  };
}
