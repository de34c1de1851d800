/**
 * Structured logging with pino. Secrets are removed by path, never by hope: every field that can
 * carry a credential is listed here once, and components log through child loggers carrying their
 * correlation ids (root key, run id, intent id, AWX job id, NetBox request id), and a line written
 * inside a trace span carries its trace_id and span_id.
 */
import { type DestinationStream, type Logger, pino } from 'pino';
import { activeTraceIds } from './tracing.js';

/** Fields that carry a credential, at the top of a line's object or one object down. */
const credentialFields = [
  'authorization',
  'Authorization',
  'token',
  'secret',
  'secrets',
  'password',
  'signature',
  'cookie',
  // Vault: a login's answer (auth.client_token), an AppRole login's body (role_id, secret_id).
  'client_token',
  'role_id',
  'secret_id',
  // OIDC: a token endpoint's answer, a client credentials grant's body.
  'access_token',
  'refresh_token',
  'id_token',
  'client_secret',
];

/**
 * Headers that carry a credential: as Node presents a request's (lower case) and as clients write
 * their own (node-vault sets X-Vault-Token; an axios error keeps its request's headers in err.config).
 */
const credentialHeaders = [
  'authorization',
  'Authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-hook-signature',
  'x-unicop-token',
  'X-UNICOP-Token',
  'x-vault-token',
  'X-Vault-Token',
];
const headerHolders = [
  'headers',
  'req.headers',
  'res.headers',
  'options.headers',
  'err.config.headers',
  'err.response.config.headers',
];

/** Configuration keys holding a secret, redacted bare and as a logged configuration's `config.<key>`. */
export const secretConfigKeys = [
  'UNICOP_NETBOX_TOKEN',
  'UNICOP_AWX_TOKEN',
  'UNICOP_ADMIN_TOKEN',
  'UNICOP_AWX_WEBHOOK_SECRET',
  'UNICOP_WEBHOOK_SECRETS',
  // The CLI's Keycloak client secret (decision 0051).
  'UNICOP_OIDC_CLIENT_SECRET',
  // Vault AppRole credentials (helper V's configuration): the role id is half of a login.
  'UNICOP_VAULT_ROLE_ID',
  'UNICOP_VAULT_SECRET_ID',
];

export const redactedPaths = [
  ...credentialFields,
  ...credentialFields.map((field) => `*.${field}`),
  ...headerHolders.flatMap((holder) => credentialHeaders.map((header) => `${holder}["${header}"]`)),
  // A failed client request's body (err.config.data of an axios error: an AppRole login's secret_id).
  'err.config.data',
  'err.response.config.data',
  ...secretConfigKeys,
  ...secretConfigKeys.map((key) => `config.${key}`),
];

export function createLogger(component: string, level = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { component },
    redact: { paths: redactedPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // trace_id and span_id of the span the line is written in (none outside one: core/tracing.ts).
    mixin: activeTraceIds,
  };
  return destination ? pino(options, destination) : pino(options);
}
