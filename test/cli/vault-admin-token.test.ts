/**
 * The CLI takes its admin credential by `vault:` reference (decision 0057): the compiled `unicop`,
 * given `UNICOP_ADMIN_TOKEN=vault:unicop/admin#token` and no Keycloak client, reads it from the
 * stack's real OpenBao with the CLI's own AppRole and acts with it (break-glass on at this bridge: a
 * reconcile answered 202 and logged as break-glass, a warn line of the bridge). The token never appears in its output. A
 * reference to a secret the CLI's policy does not grant fails naming the field, not the value.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { netbox } from '../support/netbox.js';
import { stack, stackFact, uniqueName } from '../support/stack.js';
import { assertBuilt, runUnicop } from './run-unicop.js';

describe('unicop with a vault: admin token', () => {
  let bridge: RunningBridge;
  let site: { id: number };
  // The value Vault holds (vault.sh seeds unicop/admin#token from this file).
  const adminToken = () =>
    readFileSync(join(stackFact('UNICOP_VAULT_APPROLE_DIR'), '..', 'secrets', 'admin_token'), 'utf8').trim();
  // No var/stack.env of the stack's: no Keycloak client the CLI would prefer over the admin token.
  const bareVar = mkdtempSync(join(tmpdir(), 'unicop-cli-vault-'));
  const env = () => ({
    UNICOP_VAR: bareVar,
    UNICOP_ADMIN_URL: bridge.url,
    UNICOP_VAULT_ADDR: stackFact('UNICOP_VAULT_ADDR'),
    UNICOP_VAULT_APPROLE_DIR: stackFact('UNICOP_VAULT_APPROLE_DIR'),
  });

  beforeAll(async () => {
    assertBuilt();
    const name = uniqueName('cli-vault-site');
    site = await netbox('POST', '/api/dcim/sites/', { name, slug: name });
    bridge = await startBridge({
      UNICOP_ADMIN_TOKEN: adminToken(),
      UNICOP_ADMIN_BREAK_GLASS: 'true',
      UNICOP_NETBOX_TOKEN: stack.netboxToken(),
    });
  });
  afterAll(async () => {
    await bridge?.close();
    if (site) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });

  it('reads the admin token from Vault with its AppRole and acts with it', async () => {
    const ran = await runUnicop(['reconcile', `site/${site.id}`, '--reason', 'vault ref', '--json'], {
      ...env(),
      UNICOP_ADMIN_TOKEN: 'vault:unicop/admin#token',
    });
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.stdout)).toMatchObject({ rootKey: `site/${site.id}`, replayed: false });
    expect(ran.stdout + ran.stderr).not.toContain(adminToken());
    expect(bridge.logs.filter((l) => l.includes('break-glass token used'))).toHaveLength(1);
  }, 120_000);

  it("a secret the CLI's policy does not grant fails naming the field", async () => {
    const usesBefore = bridge.logs.filter((l) => l.includes('break-glass token used')).length;
    const ran = await runUnicop(['reconcile', `site/${site.id}`, '--reason', 'vault ref'], {
      ...env(),
      UNICOP_ADMIN_TOKEN: 'vault:unicop/awx#token',
    });
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain('UNICOP_ADMIN_TOKEN');
    // Nothing reached the bridge with a credential.
    expect(bridge.logs.filter((l) => l.includes('break-glass token used'))).toHaveLength(usesBefore);
  }, 120_000);
});
