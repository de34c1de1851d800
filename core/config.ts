/**
 * UNICOP configuration: parsed once at start-up by one zod schema. A bad value fails loudly with the
 * name of the variable. Secrets are only ever held here and handed to the clients that need them;
 * they are never logged (see core/logger.ts for the redaction paths).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isVaultRef } from './secrets/vault-ref.js';

const coreDir = dirname(fileURLToPath(import.meta.url));
// The directory above core/ — for the build (dist/core/config.js) the one above dist/ too, so var/
// resolves the same whether the source or the compiled JavaScript runs.
export const repoRoot = resolve(coreDir, basename(dirname(coreDir)) === 'dist' ? '../..' : '..');

const brokerList = z
  .string()
  .min(1)
  .transform((s) => s.split(',').map((b) => b.trim()))
  .pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port')).min(1));

/**
 * A secret is given by reference: `env:NAME` (read from another variable), `file:/path` (read from a
 * file, trailing newline dropped), `vault:<mount>/<path>#<key>` (a KV v2 secret in Vault, resolved
 * asynchronously by loadRuntimeConfig in core/secrets/runtime-config.ts, not here), or — for local
 * development only — the literal value.
 */
export function resolveSecret(ref: string, env: Record<string, string | undefined>): string {
  if (isVaultRef(ref)) {
    throw new Error(
      `secret reference ${ref}: read from Vault only by a process started with loadRuntimeConfig`,
    );
  }
  if (ref.startsWith('env:')) {
    const value = env[ref.slice(4)];
    if (!value) throw new Error(`secret reference ${ref}: variable is not set`);
    return value;
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    if (!existsSync(path)) throw new Error(`secret reference file:${path}: no such file`);
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  }
  return ref;
}

// A listener's address: an IP address or a host name. An empty value is refused, as Node would take
// it as every address.
const listenAddress = z.union([z.ipv4(), z.ipv6(), z.hostname()], {
  error: 'expected an IP address or a host name',
});

const secretList = z
  .string()
  .min(1)
  .transform((s) =>
    s
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean),
  );

