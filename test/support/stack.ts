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
