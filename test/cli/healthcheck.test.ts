/**
 * `unicop healthcheck` (the images' HEALTHCHECK) asks /healthz where the service is configured to
 * listen: UNICOP_BRIDGE_HOST / UNICOP_WORKERS_METRICS_HOST with their ports, a wildcard address
 * (0.0.0.0, ::) on loopback of the same family. Real listeners on loopback addresses other than
 * 127.0.0.1 (Linux routes all of 127.0.0.0/8 to lo) stand for a service bound to one interface.
 * No stack service is needed.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { healthcheck, healthHost, healthUrl } from '../../core/cli/healthcheck.js';
import { repoRoot } from '../../core/config.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A /healthz answering 200 on `host` (any free port), as the bridge and the workers serve it. */
async function listener(host: string, options: { ipv6Only?: boolean } = {}): Promise<number> {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 404).end();
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host, ipv6Only: options.ipv6Only ?? false }, resolve);
  });
  return (server.address() as AddressInfo).port;
}

describe('unicop healthcheck', () => {
  it('asks the bridge on UNICOP_BRIDGE_HOST when it listens on one address only (127.0.0.2, not 127.0.0.1)', async () => {
    const port = await listener('127.0.0.2');
    const result = await healthcheck('bridge', {
      UNICOP_BRIDGE_HOST: '127.0.0.2',
      UNICOP_BRIDGE_PORT: String(port),
    });
    expect(result).toEqual({
      ok: true,
      detail: `bridge /healthz on port ${port} (http://127.0.0.2:${port}/healthz): 200`,
    });
  });

  it('asks the workers on UNICOP_WORKERS_METRICS_HOST (127.0.0.3) and its port', async () => {
    const port = await listener('127.0.0.3');
    const result = await healthcheck('workers', {
      UNICOP_WORKERS_METRICS_HOST: '127.0.0.3',
      UNICOP_WORKERS_METRICS_PORT: String(port),
    });
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toContain(`http://127.0.0.3:${port}/healthz`);
  });

  it('asks a wildcard listener on loopback: 0.0.0.0 on 127.0.0.1, :: (IPv6 only) on ::1', async () => {
    const v4 = await listener('0.0.0.0');
    const asked4 = await healthcheck('bridge', {
      UNICOP_BRIDGE_HOST: '0.0.0.0',
      UNICOP_BRIDGE_PORT: String(v4),
    });
    expect(asked4.ok, asked4.detail).toBe(true);
    expect(asked4.detail).toContain(`http://127.0.0.1:${v4}/healthz`);
    // IPv6 only: asking 127.0.0.1 would find nothing there.
    const v6 = await listener('::', { ipv6Only: true });
    const asked6 = await healthcheck('workers', {
      UNICOP_WORKERS_METRICS_HOST: '::',
      UNICOP_WORKERS_METRICS_PORT: String(v6),
    });
    expect(asked6.ok, asked6.detail).toBe(true);
    expect(asked6.detail).toContain(`http://[::1]:${v6}/healthz`);
  });

  it('maps only the wildcards to loopback, in any spelling; other addresses and names are asked as they are', () => {
    expect(['0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0'].map(healthHost)).toEqual([
      '127.0.0.1',
      '::1',
      '::1',
      '::1',
    ]);
    expect(['127.0.0.1', '10.1.2.3', '::1', 'fd00::5', 'bridge', 'localhost'].map(healthHost)).toEqual([
      '127.0.0.1',
      '10.1.2.3',
      '::1',
      'fd00::5',
      'bridge',
      'localhost',
    ]);
    expect(healthUrl('fd00::5', 8080)).toBe('http://[fd00::5]:8080/healthz');
    expect(healthUrl('bridge', 8080)).toBe('http://bridge:8080/healthz');
  });

  it('defaults to the services’ own defaults (127.0.0.1, 18080 / 18081) and fails when nothing answers', async () => {
    const port = await listener('127.0.0.1');
    // Nothing listens on 127.0.0.4: the configured address is asked, not 127.0.0.1 where one does.
    const elsewhere = await healthcheck('bridge', {
      UNICOP_BRIDGE_HOST: '127.0.0.4',
      UNICOP_BRIDGE_PORT: String(port),
    });
    expect(elsewhere.ok).toBe(false);
    expect(elsewhere.detail).toContain(`http://127.0.0.4:${port}/healthz`);
    const defaults = await healthcheck('workers', { UNICOP_WORKERS_METRICS_PORT: String(port) });
    expect(defaults.ok, defaults.detail).toBe(true);
    expect(healthUrl('127.0.0.1', 18080)).toBe('http://127.0.0.1:18080/healthz');
  });

  it('refuses an empty or malformed host, naming the key, without asking anything', async () => {
    const empty = await healthcheck('bridge', { UNICOP_BRIDGE_HOST: '', UNICOP_BRIDGE_PORT: '8080' });
    expect(empty).toEqual({
      ok: false,
      detail: 'bridge: invalid configuration: UNICOP_BRIDGE_HOST: expected an IP address or a host name',
    });
    const bad = await healthcheck('workers', { UNICOP_WORKERS_METRICS_HOST: '0.0.0.0:9464' });
    expect(bad.ok).toBe(false);
    expect(bad.detail).toContain('UNICOP_WORKERS_METRICS_HOST');
  });

  it('`unicop healthcheck workers` reads the environment: exit 0 for a listener on UNICOP_WORKERS_METRICS_HOST', async () => {
    const port = await listener('127.0.0.5');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'bin', 'unicop.ts'), 'healthcheck', 'workers'],
      {
        cwd: repoRoot,
        env: {
          PATH: process.env.PATH ?? '',
          UNICOP_WORKERS_METRICS_HOST: '127.0.0.5',
          UNICOP_WORKERS_METRICS_PORT: String(port),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, output).toBe(0);
    expect(output).toContain(`http://127.0.0.5:${port}/healthz`);
  }, 60_000);
});
