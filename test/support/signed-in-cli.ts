/**
 * The environment for the built CLI (`runUnicop`) signed in as one of the realm's test users: an access
 * token from Keycloak written to a token file of its own (a fresh temporary directory), as
 * `unicop login` would leave it, with no refresh token. It lives 240 s — under the realm's 5-minute
 * access tokens, and enough for a few CLI runs on a loaded machine.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenFile } from '../../core/auth/device-flow.js';
import { keycloak, userToken } from './keycloak.js';

export async function signedInCliEnv(
  username: string,
  adminUrl: string,
): Promise<{ UNICOP_ADMIN_URL: string; UNICOP_OIDC_ISSUER: string; UNICOP_OIDC_TOKEN_FILE: string }> {
  const tokenFile = join(mkdtempSync(join(tmpdir(), 'unicop-cli-')), 'tokens.json');
  new TokenFile(tokenFile).write({
    accessToken: await userToken(username),
    accessUntil: Date.now() + 240_000,
    refreshToken: null,
  });
  return {
    UNICOP_ADMIN_URL: adminUrl,
    UNICOP_OIDC_ISSUER: keycloak.issuer(),
    UNICOP_OIDC_TOKEN_FILE: tokenFile,
  };
}