export const configSchema = z.object({
  // Comma-separated Kafka bootstrap brokers; the local stack's broker by default.
  UNICOP_KAFKA_BROKERS: brokerList.default(['127.0.0.1:19092']),
  // A consumer batch that failed retriably comes again after this long, doubling up to the maximum.
  UNICOP_CONSUMER_RETRY_MIN_MS: z.coerce.number().int().min(1).default(500),
  // Cap of that doubling wait: a Kafka consumer retries NetBox or the event log at least this often.
  UNICOP_CONSUMER_RETRY_MAX_MS: z.coerce.number().int().min(1).default(30_000),
  // How long Kafka keeps a consumer that stopped heartbeating (killed, or its broker restarted) in
  // its group; a rebalance waits for such a member until then. The broker's bounds apply
  // (group.min.session.timeout.ms 6 s and group.max.session.timeout.ms 30 min by default). The minimum by
  // default: after a Kafka restart consuming resumes about this long after the broker is back (0063).
  UNICOP_KAFKA_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6_000).max(1_800_000).default(6_000),
  // Redis for BullMQ and de-duplication memory; the local stack's instance by default.
  UNICOP_REDIS_URL: z.url().default('redis://127.0.0.1:16379'),
  // NetBox base URL (no trailing /api); the local stack's gunicorn by default.
  UNICOP_NETBOX_URL: z.url().default('http://127.0.0.1:18000'),
  // NetBox API token (v2 "nbt_<key>.<token>" or v1): no default, a secret.
  UNICOP_NETBOX_TOKEN: z.string().min(1).optional(),
  // The NetBox user whose token UNICOP writes with: its changes are echoes, not work.
  UNICOP_NETBOX_USERNAME: z.string().min(1).default('unicop'),
  // Per-request timeout of the NetBox plugin API (a page of freshly changed roots takes seconds).
  UNICOP_NETBOX_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  // Connections to NetBox one process opens at most (its reconcile concurrency, resolver, sweeper).
  UNICOP_NETBOX_MAX_SOCKETS: z.coerce.number().int().min(1).default(16),
  // Close an idle kept-alive NetBox connection after this: below gunicorn's keepalive (2 s default).
  UNICOP_NETBOX_IDLE_SOCKET_MS: z.coerce.number().int().min(100).default(1_000),
  // PEM CA bundle trusted for an https NetBox instead of the system's CAs; unset: the system's (0056).
  UNICOP_NETBOX_CA_FILE: z.string().min(1).optional(),
  // Bridge listener address: loopback on a host; 0.0.0.0 in a container.
  UNICOP_BRIDGE_HOST: listenAddress.default('127.0.0.1'),
  // Bridge HTTP port (the stack's other services use 16xxx–19xxx).
  UNICOP_BRIDGE_PORT: z.coerce.number().int().min(0).max(65535).default(18080),
  // Webhook secrets, comma-separated references; several are accepted at once for rotation.
  UNICOP_WEBHOOK_SECRETS: secretList.optional(),
  // Largest webhook body accepted; NetBox bodies are a few KiB, 1 MiB leaves room for big objects.
  UNICOP_WEBHOOK_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  // Refusal audit events one peer address may write at once; beyond, counted and summarised (0049).
  UNICOP_REFUSAL_AUDIT_BURST: z.coerce.number().int().min(1).default(60),
  // Refusal audit events a peer gets back per minute: a misconfigured NetBox leaves one a second.
  UNICOP_REFUSAL_AUDIT_PER_MINUTE: z.coerce.number().min(0).default(60),
  // How often the suppressed refusals are written as one summary event per peer.
  UNICOP_REFUSAL_AUDIT_SUMMARY_SECONDS: z.coerce.number().min(0.1).default(60),
  // How long a delivery is remembered for de-duplication; NetBox re-sends within seconds to minutes.
  UNICOP_DEDUPE_WINDOW_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600),
  // Group commit: an idle producer waits this long for more webhooks to share its produce request;
  // 0: until the event loop's current turn is done (0 against 2 unresolved on this machine: 0059).
  UNICOP_PUBLISH_LINGER_MS: z.coerce.number().int().min(0).default(2),
  // Answer 503 if Kafka has not acknowledged within this long.
  UNICOP_PUBLISH_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  // Bearer token for the admin API (reference); no default: the admin API is closed without it.
  UNICOP_ADMIN_TOKEN: z.string().min(1).optional(),
  // Largest admin API request body (413 above); its bodies are a reason and a few flags.
  UNICOP_ADMIN_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024),
  // How long the admin API keeps an Idempotency-Key's answer; a day covers any operator's retry.
  UNICOP_ADMIN_IDEMPOTENCY_TTL_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600),
  // Where the `unicop` CLI reaches the admin API (the bridge); the local bridge by default.
  UNICOP_ADMIN_URL: z.url().default('http://127.0.0.1:18080'),
  // Shared admin token accepted only when this is on (break-glass, decision 0051): off by default,
  // every use is audited (admin.break_glass_used) and logged at warn.
  UNICOP_ADMIN_BREAK_GLASS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  // Keycloak realm issuer whose access tokens the admin API and POST /sweep accept; the stack's
  // keycloak records it in var/stack.env. No default: without it only break-glass can get in.
  UNICOP_OIDC_ISSUER: z.url().optional(),
  // The realm's JWKS; unset: Keycloak's <issuer>/protocol/openid-connect/certs.
  UNICOP_OIDC_JWKS_URL: z.url().optional(),
  // The audience (aud) a token must name: the admin API's, as the realm's clients put it.
  UNICOP_OIDC_AUDIENCE: z.string().min(1).default('unicop-admin-api'),
  // Accepted signing algorithms (comma-separated): Keycloak signs with RS256 by default.
  UNICOP_OIDC_ALGORITHMS: z
    .string()
    .default('RS256')
    .transform((s) => s.split(',').map((a) => a.trim()))
    .pipe(
      z
        .array(
          z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
        )
        .min(1),
    ),
  // The CLI's client (client credentials grant); the stack records unicop-cli. Unset: no OIDC login.
  UNICOP_OIDC_CLIENT_ID: z.string().min(1).optional(),
  // That client's secret (reference); the stack records file:var/keycloak/secrets/cli-secret.
  UNICOP_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  // The public client people sign in with (`unicop login`, device authorization grant).
  UNICOP_OIDC_PEOPLE_CLIENT_ID: z.string().min(1).default('unicop-people'),
  // Where `unicop login` keeps a person's tokens (mode 600); unset: ~/.config/unicop/tokens.json.
  UNICOP_OIDC_TOKEN_FILE: z.string().min(1).optional(),
  // Secret AWX sends with its notifications (basic-auth password or X-UNICOP-Token header; reference).
  UNICOP_AWX_WEBHOOK_SECRET: z.string().min(1).optional(),
  // AWX base URL (no /api/v2); the demo's AWX double by default.
  UNICOP_AWX_URL: z.url().default('http://127.0.0.1:18052'),
  // AWX OAuth2 bearer token (reference): no default, a secret; required by the reconciler.
  UNICOP_AWX_TOKEN: z.string().min(1).optional(),
  // Where people open AWX in a browser, for the job links in NetBox; the API URL when unset.
  UNICOP_AWX_UI_URL: z.url().optional(),
  // PEM CA bundle trusted for an https AWX instead of the system's CAs; unset: the system's (0056).
  UNICOP_AWX_CA_FILE: z.string().min(1).optional(),
  // Per-request timeout of AWX's API, which answers in well under a second.
  UNICOP_AWX_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  // A launch whose answer was lost is confirmed by looking its run id up this many times …
  UNICOP_AWX_LAUNCH_CONFIRM_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  // … this long apart; unconfirmed, the job pauses and the launch is looked up again on its retry.
  UNICOP_AWX_LAUNCH_CONFIRM_DELAY_MS: z.coerce.number().int().min(0).default(1000),
  // Partitions of unicop.changes whose batches the resolver handles at once (each partition's own
  // batches in order); 4 overlaps the plugin call, the append and our own CPU (decision 0046).
  UNICOP_RESOLVER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  // Reconcile jobs one workers process runs at once (each a different root: one root, one run).
  UNICOP_RECONCILE_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(4),
  // Root lease TTL; renewed every third of it, so a dead worker's roots are free within a minute.
  UNICOP_LEASE_TTL_SECONDS: z.coerce.number().int().min(3).max(3600).default(60),
  // Runs in one chain of retries (the first included) for failure classes that retry.
  UNICOP_RETRY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  // First retry backoff, doubled per attempt up to the maximum.
  UNICOP_RETRY_BASE_SECONDS: z.coerce.number().min(0).default(30),
  UNICOP_RETRY_MAX_SECONDS: z.coerce.number().min(0).default(900),
  // Following an AWX job: first poll interval, doubling while nothing changes, up to the maximum.
  UNICOP_POLL_MIN_MS: z.coerce.number().int().min(50).default(1000),
  UNICOP_POLL_MAX_MS: z.coerce.number().int().min(50).default(15000),
  // How long after a timeout's cancel request a run waits for AWX to stop the job.
  UNICOP_CANCEL_GRACE_SECONDS: z.coerce.number().int().min(1).default(120),
  // While automation is frozen globally, a queued job looks at the freeze again after this long.
  UNICOP_FREEZE_RECHECK_SECONDS: z.coerce.number().int().min(1).default(15),
  // A run awaiting approval frees its worker; its job looks at AWX again after this long (or when AWX notifies).
  UNICOP_APPROVAL_RECHECK_SECONDS: z.coerce.number().int().min(1).default(30),
  // A job whose root another worker holds tries again after this long (sooner if the lease expires).
  UNICOP_LEASE_BUSY_RETRY_MS: z.coerce.number().int().min(100).default(5000),
  // A job paused on a retriable error (NetBox unavailable): first pause, doubling per pause in a row …
  UNICOP_PAUSE_MIN_MS: z.coerce.number().int().min(1).default(2000),
  // … up to this.
  UNICOP_PAUSE_MAX_MS: z.coerce.number().int().min(1).default(60_000),
  // Appends of a run's outcome events (already in NetBox) to Kafka, 1 s apart doubling, then it fails.
  UNICOP_OUTCOME_APPEND_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(6),
  // Full sweep of the plugin's root listing (webhooks NetBox never delivered).
  UNICOP_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(300),
  // Sweep when the workers start: catches what NetBox sent while UNICOP was down (it never resends).
  UNICOP_SWEEP_ON_START: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  // How often the sweeper looks at the global freeze, its Redis epoch key and the interval (cheap).
  UNICOP_SWEEP_CHECK_MS: z.coerce.number().int().min(10).default(5000),
  // Drift scheduler (workers/drift/, decision 0054): how often it walks the roots for due checks (0:
  // the scheduler is off), and how many check intents may be outstanding (unset: a quarter of the
  // reconcile concurrency, at least 1).
  UNICOP_DRIFT_CHECK_SECONDS: z.coerce.number().int().min(0).default(60),
  UNICOP_DRIFT_MAX_IN_FLIGHT: z.coerce.number().int().min(1).optional(),
  // Gradual rollout (workers/rollout/, decision 0061): a NetBox request touching more roots than this
  // goes in waves (0: never); the waves (sizes or shares, the last may be `rest`); the highest failure
  // share of a wave's ended runs that still opens the next one.
  UNICOP_ROLLOUT_MIN_ROOTS: z.coerce.number().int().min(0).default(10),
  UNICOP_ROLLOUT_WAVES: z
    .string()
    .regex(/^\s*(\d+%?|rest)(\s*,\s*(\d+%?|rest))*\s*$/, 'expected waves like "1,10%,rest"')
    .superRefine((plan, ctx) => {
      const error = wavePlanError(plan);
      if (error) ctx.addIssue({ code: 'custom', message: error });
    })
    .default('1,10%,rest'),
  UNICOP_ROLLOUT_FAILURE_THRESHOLD: z.coerce.number().min(0).max(1).default(0.1),
  // Fail-safe (workers/failsafe/, decision 0055): how often its triggers are evaluated.
  UNICOP_FAILSAFE_CHECK_MS: z.coerce.number().int().min(10).default(5000),
  // Freeze globally when the resolver's lag on unicop.changes stays above this many records (0: off) …
  UNICOP_FAILSAFE_LAG_RECORDS: z.coerce.number().int().min(0).default(10_000),
  // … for this long: a burst the resolver works off within minutes is no doubt about the inputs.
  UNICOP_FAILSAFE_LAG_SECONDS: z.coerce.number().int().min(0).default(600),
  // Freeze when more than this share of the resolver's record attempts ended in an error (1: off) …
  UNICOP_FAILSAFE_RESOLVER_ERROR_RATE: z.coerce.number().min(0).max(1).default(0.5),
  // … over this window …
  UNICOP_FAILSAFE_RESOLVER_ERROR_WINDOW_SECONDS: z.coerce.number().int().min(1).default(600),
  // … once the window holds at least this many attempts (a few errors on a quiet day are no rate).
  UNICOP_FAILSAFE_RESOLVER_MIN_RECORDS: z.coerce.number().int().min(1).default(50),
  // Freeze when runs failed (failed, timed_out) for more than this many distinct roots (0: off) …
  UNICOP_FAILSAFE_FAILED_ROOTS: z.coerce.number().int().min(0).default(20),
  // … within this window (read from unicop.outcomes, so a restarted process re-reads it).
  UNICOP_FAILSAFE_FAILED_ROOTS_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
  // Address of the workers' /metrics listener: loopback on a host; 0.0.0.0 in a container, so that
  // a Prometheus elsewhere can scrape it (POST /sweep still answers loopback peers only).
  UNICOP_WORKERS_METRICS_HOST: listenAddress.default('127.0.0.1'),
  // Workers' /metrics and /healthz port on UNICOP_WORKERS_METRICS_HOST (0: no HTTP listener).
  UNICOP_WORKERS_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(18081),
  // `--wait`: how often a starting service probes Kafka, Redis and NetBox until they answer.
  UNICOP_DEPENDENCY_PROBE_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  // OTLP/HTTP base URL the bridge and workers export their trace spans to (<url>/v1/traces); the
  // stack's Jaeger records it in var/stack.env. Unset: tracing is off and costs nothing.
  UNICOP_OTLP_URL: z.url().optional(),
  // The bridge serves HTTPS with a certificate from this Vault PKI role (`<mount>/<role>`, e.g.
  // pki/unicop-bridge), renewed at 2/3 of its life; unset: plain HTTP.
  UNICOP_BRIDGE_TLS_PKI: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected <mount>/<role>')
    .optional(),
  // Names the bridge's certificate carries (DNS names and IP addresses); unset: localhost,127.0.0.1.
  UNICOP_BRIDGE_TLS_NAMES: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean),
    )
    .optional(),
  // Life of each certificate the bridge asks for (the PKI role caps it).
  UNICOP_BRIDGE_TLS_TTL_SECONDS: z.coerce.number().int().min(5).default(86_400),
  // Vault (OpenBao) address for vault: secret references; the stack's records it in var/stack.env.
  UNICOP_VAULT_ADDR: z.url().optional(),
  // This process's AppRole role_id (reference); unset: <UNICOP_VAULT_APPROLE_DIR>/<process>/role-id.
  UNICOP_VAULT_ROLE_ID: z.string().min(1).optional(),
  // This process's AppRole secret_id (reference); unset: <UNICOP_VAULT_APPROLE_DIR>/<process>/secret-id.
  UNICOP_VAULT_SECRET_ID: z.string().min(1).optional(),
  // Where the stack keeps each process's AppRole credentials (scripts/stack.d/vault.sh); no default.
  UNICOP_VAULT_APPROLE_DIR: z.string().min(1).optional(),
  // vault: secrets are read again this often, so a new version is used without a restart.
  UNICOP_VAULT_REFRESH_SECONDS: z.coerce.number().min(0.1).default(30),
  // Per-request timeout of Vault's API (a local server answers in milliseconds).
  UNICOP_VAULT_TIMEOUT_MS: z.coerce.number().int().min(100).default(5000),
  // After a vault: webhook secret gets a new version, the previous one is still accepted this long
  // (from the new version's creation): time to give NetBox/AWX the new one.
  UNICOP_WEBHOOK_ROTATION_GRACE_SECONDS: z.coerce.number().min(0).default(3600),
  // pino level; info keeps one line per state transition.
  UNICOP_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type UnicopConfig = z.infer<typeof configSchema>;

