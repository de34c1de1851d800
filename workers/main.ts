/**
 * The workers process: the resolver (unicop.changes → unicop.intents), the dispatcher
 * (unicop.intents → BullMQ reconcile queue), the reconciler (BullMQ worker: one run per root, AWX,
 * outcomes) and the sweeper. Each stage starts on its own (workers/startup.ts): the reconcile worker
 * and the sweeper never wait for the resolver's or dispatcher's consumer-group join, and /metrics
 * listens at once. Stops cleanly on SIGTERM/SIGINT; a killed process leaves leases that expire and
 * jobs that stall (within the lease TTL: workers/timing.ts), and the next worker adopts its runs.
 */
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { bearerCheckFrom } from '../core/auth/bearer.js';
import { AwxClient, awxClientOptions } from '../core/awx/index.js';
import { ConfigError } from '../core/config.js';
import { FreezeView } from '../core/control/freeze-view.js';
import { consumerGroupLag, consumerRecovery, KafkaEventStream } from '../core/event-log/consumer.js';
import { consumerGroups } from '../core/event-log/groups.js';
import { KafkaEventLog } from '../core/event-log/kafka.js';
import { topics } from '../core/events/catalogue.js';
import { uuidv7 } from '../core/ids.js';
import { createLogger } from '../core/logger.js';
import { netboxRest } from '../core/netbox/rest.js';
import { PluginClient, pluginClientOptions } from '../core/plugin/client.js';
import { reconcileQueueName } from '../core/queues.js';
import { logRedisErrors } from '../core/redis-errors.js';
import { RolloutStore } from '../core/rollout/store.js';
import { loadRuntimeConfig } from '../core/secrets/runtime-config.js';
import { startTracing } from '../core/tracing.js';
import { startDispatcher } from './dispatcher/dispatcher.js';
import { DriftScheduler } from './drift/scheduler.js';
import { Failsafe, failsafeSettings } from './failsafe/failsafe.js';
import { runEndsFrom } from './failsafe/run-ends.js';
import {
  countingLaunches,
  countingLeaseRenewals,
  createWorkerMetrics,
  measureBatches,
  measuredReconciler,
  measuredStream,
  resolverAttempts,
} from './metrics.js';
import { holderFor, queueTag, type ReconcileJobData, rootJobsOf } from './reconcile-queue.js';
import { AwxNotificationWakeups } from './reconciler/awx-notifications.js';
import { reconcilerOptions, reconcileWorkerPauses } from './reconciler/options.js';
import { createReconciler } from './reconciler/reconcile.js';
import { startReconcileWorker } from './reconciler/worker.js';
import { startResolver } from './resolver/resolver.js';
import { rolloutConsumerGroup, rolloutSettings, startRolloutWorker } from './rollout/rollout.js';
import { startWorkerStages } from './startup.js';
import { authorizeSweep } from './sweep-authorization.js';
import { Sweeper } from './sweeper/sweeper.js';

