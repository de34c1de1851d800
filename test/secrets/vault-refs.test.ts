/**
 * vault: secret references against the stack's real OpenBao (scripts/stack up vault): a reference
 * resolves beside env: and file: ones; a new version reaches the running configuration without a
 * restart; a reference the process's policy does not allow (or a missing key) fails the start naming
 * the field and the reference, never a value; the AppRole token is renewed before it expires and
 * replaced by a new login when its max TTL ends it. Each test has its own KV paths and role
 * (vault-support.ts). The reference syntax itself is checked without Vault.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { loadRuntimeConfig } from '../../core/secrets/runtime-config.js';
import { parseVaultRef } from '../../core/secrets/vault-ref.js';
import { VaultSession } from '../../core/secrets/vault-session.js';
import { stackFact } from '../support/stack.js';
import { rootClient, type TestRole, testRole } from './vault-support.js';

const roles: TestRole[] = [];
afterEach(async () => {
  await Promise.all(roles.splice(0).map((r) => r.remove()));
});

async function role(options?: Parameters<typeof testRole>[0]): Promise<TestRole> {
  const made = await testRole(options);
  roles.push(made);
  return made;
}

const fresh = (label: string) => `${label}-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 100 ms until it holds (cap: generous, never a budget). */
async function until(check: () => boolean, capMs = 60_000): Promise<void> {
  const end = Date.now() + capMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached within the cap');
    await sleep(100);
  }
}

describe('vault: references (parsing, no Vault)', () => {
  it('splits vault:<mount>/<path>#<key> and refuses other shapes, naming the reference', () => {
    expect(parseVaultRef('vault:unicop/netbox#token')).toEqual({
      ref: 'vault:unicop/netbox#token',
      mount: 'unicop',
      path: 'netbox',
      key: 'token',
    });
    expect(parseVaultRef('vault:kv/a/b-c/d#k_1').path).toBe('a/b-c/d');
    for (const bad of [
      'vault:unicop#token',
      'vault:unicop/netbox',
      'vault:/netbox#t',
      'vault:u/a//b#t',
      'vault:u/a/#t',
    ]) {
      expect(() => parseVaultRef(bad)).toThrow(
        `secret reference ${bad}: expected vault:<mount>/<path>#<key>`,
      );
    }
  });

  it('the synchronous loader refuses a vault: reference, naming field and reference', () => {
    try {
      loadConfig({ UNICOP_NETBOX_TOKEN: 'vault:unicop/netbox#token' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain(
        'UNICOP_NETBOX_TOKEN: secret reference vault:unicop/netbox#token',
      );
    }
  });
});

describe('vault: references against the real OpenBao', () => {
  it('resolves a vault: reference beside unchanged env: and file: ones, and picks up a new version without a restart', async () => {
    const r = await role();
    const v1 = fresh('nb-v1');
    await r.write('netbox', { token: v1 });
    const dir = mkdtempSync(join(tmpdir(), 'unicop-refs-'));
    writeFileSync(join(dir, 'awx'), 'awx-from-file\n');
    const { config, secrets } = await loadRuntimeConfig('bridge', {
      ...r.env,
      UNICOP_VAULT_REFRESH_SECONDS: '0.2',
      UNICOP_NETBOX_TOKEN: r.ref('netbox', 'token'),
      UNICOP_AWX_TOKEN: `file:${join(dir, 'awx')}`,
      UNICOP_ADMIN_TOKEN: 'env:TEST_ADMIN',
      TEST_ADMIN: 'admin-from-env',
    });
    try {
      expect(config.UNICOP_NETBOX_TOKEN).toBe(v1);
      expect(config.UNICOP_AWX_TOKEN).toBe('awx-from-file');
      expect(config.UNICOP_ADMIN_TOKEN).toBe('admin-from-env');
      const lines: string[] = [];
      const sink = new Writable({ write: (chunk, _e, done) => done(void lines.push(String(chunk))) });
      secrets?.watch(createLogger('test', 'debug', sink));
      const v2 = fresh('nb-v2');
      await r.write('netbox', { token: v2 });
      await until(() => config.UNICOP_NETBOX_TOKEN === v2);
      await until(() => lines.some((l) => l.includes('credential refreshed')));
      const logged = lines.join('');
      expect(logged).toContain(r.ref('netbox', 'token'));
      expect(logged).not.toContain(v1);
      expect(logged).not.toContain(v2);
    } finally {
      await secrets?.close();
    }
  });

  it("a reference outside the process's policy, or a missing key, fails the start naming field and reference, not the value", async () => {
    const r = await role();
    await r.write('admin', { token: fresh('admin') });
    // The stack's own NetBox token: the test role may not read it (its policy is unicop/test/<id>/*).
    const stackValue = (await rootClient().read('unicop/data/netbox')).data.data.token as string;
    const denied = loadRuntimeConfig('bridge', {
      ...r.env,
      UNICOP_NETBOX_TOKEN: 'vault:unicop/netbox#token',
    });
    await expect(denied).rejects.toBeInstanceOf(ConfigError);
    const message = await denied.catch((e: Error) => e.message);
    expect(message).toContain(
      "UNICOP_NETBOX_TOKEN: secret reference vault:unicop/netbox#token: permission denied (403): this process's Vault policy does not allow it",
    );
    expect(message).not.toContain(stackValue);
    const noKey = await loadRuntimeConfig('bridge', {
      ...r.env,
      UNICOP_ADMIN_TOKEN: r.ref('admin', 'missing'),
    }).catch((e: Error) => e);
    expect(noKey).toBeInstanceOf(ConfigError);
    expect((noKey as Error).message).toContain(
      `UNICOP_ADMIN_TOKEN: secret reference ${r.ref('admin', 'missing')}: version 1 has no such key`,
    );
  });

  it('renews its token at 2/3 of the TTL (one login outlives many TTLs), then logs in again when the max TTL ends it', async () => {
    // Tokens of 6 s, renewable up to 15 s in all: renewals at 4 and 8 s, cut short at 12 s.
    const r = await role({ tokenTtl: 6, tokenMaxTtl: 15 });
    const value = fresh('renewed');
    await r.write('netbox', { token: value });
    const session = new VaultSession({
      addr: stackFact('UNICOP_VAULT_ADDR'),
      roleId: r.roleId,
      secretId: r.secretId,
      timeoutMs: 5000,
    });
    try {
      await session.login();
      // Nothing read meanwhile: only the renewals can keep the token alive past its 6 s. Waited for
      // (a late timer on a loaded machine is not a failure), then: still the first login.
      await until(() => session.counts.renewals >= 2, 30_000);
      expect(session.counts).toMatchObject({ logins: 1, failures: 0 });
      // The same token still reads (a dead one would have forced a login here).
      expect((await session.read(parseVaultRef(r.ref('netbox', 'token')))).value).toBe(value);
      expect(session.counts.logins).toBe(1);
      // The max TTL (15 s) cuts the renewals short: the session logs in again on its own, in time.
      await until(() => session.counts.logins >= 2, 30_000);
      expect(session.counts.failures).toBe(0);
      expect((await session.read(parseVaultRef(r.ref('netbox', 'token')))).value).toBe(value);
    } finally {
      await session.close();
    }
  });
});
