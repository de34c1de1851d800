/**
 * Configuration: one zod schema, parsed once; a bad value fails with the variable's name and never
 * its value; secrets are resolved from references (env:, file:) and are redacted from logs.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../core/config.js';
import { createLogger } from '../../core/logger.js';

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = parseConfig({});
    expect(config.UNICOP_KAFKA_BROKERS).toEqual(['127.0.0.1:19092']);
    expect(config.UNICOP_WEBHOOK_MAX_BYTES).toBe(1024 * 1024);
    expect(config.UNICOP_BRIDGE_PORT).toBe(18080);
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
