/**
 * The `unicop` executable as installed: the compiled dist/bin/unicop.js (`npm run build`, which
 * scripts/test-all runs before the suites) run by plain node — no tsx loader — dispatches to the
 * bridge and the workers, prints its usage on --help, and refuses an unknown command with exit 2.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { stack } from '../support/stack.js';
import { assertBuilt, type Ran, startUnicop } from './run-unicop.js';

const children: ChildProcess[] = [];

/** The compiled CLI (run-unicop.ts), each child kept so afterEach can stop what is left. */
function run(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Ran> } {
  const started = startUnicop(args, env);
  children.push(started.child);
  return started;
}

describe('unicop (compiled)', () => {
  let emptyVar: string;

  beforeAll(() => {
    assertBuilt();
    emptyVar = mkdtempSync(join(tmpdir(), 'unicop-cli-'));
    return () => rmSync(emptyVar, { recursive: true, force: true });
  });

  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('--help lists the bridge and workers commands and exits 0', async () => {
    const ran = await run(['--help']).done;
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/^usage: unicop <command>/);
    expect(ran.stdout).toMatch(/^ {2}bridge /m);
    expect(ran.stdout).toMatch(/^ {2}workers /m);
  });

  it('an unknown command prints the usage to stderr and exits 2', async () => {
    const ran = await run(['frobnicate']).done;
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain("unknown command 'frobnicate'");
    expect(ran.stderr).toContain('usage: unicop <command>');
    expect(ran.stdout).toBe('');
  });

  it('--help lists the operator commands; an operator command line that is wrong exits 2 with its usage', async () => {
    const help = await run(['--help']).done;
    for (const name of [
      'root status',
      'root why',
      'root timeline',
      'tail',
      'reconcile',
      'freeze',
      'resume',
      'sweep',
      'replay',
    ]) {
      expect(help.stdout).toMatch(new RegExp(`^ {2}${name} +\\S`, 'm'));
    }
    const badKey = await run(['reconcile', 'Site 3'], { UNICOP_VAR: emptyVar }).done;
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain(
      "expected a root key like site/12 (<root-kind>/<anchor-id>), got 'Site 3'",
    );
    expect(badKey.stderr).toContain('usage: unicop reconcile <key>');
    const noReason = await run(['freeze', 'site/3'], { UNICOP_VAR: emptyVar }).done;
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--reason is required');
    const unknownOption = await run(['tail', '--bogus'], { UNICOP_VAR: emptyVar }).done;
    expect(unknownOption.code).toBe(2);
    // replay publishes nothing: without --dry-run it refuses before reading anything.
    const replay = await run(['replay', '--from', '1h', '--root', 'site/3'], { UNICOP_VAR: emptyVar }).done;
    expect(replay.code).toBe(2);
    expect(replay.stderr).toContain('replay publishes nothing');
  });

  it('an operator command whose service cannot be reached fails with exit 1 naming it (and --json says so too)', async () => {
    const closed = await freePort();
    const ran = await run(['reconcile', 'site/3', '--json'], {
      UNICOP_VAR: emptyVar,
      UNICOP_ADMIN_URL: `http://127.0.0.1:${closed}`,
      UNICOP_ADMIN_TOKEN: 'cli-test-token',
    }).done;
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain(`cannot reach the admin API at http://127.0.0.1:${closed}`);
    expect(JSON.parse(ran.stdout)).toMatchObject({
      error: expect.stringContaining('cannot reach the admin API'),
    });
    const noToken = await run(['sweep'], { UNICOP_VAR: emptyVar }).done;
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('no admin credentials: set UNICOP_OIDC_ISSUER');
    expect(noToken.stderr).toContain('or UNICOP_ADMIN_TOKEN (break-glass');
  }, 60_000);

  it('no command at all is a usage error (exit 2)', async () => {
    const ran = await run([]).done;
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain('usage: unicop <command>');
  });

  it('`unicop workers` runs the workers: without a NetBox token they refuse to start, naming the variable', async () => {
    const ran = await run(['workers'], { UNICOP_VAR: emptyVar }).done;
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain('workers failed to start');
    expect(ran.stderr).toContain('UNICOP_NETBOX_TOKEN');
  });

  it('`unicop bridge --wait 2` with Kafka and Redis unreachable exits 1 naming both, and never starts the bridge', async () => {
    const closed = await freePort(); // nothing listens there
    const ran = await run(['bridge', '--wait', '2'], {
      UNICOP_VAR: emptyVar,
      UNICOP_KAFKA_BROKERS: `127.0.0.1:${closed}`,
      UNICOP_REDIS_URL: `redis://127.0.0.1:${closed}`,
      UNICOP_WEBHOOK_SECRETS: 'cli-test-secret',
    }).done;
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/bridge failed to start: still waiting for kafka \(.*\); redis \(/);
    expect(ran.stdout).not.toContain('bridge listening');
  }, 60_000);

  it('`unicop healthcheck bridge` exits 1 when nothing answers on the bridge port', async () => {
    const closed = await freePort();
    const ran = await run(['healthcheck', 'bridge'], { UNICOP_BRIDGE_PORT: String(closed) }).done;
    expect(ran.code).toBe(1);
    expect(ran.stderr).toContain(`bridge /healthz on port ${closed}`);
  });

  it('`unicop bridge` serves /healthz on the configured address and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const { child, done } = run(['bridge'], {
      UNICOP_VAR: emptyVar,
      UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
      UNICOP_REDIS_URL: stack.redisUrl(),
      UNICOP_WEBHOOK_SECRETS: 'env:CLI_TEST_SECRET',
      CLI_TEST_SECRET: 'cli-test-secret',
      UNICOP_BRIDGE_HOST: '127.0.0.1',
      UNICOP_BRIDGE_PORT: String(port),
      UNICOP_LOG_LEVEL: 'warn',
    });
    let health: { status: number; body: string } | undefined;
    for (let i = 0; i < 600 && !health && child.exitCode === null; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        health = { status: res.status, body: await res.text() };
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(health?.status).toBe(200);
    // The image's HEALTHCHECK command agrees.
    const checked = await run(['healthcheck', 'bridge'], { UNICOP_BRIDGE_PORT: String(port) }).done;
    expect(checked.code).toBe(0);
    child.kill('SIGTERM');
    const ran = await done;
    expect(ran.code).toBe(0);
  }, 120_000);
});
