/**
 * `unicop login` against the stack's real Keycloak (decision 0051): the device authorization grant
 * on the public client unicop-people — the command prints the address and code, a person signs in
 * and grants access (here by the form posts test/support/keycloak.ts makes), the tokens land in the
 * token file (mode 600), and the admin commands then act as that person: an override audited with
 * their name. A person who refuses ends the login with exit-worthy "refused"; an expired access
 * token is renewed with the refresh token. `unicop logout` revokes the sign-in at Keycloak (its refresh
 * token refused afterwards) and deletes the token file.
 */
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DeviceSignIn, TokenFile } from '../../core/auth/device-flow.js';
import { AdminClient, adminCredentials } from '../../core/cli/commands/admin-client.js';
import { login, logout } from '../../core/cli/commands/login.js';
import { createOutput } from '../../core/cli/commands/output.js';
import { parseConfig } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { TopicTail } from '../support/kafka.js';
import { approveDevice, keycloak, keycloakUsers } from '../support/keycloak.js';
import { netbox } from '../support/netbox.js';
import { stack, uniqueName } from '../support/stack.js';

describe('unicop login (device flow)', () => {
  let bridge: RunningBridge;
  let tail: TopicTail;
  let site: { id: number };
  const dir = mkdtempSync(join(tmpdir(), 'unicop-login-'));

  beforeAll(async () => {
    const name = uniqueName('login-site');
    site = await netbox('POST', '/api/dcim/sites/', { name, slug: name });
    tail = await TopicTail.start([topics.audit]);
    bridge = await startBridge({ ...keycloak.env(), UNICOP_NETBOX_TOKEN: stack.netboxToken() });
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await bridge?.close();
    await tail?.stop();
    if (site) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });

  it('prints the address, the person signs in and grants; tokens kept 600; the admin commands act as them', async () => {
    const tokenFile = join(dir, 'tokens.json');
    const config = parseConfig({ UNICOP_OIDC_ISSUER: keycloak.issuer(), UNICOP_OIDC_TOKEN_FILE: tokenFile });
    let approving: Promise<void> | null = null;
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      const line = String(chunk);
      written.push(line);
      const address = /open (\S+) and confirm the code/.exec(line)?.[1];
      if (address && !approving) approving = approveDevice(address, keycloakUsers.operator);
      return true;
    });
    const results: unknown[] = [];
    const out = { ...createOutput(true), result: (value: unknown) => void results.push(value) };
    const code = await login(config, out);
    vi.restoreAllMocks();
    await approving;
    expect(code).toBe(0);
    expect(written.join('')).toMatch(/confirm the code [A-Z]{4}-[A-Z]{4}/);
    expect(results).toEqual([{ signedIn: 'otto-operator', tokenFile }]);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);

    const client = new AdminClient({
      baseUrl: bridge.url,
      credentials: adminCredentials(config),
      attempts: 1,
    });
    const reason = `device-flow reconcile ${Date.now()}`;
    expect((await client.call('POST', `/roots/site/${site.id}/reconcile`, { reason })).status).toBe(202);
    const [audit] = await tail.waitFor(
      (m) => m.topic === topics.audit && (m.value.data as { reason: string }).reason === reason,
    );
    expect(audit?.value.data).toMatchObject({
      actor: 'otto-operator',
      metadata: { authenticatedBy: 'oidc' },
    });

    // The access token past its time: the next command renews it with the refresh token.
    const file = new TokenFile(tokenFile);
    const held = file.read();
    if (!held) throw new Error('no tokens kept');
    file.write({ ...held, accessUntil: 0 });
    expect((await client.call('GET', `/roots/site/${site.id}`)).status).toBe(200);
    expect(file.read()?.accessToken).not.toBe(held.accessToken);
  }, 120_000);

  it('a person who refuses ends the sign-in: "the sign-in was refused"', async () => {
    const signIn = new DeviceSignIn({ issuer: keycloak.issuer(), clientId: 'unicop-people' });
    const code = await signIn.start();
    await approveDevice(code.verificationUriComplete ?? code.verificationUri, keycloakUsers.viewer, false);
    await expect(signIn.complete(code)).rejects.toThrow('the sign-in was refused');
  }, 120_000);

  it('unicop logout revokes the sign-in at Keycloak (the refresh token refused after) and deletes the token file', async () => {
    const tokenFile = join(dir, 'logout-tokens.json');
    const config = parseConfig({ UNICOP_OIDC_ISSUER: keycloak.issuer(), UNICOP_OIDC_TOKEN_FILE: tokenFile });
    const signIn = new DeviceSignIn({
      issuer: keycloak.issuer(),
      clientId: config.UNICOP_OIDC_PEOPLE_CLIENT_ID,
    });
    const code = await signIn.start();
    await approveDevice(code.verificationUriComplete ?? code.verificationUri, keycloakUsers.viewer);
    const tokens = await signIn.complete(code);
    if (!tokens.refreshToken) throw new Error('Keycloak gave no refresh token');
    new TokenFile(tokenFile).write(tokens);
    // Before: the refresh token renews (so "refused after" below is the revocation's doing).
    const renewed = await signIn.refresh(tokens.refreshToken);
    if (!renewed.refreshToken) throw new Error('Keycloak gave no refresh token on renewal');
    new TokenFile(tokenFile).write(renewed);

    const results: unknown[] = [];
    const out = { ...createOutput(true), result: (value: unknown) => void results.push(value) };
    expect(await logout(config, out)).toBe(0);
    expect(results).toEqual([{ signedOut: true, revoked: true, tokenFile }]);
    expect(existsSync(tokenFile)).toBe(false);
    await expect(signIn.refresh(renewed.refreshToken)).rejects.toThrow('the sign-in has ended');
    // Signed out already: says so, exit 0.
    expect(await logout(config, out)).toBe(0);
    expect(results[1]).toEqual({ signedOut: false, tokenFile });
  }, 120_000);
});
