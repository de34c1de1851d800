/**
 * A person's sign-in from the CLI (`unicop login`, decision 0051): the OAuth 2.0 device authorization
 * grant (RFC 8628) on the realm's public client `unicop-people`. The CLI shows a code and an address;
 * the person signs in there with a browser; the CLI polls the token endpoint (at the interval the
 * realm asks, slower when told `slow_down`) until it gets the tokens, the person refuses, or the
 * code expires. The tokens are kept in a file of the person's (mode 600) and used — refreshed with
 * the refresh token when the access token is near its end — by the admin commands that follow.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Clock, systemClock } from '../clock.js';
import { postForm as post, RealmEndpoints, SignInError } from './realm.js';

export interface DeviceCode {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string | null;
  intervalSeconds: number;
  expiresAt: number;
}

export interface HeldTokens {
  accessToken: string;
  /** Epoch ms after which the access token is not used (30 s before its expiry). */
  accessUntil: number;
  refreshToken: string | null;
}

export class DeviceSignIn {
  private readonly clock: Clock;
  private readonly realm: RealmEndpoints;

  constructor(private readonly options: { issuer: string; clientId: string; clock?: Clock }) {
    this.clock = options.clock ?? systemClock;
    this.realm = new RealmEndpoints(options.issuer);
  }

  private async discover(): Promise<{ device: string; token: string }> {
    const doc = await this.realm.discovery();
    if (!doc.device_authorization_endpoint) {
      throw new SignInError(`the realm at ${this.options.issuer} offers no device authorization grant`);
    }
    return { device: doc.device_authorization_endpoint, token: doc.token_endpoint };
  }

  /**
   * Ends the person's session at the realm (RFC 7009): the refresh token revoked at the realm's
   * revocation endpoint. False when the realm publishes none (nothing to ask); a SignInError when it
   * refuses.
   */
  async revoke(refreshToken: string): Promise<boolean> {
    const { revocation_endpoint } = await this.realm.discovery();
    if (!revocation_endpoint) return false;
    const { status, body } = await post(revocation_endpoint, {
      token: refreshToken,
      token_type_hint: 'refresh_token',
      client_id: this.options.clientId,
    });
    if (status !== 200) {
      throw new SignInError(`Keycloak refused to revoke the sign-in: ${status} ${String(body.error ?? '')}`);
    }
    return true;
  }

  /** Asks the realm for a code for the person to enter. */
  async start(): Promise<DeviceCode> {
    const { device } = await this.discover();
    const { status, body } = await post(device, { client_id: this.options.clientId, scope: 'openid' });
    if (status !== 200 || typeof body.device_code !== 'string' || typeof body.user_code !== 'string') {
      throw new SignInError(
        `Keycloak refused a device code for ${this.options.clientId}: ${status} ${String(body.error ?? '')}`,
      );
    }
    return {
      deviceCode: body.device_code,
      userCode: body.user_code,
      verificationUri: String(body.verification_uri),
      verificationUriComplete:
        typeof body.verification_uri_complete === 'string' ? body.verification_uri_complete : null,
      intervalSeconds: Number(body.interval ?? 5),
      expiresAt: this.clock.now().getTime() + Number(body.expires_in ?? 600) * 1000,
    };
  }

  /** Polls until the person has signed in (the tokens), refused or let the code expire (SignInError). */
  async complete(code: DeviceCode): Promise<HeldTokens> {
    const { token } = await this.discover();
    let interval = code.intervalSeconds;
    for (;;) {
      if (this.clock.now().getTime() > code.expiresAt)
        throw new SignInError('the code expired before anyone signed in');
      const { status, body } = await post(token, {
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        device_code: code.deviceCode,
        client_id: this.options.clientId,
      });
      if (status === 200) return this.held(body);
      // A server error is the realm's, not an answer: Keycloak 26.7 answered one poll 500 (a null
      // client session while the person's consent was being saved); ask again at the interval.
      if (body.error === 'authorization_pending' || status >= 500) {
        await this.clock.sleep(interval * 1000);
      } else if (body.error === 'slow_down') {
        interval += 5;
        await this.clock.sleep(interval * 1000);
      } else if (body.error === 'access_denied') {
        throw new SignInError('the sign-in was refused');
      } else {
        throw new SignInError(
          `Keycloak ended the sign-in: ${status} ${String(body.error ?? 'no reason given')}`,
        );
      }
    }
  }

  /** New tokens from a refresh token (the person's session at Keycloak still open). */
  async refresh(refreshToken: string): Promise<HeldTokens> {
    const { token } = await this.discover();
    const { status, body } = await post(token, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: this.options.clientId,
    });
    if (status !== 200) {
      throw new SignInError(
        `the sign-in has ended (${String(body.error ?? status)}): run unicop login again`,
      );
    }
    return this.held(body);
  }

  private held(body: Record<string, unknown>): HeldTokens {
    if (typeof body.access_token !== 'string')
      throw new SignInError('Keycloak answered without an access token');
    return {
      accessToken: body.access_token,
      accessUntil: this.clock.now().getTime() + Math.max(Number(body.expires_in ?? 60) * 1000 - 30_000, 0),
      refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : null,
    };
  }
}

/** The person's tokens in a file only they may read (written whole, then renamed into place). */
export class TokenFile {
  constructor(readonly path: string) {}

  read(): HeldTokens | null {
    if (!existsSync(this.path)) return null;
    try {
      return JSON.parse(readFileSync(this.path, 'utf8')) as HeldTokens;
    } catch {
      return null;
    }
  }

  write(tokens: HeldTokens): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(tokens), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }
}

/** The person's access token from the file, refreshed when near its end; null when there is none. */
export function personCredentials(signIn: DeviceSignIn, file: TokenFile, clock: Clock = systemClock) {
  return {
    async accessToken(): Promise<string> {
      const held = file.read();
      if (!held) throw new SignInError(`not signed in (no ${file.path}): run unicop login`);
      if (held.accessUntil > clock.now().getTime()) return held.accessToken;
      if (!held.refreshToken) throw new SignInError('the sign-in has ended: run unicop login again');
      const fresh = await signIn.refresh(held.refreshToken);
      file.write(fresh);
      return fresh.accessToken;
    },
  };
}
