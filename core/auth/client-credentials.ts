/**
 * The CLI's and automation's sign-in to Keycloak (decision 0051): the OAuth 2.0 client credentials
 * grant at the realm's token endpoint (from its discovery document, fetched once: core/auth/realm.ts),
 * the access token kept until 30 s before it expires. The token is the caller's bearer for the admin
 * API; it is never logged.
 */
import { type Clock, systemClock } from '../clock.js';
import { postForm, RealmEndpoints, SignInError } from './realm.js';

export { SignInError } from './realm.js';

export interface ClientCredentialsOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  timeoutMs?: number;
  clock?: Clock;
}

export class ClientCredentials {
  private held: { token: string; until: number } | null = null;
  private readonly clock: Clock;
  private readonly realm: RealmEndpoints;

  constructor(private readonly options: ClientCredentialsOptions) {
    this.clock = options.clock ?? systemClock;
    this.realm = new RealmEndpoints(options.issuer, options.timeoutMs);
  }

  /** A current access token, signing in again when the one held is (nearly) expired. */
  async accessToken(): Promise<string> {
    const now = this.clock.now().getTime();
    if (this.held && this.held.until > now) return this.held.token;
    const { token_endpoint } = await this.realm.discovery();
    const { status, body } = await postForm(
      token_endpoint,
      {
        grant_type: 'client_credentials',
        client_id: this.options.clientId,
        client_secret: this.options.clientSecret,
      },
      this.options.timeoutMs,
    );
    if (status !== 200 || typeof body.access_token !== 'string') {
      throw new SignInError(
        `Keycloak refused client ${this.options.clientId}: ${status} ${String(body.error ?? 'no reason given')}`,
      );
    }
    const lifetimeMs = Number(body.expires_in ?? 60) * 1000;
    this.held = { token: body.access_token, until: now + Math.max(lifetimeMs - 30_000, 0) };
    return body.access_token;
  }
}
