/**
 * The bridge process: parse configuration, listen at once, connect to Kafka behind it (webhooks
 * are answered 503 until it is connected; /readyz says when: decision 0036); stop cleanly on
 * SIGTERM/SIGINT.
 */
import { Kafka, logLevel } from 'kafkajs';
import { ConfigError } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { loadRuntimeConfig } from '../core/secrets/runtime-config.js';
import { startTracing } from '../core/tracing.js';
import { connectBridge } from './app.js';
import { bridgeListener } from './https.js';

async function main(): Promise<void> {
  // vault: secret references are read here and kept current (webhook secrets rotate in place).
  const { config, secrets } = await loadRuntimeConfig('bridge');
  const logger = createLogger('bridge', config.UNICOP_LOG_LEVEL);
  secrets?.watch(logger.child({ part: 'secrets' }));
  // One trace per change (core/tracing.ts): off unless UNICOP_OTLP_URL is set.
  const tracing = await startTracing('unicop-bridge', config.UNICOP_OTLP_URL);
  if (!config.UNICOP_WEBHOOK_SECRETS?.length) {
    throw new ConfigError([{ field: 'UNICOP_WEBHOOK_SECRETS', message: 'at least one secret is required' }]);
  }
  const kafka = new Kafka({
    clientId: 'unicop-bridge',
    brokers: config.UNICOP_KAFKA_BROKERS,
    logLevel: logLevel.WARN,
  });
  const { server, ready, close } = await connectBridge(config, logger, kafka, secrets);
  // HTTP, or HTTPS with a certificate from Vault's PKI (UNICOP_BRIDGE_TLS_PKI; bridge/https.ts).
  const {
    listener,
    scheme,
    stop: stopRenewing,
  } = await bridgeListener(config, server, secrets?.session, logger);
  listener.listen(config.UNICOP_BRIDGE_PORT, config.UNICOP_BRIDGE_HOST, () =>
    logger.info(
      { host: config.UNICOP_BRIDGE_HOST, port: config.UNICOP_BRIDGE_PORT, scheme },
      'bridge listening',
    ),
  );
  ready.catch(() => undefined); // stopped before Kafka was connected: nothing to report
  const stop = () => {
    logger.info('bridge stopping');
    stopRenewing();
    if (listener !== server) listener.close();
    server.close(() => {
      void close()
        .then(() => secrets?.close())
        .then(() => tracing.shutdown())
        .finally(() => process.exit(0));
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
