/**
 * The compiled CLI's read commands (`unicop root status`, `unicop root why`) trust NetBox's HTTPS
 * as the workers do (UNICOP_NETBOX_CA_FILE, decision 0056; issue #18 leftover). In front of the
 * stack's real NetBox stands a TLS front (test/support/tls-front.ts) serving a certificate issued by
 * the stack's Vault PKI (role pki/unicop-bridge, CA var/vault/ca.pem):
 * - with the stack's CA configured, `root status` reads the root from the plugin through the front,
 *   and `root why` of a root NetBox does not have gets NetBox's own answer (no such root);
 * - with no bundle (the system's CAs) or another CA's, both fail on the certificate: the message
 *   names UNICOP_NETBOX_CA_FILE, carries no token, and the front passed no request on;
 * - `root why` asks AWX (behind its own front) for the status of the run's job with
 *   UNICOP_AWX_CA_FILE's bundle: with the stack's CA AWX's own answer comes back (no such job: the
 *   run names an id AWX never had), without it the status is not read and the reason names the
 *   setting, nothing passed on.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, resolveSecret } from '../../core/config.js';
import { PluginClient, pluginClientOptions } from '../../core/plugin/client.js';
import { frontCertificate, frontPkiRule, type TestRole, testRole } from '../secrets/vault-support.js';
import { createSite } from '../support/reconciler.js';
import { stackFact, uniqueName } from '../support/stack.js';
import { startTlsFront, type TlsFront } from '../support/tls-front.js';
import { assertBuilt, runUnicop } from './run-unicop.js';

describe('the CLI reads NetBox behind TLS through the configured CA bundle only (compiled)', () => {
  let role: TestRole;
  let front: TlsFront;
  let awxFront: TlsFront;
  let dir: string;
  let otherCa: string;
  let rootKey: string;
  const netboxToken = () => stackFact('UNICOP_NETBOX_TOKEN');
  const stackCa = () => stackFact('UNICOP_VAULT_CA_FILE');

  /** The CLI's environment: NetBox behind the front, the token by reference, the given bundle. */
  function env(ca: string | undefined): Record<string, string> {
    return {
      UNICOP_VAR: '/nonexistent', // nothing from var/stack.env: only what is given here
      UNICOP_NETBOX_URL: front.url,
      UNICOP_NETBOX_TOKEN: 'env:CLI_TLS_NETBOX_TOKEN',
      CLI_TLS_NETBOX_TOKEN: netboxToken(),
      UNICOP_KAFKA_BROKERS: stackFact('UNICOP_KAFKA_BROKERS'),
      ...(ca ? { UNICOP_NETBOX_CA_FILE: ca } : {}),
    };
  }

  beforeAll(async () => {
    assertBuilt();
    role = await testRole({ extraRules: frontPkiRule });
    const pair = await frontCertificate(role);
    front = await startTlsFront(stackFact('UNICOP_NETBOX_URL'), pair);
    awxFront = await startTlsFront(stackFact('UNICOP_AWX_REAL_URL'), pair);
    dir = mkdtempSync(join(tmpdir(), 'unicop-cli-tls-'));
    // Another CA: a public root from Node's own list, which did not sign the front's certificate.
    otherCa = join(dir, 'other-ca.pem');
    writeFileSync(otherCa, `${rootCertificates[0]}\n`);
    // A root the plugin has (read directly, not through the front).
    const plugin = new PluginClient(
      pluginClientOptions(
        parseConfig({
          UNICOP_NETBOX_URL: stackFact('UNICOP_NETBOX_URL'),
          UNICOP_NETBOX_TOKEN: netboxToken(),
        }),
      ),
    );
    const [root] = (await plugin.listRoots({ limit: 1 })).results;
    if (!root) throw new Error('the stack has no root to read');
    rootKey = root.key;
  }, 120_000);

  afterAll(async () => {
    await front?.close();
    await awxFront?.close();
    await role?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("with the stack's CA, `root status` reads the root and `root why` gets NetBox's answer through TLS", async () => {
    const before = front.forwarded;
    const status = await runUnicop(['root', 'status', rootKey, '--json'], env(stackCa()));
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ key: rootKey });
    const missing = `site/${2_000_000_000 + Math.floor(Math.random() * 1000)}`;
    const why = await runUnicop(['root', 'why', missing], env(stackCa()));
    expect(why.code).not.toBe(0);
    expect(why.stderr).toContain(`NetBox has no root ${missing}`);
    expect(front.forwarded).toBeGreaterThanOrEqual(before + 2);
    expect(status.stdout + status.stderr + why.stdout + why.stderr).not.toContain(netboxToken());
  }, 120_000);

  for (const trust of ['the system CAs (no bundle)', 'another CA'] as const) {
    it(`with ${trust}, \`root status\` and \`root why\` fail on the certificate naming UNICOP_NETBOX_CA_FILE, with no token, reaching nothing`, async () => {
      const bundle = trust === 'another CA' ? otherCa : undefined;
      const before = front.forwarded;
      for (const args of [
        ['root', 'status', rootKey],
        ['root', 'why', rootKey],
      ]) {
        const ran = await runUnicop(args, env(bundle));
        expect(ran.code, ran.stdout).not.toBe(0);
        expect(ran.stderr).toMatch(/TLS verification failed \([A-Z_]+\)/);
        expect(ran.stderr).toContain('UNICOP_NETBOX_CA_FILE');
        expect(ran.stdout + ran.stderr).not.toContain(netboxToken());
      }
      expect(front.forwarded).toBe(before);
    }, 120_000);
  }

  it("`root why` reads the run's AWX job status through TLS with UNICOP_AWX_CA_FILE; without it, says why not, naming the setting", async () => {
    const plugin = new PluginClient(
      pluginClientOptions(
        parseConfig({
          UNICOP_NETBOX_URL: stackFact('UNICOP_NETBOX_URL'),
          UNICOP_NETBOX_TOKEN: netboxToken(),
        }),
      ),
    );
    // A run of a fresh site whose job id AWX never had, ended: AWX answers 404 for it through TLS.
    const site = await createSite();
    const { token } = await plugin.acquireLease(site.root.id, 'cli-tls-trust', 60);
    const { hash } = await plugin.snapshot(site.root.id);
    const runId = uniqueName('cli-tls');
    await plugin.createRun({
      run_id: runId,
      root: site.rootKey,
      snapshot_hash: hash,
      cause: 'sweep',
      fencing_token: token,
      state: 'leased',
    });
    const jobId = 2_000_000_000 + Math.floor(Math.random() * 1000);
    await plugin.updateRun(runId, {
      fencing_token: token,
      state: 'launched',
      awx_job_type: 'job',
      awx_job_id: jobId,
    });
    await plugin.updateRun(runId, { fencing_token: token, state: 'canceled', summary: 'cli-tls-trust' });
    await plugin.releaseLease(site.root.id, token);

    const why = async (ca: string | undefined) => {
      const ran = await runUnicop(['root', 'why', site.rootKey, '--json'], {
        ...env(stackCa()),
        UNICOP_NETBOX_URL: stackFact('UNICOP_NETBOX_URL'),
        UNICOP_AWX_URL: awxFront.url,
        UNICOP_AWX_TOKEN: 'env:CLI_TLS_AWX_TOKEN',
        CLI_TLS_AWX_TOKEN: resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env),
        ...(ca ? { UNICOP_AWX_CA_FILE: ca } : {}),
      });
      expect(ran.code, ran.stderr).toBe(0);
      expect(ran.stdout + ran.stderr).not.toContain(
        resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env),
      );
      return (
        JSON.parse(ran.stdout) as { awx: { jobId: number; status: string | null; statusError?: string } }
      ).awx;
    };
    const before = awxFront.forwarded;
    const trusted = await why(stackCa());
    expect(trusted.jobId).toBe(jobId);
    expect(trusted.status).toBeNull();
    expect(trusted.statusError).toMatch(/not found|404/i);
    expect(trusted.statusError).not.toContain('TLS');
    expect(awxFront.forwarded).toBeGreaterThan(before);
    for (const bundle of [undefined, otherCa]) {
      const forwarded = awxFront.forwarded;
      const untrusted = await why(bundle);
      expect(untrusted.status).toBeNull();
      expect(untrusted.statusError).toMatch(/TLS verification failed \([A-Z_]+\)/);
      expect(untrusted.statusError).toContain('UNICOP_AWX_CA_FILE');
      expect(awxFront.forwarded).toBe(forwarded);
    }
  }, 180_000);

  it('an unreadable CA bundle fails the command naming the setting', async () => {
    const ran = await runUnicop(['root', 'status', rootKey], env(join(dir, `missing-${randomUUID()}.pem`)));
    expect(ran.code).not.toBe(0);
    expect(ran.stderr).toContain('UNICOP_NETBOX_CA_FILE');
  }, 60_000);
});
