/**
 * `unicop <service> --wait SECONDS`: before the service starts, wait until what it needs answers —
 * Kafka with every topic of the catalogue (an init job creates them; auto-creation is off), Redis
 * (PING), and for the workers NetBox with the plugin loaded and the token accepted. Containers use
 * it (compose starts everything at once and podman 4.3 does not wait for health); a dependency
 * still missing at the deadline stops the process with its name, and the restart policy tries again.
 */
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../clock.js';
import { configDefaults, type UnicopConfig } from '../config.js';
import { topics } from '../events/catalogue.js';
import { NetboxHttp } from '../netbox/http.js';
import { caBundleOf } from '../tls/ca-bundle.js';

export type Service = 'bridge' | 'workers';

/** Thrown when a dependency is still missing at the deadline; the message names it, never a secret. */
export class DependencyTimeoutError extends Error {
  override readonly name = 'DependencyTimeoutError';
  constructor(readonly waitingFor: string[]) {
    super(`still waiting for ${waitingFor.join('; ')}`);
  }
}

type Probe = { name: string; check: () => Promise<string | undefined> };

function kafkaProbe(config: UnicopConfig): Probe {
  const kafka = new Kafka({
    clientId: 'unicop-wait',
    brokers: config.UNICOP_KAFKA_BROKERS,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 0 },
  });
  return {
    name: 'kafka',
    check: async () => {
      const admin = kafka.admin();
      try {
        await admin.connect();
        const have = new Set(await admin.listTopics());
        const missing = Object.values(topics).filter((t) => !have.has(t));
        return missing.length ? `topics missing: ${missing.join(', ')}` : undefined;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
  };
}

function redisProbe(config: UnicopConfig): Probe {
  return {
    name: 'redis',
    check: async () => {
      const redis = new Redis(config.UNICOP_REDIS_URL, {
        lazyConnect: true,
        connectTimeout: 3000,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      redis.on('error', () => undefined);
      try {
        await redis.connect();
        return (await redis.ping()) === 'PONG' ? undefined : 'no PONG';
      } finally {
        redis.disconnect();
      }
    },
  };
}

function netboxProbe(config: UnicopConfig): Probe {
  return {
    name: 'netbox',
    check: async () => {
      const ca = caBundleOf('UNICOP_NETBOX_CA_FILE', config.UNICOP_NETBOX_CA_FILE);
      const netbox = new NetboxHttp(
        {
          baseUrl: config.UNICOP_NETBOX_URL,
          token: config.UNICOP_NETBOX_TOKEN ?? '',
          timeoutMs: 5000,
          ...(ca === undefined ? {} : { ca }),
        },
        () => new Error('unused'),
      );
      const res = await netbox.send('get', '/api/status/');
      if (res.status !== 200) return `GET /api/status/ answered ${res.status}`;
      const body = (res.body ?? {}) as { plugins?: Record<string, string> };
      return body.plugins?.unicop ? undefined : 'the unicop plugin is not loaded';
    },
  };
}

/** What each service cannot start without. */
export function probesFor(service: Service, config: UnicopConfig): Probe[] {
  const probes = [kafkaProbe(config), redisProbe(config)];
  if (service === 'workers') probes.push(netboxProbe(config));
  return probes;
}

export interface WaitOptions {
  /** Pause between two rounds of probes (UNICOP_DEPENDENCY_PROBE_INTERVAL_MS). */
  intervalMs?: number;
  clock?: Clock;
}

/**
 * Polls every probe until all pass or `seconds` have gone by; logs what it still waits for about
 * every 10 s. Resolves when everything answered; throws DependencyTimeoutError otherwise.
 */
export async function waitForDependencies(
  probes: Probe[],
  seconds: number,
  log: Logger,
  { intervalMs = configDefaults.UNICOP_DEPENDENCY_PROBE_INTERVAL_MS, clock = systemClock }: WaitOptions = {},
): Promise<void> {
  const now = () => clock.now().getTime();
  const deadline = now() + seconds * 1000;
  let pending = probes;
  let lastLog = 0;
  for (;;) {
    const results = await Promise.all(
      pending.map(async (p) => {
        try {
          return { p, why: await p.check() };
        } catch (error) {
          return { p, why: (error as Error).message || String(error) };
        }
      }),
    );
    const waiting = results.filter((r) => r.why !== undefined);
    if (waiting.length === 0) {
      log.info({ dependencies: probes.map((p) => p.name) }, 'dependencies ready');
      return;
    }
    pending = waiting.map((r) => r.p);
    const described = waiting.map((r) => `${r.p.name} (${r.why})`);
    if (now() >= deadline) throw new DependencyTimeoutError(described);
    if (now() - lastLog >= 10_000) {
      log.info({ waitingFor: described }, 'waiting for dependencies');
      lastLog = now();
    }
    await clock.sleep(intervalMs);
  }
}
