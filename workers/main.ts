/**
 * The workers process. Today it runs the resolver (unicop.changes → unicop.intents); the
 * dispatcher, reconciler and sweeper join it as they land. Stops cleanly on SIGTERM/SIGINT.
 */
import { Kafka, logLevel } from 'kafkajs';
import { ConfigError, loadConfig } from '../core/config.js';
import { KafkaEventStream } from '../core/event-log/consumer.js';
import { consumerGroups } from '../core/event-log/groups.js';
import { KafkaEventLog } from '../core/event-log/kafka.js';
import { topics } from '../core/events/catalogue.js';
import { createLogger } from '../core/logger.js';
import { PluginClient } from '../core/plugin/client.js';
import { startResolver } from './resolver/resolver.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('workers', config.UNICOP_LOG_LEVEL);
  if (!config.UNICOP_NETBOX_TOKEN) {
    throw new ConfigError([{ field: 'UNICOP_NETBOX_TOKEN', message: 'required by the workers' }]);
  }
  const kafka = new Kafka({
    clientId: 'unicop-workers',
    brokers: config.UNICOP_KAFKA_BROKERS,
    logLevel: logLevel.WARN,
  });
  const eventLog = new KafkaEventLog(kafka);
  const plugin = new PluginClient({ baseUrl: config.UNICOP_NETBOX_URL, token: config.UNICOP_NETBOX_TOKEN });
  const resolver = await startResolver({
    changes: new KafkaEventStream(
      kafka,
      {
        topic: topics.changes,
        groupId: consumerGroups.resolver,
        onFatal: (error) => {
          log.fatal({ err: error }, 'resolver stopped on a non-retriable error; exiting');
          process.exit(1);
        },
      },
      log.child({ part: 'resolver' }),
    ),
    eventLog,
    resolver: plugin,
    log: log.child({ part: 'resolver' }),
  });
  log.info('workers running: resolver');
  const stop = () => {
    log.info('workers stopping');
    void Promise.all([resolver.stop(), eventLog.close()]).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `workers failed to start: ${error instanceof ConfigError ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
