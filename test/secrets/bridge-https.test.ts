/**
 * The COMPILED bridge (dist/, `npm run build`) serving HTTPS with a certificate from the stack's
 * Vault PKI engine (UNICOP_BRIDGE_TLS_PKI=pki/unicop-bridge, issue #18 item 2): the certificate is
 * issued at start-up and verifies against the stack's CA only (var/vault/ca.pem); it is renewed before
 * it expires; a connection opened before the renewal keeps being served after it (nothing dropped);
 * new connections get the new certificate, the old one is never served again; no private key in
 * anything the bridge wrote. Certificates of 30 s here (renewed at 20 s:
 * ten seconds to fetch and serve the next one, on a loaded machine too). The test's own AppRole may
 * issue from the stack's bridge role (vault-support.ts).
 */
import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, type Running, startUnicop } from '../cli/run-unicop.js';
import { freePort } from '../support/ports.js';
import { stackFact } from '../support/stack.js';
import { type TestRole, testRole } from './vault-support.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the compiled bridge on HTTPS with a certificate from Vault', () => {
  let role: TestRole;
  let bridge: Running | undefined;
  let port: number;
  const ca = () => readFileSync(stackFact('UNICOP_VAULT_CA_FILE'), 'utf8');

  /** A verified TLS connection (the stack's CA only, name localhost); rejects when it does not verify. */
  function open(): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca() }, () =>
        resolve(socket),
      );
      socket.once('error', reject);
    });
  }

  /** GET /healthz on an open keep-alive connection; the status line's code. */
  function healthz(socket: TLSSocket): Promise<number> {
    return new Promise((resolve, reject) => {
      if (socket.destroyed) {
        reject(new Error('connection closed'));
        return;
      }
      let answer = '';
      const onData = (chunk: Buffer) => {
        answer += chunk;
        const end = answer.indexOf('\r\n\r\n');
        const length = /content-length: (\d+)/i.exec(answer)?.[1];
        if (end >= 0 && length !== undefined && answer.length >= end + 4 + Number(length)) {
          socket.off('data', onData);
          resolve(Number(answer.slice(9, 12)));
        }
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error('connection closed')));
      socket.once('error', reject);
      socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
    });
  }

  const serialOf = (socket: TLSSocket) => socket.getPeerCertificate().serialNumber;

  beforeAll(async () => {
    assertBuilt();
    role = await testRole({ extraRules: 'path "pki/issue/unicop-bridge" { capabilities = ["update"] }' });
  });

  afterAll(async () => {
    if (bridge && bridge.child.exitCode === null) {
      bridge.child.kill('SIGTERM');
      await bridge.done;
    }
    await role?.remove();
  });

  it('is issued at start, renewed before it expires without dropping an open connection, and the old one is not served again', async () => {
    port = await freePort();
    bridge = startUnicop(['bridge'], {
      ...(process.env.UNICOP_VAR ? { UNICOP_VAR: process.env.UNICOP_VAR } : {}),
      ...role.env,
      UNICOP_BRIDGE_PORT: String(port),
      UNICOP_WEBHOOK_SECRETS: `probe-${crypto.randomUUID()}`,
      UNICOP_BRIDGE_TLS_PKI: 'pki/unicop-bridge',
      UNICOP_BRIDGE_TLS_TTL_SECONDS: '30',
      UNICOP_LOG_LEVEL: 'debug',
    });
    let kept: TLSSocket | undefined;
    for (const end = Date.now() + 180_000; !kept; ) {
      kept = await open().catch(() => undefined);
      if (!kept && Date.now() > end) throw new Error('the bridge did not serve HTTPS within 180 s');
      if (!kept) await sleep(200);
    }
    // Verified against the stack's CA (connect rejects otherwise), for the name localhost.
    expect(kept.authorized).toBe(true);
    const first = kept.getPeerCertificate();
    const firstExpires = Date.parse(first.valid_to);
    expect(await healthz(kept)).toBe(200);

    // Until a new connection gets another certificate, the kept one is asked every 500 ms (below
    // the server's keep-alive timeout): it must keep answering through the renewal.
    let renewedAt: number | undefined;
    let renewedSerial: string | undefined;
    const cap = Date.now() + 60_000;
    while (renewedAt === undefined) {
      expect(await healthz(kept)).toBe(200);
      const fresh = await open();
      if (serialOf(fresh) !== first.serialNumber) {
        renewedAt = Date.now();
        renewedSerial = serialOf(fresh);
      }
      fresh.destroy();
      if (Date.now() > cap) throw new Error('no renewal within 60 s');
      await sleep(500);
    }
    expect(renewedAt).toBeLessThan(firstExpires); // before the first certificate expired
    expect(await healthz(kept)).toBe(200); // the connection from before the renewal is still served
    expect(serialOf(kept)).toBe(first.serialNumber);
    for (let i = 0; i < 3; i++) {
      const fresh = await open();
      expect(serialOf(fresh)).not.toBe(first.serialNumber); // the old certificate is retired
      expect(serialOf(fresh)).toBe(renewedSerial);
      fresh.destroy();
    }
    kept.destroy();

    bridge.child.kill('SIGTERM');
    const { stdout, stderr } = await bridge.done;
    expect(stdout + stderr).toContain('HTTPS certificate renewed');
    expect(stdout + stderr).not.toContain('PRIVATE KEY');
  });
});
