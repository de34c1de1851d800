/**
 * The three receivers of the ingest benchmark, each its own process on its own port:
 * the bare sink, the UNICOP bridge as deployed (compiled, `node dist/bin/unicop.js bridge`) and
 * ansible-rulebook 1.3.2 with the `ansible.eda.webhook` source verifying NetBox's signature
 * (action `none`, so the rulebook's own work is as small as it gets).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { sleep } from '../../core/clock.js';
import { repoRoot } from '../../core/config.js';

export interface Receiver {
  name: string;
  url: string;
  /** The status the receiver answers a webhook it took. */
  acceptedStatus: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Resolves once something listens on the port; rejects after `timeoutMs` or if `child` exits. */
export async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${port} within ${timeoutMs} ms`);
    await sleep(200);
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
}

/** A bridge listens before Kafka is connected (decision 0036) and answers 503 until then. */
async function waitForReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before it was ready`);
    const status = await fetch(url).then(
      (res) => res.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline)
      throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last ${status})`);
    await sleep(250);
  }
}

async function started(
  name: string,
  child: ChildProcess,
  port: number,
  acceptedStatus: number,
  path: string,
) {
  await waitForPort(port, child, 120_000);
  return {
    name,
    url: `http://127.0.0.1:${port}${path}`,
    acceptedStatus,
    process: child,
    stop: stopper(child),
  };
}

export async function startSink(port: number, secret: string): Promise<Receiver> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench', 'ingest', 'sink.ts')], {
    cwd: repoRoot,
    env: { ...process.env, BENCH_SINK_PORT: String(port), BENCH_SINK_SECRET: secret },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return started('bare Node sink (HMAC verify + JSON parse)', child, port, 202, '/');
}

/**
 * Builds dist/ (`npm run build`) so the bridge measured is the compiled one of this tree. tsc emits
 * even when another part of a shared working tree does not type-check; that is reported, not fatal.
 */
export function buildBridge(): void {
  try {
    execFileSync('npm', ['run', '--silent', 'build'], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } catch {
    process.stderr.write('npm run build reported type errors; measuring what it emitted\n');
  }
  if (!existsSync(join(repoRoot, 'dist', 'bin', 'unicop.js')))
    throw new Error('dist/bin/unicop.js was not built');
}

export async function startBridge(
  port: number,
  secret: string,
  stackEnv: Record<string, string | undefined>,
  extraArgs: string[] = [],
  /** Another build of the bridge (e.g. the last commit's, to compare a change in one run). */
  script = join(repoRoot, 'dist', 'bin', 'unicop.js'),
  /** Settings for this bridge only (e.g. another UNICOP_PUBLISH_LINGER_MS, to compare in one run). */
  settings: Record<string, string> = {},
): Promise<Receiver> {
  const env: Record<string, string | undefined> = { ...process.env, ...stackEnv, ...settings };
  // Tracing as deployed by default: off (UNICOP_OTLP_URL unset), although the stack's Jaeger is in
  // var/stack.env; BENCH_BRIDGE_TRACING=1 measures the bridge exporting a trace per change to it.
  if (process.env.BENCH_BRIDGE_TRACING !== '1') delete env.UNICOP_OTLP_URL;
  const child = spawn(process.execPath, [...extraArgs, script, 'bridge'], {
    cwd: repoRoot,
    env: {
      ...env,
      UNICOP_WEBHOOK_SECRETS: secret,
      UNICOP_BRIDGE_HOST: '127.0.0.1',
      UNICOP_BRIDGE_PORT: String(port),
      // The deployed default (info): one log line per accepted change, written to nowhere here.
      UNICOP_LOG_LEVEL: process.env.BENCH_BRIDGE_LOG_LEVEL ?? 'info',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const bridge = await started(`UNICOP bridge ${script}`, child, port, 202, '/webhooks/netbox');
  await waitForReady(`http://127.0.0.1:${port}/readyz`, child, 120_000);
  return bridge;
}

function javaHome(): string {
  if (process.env.JAVA_HOME) return process.env.JAVA_HOME;
  const candidate = '/usr/lib/jvm/java-17-openjdk-amd64';
  if (existsSync(candidate)) return candidate;
  throw new Error('ansible-rulebook needs Java 17: set JAVA_HOME');
}

export async function startRulebook(port: number, secret: string): Promise<Receiver> {
  const home = execFileSync(join(repoRoot, 'bench', 'ingest', 'install-rulebook'), {
    encoding: 'utf8',
  }).trim();
  const dir = join(home, 'run');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'inventory.yml'),
    'all:\n  hosts:\n    localhost:\n      ansible_connection: local\n',
  );
  writeFileSync(join(dir, 'vars.yml'), `webhook_secret: ${JSON.stringify(secret)}\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, 'rulebook.yml'),
    [
      '- name: ingest benchmark',
      '  hosts: all',
      '  sources:',
      '    - ansible.eda.webhook:',
      '        host: 127.0.0.1',
      `        port: ${port}`,
      '        hmac_secret: "{{ webhook_secret }}"',
      '        hmac_algo: sha512',
      '        hmac_header: X-Hook-Signature',
      '        hmac_format: hex',
      '  rules:',
      '    - name: every NetBox change',
      '      condition: event.payload.event is defined',
      '      action:',
      '        none: {}',
      '',
    ].join('\n'),
  );
  const child = spawn(
    join(home, 'venv', 'bin', 'ansible-rulebook'),
    ['--rulebook', 'rulebook.yml', '-i', 'inventory.yml', '--vars', 'vars.yml'],
    {
      cwd: dir,
      env: {
        ...process.env,
        JAVA_HOME: javaHome(),
        PATH: `${join(home, 'venv', 'bin')}:${process.env.PATH}`,
        ANSIBLE_COLLECTIONS_PATH: join(home, 'collections'),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  return started('ansible-rulebook 1.3.2, ansible.eda.webhook 2.13.0', child, port, 200, '/netbox');
}
