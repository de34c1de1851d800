/**
 * NetBox's and AWX's tokens rotated in Vault are used without a restart (decision 0056): the
 * workers' clients, built as workers/main.ts builds them (pluginClientOptions / awxClientOptions
 * with the process's LiveSecrets), read the token for every request. Against the stack's real
 * OpenBao, NetBox and AWX, with tokens this file makes and revokes itself (never the stack's):
 * - rotated and the old token revoked before the next scheduled re-read, the next call is refused
 *   (401/403) once, the token is read from Vault at once and the call sent again: it succeeds;
 * - rotated with a short re-read interval, the scheduled re-read picks the new token up;
 * - each is logged `credential refreshed` with the field, reference, versions and trigger — no
 *   token value in any log line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwxClient, awxClientOptions } from '../../core/awx/client.js';
import { repoRoot } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient, pluginClientOptions } from '../../core/plugin/client.js';
import { loadRuntimeConfig, type RuntimeConfig } from '../../core/secrets/runtime-config.js';
import { basicAuth } from '../awx/support.js';
import { stackFact } from '../support/stack.js';
import { type TestRole, testRole } from './vault-support.js';

interface MadeToken {
  id: number;
  value: string;
}

const netboxUrl = () => stackFact('UNICOP_NETBOX_URL');
const awxUrl = () => stackFact('UNICOP_AWX_REAL_URL');

/** A new v2 token of NetBox's `admin` (provisioned with its password, as the deploy checks do). */
async function makeNetboxToken(): Promise<MadeToken> {
  const password = readFileSync(join(repoRoot, 'var', 'netbox', 'secrets', 'admin_password'), 'utf8')
    .split('\n')[0]
    ?.trim();
  const res = await fetch(`${netboxUrl()}/api/users/tokens/provision/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ username: 'admin', password, description: 'token-rotation test' }),
  });
  if (res.status !== 201) throw new Error(`NetBox token provision answered ${res.status}`);
  const made = (await res.json()) as { id: number; key: string; token: string };
  return { id: made.id, value: `nbt_${made.key}.${made.token}` };
}

async function revokeNetboxToken(id: number): Promise<void> {
  const res = await fetch(`${netboxUrl()}/api/users/tokens/${id}/`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${stackFact('UNICOP_NETBOX_TOKEN')}` },
  });
  if (res.status !== 204 && res.status !== 404) throw new Error(`NetBox token delete answered ${res.status}`);
}

const awxAdmin = () =>
  basicAuth('admin', readFileSync(stackFact('UNICOP_AWX_ADMIN_PASSWORD_FILE'), 'utf8').trim());

/** A new OAuth2 token of AWX's `admin` (write scope). */
async function makeAwxToken(): Promise<MadeToken> {
  const res = await fetch(`${awxUrl()}/api/v2/tokens/`, {
    method: 'POST',
    headers: { authorization: awxAdmin(), 'content-type': 'application/json' },
    body: JSON.stringify({ description: 'token-rotation test', scope: 'write' }),
  });
  if (res.status !== 201) throw new Error(`AWX token create answered ${res.status}`);
  const made = (await res.json()) as { id: number; token: string };
  return { id: made.id, value: made.token };
}

async function revokeAwxToken(id: number): Promise<void> {
  const res = await fetch(`${awxUrl()}/api/v2/tokens/${id}/`, {
    method: 'DELETE',
    headers: { authorization: awxAdmin() },
  });
  if (res.status !== 204 && res.status !== 404) throw new Error(`AWX token delete answered ${res.status}`);
}

