/**
 * Configuration: one zod schema, parsed once; a bad value fails with the variable's name and never
 * its value; secrets are resolved from references (env:, file:) and are redacted from logs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig, parseConfig, repoRoot } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';

describe('configuration', () => {
  it("applies the defaults README's configuration table documents, and the table has a row for every key", () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const rows = new Map(
      [...readme.matchAll(/^\| `(UNICOP_[A-Z0-9_]+)` \| ([^|]*) \|/gm)].map((m) => [
        m[1],
        (m[2] ?? '').trim(),
      ]),
    );
    const keys = Object.keys(configSchema.shape);
    expect(keys.filter((key) => !rows.has(key))).toEqual([]);
    const config = parseConfig({}) as Record<string, unknown>;
    const wrong = keys.flatMap((key) => {
      const cell = rows.get(key) as string;
      const actual = config[key];
      // "—" (no default): nothing; "`UNICOP_OTHER`": unset here, the other key's value is used.
      if (cell.startsWith('—') || /^`UNICOP_[A-Z_]+`$/.test(cell)) {
        return actual === undefined ? [] : [`${key}: README says no default, the code has ${String(actual)}`];
      }
      const documented = cell.replace(/^`|`$/g, '');
      const shown = Array.isArray(actual) ? actual.join(',') : String(actual);
      return shown === documented ? [] : [`${key}: README says ${documented}, the code has ${shown}`];
    });
    expect(wrong).toEqual([]);
    expect(rows.size).toBeGreaterThanOrEqual(keys.length);
  });

  it('names every bad field and never echoes a value', () => {
    const secretLooking = ['nbt_abcdefabcdef', '0123456789abcdef0123456789abcdef'].join('.'); // built, so no token-shaped literal is committed
    try {
      parseConfig({
        UNICOP_BRIDGE_PORT: '99999',
        UNICOP_KAFKA_BROKERS: secretLooking,
        UNICOP_LOG_LEVEL: 'loud',
      });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const fields = (error as ConfigError).fields.map((f) => f.field).sort();
      expect(fields).toEqual(['UNICOP_BRIDGE_PORT', 'UNICOP_KAFKA_BROKERS', 'UNICOP_LOG_LEVEL']);
      expect((error as Error).message).not.toContain(secretLooking);
    }
  });

  it('resolves secrets by reference: env:, file:, and several webhook secrets for rotation', () => {
    const dir = mkdtempSync(join(tmpdir(), 'unicop-config-'));
    writeFileSync(join(dir, 'admin'), 'from-a-file\n');
    const config = parseConfig({
      UNICOP_ADMIN_TOKEN: `file:${join(dir, 'admin')}`,
      UNICOP_NETBOX_TOKEN: 'env:MY_NETBOX_TOKEN',
      MY_NETBOX_TOKEN: 'nbt_x.y',
      UNICOP_WEBHOOK_SECRETS: 'env:HOOK_NEW, env:HOOK_OLD',
      HOOK_NEW: 'new-secret',
      HOOK_OLD: 'old-secret',
    });
    expect(config.UNICOP_ADMIN_TOKEN).toBe('from-a-file');
    expect(config.UNICOP_NETBOX_TOKEN).toBe('nbt_x.y');
    expect(config.UNICOP_WEBHOOK_SECRETS).toEqual(['new-secret', 'old-secret']);
  });

  it('refuses a dangling secret reference, naming the field', () => {
    expect(() => parseConfig({ UNICOP_ADMIN_TOKEN: 'env:NOT_SET_ANYWHERE' })).toThrow(/UNICOP_ADMIN_TOKEN/);
    expect(() => parseConfig({ UNICOP_ADMIN_TOKEN: 'file:/nonexistent/x' })).toThrow(/UNICOP_ADMIN_TOKEN/);
  });

  it('reads an optional JSON config file, with the environment winning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'unicop-config-'));
    const file = join(dir, 'unicop.json');
    writeFileSync(file, JSON.stringify({ UNICOP_BRIDGE_PORT: 19999, UNICOP_LOG_LEVEL: 'debug' }));
    const config = loadConfig({ UNICOP_CONFIG_FILE: file, UNICOP_LOG_LEVEL: 'warn' });
    expect(config.UNICOP_BRIDGE_PORT).toBe(19999);
    expect(config.UNICOP_LOG_LEVEL).toBe('warn');
  });

  it('UNICOP_WORKERS_METRICS_HOST: loopback by default, any IP or host name, nothing else', () => {
    expect(parseConfig({}).UNICOP_WORKERS_METRICS_HOST).toBe('127.0.0.1');
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'workers.internal']) {
      expect(parseConfig({ UNICOP_WORKERS_METRICS_HOST: host }).UNICOP_WORKERS_METRICS_HOST).toBe(host);
    }
    // An empty host would make Node listen on every address: refused, as are a port or a URL.
    for (const bad of ['', '0.0.0.0:9464', 'http://0.0.0.0', 'two words']) {
      expect(() => parseConfig({ UNICOP_WORKERS_METRICS_HOST: bad }), JSON.stringify(bad)).toThrow(
        /^invalid configuration: UNICOP_WORKERS_METRICS_HOST: expected an IP address or a host name$/,
      );
    }
  });

  it('UNICOP_BRIDGE_HOST: loopback by default, any IP or host name; an empty value is refused naming the key', () => {
    expect(parseConfig({}).UNICOP_BRIDGE_HOST).toBe('127.0.0.1');
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'bridge']) {
      expect(parseConfig({ UNICOP_BRIDGE_HOST: host }).UNICOP_BRIDGE_HOST).toBe(host);
    }
    // Node would listen on every address for an empty host (e.g. `UNICOP_BRIDGE_HOST=` in an env file).
    for (const bad of ['', '0.0.0.0:8080', 'http://bridge']) {
      let thrown: unknown;
      try {
        parseConfig({ UNICOP_BRIDGE_HOST: bad });
      } catch (error) {
        thrown = error;
      }
      expect(thrown, JSON.stringify(bad)).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).fields, JSON.stringify(bad)).toEqual([
        { field: 'UNICOP_BRIDGE_HOST', message: 'expected an IP address or a host name' },
      ]);
    }
  });

  it('`unicop workers` with a bad UNICOP_WORKERS_METRICS_HOST exits 1 naming it, before connecting anywhere', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'bin', 'unicop.ts'), 'workers'],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, UNICOP_WORKERS_METRICS_HOST: '0.0.0.0:9464', UNICOP_LOG_LEVEL: 'silent' },
      },
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      'workers failed to start: invalid configuration: UNICOP_WORKERS_METRICS_HOST',
    );
  });

  it('the logger redacts credentials by path', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _e, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger('test', 'info', sink);
    log.info(
      {
        headers: { authorization: 'Bearer nbt_secret.value', 'x-hook-signature': 'f'.repeat(128) },
        config: { UNICOP_NETBOX_TOKEN: 'nbt_secret.value' },
        token: 'plain-token-value',
      },
      'request',
    );
    const out = lines.join('');
    expect(out).toContain('[redacted]');
    expect(out).not.toContain('nbt_secret.value');
    expect(out).not.toContain('plain-token-value');
    expect(out).not.toContain('f'.repeat(128));
  });
});
