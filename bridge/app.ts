/**
 * Wires the bridge from its dependencies (tests build it the same way main.ts does, against the
 * real Kafka, Redis and NetBox).
 */
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { bearerCheckFrom } from '../core/auth/bearer.js';
import { AwxClient, awxClientOptions } from '../core/awx/client.js';
import type { UnicopConfig } from '../core/config.js';
import { GlobalFreezeMirror } from '../core/control/freeze-mirror.js';
import { FreezeView } from '../core/control/freeze-view.js';
import { consumerGroupLag, consumerRecovery, KafkaEventStream } from '../core/event-log/consumer.js';
import { consumerGroups } from '../core/event-log/groups.js';
import { KafkaEventLog } from '../core/event-log/kafka.js';
import type { EventLog } from '../core/event-log/port.js';
import { topics } from '../core/events/catalogue.js';
import { uuidv7 } from '../core/ids.js';
import { PluginClient, pluginClientOptions } from '../core/plugin/client.js';
import { logRedisErrors } from '../core/redis-errors.js';
import { RolloutStore } from '../core/rollout/store.js';
import { acceptedAwxWebhookSecrets, type CredentialRefresh } from '../core/secrets/runtime-config.js';
import { statusSources } from '../core/status/sources.js';
import { type StatusSources, whyItWaits } from '../core/status/why-it-waits.js';
import { caBundleOf } from '../core/tls/ca-bundle.js';
import { type ApprovalDeps, adminAndApprovalRoutes } from './admin/approvals.js';
import { healthz, metricsHandler, readyz } from './admin/health.js';
import { RedisIdempotencyStore } from './admin/idempotency.js';
import { type RolloutDeps, rolloutRoutes } from './admin/rollouts.js';
import { AuditTrail } from './audit.js';
import { createHttpServer, type Route } from './http/server.js';
import { awxWebhookHandler } from './ingress/awx-webhook.js';
import { DeliveryMemory } from './ingress/delivery-memory.js';
import { netboxWebhookHandler } from './ingress/netbox-webhook.js';
import { RefusalBudget } from './ingress/refusal-budget.js';
import { KafkaStartup } from './kafka-startup.js';
import { type BridgeMetrics, createBridgeMetrics } from './metrics.js';

/** Peers whose refusal budget the bridge remembers at once (a few hundred KiB at most). */
const maxRefusingPeers = 10_000;

export interface BridgeDeps {
  config: UnicopConfig;
  eventLog: EventLog;
  /** Where the audit trail appends (default: eventLog); connectBridge's holds them until Kafka is connected. */
  auditLog?: EventLog;
  redis: Redis;
  logger: Logger;
  freezeView: FreezeView;
  /** Measures the resolver group's lag on unicop.changes, for /metrics. */
  resolverLag?: () => Promise<number>;
  /** Where the admin API's GET /status reads each stage (core/status/sources.ts). */
  status?: StatusSources;
  /** The process's Vault secrets: a 401/403 from NetBox or AWX re-reads the token at once (0056). */
  secrets?: CredentialRefresh | null;
}

export interface Bridge {
  server: Server;
  metrics: BridgeMetrics;
  /** What the bridge serves, for the OpenAPI conformance test. */
  routes: { method: string; path: string }[];
  /** Writes the last refusal summary and waits for the audit events recorded without waiting (before the event log closes). */
  flushAudit(): Promise<void>;
}

/** The admin API's routes, the approver's and the rollouts' (decision 0061). */
function adminRoutesWithRollouts(deps: ApprovalDeps & RolloutDeps): Route[] {
  return [...adminAndApprovalRoutes(deps), ...rolloutRoutes(deps)];
}

