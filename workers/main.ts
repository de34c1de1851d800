/**
 * The workers process. Today it runs the resolver (unicop.changes → unicop.intents) and the
 * dispatcher (unicop.intents → BullMQ reconcile queue); the reconciler and sweeper join it as
 * they land. Stops cleanly on SIGTERM/SIGINT.
 */
import { Queue } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import { ConfigError, loadConfig } from '../core/config.js';
import { FreezeView } from '../core/control/freeze-view.js';
import { KafkaEventStream } from '../core/event-log/consumer.js';
import { consumerGroups } from '../core/event-log/groups.js';
import { KafkaEventLog } from '../core/event-log/kafka.js';
import { topics } from '../core/events/catalogue.js';
import { uuidv7 } from '../core/ids.js';
import { createLogger } from '../core/logger.js';
import { PluginClient } from '../core/plugin/client.js';
import { dispatchIntents, type ReconcileJobData, reconcileQueueName } from './dispatcher/dispatcher.js';
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
  const exitOnFatal = (part: string) => (error: Error) => {
    log.fatal({ err: error, part }, 'consumer stopped on a non-retriable error; exiting');
    process.exit(1);
  };
  const resolver = await startResolver({
    changes: new KafkaEventStream(
      kafka,
      {
        topic: topics.changes,
        groupId: consumerGroups.resolver,
        onFatal: exitOnFatal('resolver'),
      },
      log.child({ part: 'resolver' }),
    ),
    eventLog,
    resolver: plugin,
    log: log.child({ part: 'resolver' }),
  });
  const freezeView = new FreezeView(
    new KafkaEventStream(
      kafka,
      { topic: topics.control, groupId: `unicop-workers-control-${uuidv7()}` },
      log,
    ),
  );
  await freezeView.start();
  const queue = new Queue<ReconcileJobData>(reconcileQueueName, {
    connection: { url: config.UNICOP_REDIS_URL },
  });
  const intents = new KafkaEventStream(
    kafka,
    { topic: topics.intents, groupId: consumerGroups.dispatcher, onFatal: exitOnFatal('dispatcher') },
    log.child({ part: 'dispatcher' }),
  );
  await intents.start((records) => dispatchIntents(records, { queue, freezeView, eventLog }));
  log.info('workers running: resolver, dispatcher');
  const stop = () => {
    log.info('workers stopping');
    void Promise.all([resolver.stop(), intents.stop(), freezeView.stop(), eventLog.close()])
      .then(() => queue.close())
      .finally(() => process.exit(0));
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
