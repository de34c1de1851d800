/**
 * The operator commands' client of the bridge's admin API (openapi/bridge.yaml). Every acting call
 * carries an `Idempotency-Key`; a call that got no answer (connection refused or reset, a timeout)
 * or a 503/409-in-flight is sent again with the same key, so a retry never acts twice — the admin
 * API answers a repeated key with the first answer (`Idempotent-Replayed: true`). Its bearer is a
 * Keycloak access token (client credentials: UNICOP_OIDC_CLIENT_ID/SECRET, decision 0051), or —
 * only where no OIDC client is configured — the shared admin token, which the admin API accepts
 * only while break-glass is on.
 */
import { ClientCredentials, SignInError } from '../../auth/client-credentials.js';
import { DeviceSignIn, personCredentials } from '../../auth/device-flow.js';
import { sleep } from '../../clock.js';
import type { UnicopConfig } from '../../config.js';
import { tokenFileOf } from './login.js';
import { CommandFailedError } from './output.js';

export interface AdminAnswer {
  status: number;
  body: Record<string, unknown>;
  /** The admin API answered with the stored answer of an earlier request under the same key. */
  replayed: boolean;
}

/** Where the bearer comes from: a sign-in that yields an access token, or the break-glass token. */
export type AdminCredentials = { accessToken(): Promise<string> };

/**
 * The CLI's credentials from its configuration: a person signed in with `unicop login` first (their
 * token file exists), then OIDC client credentials (automation), else the break-glass token.
 */
export function adminCredentials(
  config: Pick<
    UnicopConfig,
    | 'UNICOP_OIDC_ISSUER'
    | 'UNICOP_OIDC_CLIENT_ID'
    | 'UNICOP_OIDC_CLIENT_SECRET'
    | 'UNICOP_ADMIN_TOKEN'
    | 'UNICOP_OIDC_PEOPLE_CLIENT_ID'
    | 'UNICOP_OIDC_TOKEN_FILE'
  >,
): AdminCredentials | undefined {
  const person = tokenFileOf(config);
  if (config.UNICOP_OIDC_ISSUER && person.read()) {
    const signIn = new DeviceSignIn({
      issuer: config.UNICOP_OIDC_ISSUER,
      clientId: config.UNICOP_OIDC_PEOPLE_CLIENT_ID,
    });
    return personCredentials(signIn, person);
  }
  if (config.UNICOP_OIDC_ISSUER && config.UNICOP_OIDC_CLIENT_ID && config.UNICOP_OIDC_CLIENT_SECRET) {
    return new ClientCredentials({
      issuer: config.UNICOP_OIDC_ISSUER,
      clientId: config.UNICOP_OIDC_CLIENT_ID,
      clientSecret: config.UNICOP_OIDC_CLIENT_SECRET,
    });
  }
  const token = config.UNICOP_ADMIN_TOKEN;
  return token ? { accessToken: async () => token } : undefined;
}

export interface AdminClientOptions {
  baseUrl: string;
  credentials: AdminCredentials | undefined;
  /** Attempts in all for an unanswered or 503 call (the first included). */
  attempts?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
}

export class AdminClient {
  private readonly attempts: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: AdminClientOptions) {
    this.attempts = options.attempts ?? 4;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** GET, POST: the answer when it is 2xx; a CommandFailedError naming the refusal otherwise. */
  async call(
    method: 'GET' | 'POST',
    path: string,
    body?: Record<string, unknown>,
    idempotencyKey?: string,
  ): Promise<AdminAnswer> {
    const credentials = this.options.credentials;
    if (!credentials) {
      throw new CommandFailedError(
        'no admin credentials: set UNICOP_OIDC_ISSUER, UNICOP_OIDC_CLIENT_ID and UNICOP_OIDC_CLIENT_SECRET (Keycloak), or UNICOP_ADMIN_TOKEN (break-glass; a reference: env:NAME, file:/path or vault:mount/path#key)',
      );
    }
    let token: string;
    try {
      token = await credentials.accessToken();
    } catch (error) {
      if (error instanceof SignInError) throw new CommandFailedError(error.message, { status: null });
      throw error;
    }
    const url = `${this.options.baseUrl.replace(/\/$/, '')}${path}`;
    let lastProblem = '';
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: {
            Authorization: `Bearer ${token}`,
            ...(body ? { 'Content-Type': 'application/json' } : {}),
            ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}),
          },
          ...(body ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (error) {
        lastProblem = `cannot reach the admin API at ${this.options.baseUrl}: ${causeOf(error)}`;
        // Only an acting call with a key may be sent again blindly; a GET always may.
        if ((method === 'POST' && !idempotencyKey) || attempt === this.attempts) break;
        await sleep(backoffMs(attempt));
        continue;
      }
      const answer = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      const retriable =
        res.status === 503 || (res.status === 409 && answer.reason === 'idempotency_in_flight');
      if (retriable && attempt < this.attempts) {
        lastProblem = describeRefusal(res.status, answer);
        const after = Number(res.headers.get('retry-after'));
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 10) * 1000 : backoffMs(attempt));
        continue;
      }
      if (res.status < 200 || res.status >= 300) {
        throw new CommandFailedError(`the admin API refused: ${describeRefusal(res.status, answer)}`, {
          status: res.status,
          reason: answer.reason ?? null,
        });
      }
      return {
        status: res.status,
        body: answer,
        replayed: res.headers.get('idempotent-replayed') === 'true',
      };
    }
    throw new CommandFailedError(lastProblem, { status: null });
  }
}

function backoffMs(attempt: number): number {
  return Math.min(500 * 2 ** (attempt - 1), 5_000);
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

function describeRefusal(status: number, body: Record<string, unknown>): string {
  const reason = typeof body.reason === 'string' ? body.reason : 'no reason given';
  const message = typeof body.message === 'string' ? `: ${body.message}` : '';
  return `${status} ${reason}${message}`;
}
