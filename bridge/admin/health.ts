/**
 * GET /healthz (the process answers), GET /readyz (Kafka, Redis and NetBox reachable — each checked
 * with a short timeout and reported by name), GET /metrics (Prometheus text). The bridge listens
 * before it has connected to Kafka (decision 0036): `kafka` stays false until the start-up
 * connection is made (the event log it is given says so), so /readyz answers not_ready until then.
 */
import type { Redis } from 'ioredis';
import type { EventLog } from '../../core/event-log/port.js';
import { NetboxHttp } from '../../core/netbox/http.js';
import type { Handler } from '../http/server.js';
import type { BridgeMetrics } from '../metrics.js';

export interface ReadinessDeps {
  eventLog: EventLog;
  redis: Redis;
  netboxUrl: string;
  /** The PEM bundle UNICOP_NETBOX_CA_FILE names (an https NetBox under a private CA); none: the system's. */
  netboxCa?: string;
  timeoutMs?: number;
}

async function within(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([check().catch(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const healthz: Handler = async () => ({ status: 200, body: { status: 'ok' } });

export function readyz(deps: ReadinessDeps): Handler {
  const ms = deps.timeoutMs ?? 2000;
  // NetBox through the project's one NetBox transport (axios, keep-alive); any answer below 500 is up.
  const netboxApi = new NetboxHttp(
    {
      baseUrl: deps.netboxUrl,
      token: '',
      timeoutMs: ms,
      ...(deps.netboxCa === undefined ? {} : { ca: deps.netboxCa }),
    },
    () => new Error('unused'),
  );
  return async () => {
    const [kafka, redis, netbox] = await Promise.all([
      within(ms, () => deps.eventLog.healthy()),
      within(ms, async () => (await deps.redis.ping()) === 'PONG'),
      within(ms, async () => (await netboxApi.send('get', '/api/status/')).status < 500),
    ]);
    const checks = { kafka, redis, netbox };
    const ready = kafka && redis && netbox;
    return { status: ready ? 200 : 503, body: { status: ready ? 'ready' : 'not_ready', checks } };
  };
}

/** Prometheus text; the resolver's lag is measured at scrape time (bounded by a 1 s timeout). */
export function metricsHandler(metrics: BridgeMetrics, resolverLag?: () => Promise<number>): Handler {
  return async () => {
    if (resolverLag) {
      const lag = await Promise.race([
        resolverLag().catch(() => null),
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 1000).unref()),
      ]);
      if (lag !== null) metrics.resolverLag.set(lag);
    }
    return { status: 200, text: true, body: await metrics.registry.metrics() };
  };
}
