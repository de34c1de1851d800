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

/**
 * What a person does in the browser for `unicop login`: opens the device address, signs in as
 * `username`, and grants (or refuses) the CLI access on Keycloak's consent page — here by form posts
 * with the cookies Keycloak sets.
 */
export async function approveDevice(
  verificationUriComplete: string,
  username: string,
  grant = true,
): Promise<void> {
  const jar = new Map<string, string>();
  /** Follows redirects; the page's first form: where it posts and its hidden fields. */
  async function go(
    start: string,
    init: RequestInit = {},
  ): Promise<{ action: string; hidden: Record<string, string> }> {
    let url = start;
    let request = init;
    for (let hop = 0; hop < 10; hop++) {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await fetch(url, {
        ...request,
        redirect: 'manual',
        headers: { ...(request.headers as Record<string, string>), Cookie: cookie },
      });
      for (const set of res.headers.getSetCookie()) {
        const pair = set.split(';')[0] ?? '';
        const eq = pair.indexOf('=');
        if (eq > 0) jar.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        url = new URL(location, url).toString();
        request = {};
        continue;
      }
      const body = await res.text();
      const action = /<form[^>]*action="([^"]+)"/.exec(body)?.[1];
      const hidden: Record<string, string> = {};
      for (const m of body.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
        const name = /name="([^"]+)"/.exec(m[0])?.[1];
        if (name) hidden[name] = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
      }
      return { action: action ? new URL(action.replace(/&amp;/g, '&'), url).toString() : '', hidden };
    }
    throw new Error('Keycloak redirected more than 10 times');
  }
  const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
  const login = await go(verificationUriComplete);
  const consent = await go(login.action, {
    method: 'POST',
    headers: form,
    body: new URLSearchParams({ ...login.hidden, username, password: keycloak.userPassword() }),
  });
  if (!consent.action) throw new Error(`no consent page after signing in as ${username}`);
  await go(consent.action, {
    method: 'POST',
    headers: form,
    body: new URLSearchParams({ ...consent.hidden, ...(grant ? { accept: 'Yes' } : { cancel: 'No' }) }),
  });
}
