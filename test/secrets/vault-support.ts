/**
 * The test side of the stack's Vault (OpenBao, scripts/stack.d/vault.sh): a root client (the token
 * in UNICOP_VAULT_ROOT_TOKEN_FILE) that makes each test its own KV paths under unicop/test/<id>/ and
 * its own AppRole with a read-only policy on exactly them, and removes both afterwards. The stack's
 * own paths and roles are never written.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vault from 'node-vault';
import { VaultSession } from '../../core/secrets/vault-session.js';
import { stackFact, uniqueName } from '../support/stack.js';

export const mount = 'unicop';

export function rootClient(): vault.client {
  const token = readFileSync(stackFact('UNICOP_VAULT_ROOT_TOKEN_FILE'), 'utf8').trim();
  return vault({ endpoint: stackFact('UNICOP_VAULT_ADDR'), token });
}

export interface TestRole {
  /** unicop/test/<id>: the paths this role may read are `${prefix}/…`. */
  prefix: string;
  /** env: UNICOP_VAULT_ROLE_ID / UNICOP_VAULT_SECRET_ID as file: references (mode 600). */
  env: Record<string, string>;
  roleId: string;
  secretId: string;
  /** vault:unicop/test/<id>/<path>#<key> */
  ref(path: string, key: string): string;
  /** Writes a new version of unicop/test/<id>/<path>; returns its version and creation time. */
  write(path: string, data: Record<string, string>): Promise<{ version: number; createdTime: Date }>;
  remove(): Promise<void>;
}

/**
 * A role reading only unicop/test/<id>/* (KV v2 data), plus `extraRules` (HCL) when a test needs
 * more; `tokenTtl`/`tokenMaxTtl` (seconds) shape its tokens.
 */
export async function testRole(
  options: { tokenTtl?: number; tokenMaxTtl?: number; extraRules?: string } = {},
): Promise<TestRole> {
  const root = rootClient();
  const id = uniqueName('vt');
  const prefix = `test/${id}`;
  const name = `unicop-${id}`;
  const rules = `path "${mount}/data/${prefix}/*" { capabilities = ["read"] }\n${options.extraRules ?? ''}`;
  await root.addPolicy({ name, rules });
  await root.write(`auth/approle/role/${name}`, {
    token_policies: name,
    token_ttl: options.tokenTtl ?? 300,
    token_max_ttl: options.tokenMaxTtl ?? 600,
    secret_id_ttl: 0,
  });
  const roleId = (await root.read(`auth/approle/role/${name}/role-id`)).data.role_id as string;
  const secretId = (await root.write(`auth/approle/role/${name}/secret-id`, {})).data.secret_id as string;
  const dir = mkdtempSync(join(tmpdir(), 'unicop-vault-'));
  writeFileSync(join(dir, 'role-id'), roleId, { mode: 0o600 });
  writeFileSync(join(dir, 'secret-id'), secretId, { mode: 0o600 });
  const written: string[] = [];
  return {
    prefix,
    roleId,
    secretId,
    env: {
      UNICOP_VAULT_ROLE_ID: `file:${join(dir, 'role-id')}`,
      UNICOP_VAULT_SECRET_ID: `file:${join(dir, 'secret-id')}`,
    },
    ref: (path, key) => `vault:${mount}/${prefix}/${path}#${key}`,
    async write(path, data) {
      written.push(path);
      const answer = await root.write(`${mount}/data/${prefix}/${path}`, { data });
      return {
        version: answer.data.version as number,
        createdTime: new Date(answer.data.created_time as string),
      };
    },
    async remove() {
      for (const path of written)
        await root.delete(`${mount}/metadata/${prefix}/${path}`).catch(() => undefined);
      await root.delete(`auth/approle/role/${name}`).catch(() => undefined);
      await root.removePolicy({ name }).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The PKI role the TLS fronts' certificates come from, and the policy rule a test role needs for it. */
export const frontPkiRule = 'path "pki/issue/unicop-bridge" { capabilities = ["update"] }';

/**
 * A certificate for a TLS front on 127.0.0.1 ("localhost"), issued by the stack's Vault PKI to a role
 * made with `frontPkiRule`: the certificate followed by its issuing CA, and the key.
 */
export async function frontCertificate(role: TestRole): Promise<{ cert: string; key: string }> {
  const session = new VaultSession({
    addr: stackFact('UNICOP_VAULT_ADDR'),
    roleId: role.roleId,
    secretId: role.secretId,
    timeoutMs: 10_000,
  });
  await session.login();
  try {
    const issued = await session.issueCertificate('pki', 'unicop-bridge', {
      common_name: 'localhost',
      ip_sans: '127.0.0.1',
      ttl: '900s',
    });
    return { cert: `${issued.certificate}\n${issued.issuing_ca}\n`, key: issued.private_key };
  } finally {
    await session.close();
  }
}
