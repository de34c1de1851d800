/**
 * Per-service fault hooks on the local stack (scripts/stack.d/*.sh): kill -9 a service's daemons
 * and bring them back with the service's own `up`, which starts only what is not running (its
 * start_daemon skips a live pid) and waits for health. Each daemon runs in its own session
 * (start_daemon: `setsid nohup`), its pid in var/run/NAME.pid is the session's process group, so
 * the kill takes the whole group, as a machine losing the service would.
 *
 * Which daemons a fault kills:
 * - kafka: the broker (kafka.sh); redis: redis-server (redis.sh, no persistence: its data is gone);
 * - netbox-gunicorn: NetBox's web server; netbox-rqworker: every RQ worker delivering NetBox's
 *   webhooks (netbox.sh runs UNICOP_NETBOX_RQWORKERS of them, decision 0063) — all at once, so the
 *   fault is webhook delivery lost, not one worker of several;
 * - awx: uwsgi (API), dispatcher (task manager) and callback receiver; receptor, which runs the
 *   job containers like an execution node, stays up. AWX's dispatcher reaps the jobs it finds
 *   orphaned when it starts again.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../../../core/config.js';
import { stackFact } from '../../support/stack.js';
import type { FaultKind } from './schedule.js';

export type ServiceFault = Exclude<FaultKind, 'bridge' | 'workers'>;

interface ServiceHook {
  /** The stack.d script whose `up` restarts it. */
  script: string;
  /** Daemon names (var/run/NAME.pid) the fault kills, read when it strikes. */
  daemons: () => string[];
  /** True once the service answers again (a probe, quick to fail). */
  healthy(): Promise<boolean>;
}

const varDir = process.env.UNICOP_VAR ?? join(repoRoot, 'var');

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url.includes('://') ? url : `tcp://${url}`);
  return { host: u.hostname, port: Number(u.port) };
}

/** Sends `send` on a TCP connection and resolves whether the answer starts with `expect`. */
function tcpProbe(address: { host: string; port: number }, send?: string, expect?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(address.port, address.host);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => {
      if (send === undefined) return done(true);
      socket.write(send);
    });
    socket.on('data', (chunk) => done(expect === undefined || String(chunk).startsWith(expect)));
  });
}

async function httpOk(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** NetBox's RQ workers as netbox.sh started them: netbox-rqworker, netbox-rqworker-2, … (their pid files). */
function rqWorkers(): string[] {
  const names = readdirSync(join(varDir, 'run'))
    .map((file) => /^(netbox-rqworker(?:-\d+)?)\.pid$/.exec(file)?.[1])
    .filter((name): name is string => name !== undefined);
  return names.length > 0 ? names : ['netbox-rqworker'];
}

export function daemonPid(name: string): number | undefined {
  const file = join(varDir, 'run', `${name}.pid`);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const hooks: Record<ServiceFault, ServiceHook> = {
  kafka: {
    script: 'kafka.sh',
    daemons: () => ['kafka'],
    // The broker answers an ApiVersions request once it listens; the suite's own Kafka clients
    // (and the workers') are what show it serving topics again.
    healthy: () => tcpProbe(hostPort(stackFact('UNICOP_KAFKA_BROKERS').split(',')[0] as string)),
  },
  redis: {
    script: 'redis.sh',
    daemons: () => ['redis'],
    healthy: () => tcpProbe(hostPort(stackFact('UNICOP_REDIS_URL')), 'PING\r\n', '+PONG'),
  },
  'netbox-gunicorn': {
    script: 'netbox.sh',
    daemons: () => ['netbox-gunicorn'],
    healthy: () =>
      httpOk(`${stackFact('UNICOP_NETBOX_URL')}/api/status/`, {
        authorization: `Bearer ${stackFact('UNICOP_NETBOX_TOKEN')}`,
      }),
  },
  'netbox-rqworker': {
    script: 'netbox.sh',
    daemons: rqWorkers,
    healthy: async () => rqWorkers().every((name) => alive(daemonPid(name))),
  },
  awx: {
    script: 'awx.sh',
    daemons: () => ['awx-uwsgi', 'awx-dispatcher', 'awx-callback'],
    healthy: () => httpOk(`${stackFact('UNICOP_AWX_REAL_URL')}/api/v2/ping/`),
  },
};

/** kill -9 of the service's daemons (each one's process group); returns the pids killed. */
export function killService(kind: ServiceFault): number[] {
  const killed: number[] = [];
  for (const name of hooks[kind].daemons()) {
    const pid = daemonPid(name);
    if (!alive(pid)) continue;
    try {
      process.kill(-(pid as number), 'SIGKILL');
    } catch {
      process.kill(pid as number, 'SIGKILL');
    }
    killed.push(pid as number);
  }
  return killed;
}

/** Runs the service's `up` (output appended to `logFile`); rejects when it exits non-zero. */
export function restartService(kind: ServiceFault, logFile: string): Promise<void> {
  const script = join(repoRoot, 'scripts', 'stack.d', hooks[kind].script);
  const out = createWriteStream(logFile, { flags: 'a' });
  return new Promise((resolve, reject) => {
    const child = spawn(script, ['up'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    child.on('error', reject);
    child.on('exit', (code) => {
      out.end();
      if (code === 0) resolve();
      else reject(new Error(`${hooks[kind].script} up exited ${code} (see ${logFile})`));
    });
  });
}

export function serviceHealthy(kind: ServiceFault): Promise<boolean> {
  return hooks[kind].healthy();
}

export function isServiceFault(kind: FaultKind): kind is ServiceFault {
  return kind in hooks;
}