export function createBridge({
  config,
  eventLog,
  auditLog,
  redis,
  logger,
  freezeView,
  resolverLag,
  status,
  secrets,
}: BridgeDeps): Bridge {
  const metrics = createBridgeMetrics();
  const audit = new AuditTrail(auditLog ?? eventLog, logger, () => metrics.auditFailures.inc(), {
    budget: new RefusalBudget({
      burst: config.UNICOP_REFUSAL_AUDIT_BURST,
      perMinute: config.UNICOP_REFUSAL_AUDIT_PER_MINUTE,
      maxSources: maxRefusingPeers,
    }),
    summaryEveryMs: config.UNICOP_REFUSAL_AUDIT_SUMMARY_SECONDS * 1000,
    onSuppressed: () => metrics.refusalAuditsSuppressed.inc(),
  });
  const memory = new DeliveryMemory(redis, config.UNICOP_DEDUPE_WINDOW_SECONDS);
  // /readyz reaches an https NetBox under a private CA with the same bundle the plugin client trusts.
  const netboxCa = caBundleOf('UNICOP_NETBOX_CA_FILE', config.UNICOP_NETBOX_CA_FILE);
  const routes: Route[] = [
    {
      method: 'POST',
      path: '/webhooks/netbox',
      handler: netboxWebhookHandler({
        eventLog,
        memory,
        audit,
        metrics,
        secrets: config.UNICOP_WEBHOOK_SECRETS ?? [],
        maxBytes: config.UNICOP_WEBHOOK_MAX_BYTES,
        ownUsername: config.UNICOP_NETBOX_USERNAME,
      }),
    },
    {
      method: 'POST',
      path: '/webhooks/awx',
      handler: awxWebhookHandler({
        eventLog,
        audit,
        metrics,
        secrets: acceptedAwxWebhookSecrets(config),
        maxBytes: config.UNICOP_WEBHOOK_MAX_BYTES,
      }),
    },
    { method: 'GET', path: '/healthz', handler: healthz },
    {
      method: 'GET',
      path: '/readyz',
      handler: readyz({
        eventLog,
        redis,
        netboxUrl: config.UNICOP_NETBOX_URL,
        ...(netboxCa === undefined ? {} : { netboxCa }),
      }),
    },
    { method: 'GET', path: '/metrics', handler: metricsHandler(metrics, resolverLag) },
    ...adminRoutesWithRollouts({
      auth: bearerCheckFrom(config),
      audit,
      log: logger.child({ part: 'admin-api' }),
      plugin: config.UNICOP_NETBOX_TOKEN ? new PluginClient(pluginClientOptions(config, secrets)) : undefined,
      // Gradual rollouts' resume and abort (decision 0061).
      rollouts: config.UNICOP_NETBOX_TOKEN
        ? new RolloutStore(pluginClientOptions(config, secrets))
        : undefined,
      // The approver's routes answer AWX's approvals with UNICOP's AWX token (decision 0057).
      awx: config.UNICOP_AWX_TOKEN ? new AwxClient(awxClientOptions(config, secrets)) : undefined,
      eventLog,
      freezeView,
      idempotency: new RedisIdempotencyStore(redis, config.UNICOP_ADMIN_IDEMPOTENCY_TTL_SECONDS),
      redis,
      bodyLimitBytes: config.UNICOP_ADMIN_BODY_LIMIT_BYTES,
      ...(status ? { status: (rootKey: string | null) => whyItWaits(status, { rootKey }) } : {}),
    }),
  ];
  const server = createHttpServer(routes, logger);
  return {
    server,
    metrics,
    routes: routes.map(({ method, path }) => ({ method, path })),
    flushAudit: () => audit.close(),
  };
}

/**
 * Wires a bridge from configuration without waiting for Kafka: the server can listen at once, and
 * `ready` resolves once Kafka is connected (the producer, and the freeze view replayed from
 * unicop.control); until then webhooks are answered 503 and /readyz says not_ready
 * (bridge/kafka-startup.ts, decision 0036). `close` releases the dependencies after the server
 * stopped. bridge/main.ts and the tests start bridges this one way.
 */
export async function connectBridge(
  config: UnicopConfig,
  logger: Logger,
  kafka: Kafka,
  secrets?: CredentialRefresh | null,
): Promise<Bridge & { ready: Promise<void>; close(): Promise<void> }> {
  const eventLog = new KafkaEventLog(kafka, {
    lingerMs: config.UNICOP_PUBLISH_LINGER_MS,
    ackTimeoutMs: config.UNICOP_PUBLISH_TIMEOUT_MS,
  });
  const redis = logRedisErrors(
    new Redis(config.UNICOP_REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false }),
    logger,
    { client: 'bridge', url: config.UNICOP_REDIS_URL },
  );
  const freezeView = new FreezeView(
    new KafkaEventStream(
      kafka,
      { topic: topics.control, groupId: `unicop-bridge-control-${uuidv7()}`, ...consumerRecovery(config) },
      logger,
    ),
  );
  const startup = new KafkaStartup(eventLog, freezeView, logger);
  const status = statusSources(config, kafka);
  const bridge = createBridge({
    config,
    eventLog: startup.ingressLog,
    auditLog: startup.auditLog,
    redis,
    logger,
    freezeView,
    resolverLag: () => consumerGroupLag(kafka, consumerGroups.resolver, topics.changes),
    status,
    secrets,
  });
  // NetBox shows the global freeze from a mirror of unicop.control's latest record (decision 0062).
  const mirror = status.netbox ? new GlobalFreezeMirror(freezeView, status.netbox, logger) : null;
  void startup.ready.then(
    () => mirror?.start(),
    () => undefined,
  );
  return {
    ...bridge,
    ready: startup.ready,
    close: async () => {
      await mirror?.stop();
      // The events recorded after an answer (change.published, refusals) are written before the
      // producer closes (bounded by the publish timeout). Not connected yet: stopping first fails
      // those still waiting for the connection (logged and counted, as any audit failure).
      if (!startup.isConnected()) startup.stop();
      await bridge.flushAudit();
      startup.stop();
      await Promise.all([eventLog.close(), freezeView.stop(), status.close()]);
      redis.disconnect();
    },
  };
}
