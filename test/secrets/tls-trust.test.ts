/**
 * The workers' NetBox and AWX clients verify TLS against a CA bundle when one is configured
 * (UNICOP_NETBOX_CA_FILE, UNICOP_AWX_CA_FILE; decision 0056). In front of the stack's real NetBox
 * and real AWX stands a TLS front (test/support/tls-front.ts) serving a certificate issued by the
 * stack's Vault PKI (role pki/unicop-bridge, CA var/vault/ca.pem):
 * - with the stack's CA configured, the clients built from the configuration as the workers build
 *   them (pluginClientOptions, awxClientOptions) read and write through it, the status readings read
 *   AWX, and the compiled bridge's admin API and /readyz read NetBox (without the bundle: 503
 *   netbox_unavailable, /readyz netbox false);
 * - with no bundle (the system's CAs) or another CA's, every call fails with the service's
 *   "unavailable" error caused by a TlsVerificationError naming the setting — no token in it — and
 *   nothing reached the service: the front passed on no request, AWX holds no job of the launch;
 * - a bundle that cannot be read or holds no certificate fails the start, naming the setting.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AwxClient, awxClientOptions } from '../../core/awx/client.js';
import { AwxUnavailableError } from '../../core/awx/errors.js';
import { ConfigError, parseConfig, resolveSecret, type UnicopConfig } from '../../core/config.js';
import { NetboxUnavailableError } from '../../core/netbox/http.js';
import { PluginClient, pluginClientOptions } from '../../core/plugin/client.js';
import { awxBacklog } from '../../core/status/readings.js';
import { TlsVerificationError, tlsVerificationCode } from '../../core/tls/ca-bundle.js';
import { startUnicop } from '../cli/run-unicop.js';
import { kindTemplateIds } from '../support/awx.js';
import { freePort } from '../support/ports.js';
import { stackFact, uniqueName } from '../support/stack.js';
import { startTlsFront, type TlsFront } from '../support/tls-front.js';
import { frontCertificate, frontPkiRule, type TestRole, testRole } from './vault-support.js';

describe('NetBox and AWX behind TLS: trusted through the configured CA bundle only', () => {
  let role: TestRole;
  let netboxFront: TlsFront;
  let awxFront: TlsFront;
  let dir: string;
  let otherCa: string;
  const netboxToken = () => stackFact('UNICOP_NETBOX_TOKEN');
  const awxToken = () => resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env);
  const stackCa = () => stackFact('UNICOP_VAULT_CA_FILE');

  /** The workers' configuration with both services behind the fronts and the given CA bundles. */
  function config(ca: { netbox?: string; awx?: string }): UnicopConfig {
    return parseConfig({
      UNICOP_NETBOX_URL: netboxFront.url,
      UNICOP_NETBOX_TOKEN: netboxToken(),
      UNICOP_AWX_URL: awxFront.url,
      UNICOP_AWX_TOKEN: awxToken(),
      UNICOP_AWX_LAUNCH_CONFIRM_DELAY_MS: '10',
      ...(ca.netbox ? { UNICOP_NETBOX_CA_FILE: ca.netbox } : {}),
      ...(ca.awx ? { UNICOP_AWX_CA_FILE: ca.awx } : {}),
    });
  }

  beforeAll(async () => {
    role = await testRole({ extraRules: frontPkiRule });
    const pair = await frontCertificate(role);
    netboxFront = await startTlsFront(stackFact('UNICOP_NETBOX_URL'), pair);
    awxFront = await startTlsFront(stackFact('UNICOP_AWX_REAL_URL'), pair);
    dir = mkdtempSync(join(tmpdir(), 'unicop-tls-'));
    // Another CA: a public root from Node's own list, which did not sign the fronts' certificate.
    otherCa = join(dir, 'other-ca.pem');
    writeFileSync(otherCa, `${rootCertificates[0]}\n`);
  });

  afterAll(async () => {
    await netboxFront?.close();
    await awxFront?.close();
    await role?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("with the stack's CA configured, the workers' clients read and write NetBox and AWX through TLS", async () => {
    const settings = config({ netbox: stackCa(), awx: stackCa() });
    const plugin = new PluginClient(pluginClientOptions(settings));
    const page = await plugin.listRoots({ limit: 1 });
    expect(Array.isArray(page.results)).toBe(true);
    // A POST with a body: the plugin resolves a change to the roots it touches (a site anchors its own).
    const [roots] = await plugin.resolve([
      { object_type: 'dcim.site', object_id: 2_000_000_000, event: 'deleted' },
    ]);
    expect(roots).toEqual(['site/2000000000']);
    expect(netboxFront.forwarded).toBeGreaterThanOrEqual(2);

    const awx = new AwxClient(awxClientOptions(settings));
    expect(Array.isArray(await awx.listPendingApprovals())).toBe(true);
    // A POST AWX answers: no such job (404) — an answer from AWX itself, through the front.
    await expect(awx.cancelJob(2_000_000_000)).rejects.toMatchObject({
      name: 'AwxNotFoundError',
      status: 404,
    });
    expect(awxFront.forwarded).toBeGreaterThanOrEqual(2);
  });

  it('the status readings (GET /status, unicop status) read AWX through TLS with the bundle, and not without', async () => {
    const reader = { url: awxFront.url, token: awxToken(), timeoutMs: 30_000 };
    // The token as the status sources give it: read per request (a rotated one is used at once).
    const backlog = await awxBacklog({
      ...reader,
      token: () => awxToken(),
      ca: readFileSync(stackCa(), 'utf8'),
    });
    expect(backlog.pending).toBeGreaterThanOrEqual(0);
    // Without the bundle (system CAs) and with another CA: refused on the certificate — the failure
    // carries OpenSSL's verification code, the front saw failed handshakes and passed nothing on.
    for (const ca of [undefined, readFileSync(otherCa, 'utf8')]) {
      const forwardedBefore = awxFront.forwarded;
      const handshakeFailuresBefore = awxFront.handshakeFailures;
      const failure = await awxBacklog(ca === undefined ? reader : { ...reader, ca }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(tlsVerificationCode(failure)).toMatch(/^[A-Z_]+$/);
      // The front learns of the refusal from the client's alert, a moment after the client failed.
      await vi.waitFor(() => expect(awxFront.handshakeFailures).toBeGreaterThan(handshakeFailuresBefore), {
        timeout: 60_000,
        interval: 50,
      });
      expect(awxFront.forwarded).toBe(forwardedBefore);
    }
  });

  it("the compiled bridge's admin API and /readyz read NetBox through TLS with the bundle; without it, 503 netbox_unavailable and netbox not ready", async () => {
    for (const withCa of [true, false]) {
      const port = await freePort();
      const adminToken = `admin-${randomUUID()}`;
      const bridge = startUnicop(['bridge'], {
        ...(process.env.UNICOP_VAR ? { UNICOP_VAR: process.env.UNICOP_VAR } : {}),
        UNICOP_BRIDGE_PORT: String(port),
        UNICOP_WEBHOOK_SECRETS: `probe-${randomUUID()}`,
        UNICOP_NETBOX_URL: netboxFront.url,
        ...(withCa ? { UNICOP_NETBOX_CA_FILE: stackCa() } : {}),
        UNICOP_ADMIN_TOKEN: adminToken,
        UNICOP_ADMIN_BREAK_GLASS: 'true',
      });
      try {
        const base = `http://127.0.0.1:${port}`;
        for (const end = Date.now() + 180_000; ; ) {
          const up = await fetch(`${base}/healthz`).then(
            (r) => r.ok,
            () => false,
          );
          if (up) break;
          if (Date.now() > end || bridge.child.exitCode !== null)
            throw new Error(`the bridge did not start: ${bridge.stdout()}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        // /readyz probes NetBox with the same bundle: up with it (polled: the probe's 2 s timeout
        // may lapse on a busy stack), down without it.
        const netboxReady = async () =>
          ((await (await fetch(`${base}/readyz`)).json()) as { checks: { netbox: boolean } }).checks.netbox;
        if (withCa) {
          let ready = false;
          for (const end = Date.now() + 60_000; !ready && Date.now() < end; ) {
            ready = await netboxReady();
            if (!ready) await new Promise((r) => setTimeout(r, 500));
          }
          expect(ready).toBe(true);
        } else {
          expect(await netboxReady()).toBe(false);
        }
        const res = await fetch(`${base}/roots/site/2000000000`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        const body = (await res.json()) as { reason?: string };
        if (withCa) {
          // The plugin's answer, through TLS: no such root.
          expect([res.status, body.reason]).toEqual([404, 'not_found']);
        } else {
          expect([res.status, body.reason]).toEqual([503, 'netbox_unavailable']);
        }
      } finally {
        bridge.child.kill('SIGTERM');
        const { stdout, stderr } = await bridge.done;
        expect(stdout + stderr).not.toContain(netboxToken());
      }
    }
  });

  for (const trust of ['the system CAs (no bundle)', 'another CA'] as const) {
    it(`with ${trust}, every call fails on the certificate, names the setting, carries no token, and reaches nothing`, async () => {
      const bundle = trust === 'another CA' ? otherCa : undefined;
      const settings = config({ netbox: bundle, awx: bundle });
      const netboxBefore = netboxFront.forwarded;
      const awxBefore = awxFront.forwarded;

      const plugin = new PluginClient(pluginClientOptions(settings));
      const refused = await plugin.listRoots({ limit: 1 }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(NetboxUnavailableError);
      const netboxError = refused as NetboxUnavailableError;
      expect(netboxError.cause).toBeInstanceOf(TlsVerificationError);
      expect(netboxError.message).toMatch(/TLS verification failed \([A-Z_]+\).*UNICOP_NETBOX_CA_FILE/);
      expect(netboxError.message).not.toContain(netboxToken());
      // A write: refused the same way, before anything was sent.
      await expect(
        plugin.resolve([{ object_type: 'dcim.site', object_id: 1, event: 'updated' }]),
      ).rejects.toBeInstanceOf(NetboxUnavailableError);

      const awx = new AwxClient(awxClientOptions(settings));
      const runId = uniqueName('tls-run');
      const since = new Date(Date.now() - 60_000);
      const templateId = kindTemplateIds().site;
      const launch = await awx
        .launchJobTemplate(templateId, {
          unicop: { root: 'site/0', snapshot: {}, hash: 'h', fencing_token: 1, run_id: runId },
          since,
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(launch).toBeInstanceOf(AwxUnavailableError);
      const awxError = launch as AwxUnavailableError;
      expect(awxError.cause).toBeInstanceOf(TlsVerificationError);
      expect(awxError.message).toMatch(/TLS verification failed \([A-Z_]+\).*UNICOP_AWX_CA_FILE/);
      expect(awxError.message).not.toContain(awxToken());

      // Nothing reached either service; AWX (asked directly) holds no job of that run.
      expect(netboxFront.forwarded).toBe(netboxBefore);
      expect(awxFront.forwarded).toBe(awxBefore);
      expect(netboxFront.handshakeFailures + awxFront.handshakeFailures).toBeGreaterThan(0);
      const direct = new AwxClient({ baseUrl: stackFact('UNICOP_AWX_REAL_URL'), token: awxToken() });
      expect(await direct.findJobByRunId(templateId, runId, since)).toBeUndefined();
    });
  }

  it('a CA bundle that cannot be read, or holds no certificate, fails the start naming the setting', () => {
    const notPem = join(dir, 'not-a-bundle.pem');
    writeFileSync(notPem, 'hello\n');
    const badNetbox = () => pluginClientOptions(config({ netbox: join(dir, 'missing.pem') }));
    expect(badNetbox).toThrow(ConfigError);
    expect(badNetbox).toThrow(/UNICOP_NETBOX_CA_FILE: CA bundle .*missing\.pem cannot be read \(ENOENT\)/);
    expect(() => awxClientOptions(config({ awx: notPem }))).toThrow(
      /UNICOP_AWX_CA_FILE: CA bundle .*not-a-bundle\.pem holds no PEM certificate/,
    );
  });
});
