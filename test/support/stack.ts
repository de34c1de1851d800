/**
 * What tests know about the local stack: the connection facts `scripts/stack up` recorded in
 * var/stack.env. A test that needs a service and finds it missing fails with the command to run,
 * never silently passes.
 */
import { readStackEnv } from '../../core/config.js';

export function stackFact(key: string): string {
  const value = process.env[key] ?? readStackEnv()[key];
  if (!value) {
    throw new Error(`${key} is not set: bring the local stack up first (scripts/stack up)`);
  }
  return value;
}

export const stack = {
  kafkaBrokers: () => stackFact('UNICOP_KAFKA_BROKERS').split(','),
  redisUrl: () => stackFact('UNICOP_REDIS_URL'),
  netboxUrl: () => stackFact('UNICOP_NETBOX_URL'),
  netboxToken: () => stackFact('UNICOP_NETBOX_TOKEN'),
  ansibleBin: () => stackFact('UNICOP_ANSIBLE_BIN'),
};

/**
 * Databases of the stack's Redis (UNICOP_REDIS_URL) that one test keeps to itself, so that its
 * bridge's delivery memory, a queue under the production name or a sweeper's epoch key is never a
 * concurrent test's: two bridges sharing the memory, both sent the same NetBox event by their own
 * hooks, answer the later one a duplicate. Database 0 is everyone else's (the demo, unique queue
 * names); NetBox's Redis is another server (UNICOP_NETBOX_REDIS_URL).
 */
export const testRedisDatabases = {
  /** test/security/secret-scan.test.ts, its workers' production-named queue and its bridge. */
  secretScan: 5,
  /** test/faults/suite (UNICOP_FAULT_REDIS_DB). */
  faultSuite: 6,
  /** test/workers/sweeper.test.ts, its sweeper's epoch. */
  sweeper: 7,
  /** scripts/docs-screenshots.ts, its bridge. */
  docsScreenshots: 8,
  /** test/workers/metrics.test.ts, its bridge. */
  metrics: 9,
  /** bench/delivery.ts (npm run bench -- delivery), its bridge. */
  deliveryBench: 10,
  /** test/cli/root-why-waits.test.ts (UNICOP_TEST_WAITS_DB), its bridge and the production-named queue. */
  rootWhyWaits: 11,
  /** test/cli/status.test.ts, its bridge's empty queue. */
  status: 12,
  /** test/trace/one-trace.test.ts (UNICOP_TEST_TRACE_DB), its bridge. */
  oneTrace: 13,
  /** test/workers/loop.test.ts, its bridge. */
  loop: 14,
  /** test/cli/root-why.test.ts, its bridge. */
  rootWhy: 15,
} as const;

/** The stack's Redis URL on database `db` (testRedisDatabases). */
export function redisDatabaseUrl(db: number): string {
  return `${stack.redisUrl().replace(/\/\d*$/, '')}/${db}`;
}

/** psql's environment for the stack's PostgreSQL (UNICOP_PG_URL), named `appName` in pg_stat_activity. */
export function postgresEnv(appName?: string): NodeJS.ProcessEnv {
  const url = new URL(stackFact('UNICOP_PG_URL'));
  return {
    ...process.env,
    PGHOST: url.hostname,
    PGPORT: url.port,
    PGUSER: decodeURIComponent(url.username),
    PGPASSWORD: decodeURIComponent(url.password),
    PGDATABASE: url.pathname.slice(1),
    ...(appName ? { PGAPPNAME: appName } : {}),
  };
}

/** A name unique to this test run, for queues, topics and NetBox objects. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}
