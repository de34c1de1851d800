/** The bridge process: parse configuration, connect, listen; stop cleanly on SIGTERM/SIGINT. */
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { ConfigError, loadConfig } from '../core/config.js';
import { FreezeView } from '../core/control/freeze-view.js';
import { consumerGroupLag, KafkaEventStream } from '../core/event-log/consumer.js';
import { consumerGroups } from '../core/event-log/groups.js';
import { KafkaEventLog } from '../core/event-log/kafka.js';
import { topics } from '../core/events/catalogue.js';
import { uuidv7 } from '../core/ids.js';
import { createLogger } from '../core/logger.js';
import { createBridge } from './app.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('bridge', config.UNICOP_LOG_LEVEL);
  if (!config.UNICOP_WEBHOOK_SECRETS?.length) {
    throw new ConfigError([{ field: 'UNICOP_WEBHOOK_SECRETS', message: 'at least one secret is required' }]);
  }
  const kafka = new Kafka({
    clientId: 'unicop-bridge',
    brokers: config.UNICOP_KAFKA_BROKERS,
    logLevel: logLevel.WARN,
  });
  const eventLog = new KafkaEventLog(kafka, {
    lingerMs: config.UNICOP_PUBLISH_LINGER_MS,
    ackTimeoutMs: config.UNICOP_PUBLISH_TIMEOUT_MS,
  });
  const redis = new Redis(config.UNICOP_REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  const freezeView = new FreezeView(
    new KafkaEventStream(
      kafka,
      { topic: topics.control, groupId: `unicop-bridge-control-${uuidv7()}` },
      logger,
    ),
  );
  await freezeView.start();
  const { server } = createBridge({
    config,
    eventLog,
    redis,
    logger,
    freezeView,
    resolverLag: () => consumerGroupLag(kafka, consumerGroups.resolver, topics.changes),
  });
  server.listen(config.UNICOP_BRIDGE_PORT, config.UNICOP_BRIDGE_HOST, () =>
    logger.info({ host: config.UNICOP_BRIDGE_HOST, port: config.UNICOP_BRIDGE_PORT }, 'bridge listening'),
  );
  const stop = () => {
    logger.info('bridge stopping');
    server.close(() => {
      void Promise.all([eventLog.close(), redis.quit(), freezeView.stop()]).finally(() => process.exit(0));
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError ? error.message : String(error);
  process.stderr.write(`bridge failed to start: ${message}\n`);
  process.exit(1);
});
