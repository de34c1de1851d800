/**
 * Who is calling: an OIDC access token (a JWT from Keycloak's realm, docs/decisions/0051) checked
 * against the realm's published keys (JWKS, fetched and cached by jose, refetched on an unknown key
 * id) — signature, algorithm, issuer, audience, expiry — and turned into a `Principal`: the person
 * (`preferred_username`, else `sub`) and their realm roles. A token that fails any check is an
 * `InvalidTokenError` naming which check (`token_expired`, `wrong_issuer`, …): the caller answers
 * 401 with that reason. Keys that cannot be fetched are a `KeysUnavailableError` (503, not the
 * caller's fault).
 */
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from 'jose';
import { type Clock, systemClock } from '../clock.js';
import { type Role, roleNames } from './roles.js';

export interface Principal {
  /** The name audit events carry: `preferred_username`, else `sub`. */
  name: string;
  /** The token's `sub` (Keycloak's user id), or `break-glass`. */
  subject: string;
  /** Realm roles UNICOP knows (composites already expanded by Keycloak). */
  roles: ReadonlySet<Role>;
  /** How the caller proved who they are. */
  via: 'oidc' | 'break-glass';
}

export interface AccessTokenVerifierOptions {
  /** The realm's issuer (`iss`), e.g. http://127.0.0.1:18180/realms/unicop. */
  issuer: string;
  /** The audience (`aud`) a token must name: the admin API's. */
  audience: string;
  /** The realm's JWKS; Keycloak's `<issuer>/protocol/openid-connect/certs` when not given. */
  jwksUrl?: string;
  /** Signing algorithms accepted (never `none`, never a symmetric one). */
  algorithms: readonly string[];
  /** What "now" is when checking `exp` and `nbf`; the system clock by default. */
  clock?: Clock;
}

export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
  constructor(
    readonly reason:
      | 'token_missing'
      | 'token_malformed'
      | 'token_expired'
      | 'token_not_yet_valid'
      | 'wrong_issuer'
      | 'wrong_audience'
      | 'bad_signature'
      | 'algorithm_not_allowed'
      | 'unknown_signing_key'
      | 'token_invalid',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class KeysUnavailableError extends Error {
  override readonly name = 'KeysUnavailableError';
}

export class AccessTokenVerifier {
  private readonly keys: ReturnType<typeof createRemoteJWKSet>;
  private readonly clock: Clock;

  constructor(private readonly options: AccessTokenVerifierOptions) {
    const jwksUrl = options.jwksUrl ?? `${options.issuer.replace(/\/$/, '')}/protocol/openid-connect/certs`;
    // Keys are cached; an unknown key id refetches, at most once every 30 s (a rotation is seen).
    this.keys = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000 });
    this.clock = options.clock ?? systemClock;
  }

  async verify(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: [...this.options.algorithms],
        currentDate: this.clock.now(),
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      throw refusal(error);
    }
    const name = typeof payload.preferred_username === 'string' ? payload.preferred_username : payload.sub;
    const realmRoles = (payload.realm_access as { roles?: unknown } | undefined)?.roles;
    const roles = new Set<Role>(
      Array.isArray(realmRoles) ? roleNames.filter((role) => realmRoles.includes(role)) : [],
    );
    return { name: name ?? 'unknown', subject: payload.sub ?? 'unknown', roles, via: 'oidc' };
  }
}

/** jose's error, as the reason a caller is told (never the token itself). */
function refusal(error: unknown): Error {
  if (error instanceof errors.JWTExpired) {
    return new InvalidTokenError('token_expired', 'the access token has expired', { cause: error });
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') {
      return new InvalidTokenError('wrong_issuer', 'the access token was not issued by the configured realm');
    }
    if (error.claim === 'aud') {
      return new InvalidTokenError('wrong_audience', 'the access token is not meant for the admin API');
    }
    if (error.claim === 'nbf' || error.claim === 'iat') {
      return new InvalidTokenError('token_not_yet_valid', 'the access token is not valid yet');
    }
    return new InvalidTokenError('token_invalid', `the access token's ${error.claim} claim is not valid`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new InvalidTokenError('bad_signature', "the access token's signature does not verify");
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return new InvalidTokenError(
      'algorithm_not_allowed',
      "the access token's signing algorithm is not accepted",
    );
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return new InvalidTokenError(
      'unknown_signing_key',
      'the access token was signed by a key the realm does not publish',
    );
  }
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) {
    return new KeysUnavailableError("the realm's signing keys could not be fetched", { cause: error });
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return new InvalidTokenError('token_malformed', 'the bearer value is not a well-formed JWT');
  }
  if (error instanceof errors.JOSEError) {
    return new InvalidTokenError('token_invalid', 'the access token is not valid');
  }
  // A network failure fetching the JWKS (fetch throws a TypeError).
  return new KeysUnavailableError("the realm's signing keys could not be fetched", { cause: error });
}
