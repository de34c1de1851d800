/**
 * The one check of an `Authorization: Bearer …` header, shared by the admin API and the workers'
 * POST /sweep: an OIDC access token (core/auth/access-token.ts), or — only when
 * UNICOP_ADMIN_BREAK_GLASS is on — the shared admin token, compared by digest (core/same-secret.ts)
 * and answered with the `break-glass` principal (every role). Then the role the route needs.
 * `admit()` is the whole gate both use: the check, the role, the refusal's status and reason, and a
 * break-glass use made loud (a warn line and an `admin.break_glass_used` audit event).
 */

import type { Logger } from 'pino';
import type { UnicopConfig } from '../config.js';
import type { AuditData } from '../events/audit.js';
import { sameSecret } from '../same-secret.js';
import {
  AccessTokenVerifier,
  InvalidTokenError,
  KeysUnavailableError,
  type Principal,
} from './access-token.js';
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

/** Why a request was not let in, as the answer to give (the same in the admin API and POST /sweep). */
export interface BearerRefusal {
  status: 401 | 403 | 503;
  /** The machine-readable reason: the failed check, `role_required` or `identity_provider_unavailable`. */
  reason: string;
  message: string;
  headers: Record<string, string>;
}

/**
 * Where a break-glass use is made loud: a warn line and an `admin.break_glass_used` audit event.
 * `record` is NOT awaited, in the bridge and in the workers alike (decision 0057): the event is
 * written beside the request's work, never in its way — a slow or absent Kafka must not delay or
 * lock out break-glass, which is for when things are broken. A failed write is the recorder's to log.
 */
export interface BreakGlassWitness {
  /** The component's name in the warn line (`admin API`, `workers`). */
  component: string;
  log?: Logger;
  record(data: AuditData): void;
}

export type Admission =
  | { principal: Principal; refusal?: never }
  | { refusal: BearerRefusal; principal?: never };

/**
 * The one gate of a route: the caller of `header`, holding `role`, or the refusal to answer — 401
 * with the failed check as the reason (and `WWW-Authenticate: Bearer`), 403 `role_required`, 503
 * `identity_provider_unavailable` when the realm's keys cannot be fetched. A break-glass use is
 * logged at warn and audited (`witness`) before the route acts.
 */
export async function admit(
  header: string | undefined,
  check: BearerCheck,
  role: Role,
  request: { route: string; peer: string | null; witness: BreakGlassWitness },
): Promise<Admission> {
  let principal: Principal;
  try {
    principal = await authenticate(header, check);
    requireRole(principal, role);
  } catch (error) {
    if (error instanceof InvalidTokenError) {
      return {
        refusal: {
          status: 401,
          reason: error.reason,
          message: error.message,
          headers: { 'WWW-Authenticate': 'Bearer' },
        },
      };
    }
    if (error instanceof AccessDeniedError) {
      return { refusal: { status: 403, reason: 'role_required', message: error.message, headers: {} } };
    }
    if (error instanceof KeysUnavailableError) {
      return {
        refusal: {
          status: 503,
          reason: 'identity_provider_unavailable',
          message: error.message,
          headers: { 'Retry-After': '5' },
        },
      };
    }
    throw error;
  }
  if (principal.via === 'break-glass') {
    const { route, peer, witness } = request;
    witness.log?.warn({ route, peer }, `${witness.component}: break-glass token used`);
    witness.record({
      action: 'admin.break_glass_used',
      actor: 'break-glass',
      subjectType: 'automation',
      subjectId: 'global',
      outcome: 'ok',
      reason: `shared admin token used for ${route} (${witness.component})`,
      correlation: {},
      metadata: { route, peer },
    });
  }
  return { principal };
}
