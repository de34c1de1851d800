/**
 * `unicop logout` leaves no tokens on the machine whatever happens (decision 0057): against the
 * stack's real Keycloak, a revocation the realm refuses (the people client unknown to it) still
 * deletes the token file and says so in the error; an unreadable token file is no sign-in and is
 * deleted too. The revocation that works is tested in cli-login.test.ts.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TokenFile } from '../../core/auth/device-flow.js';
import { logout } from '../../core/cli/commands/login.js';
import { CommandFailedError, createOutput } from '../../core/cli/commands/output.js';
import { parseConfig } from '../../core/config.js';
import { keycloak } from '../support/keycloak.js';

const dir = mkdtempSync(join(tmpdir(), 'unicop-logout-'));

function recordingOutput(results: unknown[]) {
  return { ...createOutput(true), result: (value: unknown) => void results.push(value) };
}

describe('unicop logout when the sign-in cannot be revoked', () => {
  it('Keycloak refuses the revocation: the token file is deleted all the same and the error says both', async () => {
    const tokenFile = join(dir, 'refused-tokens.json');
    new TokenFile(tokenFile).write({
      accessToken: 'not-a-real-access-token',
      accessUntil: Date.now() + 60_000,
      refreshToken: 'not-a-real-refresh-token',
    });
    const config = parseConfig({
      UNICOP_OIDC_ISSUER: keycloak.issuer(),
      UNICOP_OIDC_PEOPLE_CLIENT_ID: 'unicop-no-such-client',
      UNICOP_OIDC_TOKEN_FILE: tokenFile,
    });
    const results: unknown[] = [];
    const error = await logout(config, recordingOutput(results)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandFailedError);
    expect((error as Error).message).toMatch(
      new RegExp(`^tokens deleted from ${tokenFile}, but Keycloak refused to revoke the sign-in: 4\\d\\d`),
    );
    expect((error as Error).message).not.toContain('not-a-real-refresh-token');
    expect(existsSync(tokenFile)).toBe(false);
    expect(results).toEqual([]);
  }, 120_000);

  it('an unreadable token file: not signed in, exit 0, and the file is deleted', async () => {
    const tokenFile = join(dir, 'garbled-tokens.json');
    writeFileSync(tokenFile, '{not json', { mode: 0o600 });
    const config = parseConfig({ UNICOP_OIDC_ISSUER: keycloak.issuer(), UNICOP_OIDC_TOKEN_FILE: tokenFile });
    const results: unknown[] = [];
    expect(await logout(config, recordingOutput(results))).toBe(0);
    expect(results).toEqual([{ signedOut: false, tokenFile }]);
    expect(existsSync(tokenFile)).toBe(false);
  });
});
