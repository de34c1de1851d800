/**
 * The one check of an `Authorization: Bearer …` header, shared by the admin API and the workers'
 * POST /sweep: an OIDC access token (core/auth/access-token.ts), or — only when
 * UNICOP_ADMIN_BREAK_GLASS is on — the shared admin token, compared by digest (core/same-secret.ts)
 * and answered with the `break-glass` principal (every role). Each caller audits a break-glass use
 * loudly itself (a distinct audit event and a warn log). Then the role the route needs.
 */

import type { UnicopConfig } from '../config.js';
import { sameSecret } from '../same-secret.js';
import { AccessTokenVerifier, InvalidTokenError, type Principal } from './access-token.js';
import { grants, type Role, roleNames } from './roles.js';

export interface BearerCheck {
  /** Keycloak's tokens; without it (no UNICOP_OIDC_ISSUER) only break-glass can get in. */
  verifier?: AccessTokenVerifier;
  /** The shared admin token, given only when break-glass is switched on. */
  breakGlassToken?: string;
}

export class AccessDeniedError extends Error {
  override readonly name = 'AccessDeniedError';
  constructor(
    readonly required: Role,
    readonly principal: Principal,
  ) {
    super(`role ${required} required; ${principal.name} holds ${[...principal.roles].join(', ') || 'none'}`);
  }
}

export const breakGlassPrincipal: Principal = {
  name: 'break-glass',
  subject: 'break-glass',
  roles: new Set(roleNames),
  via: 'break-glass',
};

/** Who the header names; an InvalidTokenError (401) when no one, KeysUnavailableError when unknowable. */
export async function authenticate(header: string | undefined, check: BearerCheck): Promise<Principal> {
  const given = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : '';
  if (!given) throw new InvalidTokenError('token_missing', 'a bearer token is required');
  if (check.breakGlassToken && sameSecret(given, check.breakGlassToken)) return breakGlassPrincipal;
  if (!check.verifier) {
    throw new InvalidTokenError(
      'token_invalid',
      'no identity provider is configured and the token is not accepted',
    );
  }
  return check.verifier.verify(given);
}

/** Throws AccessDeniedError (403) unless the principal holds `required` (or admin). */
export function requireRole(principal: Principal, required: Role): void {
  if (!grants(principal.roles, required)) throw new AccessDeniedError(required, principal);
}

/** The check a process's configuration asks for: Keycloak's tokens if an issuer is set; break-glass if on. */
export function bearerCheckFrom(
  config: Pick<
    UnicopConfig,
    | 'UNICOP_OIDC_ISSUER'
    | 'UNICOP_OIDC_JWKS_URL'
    | 'UNICOP_OIDC_AUDIENCE'
    | 'UNICOP_OIDC_ALGORITHMS'
    | 'UNICOP_ADMIN_BREAK_GLASS'
    | 'UNICOP_ADMIN_TOKEN'
  >,
): BearerCheck {
  return {
    ...(config.UNICOP_OIDC_ISSUER
      ? {
          verifier: new AccessTokenVerifier({
            issuer: config.UNICOP_OIDC_ISSUER,
            audience: config.UNICOP_OIDC_AUDIENCE,
            algorithms: config.UNICOP_OIDC_ALGORITHMS,
            ...(config.UNICOP_OIDC_JWKS_URL ? { jwksUrl: config.UNICOP_OIDC_JWKS_URL } : {}),
          }),
        }
      : {}),
    ...(config.UNICOP_ADMIN_BREAK_GLASS && config.UNICOP_ADMIN_TOKEN
      ? { breakGlassToken: config.UNICOP_ADMIN_TOKEN }
      : {}),
  };
}
