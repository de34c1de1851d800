/**
 * `unicop login`: a person signs in to Keycloak with the device authorization grant
 * (core/auth/device-flow.ts, client UNICOP_OIDC_PEOPLE_CLIENT_ID): the command prints the address
 * and the code, waits while the person signs in with a browser, and keeps the tokens in
 * UNICOP_OIDC_TOKEN_FILE (mode 600). The admin commands then act as that person (decision 0051).
 * `unicop logout` ends it (decision 0057): the refresh token revoked at the realm's revocation
 * endpoint when its discovery document names one (RFC 7009), then the token file deleted.
 */
import { rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { SignInError } from '../../auth/client-credentials.js';
import { DeviceSignIn, TokenFile } from '../../auth/device-flow.js';
import type { UnicopConfig } from '../../config.js';
import { CommandFailedError, type Output } from './output.js';

/** Where a person's tokens are kept: UNICOP_OIDC_TOKEN_FILE, else ~/.config/unicop/tokens.json. */
export function tokenFileOf(config: Pick<UnicopConfig, 'UNICOP_OIDC_TOKEN_FILE'>): TokenFile {
  return new TokenFile(config.UNICOP_OIDC_TOKEN_FILE ?? join(homedir(), '.config', 'unicop', 'tokens.json'));
}

export async function login(config: UnicopConfig, out: Output): Promise<number> {
  if (!config.UNICOP_OIDC_ISSUER) {
    throw new CommandFailedError('no identity provider: set UNICOP_OIDC_ISSUER (the Keycloak realm)');
  }
  const signIn = new DeviceSignIn({
    issuer: config.UNICOP_OIDC_ISSUER,
    clientId: config.UNICOP_OIDC_PEOPLE_CLIENT_ID,
  });
  try {
    const code = await signIn.start();
    // On stderr whatever the output mode: the person needs it to sign in.
    process.stderr.write(
      `To sign in, open ${code.verificationUriComplete ?? code.verificationUri} and confirm the code ${code.userCode}\n`,
    );
    const tokens = await signIn.complete(code);
    const file = tokenFileOf(config);
    file.write(tokens);
    const claims = decodeJwt(tokens.accessToken);
    const name = String(claims.preferred_username ?? claims.sub ?? 'unknown');
    out.result({ signedIn: name, tokenFile: file.path }, `signed in as ${name} (tokens in ${file.path})`);
    return 0;
  } catch (error) {
    if (error instanceof SignInError) throw new CommandFailedError(error.message);
    throw error;
  }
}

export async function logout(config: UnicopConfig, out: Output): Promise<number> {
  const file = tokenFileOf(config);
  const held = file.read();
  let revoked = false;
  try {
    if (held?.refreshToken && config.UNICOP_OIDC_ISSUER) {
      const signIn = new DeviceSignIn({
        issuer: config.UNICOP_OIDC_ISSUER,
        clientId: config.UNICOP_OIDC_PEOPLE_CLIENT_ID,
      });
      try {
        revoked = await signIn.revoke(held.refreshToken);
      } catch (error) {
        if (error instanceof SignInError) {
          throw new CommandFailedError(`tokens deleted from ${file.path}, but ${error.message}`, {
            signedOut: true,
            revoked: false,
          });
        }
        throw error;
      }
    }
  } finally {
    // The file goes whatever the realm says: a sign-out never leaves tokens behind on this machine
    // (and an unreadable file is no sign-in either).
    rmSync(file.path, { force: true });
  }
  if (!held) {
    out.result({ signedOut: false, tokenFile: file.path }, `not signed in (no tokens in ${file.path})`);
    return 0;
  }
  // Why nothing was revoked, when it was not: no refresh token held, no realm configured, or a realm
  // without a revocation endpoint.
  const unrevoked = !held.refreshToken
    ? ' (no refresh token was held: nothing to revoke)'
    : !config.UNICOP_OIDC_ISSUER
      ? ' (UNICOP_OIDC_ISSUER is not set: the refresh token was not revoked and lives until it expires)'
      : ' (the realm offers no revocation: the refresh token lives until it expires)';
  out.result(
    { signedOut: true, revoked, tokenFile: file.path },
    `signed out: tokens deleted from ${file.path}${revoked ? '; the sign-in was revoked at Keycloak' : unrevoked}`,
  );
  return 0;
}
