/**
 * Wires the bridge from its dependencies (tests build it the same way main.ts does, against the
 * real Kafka, Redis and NetBox).
 */
import type { Server } from 'node:http';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { UnicopConfig } from '../core/config.js';
import type { FreezeView } from '../core/control/freeze-view.js';
import type { EventLog } from '../core/event-log/port.js';
import { PluginClient } from '../core/plugin/client.js';
import { adminRoutes } from './admin/admin-api.js';
import { healthz, metricsHandler, readyz } from './admin/health.js';
import { AuditTrail } from './audit.js';
import { createHttpServer, type Route } from './http/server.js';
import { awxWebhookHandler } from './ingress/awx-webhook.js';
import { DeliveryMemory } from './ingress/delivery-memory.js';
import { netboxWebhookHandler } from './ingress/netbox-webhook.js';
import { type BridgeMetrics, createBridgeMetrics } from './metrics.js';

export interface BridgeDeps {
  config: UnicopConfig;
  eventLog: EventLog;
  redis: Redis;
  logger: Logger;
  freezeView: FreezeView;
  /** Measures the resolver group's lag on unicop.changes, for /metrics. */
  resolverLag?: () => Promise<number>;
}

export interface Bridge {
  server: Server;
  metrics: BridgeMetrics;
  /** What the bridge serves, for the OpenAPI conformance test. */
  routes: { method: string; path: string }[];
}

export function createBridge({
  config,
  eventLog,
  redis,
  logger,
  freezeView,
  resolverLag,
}: BridgeDeps): Bridge {
  const metrics = createBridgeMetrics();
  const audit = new AuditTrail(eventLog, logger, () => metrics.auditFailures.inc());
  const memory = new DeliveryMemory(redis, config.UNICOP_DEDUPE_WINDOW_SECONDS);
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
        secret: config.UNICOP_AWX_WEBHOOK_SECRET,
        maxBytes: config.UNICOP_WEBHOOK_MAX_BYTES,
      }),
    },
    { method: 'GET', path: '/healthz', handler: healthz },
    {
      method: 'GET',
      path: '/readyz',
      handler: readyz({ eventLog, redis, netboxUrl: config.UNICOP_NETBOX_URL }),
    },
    { method: 'GET', path: '/metrics', handler: metricsHandler(metrics, resolverLag) },
    ...adminRoutes({
      token: config.UNICOP_ADMIN_TOKEN,
      plugin: config.UNICOP_NETBOX_TOKEN
        ? new PluginClient({ baseUrl: config.UNICOP_NETBOX_URL, token: config.UNICOP_NETBOX_TOKEN })
        : undefined,
      eventLog,
      freezeView,
    }),
  ];
  const server = createHttpServer(routes, logger);
  return { server, metrics, routes: routes.map(({ method, path }) => ({ method, path })) };
}
