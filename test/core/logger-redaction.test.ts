/**
 * Issue #18 item 5, the log redaction list (core/logger.ts): pino writing to a buffer, every place a
 * credential can sit in a line UNICOP writes — a whole configuration (each secret key, bare and as
 * `config.<key>`), an incoming request's headers (`headers[…]`, `req.headers[…]`: the AWX
 * notification's X-UNICOP-Token, basic auth, NetBox's signature), Vault's token header and AppRole
 * login in a failed client request (an axios error: err.config), Vault's and an OIDC token
 * endpoint's answers — comes out `[redacted]`, its value nowhere in the output. And every
 * configuration key named as a credential is on the list: a new one cannot be forgotten.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { configSchema, parseConfig } from '../../core/config.js';
import { createLogger, redactedPaths, secretConfigKeys } from '../../core/logger.js';

/** A fresh value per use, so a hit names the one place that leaked. */
const value = (what: string) => `${what}-${randomBytes(12).toString('hex')}`;

function bufferLogger() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: createLogger('redaction-test', 'trace', sink), text: () => lines.join('') };
}

/** Logs `object` once and returns which of `secrets` (name → value) appear in the output. */
function leaked(object: Record<string, unknown>, secrets: Record<string, string>): string[] {
  const { log, text } = bufferLogger();
  log.info(object, 'line');
  const out = text();
  expect(out).toContain('[redacted]');
  return Object.entries(secrets)
    .filter(([, secret]) => out.includes(secret))
    .map(([name]) => name);
}

describe('log redaction', () => {
  it('a whole configuration, logged as `config` or spread at the top, shows none of its secrets', () => {
    const secrets = {
      UNICOP_NETBOX_TOKEN: value('nbt_key.netbox'),
      UNICOP_AWX_TOKEN: value('awx'),
      UNICOP_ADMIN_TOKEN: value('admin'),
      UNICOP_AWX_WEBHOOK_SECRET: value('awx-webhook'),
      UNICOP_WEBHOOK_SECRETS: `${value('webhook-old')},${value('webhook-new')}`,
    };
    const config = parseConfig(secrets);
    const each = {
      ...secrets,
      'UNICOP_WEBHOOK_SECRETS[0]': config.UNICOP_WEBHOOK_SECRETS?.[0] as string,
      'UNICOP_WEBHOOK_SECRETS[1]': config.UNICOP_WEBHOOK_SECRETS?.[1] as string,
    };
    expect(leaked({ config }, each)).toEqual([]);
    expect(leaked({ ...config }, each)).toEqual([]);
  });

  it("an incoming request's credential headers, under `headers` and `req.headers`", () => {
    for (const holder of ['headers', 'req']) {
      const headers = {
        'x-unicop-token': value('x-unicop-token'),
        authorization: `Basic ${Buffer.from(`awx:${value('basic')}`).toString('base64')}`,
        'x-hook-signature': value('signature'),
        'x-vault-token': value('vault'),
        cookie: value('cookie'),
      };
      const object = holder === 'headers' ? { headers } : { req: { method: 'POST', headers } };
      expect(leaked(object, headers), holder).toEqual([]);
    }
  });

  it('a failed Vault request (an axios error): its X-Vault-Token header and its AppRole login body', () => {
    const token = value('hvs.vault-token');
    const secretId = value('secret-id');
    const error = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:18200'), {
      config: {
        url: 'http://127.0.0.1:18200/v1/auth/approle/login',
        headers: { 'X-Vault-Token': token },
        data: JSON.stringify({ role_id: 'unicop-workers', secret_id: secretId }),
      },
    });
    const { log, text } = bufferLogger();
    log.error({ err: error }, 'vault unreachable');
    log.error(error, 'vault unreachable');
    expect(text()).toContain('ECONNREFUSED');
    expect(text()).not.toContain(token);
    expect(text()).not.toContain(secretId);
  });

  it("Vault's and an OIDC token endpoint's answers, at the top or one object down", () => {
    const secrets = {
      client_token: value('hvs.client'),
      secret_id: value('secret-id'),
      role_id: value('role-id'),
      access_token: value('eyJ.access'),
      refresh_token: value('eyJ.refresh'),
      id_token: value('eyJ.id'),
      client_secret: value('client-secret'),
    };
    expect(leaked({ ...secrets }, secrets)).toEqual([]);
    expect(leaked({ auth: { ...secrets } }, secrets)).toEqual([]);
  });

  it('every configuration key named as a credential is redacted, bare and as config.<key>', () => {
    // A key ending _FILE names where a credential is kept (a path, e.g. UNICOP_OIDC_TOKEN_FILE),
    // not the credential.
    const credentialKeys = Object.keys(configSchema.shape).filter(
      (key) => /TOKEN|SECRET|PASSWORD|CREDENTIAL|PRIVATE_KEY/.test(key) && !key.endsWith('_FILE'),
    );
    expect(credentialKeys.length).toBeGreaterThanOrEqual(5);
    const missing = credentialKeys.filter(
      (key) => !redactedPaths.includes(key) || !redactedPaths.includes(`config.${key}`),
    );
    expect(missing).toEqual([]);
    for (const key of secretConfigKeys) {
      expect(redactedPaths, key).toContain(key);
      expect(redactedPaths, key).toContain(`config.${key}`);
    }
  });
});
