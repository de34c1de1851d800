/**
 * Tokens from the stack's real Keycloak (scripts/stack.d/keycloak.sh, realm unicop): a test user's
 * access token (password grant on the development-only client unicop-test), a client's own token
 * (client credentials), and the facts a bridge needs to check them. Secrets are read from the files
 * the stack generated (var/keycloak/secrets), never printed.
 */
import { readFileSync } from 'node:fs';
import type { Role } from '../../core/auth/roles.js';
import { stackFact } from './stack.js';

/** One test user per realm role (each in the role's group). */
export const keycloakUsers: Record<Role, string> = {
  viewer: 'vera-viewer',
  operator: 'otto-operator',
  approver: 'abby-approver',
  admin: 'ada-admin',
};

export const keycloak = {
  issuer: () => stackFact('UNICOP_OIDC_ISSUER'),
  /** What a bridge or workers process needs to accept the realm's tokens. */
  env: (): Record<string, string> => ({ UNICOP_OIDC_ISSUER: stackFact('UNICOP_OIDC_ISSUER') }),
  testSecret: () => readFileSync(stackFact('UNICOP_KEYCLOAK_TEST_SECRET_FILE'), 'utf8').trim(),
  userPassword: () => readFileSync(stackFact('UNICOP_KEYCLOAK_USER_PASSWORD_FILE'), 'utf8').trim(),
  cliSecretRef: () => stackFact('UNICOP_OIDC_CLIENT_SECRET'),
};

async function token(form: Record<string, string>): Promise<string> {
  const res = await fetch(`${keycloak.issuer()}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const answer = (await res.json()) as { access_token?: string; error?: string };
  if (!res.ok || !answer.access_token) {
    throw new Error(
      `Keycloak refused ${form.grant_type} for ${form.username ?? form.client_id}: ${answer.error}`,
    );
  }
  return answer.access_token;
}

/** A test user's access token; `client` unicop-test-expiring gives one that expires after 2 s. */
export function userToken(
  username: string,
  client: 'unicop-test' | 'unicop-test-expiring' = 'unicop-test',
): Promise<string> {
  return token({
    grant_type: 'password',
    client_id: client,
    client_secret: keycloak.testSecret(),
    username,
    password: keycloak.userPassword(),
  });
}

/** The token of unicop-other-service: a real token of the realm, but not meant for the admin API. */
export function otherServiceToken(): Promise<string> {
  return token({
    grant_type: 'client_credentials',
    client_id: 'unicop-other-service',
    client_secret: keycloak.testSecret(),
  });
}
