/**
 * UNICOP configuration: parsed once at start-up by one zod schema. A bad value fails loudly with the
 * name of the variable. Secrets are only ever held here and handed to the clients that need them;
 * they are never logged (see core/logger.ts for the redaction paths).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const brokerList = z
  .string()
  .min(1)
  .transform((s) => s.split(',').map((b) => b.trim()))
  .pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port')).min(1));

export const configSchema = z.object({
  // Comma-separated Kafka bootstrap brokers; the local stack's broker by default.
  UNICOP_KAFKA_BROKERS: brokerList.default(['127.0.0.1:19092']),
  // Redis for BullMQ and de-duplication memory; the local stack's instance by default.
  UNICOP_REDIS_URL: z.url().default('redis://127.0.0.1:16379'),
  // NetBox base URL (no trailing /api); the local stack's gunicorn by default.
  UNICOP_NETBOX_URL: z.url().default('http://127.0.0.1:18000'),
  // NetBox API token (v2 "nbt_<key>.<token>" or v1): no default, a secret.
  UNICOP_NETBOX_TOKEN: z.string().min(1).optional(),
  // pino level; info keeps one line per state transition.
  UNICOP_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type UnicopConfig = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly fields: { field: string; message: string }[]) {
    super(`invalid configuration: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`);
  }
}

/** Parses the configuration from an environment record; throws ConfigError naming each bad field. */
export function parseConfig(env: Record<string, string | undefined>): UnicopConfig {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => ({ field: i.path.join('.') || '(root)', message: i.message })),
    );
  }
  return result.data;
}

/**
 * Reads the connection facts the local stack recorded (var/stack.env, KEY=VALUE lines). Returns {}
 * when the stack has not been brought up. The process environment always wins over this file.
 */
export function readStackEnv(file = join(process.env.UNICOP_VAR ?? join(repoRoot, 'var'), 'stack.env')) {
  const facts: Record<string, string> = {};
  if (!existsSync(file)) return facts;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !line.startsWith('#')) facts[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return facts;
}

/** The configuration for a process started on this machine: stack facts, overridden by the environment. */
export function loadConfig(): UnicopConfig {
  return parseConfig({ ...readStackEnv(), ...process.env });
}