/**
 * Every key's default, as `parseConfig({})` gives it: what a component built without a configuration
 * (a test, a script) falls back to, so that each default is written once, in the schema above.
 */
export const configDefaults: Readonly<UnicopConfig> = configSchema.parse({});

/**
 * What the plugin's cut_waves (netbox-plugin/unicop/rollouts.py, plan_error) refuses in a wave plan, by
 * the same rule, so a plan the gate would answer 400 for every request is refused at start: `rest` only
 * as the last wave, a number of roots at least 1 (a share like 10% is at least one root). Null: fine.
 */
export function wavePlanError(plan: string): string | null {
  const parts = plan.split(',').map((p) => p.trim());
  if (parts.slice(0, -1).includes('rest')) return '`rest` may only be the last wave';
  if (parts.some((p) => /^\d+$/.test(p) && Number(p) < 1))
    return 'a wave of a number of roots needs at least 1';
  return null;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly fields: { field: string; message: string }[]) {
    super(`invalid configuration: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`);
  }
}

/** The fields holding one secret reference each (UNICOP_WEBHOOK_SECRETS holds a list). */
export const secretFields = [
  'UNICOP_NETBOX_TOKEN',
  'UNICOP_ADMIN_TOKEN',
  'UNICOP_AWX_WEBHOOK_SECRET',
  'UNICOP_AWX_TOKEN',
  'UNICOP_OIDC_CLIENT_SECRET',
  'UNICOP_VAULT_ROLE_ID',
  'UNICOP_VAULT_SECRET_ID',
] as const satisfies readonly (keyof UnicopConfig)[];

