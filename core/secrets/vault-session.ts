/**
 * One process's session with Vault (OpenBao): an AppRole login, its token kept alive, and KV v2
 * reads. Every Vault call goes through node-vault (the design card's client).
 *
 * The token: renewed (renew-self) at two thirds of its TTL; when Vault grants less than it did the
 * time before (the role's max TTL is near) or the token is not renewable, the next step at two
 * thirds of what is left is a fresh login instead. A failed renewal or login is tried again 5 s
 * later (a read meanwhile that meets a dead token logs in first).
 *
 * Errors name the reference or the operation, never a value: node-vault's own errors carry the
 * request (token header, login body) and are never passed on or logged as they are.
 */
import vault from 'node-vault';
import type { Logger } from 'pino';
import type { VaultRef } from './vault-ref.js';

export interface VaultSessionOptions {
  /** e.g. http://127.0.0.1:18200 */
  addr: string;
  roleId: string;
  secretId: string;
  /** Per-request timeout. */
  timeoutMs: number;
  /** AppRole mount (default approle). */
  approleMount?: string;
  log?: Logger;
}

/** A secret reference that could not be read: names the reference and why, never a value. */
export class VaultSecretError extends Error {
  override readonly name = 'VaultSecretError';
  constructor(
    readonly ref: string,
    readonly statusCode: number | undefined,
    reason: string,
  ) {
    super(`secret reference ${ref}: ${reason}`);
  }
}

/** The AppRole login failed (wrong role_id/secret_id, Vault down or sealed). */
export class VaultLoginError extends Error {
  override readonly name = 'VaultLoginError';
  constructor(
    readonly statusCode: number | undefined,
    reason: string,
  ) {
    super(`Vault AppRole login failed: ${reason}`);
  }
}

export interface KvValue {
  /** The key's value; undefined when this version of the secret has no such key. */
  value: string | undefined;
  version: number;
  createdTime: Date;
}

/** What a PKI role's issue endpoint answers (the fields UNICOP uses). */
export interface IssuedCertificate {
  certificate: string;
  private_key: string;
  issuing_ca: string;
  serial_number: string;
  /** Unix seconds. */
  expiration: number;
}

const retryMs = 5_000;

/** Status code and a value-free reason from a node-vault error. */
function describe(error: unknown): { statusCode: number | undefined; reason: string } {
  const e = error as { response?: { statusCode?: number }; code?: string; message?: string };
  const statusCode = e.response?.statusCode;
  if (statusCode === 403) return { statusCode, reason: 'permission denied (403)' };
  if (statusCode === 404) return { statusCode, reason: 'no such secret (404)' };
  if (statusCode === 503) return { statusCode, reason: 'Vault is sealed or unavailable (503)' };
  if (statusCode !== undefined) return { statusCode, reason: `Vault answered ${statusCode}` };
  // A transport error (axios): its code and message name the address, not the request.
  return { statusCode, reason: e.code ?? e.message ?? 'request failed' };
}

export class VaultSession {
  private readonly client: vault.client;
  private timer: NodeJS.Timeout | undefined;
  private lastGrantSeconds = 0;
  private closed = false;
  private loggingIn: Promise<void> | undefined;
  /** Renewals and logins so far (the tests' and /metrics' view of the token's life). */
  readonly counts = { logins: 0, renewals: 0, failures: 0 };

  constructor(private readonly options: VaultSessionOptions) {
    this.client = vault({ endpoint: options.addr, requestOptions: { timeout: options.timeoutMs } });
  }

  /** Logs in (once at a time) and schedules the token's renewal. */
  login(): Promise<void> {
    this.loggingIn ??= this.doLogin().finally(() => {
      this.loggingIn = undefined;
    });
    return this.loggingIn;
  }

  private async doLogin(): Promise<void> {
    let auth: { lease_duration: number; renewable: boolean };
    try {
      const answer = await this.client.approleLogin({
        mount_point: this.options.approleMount ?? 'approle',
        role_id: this.options.roleId,
        secret_id: this.options.secretId,
      });
      auth = answer.auth; // node-vault keeps the token (client.token) for the next requests
    } catch (error) {
      const { statusCode, reason } = describe(error);
      throw new VaultLoginError(statusCode, reason);
    }
    this.counts.logins += 1;
    this.lastGrantSeconds = auth.lease_duration;
    this.schedule(auth.lease_duration, auth.renewable ? 'renew' : 'login');
  }

