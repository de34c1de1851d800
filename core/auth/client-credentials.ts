/**
 * The CLI's and automation's sign-in to Keycloak (decision 0051): the OAuth 2.0 client credentials
 * grant at the realm's token endpoint (from its discovery document), the access token kept until
 * 30 s before it expires. The token is the caller's bearer for the admin API; it is never logged.
 */
import { type Clock, systemClock } from '../clock.js';

export interface ClientCredentialsOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  timeoutMs?: number;
  clock?: Clock;
}

export class SignInError extends Error {
  override readonly name = 'SignInError';
}

export class ClientCredentials {
  private held: { token: string; until: number } | null = null;
  private readonly clock: Clock;

  constructor(private readonly options: ClientCredentialsOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** A current access token, signing in again when the one held is (nearly) expired. */
  async accessToken(): Promise<string> {
    const now = this.clock.now().getTime();
    if (this.held && this.held.until > now) return this.held.token;
    const endpoint = await this.tokenEndpoint();
    const res = await this.fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: this.options.clientId,
        client_secret: this.options.clientSecret,
      }),
    });
    const answer = (await res.json().catch(() => ({}))) as {
      access_token?: string;
      expires_in?: number;
      error?: string;
    };
    if (!res.ok || typeof answer.access_token !== 'string') {
      throw new SignInError(
        `Keycloak refused client ${this.options.clientId}: ${res.status} ${answer.error ?? 'no reason given'}`,
      );
    }
    const lifetimeMs = (answer.expires_in ?? 60) * 1000;
    this.held = { token: answer.access_token, until: now + Math.max(lifetimeMs - 30_000, 0) };
    return answer.access_token;
  }

  private async tokenEndpoint(): Promise<string> {
    const url = `${this.options.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const res = await this.fetch(url, {});
    const discovery = (await res.json().catch(() => ({}))) as { token_endpoint?: string };
    if (!res.ok || typeof discovery.token_endpoint !== 'string') {
      throw new SignInError(`no OIDC discovery document at ${url} (${res.status})`);
    }
    return discovery.token_endpoint;
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new SignInError(`cannot reach Keycloak at ${this.options.issuer}: ${cause}`, { cause: error });
    }
  }
}