/**
 * Parses the configuration from an environment record and resolves secret references; throws
 * ConfigError naming each bad field (never its value). With `keepVaultRefs`, vault: references are
 * left as they are for loadRuntimeConfig (core/secrets/runtime-config.ts) to resolve; without it, a
 * vault: reference is an error naming it.
 */
export function parseConfig(
  env: Record<string, string | undefined>,
  options: { keepVaultRefs?: boolean } = {},
): UnicopConfig {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => ({ field: String(i.path[0] ?? '(root)'), message: i.message })),
    );
  }
  const config = result.data;
  const problems: { field: string; message: string }[] = [];
  const resolve = (field: string, ref: string) => {
    if (options.keepVaultRefs && isVaultRef(ref)) return ref;
    try {
      return resolveSecret(ref, env);
    } catch (error) {
      problems.push({ field, message: (error as Error).message });
      return '';
    }
  };
  for (const field of secretFields) {
    const ref = config[field];
    if (ref !== undefined) config[field] = resolve(field, ref);
  }
  if (config.UNICOP_WEBHOOK_SECRETS) {
    config.UNICOP_WEBHOOK_SECRETS = config.UNICOP_WEBHOOK_SECRETS.map((ref) =>
      resolve('UNICOP_WEBHOOK_SECRETS', ref),
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
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

/** Reads an optional JSON config file (flat KEY: value object, same keys as the environment). */
function readConfigFile(path: string | undefined): Record<string, string> {
  if (!path) return {};
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError([{ field: 'UNICOP_CONFIG_FILE', message: 'expected a JSON object' }]);
  }
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
}

/**
 * The configuration for a process started on this machine: stack facts, then the optional config
 * file (UNICOP_CONFIG_FILE), then the environment, each overriding the one before.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): UnicopConfig {
  return parseConfig(configSources(env));
}

/** What loadConfig parses: stack facts, the config file, the environment (each overriding the last). */
export function configSources(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return { ...readStackEnv(), ...readConfigFile(env.UNICOP_CONFIG_FILE), ...env };
}