  private schedule(ttlSeconds: number, next: 'renew' | 'login'): void {
    clearTimeout(this.timer);
    if (this.closed || ttlSeconds <= 0) return; // 0: a token that never expires
    this.timer = setTimeout(() => void this.keepAlive(next), Math.max(500, (ttlSeconds * 2000) / 3));
    this.timer.unref();
  }

  private async keepAlive(next: 'renew' | 'login'): Promise<void> {
    if (this.closed) return;
    try {
      if (next === 'login') {
        await this.login();
        this.options.log?.info({ logins: this.counts.logins }, 'Vault token replaced by a new login');
        return;
      }
      const answer = await this.client.tokenRenewSelf({});
      const { lease_duration: granted, renewable } = answer.auth as {
        lease_duration: number;
        renewable: boolean;
      };
      this.counts.renewals += 1;
      // Granted less than before: the max TTL is near, so the next step is a new login.
      const shortened = granted < this.lastGrantSeconds;
      this.lastGrantSeconds = granted;
      this.schedule(granted, renewable && !shortened ? 'renew' : 'login');
      this.options.log?.debug({ ttlSeconds: granted, renewals: this.counts.renewals }, 'Vault token renewed');
    } catch (error) {
      this.counts.failures += 1;
      this.options.log?.warn(
        { step: next, reason: describe(error).reason, retryInMs: retryMs },
        'Vault token renewal failed; logging in again shortly',
      );
      clearTimeout(this.timer);
      if (this.closed) return;
      this.timer = setTimeout(() => void this.keepAlive('login'), retryMs);
      this.timer.unref();
    }
  }

  /**
   * Reads one key of a KV v2 secret (its current version, or `version`). A 403 is tried once more
   * after a new login (the token may have expired under us); a second 403 is the policy's answer.
   */
  async read(ref: VaultRef, version?: number): Promise<KvValue> {
    const path = `${ref.mount}/data/${ref.path}${version === undefined ? '' : `?version=${version}`}`;
    let answer: {
      data?: { data?: Record<string, unknown>; metadata?: { version?: number; created_time?: string } };
    };
    try {
      answer = await this.client.read(path);
    } catch (error) {
      const first = describe(error);
      if (first.statusCode !== 403) throw new VaultSecretError(ref.ref, first.statusCode, first.reason);
      try {
        await this.login();
        answer = await this.client.read(path);
      } catch (again) {
        const { statusCode, reason } = describe(again);
        const why =
          statusCode === 403
            ? "permission denied (403): this process's Vault policy does not allow it"
            : reason;
        throw new VaultSecretError(ref.ref, statusCode, why);
      }
    }
    const data = answer.data?.data;
    const metadata = answer.data?.metadata;
    if (!data || !metadata?.version || !metadata.created_time) {
      throw new VaultSecretError(ref.ref, undefined, 'not a KV v2 secret (no data or metadata)');
    }
    const value = data[ref.key];
    return {
      value: typeof value === 'string' ? value : undefined,
      version: metadata.version,
      createdTime: new Date(metadata.created_time),
    };
  }

  /**
   * Issues a certificate from a PKI role (`<mount>/issue/<role>`); a 403 is tried once more after a
   * new login, as a read is. Errors name the role, never the key.
   */
  async issueCertificate(
    mount: string,
    role: string,
    request: { common_name: string; alt_names?: string; ip_sans?: string; ttl: string },
  ): Promise<IssuedCertificate> {
    const path = `${mount}/issue/${role}`;
    const issue = () => this.client.write(path, request) as Promise<{ data: IssuedCertificate }>;
    try {
      return (await issue()).data;
    } catch (error) {
      const first = describe(error);
      if (first.statusCode !== 403)
        throw new VaultSecretError(`${mount}/${role}`, first.statusCode, first.reason);
      try {
        await this.login();
        return (await issue()).data;
      } catch (again) {
        const { statusCode, reason } = describe(again);
        throw new VaultSecretError(`${mount}/${role}`, statusCode, reason);
      }
    }
  }

  /** Stops renewing and revokes the token (best effort: unrevoked, it expires within its TTL). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.client.tokenRevokeSelf().catch(() => undefined);
  }
}