describe('NetBox and AWX tokens rotated in Vault, picked up without a restart', () => {
  let role: TestRole;
  const made: { netbox: MadeToken[]; awx: MadeToken[] } = { netbox: [], awx: [] };
  const runtimes: RuntimeConfig[] = [];
  const lines: string[] = [];

  const newNetboxToken = async () => {
    const token = await makeNetboxToken();
    made.netbox.push(token);
    return token;
  };
  const newAwxToken = async () => {
    const token = await makeAwxToken();
    made.awx.push(token);
    return token;
  };

  /** The workers' configuration on this file's Vault paths, its secrets watched, its clients. */
  async function workers(refreshSeconds: number) {
    const runtime = await loadRuntimeConfig('workers', {
      ...role.env,
      UNICOP_VAULT_ADDR: stackFact('UNICOP_VAULT_ADDR'),
      UNICOP_VAULT_REFRESH_SECONDS: String(refreshSeconds),
      UNICOP_NETBOX_URL: netboxUrl(),
      UNICOP_NETBOX_TOKEN: role.ref('netbox', 'token'),
      UNICOP_AWX_URL: awxUrl(),
      UNICOP_AWX_TOKEN: role.ref('awx', 'token'),
      // The stack's other secret references are not this role's to read.
      UNICOP_ADMIN_TOKEN: undefined,
      UNICOP_AWX_WEBHOOK_SECRET: undefined,
      UNICOP_WEBHOOK_SECRETS: undefined,
      UNICOP_OIDC_CLIENT_SECRET: undefined,
    });
    runtimes.push(runtime);
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    runtime.secrets?.watch(createLogger('workers', 'debug', sink).child({ part: 'secrets' }));
    return {
      config: runtime.config,
      plugin: new PluginClient(pluginClientOptions(runtime.config, runtime.secrets)),
      awx: new AwxClient(awxClientOptions(runtime.config, runtime.secrets)),
    };
  }

  const refreshed = (field: string, trigger: string) =>
    lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((l) => l.msg === 'credential refreshed' && l.field === field && l.trigger === trigger);

  async function until<T>(what: string, probe: () => T | undefined, capMs = 60_000): Promise<T> {
    const deadline = Date.now() + capMs;
    for (;;) {
      const found = probe();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${capMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  beforeAll(async () => {
    role = await testRole();
  });

  afterAll(async () => {
    for (const runtime of runtimes) await runtime.secrets?.close();
    for (const token of made.netbox) await revokeNetboxToken(token.id).catch(() => undefined);
    for (const token of made.awx) await revokeAwxToken(token.id).catch(() => undefined);
    await role?.remove();
    const values = [...made.netbox, ...made.awx].map((t) => t.value);
    for (const line of lines) for (const value of values) expect(line).not.toContain(value);
  });

  it('old token revoked before the re-read: the refused call reads the new one from Vault and succeeds', async () => {
    const [nbOld, awxOld] = [await newNetboxToken(), await newAwxToken()];
    await role.write('netbox', { token: nbOld.value });
    await role.write('awx', { token: awxOld.value });
    // An hour between scheduled re-reads: only a refusal can make the process read Vault again.
    const { plugin, awx } = await workers(3600);
    expect((await plugin.listRoots({ limit: 1 })).results).toBeDefined();
    expect(Array.isArray(await awx.listPendingApprovals())).toBe(true);

    const [nbNew, awxNew] = [await newNetboxToken(), await newAwxToken()];
    await role.write('netbox', { token: nbNew.value });
    await role.write('awx', { token: awxNew.value });
    await revokeNetboxToken(nbOld.id);
    await revokeAwxToken(awxOld.id);

    // The first calls after the rotation are POSTs (one with a body): refused, sent again, answered.
    const [roots] = await plugin.resolve([
      { object_type: 'dcim.site', object_id: 2_000_000_000, event: 'deleted' },
    ]);
    expect(roots).toEqual(['site/2000000000']);
    await expect(awx.cancelJob(2_000_000_000)).rejects.toMatchObject({
      name: 'AwxNotFoundError',
      status: 404,
    });
    expect((await plugin.listRoots({ limit: 1 })).results).toBeDefined();
    expect(Array.isArray(await awx.listPendingApprovals())).toBe(true);
    const [netboxLine] = refreshed('UNICOP_NETBOX_TOKEN', 'refused');
    expect(netboxLine).toMatchObject({ ref: role.ref('netbox', 'token'), version: 2, previousVersion: 1 });
    expect(refreshed('UNICOP_AWX_TOKEN', 'refused')).toHaveLength(1);
  });

  it('rotated with a short re-read interval: the scheduled re-read hands the clients the new token', async () => {
    const [nbOld, awxOld] = [await newNetboxToken(), await newAwxToken()];
    await role.write('netbox', { token: nbOld.value });
    await role.write('awx', { token: awxOld.value });
    const before = lines.length;
    const { config, plugin, awx } = await workers(1);
    const [nbNew, awxNew] = [await newNetboxToken(), await newAwxToken()];
    await role.write('netbox', { token: nbNew.value });
    await role.write('awx', { token: awxNew.value });
    await until('the scheduled re-read', () =>
      config.UNICOP_NETBOX_TOKEN === nbNew.value && config.UNICOP_AWX_TOKEN === awxNew.value
        ? true
        : undefined,
    );
    await revokeNetboxToken(nbOld.id);
    await revokeAwxToken(awxOld.id);
    expect((await plugin.listRoots({ limit: 1 })).results).toBeDefined();
    expect(Array.isArray(await awx.listPendingApprovals())).toBe(true);
    const scheduled = lines
      .slice(before)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((l) => l.msg === 'credential refreshed' && l.trigger === 'scheduled')
      .map((l) => l.field);
    expect(scheduled).toEqual(expect.arrayContaining(['UNICOP_NETBOX_TOKEN', 'UNICOP_AWX_TOKEN']));
    expect(
      lines
        .slice(before)
        .some((line) => line.includes('credential refreshed') && line.includes('"trigger":"refused"')),
    ).toBe(false);
  });
});