async function main(): Promise<void> {
  // vault: secret references are read here and again while running (decisions 0050, 0056).
  const { config, secrets } = await loadRuntimeConfig('workers');
  const log = createLogger('workers', config.UNICOP_LOG_LEVEL);
  secrets?.watch(log.child({ part: 'secrets' }));
  // One trace per change (core/tracing.ts): off unless UNICOP_OTLP_URL is set.
  const tracing = await startTracing('unicop-workers', config.UNICOP_OTLP_URL);
  if (!config.UNICOP_NETBOX_TOKEN) {
    throw new ConfigError([{ field: 'UNICOP_NETBOX_TOKEN', message: 'required by the workers' }]);
  }
  if (!config.UNICOP_AWX_TOKEN) {
    throw new ConfigError([{ field: 'UNICOP_AWX_TOKEN', message: 'required by the reconciler' }]);
  }
  const kafka = new Kafka({
    clientId: 'unicop-workers',
    brokers: config.UNICOP_KAFKA_BROKERS,
    logLevel: logLevel.WARN,
  });
  const eventLog = new KafkaEventLog(kafka);
  // Both clients read their token from `config` per request and, refused, from Vault at once (0056).
  const pluginOptions = pluginClientOptions(config, secrets);
  const plugin = new PluginClient(pluginOptions);
  const rolloutStore = new RolloutStore(pluginOptions);
  const exitOnFatal = (part: string) => (error: Error) => {
    log.fatal({ err: error, part }, 'consumer stopped on a non-retriable error; exiting');
    process.exit(1);
  };
  const freezeView = new FreezeView(
    new KafkaEventStream(
      kafka,
      { topic: topics.control, groupId: `unicop-workers-control-${uuidv7()}`, ...consumerRecovery(config) },
      log,
    ),
  );
  const redisUrl = config.UNICOP_REDIS_URL;
  const queue = logRedisErrors(
    new Queue<ReconcileJobData>(reconcileQueueName, { connection: { url: redisUrl } }),
    log,
    { client: 'reconcile-queue', url: redisUrl },
  );
  const metrics = createWorkerMetrics();
  // Read when scraped: queue depth, consumer lag, open runs, live rollouts (workers/metrics.ts).
  metrics.readFrom({
    reconcileQueue: queue,
    kafka,
    rollouts: rolloutStore,
    netbox: netboxRest(
      config.UNICOP_NETBOX_URL,
      () => config.UNICOP_NETBOX_TOKEN ?? '',
      config.UNICOP_NETBOX_TIMEOUT_MS,
      pluginOptions.ca,
    ),
  });
  metrics.sweepInterval.set(config.UNICOP_SWEEP_INTERVAL_SECONDS);
  // The holder name carries the queue's tag: the sweeper frees only its own queue's lost leases.
  const tag = queueTag(config.UNICOP_REDIS_URL, reconcileQueueName);
  const holder = holderFor(`${hostname()}:${process.pid}:${uuidv7().slice(-8)}`, tag);
  const wakeups = new AwxNotificationWakeups(
    new KafkaEventStream(
      kafka,
      { topic: topics.awxEvents, groupId: `unicop-reconciler-${uuidv7()}`, ...consumerRecovery(config) },
      log.child({ part: 'awx-notifications' }),
    ),
  );
  const reconciler = createReconciler({
    plugin: countingLeaseRenewals(plugin, metrics),
    awx: countingLaunches(new AwxClient(awxClientOptions(config, secrets)), metrics),
    eventLog,
    wakeups,
    log: log.child({ part: 'reconciler' }),
    options: reconcilerOptions(config, holder),
    metrics,
    freezeView,
  });
  const startWorker = () =>
    startReconcileWorker(
      measuredReconciler(reconciler, metrics),
      {
        redisUrl: config.UNICOP_REDIS_URL,
        concurrency: config.UNICOP_RECONCILE_CONCURRENCY,
        metrics,
        ...reconcileWorkerPauses(config),
        eventLog,
        actor: holder,
        leaseTtlSeconds: config.UNICOP_LEASE_TTL_SECONDS,
        wakeups,
      },
      log.child({ part: 'reconciler' }),
    );
  const redis = logRedisErrors(new Redis(redisUrl, { maxRetriesPerRequest: null }), log, {
    client: 'sweeper',
    url: redisUrl,
  });
  // The root → queued-job lookup the sweeper and the drift scheduler both read.
  const rootJobs = rootJobsOf(queue, tag);
  const sweeper = new Sweeper({
    plugin,
    eventLog,
    freezeView,
    redis,
    intervalMs: config.UNICOP_SWEEP_INTERVAL_SECONDS * 1000,
    sweepOnStart: config.UNICOP_SWEEP_ON_START,
    checkMs: config.UNICOP_SWEEP_CHECK_MS,
    metrics,
    log: log.child({ part: 'sweeper' }),
    // A live lease whose root has no job in this queue (Redis lost it) is freed, not waited out.
    jobs: rootJobs,
  });
  // Check runs of in-sync roots on their kind's drift interval (decision 0054), beside the sweeper.
  const drift = new DriftScheduler({
    plugin,
    eventLog,
    freezeView,
    jobs: rootJobs,
    checkMs: config.UNICOP_DRIFT_CHECK_SECONDS * 1000,
    maxInFlight:
      config.UNICOP_DRIFT_MAX_IN_FLIGHT ?? Math.max(1, Math.floor(config.UNICOP_RECONCILE_CONCURRENCY / 4)),
    log: log.child({ part: 'drift' }),
  });
  // Read-only on uncertainty: freezes automation globally when a trigger trips (decision 0055).
  const failsafe = new Failsafe({
    freezeView,
    eventLog,
    readLag: () => consumerGroupLag(kafka, consumerGroups.resolver, topics.changes),
    lagOf: { group: consumerGroups.resolver, topic: topics.changes },
    resolverAttempts: () => resolverAttempts(metrics),
    runEnds: runEndsFrom(
      kafka,
      `unicop-failsafe-${uuidv7()}`,
      () => new Date(), // failures from this process's start on (decision 0055: why not the whole window)
      log.child({ part: 'failsafe' }),
      consumerRecovery(config),
    ),
    settings: failsafeSettings(config),
    metrics,
    log: log.child({ part: 'failsafe' }),
  });
  metrics.readFrom({ freeze: freezeView });
  const sweepCheck = bearerCheckFrom(config);
  const http = createServer((req, res) => {
    if (req.url === '/metrics') {
      void metrics.registry.metrics().then((body) => {
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(body);
      });
    } else if (req.url === '/sweep' && req.method === 'POST') {
      // On demand, for someone on this machine (or in this container) only: the listener may be on
      // every address for Prometheus (UNICOP_WORKERS_METRICS_HOST). And an operator's token
      // (workers/sweep-authorization.ts, decision 0051).
      if (!isLoopback(req.socket.remoteAddress)) {
        res
          .writeHead(403, { 'Content-Type': 'application/json' })
          .end('{"error":"POST /sweep: loopback only"}');
        return;
      }
      // Not before unicop.control is replayed: a sweep during a global freeze queues nothing.
      void authorizeSweep(req, { check: sweepCheck, eventLog, log: log.child({ part: 'sweep-request' }) })
        .then((refusal) => {
          if (!refusal) return freezeView.replayed().then(() => sweeper.sweep());
          res
            .writeHead(refusal.status, { 'Content-Type': 'application/json', ...refusal.headers })
            .end(JSON.stringify(refusal.body));
          return null;
        })
        .then(
          (report) => {
            if (report)
              res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(report));
          },
          (error: unknown) => {
            log.warn({ err: error }, 'on-demand sweep failed');
            res
              .writeHead(503, { 'Content-Type': 'application/json' })
              .end('{"error":"sweep failed: NetBox or Kafka unavailable"}');
          },
        );
    } else if (req.url === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
    } else {
      res.writeHead(404).end();
    }
  });
  http.on('error', (error) =>
    log.warn({ err: error }, 'workers metrics listener unavailable; running without it'),
  );
  if (config.UNICOP_WORKERS_METRICS_PORT) {
    http.listen(config.UNICOP_WORKERS_METRICS_PORT, config.UNICOP_WORKERS_METRICS_HOST, () =>
      log.info(
        { host: config.UNICOP_WORKERS_METRICS_HOST, port: config.UNICOP_WORKERS_METRICS_PORT },
        'workers metrics listening',
      ),
    );
  }
  const stages = startWorkerStages(
    {
      freezeView, // replayed first: a restart during a global freeze queues and launches nothing
      awxNotifications: wakeups,
      startResolver: () =>
        startResolver({
          changes: measuredStream(
            new KafkaEventStream(
              kafka,
              {
                topic: topics.changes,
                groupId: consumerGroups.resolver,
                partitionsConcurrently: config.UNICOP_RESOLVER_CONCURRENCY,
                onFatal: exitOnFatal('resolver'),
                ...consumerRecovery(config),
              },
              log.child({ part: 'resolver' }),
            ),
            metrics,
            'resolver',
          ),
          eventLog,
          resolver: plugin,
          log: log.child({ part: 'resolver' }),
          rollouts: { store: rolloutStore, settings: rolloutSettings(config) },
        }),
      startDispatcher: () =>
        startDispatcher(
          { queue, freezeView, eventLog },
          {
            kafka,
            log: log.child({ part: 'dispatcher' }),
            onFatal: exitOnFatal('dispatcher'),
            retry: consumerRecovery(config),
            wrapBatches: (handler) => measureBatches(metrics, 'dispatcher', handler),
          },
        ),
      startReconcileWorker: () =>
        logRedisErrors(startWorker(), log, { client: 'reconcile-worker', url: redisUrl }),
      sweeper,
    },
    log,
    (stage, error) => {
      log.fatal({ err: error, stage }, 'a stage of the workers failed to start; exiting');
      process.exit(1);
    },
  );
  // On its own, once unicop.control is replayed: no check is asked for past a global freeze.
  // (A shutdown before the replay rejects replayed(): nothing to start then.)
  if (config.UNICOP_DRIFT_CHECK_SECONDS > 0)
    void freezeView
      .replayed()
      .then(() => drift.start())
      .catch(() => undefined);
  // Gradual rollout (decision 0061): run ends close waves; the next wave's intents are appended here.
  const rollouts = startRolloutWorker({
    outcomes: new KafkaEventStream(
      kafka,
      {
        topic: topics.outcomes,
        groupId: rolloutConsumerGroup,
        onFatal: exitOnFatal('rollout'),
        ...consumerRecovery(config),
      },
      log.child({ part: 'rollout' }),
    ),
    store: rolloutStore,
    eventLog,
    log: log.child({ part: 'rollout' }),
  });
  rollouts.catch((error: unknown) => {
    log.fatal({ err: error }, 'the rollout worker failed to start; exiting');
    process.exit(1);
  });
  failsafe.start().catch((error: unknown) => {
    log.fatal({ err: error }, 'the fail-safe failed to start; exiting');
    process.exit(1);
  });
  log.info({ holder }, 'workers starting: resolver, dispatcher, reconciler, sweeper (each on its own)');
  Promise.all(Object.values(stages.started)).then(
    () => log.info({ holder }, 'workers running: resolver, dispatcher, reconciler, sweeper'),
    () => undefined, // a stage that failed ended the process (or it is stopping)
  );
  const stop = () => {
    log.info('workers stopping');
    http.close();
    drift.stop();
    void Promise.all([stages.stop(), failsafe.stop(), rollouts.then((r) => r.stop()).catch(() => undefined)])
      .then(() => eventLog.close())
      .then(() => Promise.all([queue.close(), redis.quit(), secrets?.close()]))
      .then(() => tracing.shutdown())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** A peer on this machine: 127.0.0.0/8 or ::1, also as IPv4-mapped IPv6 (a dual-stack listener). */
function isLoopback(address: string | undefined): boolean {
  const v4 = address?.startsWith('::ffff:') ? address.slice(7) : address;
  return v4 === '::1' || (v4?.startsWith('127.') ?? false);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `workers failed to start: ${error instanceof ConfigError ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
