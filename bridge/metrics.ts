/**
 * The bridge's Prometheus metrics, one registry per bridge instance (tests start several). The
 * ingest stage's RED metrics have the workers' names (`unicop_stage_items_total{stage,outcome}`,
 * `unicop_stage_duration_seconds{stage}`; stage `bridge_ingest` for NetBox's webhooks,
 * `bridge_awx` for AWX's notifications; outcome ok, rejected (4xx) or error (5xx)), so one
 * dashboard panel shows every stage.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export function createBridgeMetrics() {
  const registry = new Registry();
  const received = new Counter({
    name: 'unicop_webhooks_received_total',
    help: 'Webhook requests received, by source',
    labelNames: ['source'] as const,
    registers: [registry],
  });
  const rejected = new Counter({
    name: 'unicop_webhooks_rejected_total',
    help: 'Webhook requests refused, by source and reason',
    labelNames: ['source', 'reason'] as const,
    registers: [registry],
  });
  const duplicates = new Counter({
    name: 'unicop_webhooks_duplicates_total',
    help: 'NetBox deliveries recognised as duplicates',
    registers: [registry],
  });
  const echoes = new Counter({
    name: 'unicop_webhooks_echoes_total',
    help: "NetBox deliveries caused by UNICOP's own writes, not turned into work",
    registers: [registry],
  });
  const published = new Counter({
    name: 'unicop_events_published_total',
    help: 'Events acknowledged by Kafka, by event type',
    labelNames: ['type'] as const,
    registers: [registry],
  });
  const publishLatency = new Histogram({
    name: 'unicop_publish_latency_seconds',
    help: 'Time from a webhook arriving to Kafka acknowledging its change (acks=all)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const refusalAuditsSuppressed = new Counter({
    name: 'unicop_refusal_audits_suppressed_total',
    help: 'Refusals whose audit event was not written (the peer was over its budget); summarised per peer',
    registers: [registry],
  });
  const auditFailures = new Counter({
    name: 'unicop_audit_write_failures_total',
    help: 'Audit events that could not be written to Kafka',
    registers: [registry],
  });
  const stageItems = new Counter({
    name: 'unicop_stage_items_total',
    help: 'Webhooks the ingest stage answered, by stage (bridge_ingest, bridge_awx) and outcome (ok, rejected, error)',
    labelNames: ['stage', 'outcome'] as const,
    registers: [registry],
  });
  const stageDuration = new Histogram({
    name: 'unicop_stage_duration_seconds',
    help: 'Time from a webhook arriving to its answer, by stage (bridge_ingest, bridge_awx)',
    labelNames: ['stage'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const resolverLag = new Gauge({
    name: 'unicop_resolver_lag_messages',
    help: 'Messages on unicop.changes not yet committed by the resolver group',
    registers: [registry],
  });
  return {
    registry,
    received,
    rejected,
    duplicates,
    echoes,
    published,
    publishLatency,
    auditFailures,
    refusalAuditsSuppressed,
    resolverLag,
    stageItems,
    stageDuration,
  };
}

export type BridgeMetrics = ReturnType<typeof createBridgeMetrics>;
