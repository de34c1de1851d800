/**
 * The UNICOP processes a fault run spawns from the compiled build (dist/, `npm run build`) — one
 * bridge and several workers processes — each kill -9-able and restartable, with its output
 * appended to one log file per process (kept across restarts, scanned for secrets at the end).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../../../core/config.js';
import { assertBuilt, unicopJs } from '../../cli/run-unicop.js';
import { freePort } from '../../support/ports.js';

export { freePort };

/** Every process spawned and still running: killed if the suite's own process exits first (a test's cap). */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class UnicopProcess {
  private child: ChildProcess | undefined;
  private readonly log: WriteStream;
  private exited: Promise<void> = Promise.resolve();
  /** Lines of the current incarnation's output (reset at each start), for readiness checks. */
  private lines: string[] = [];
  starts = 0;
  /**
   * Exits nobody asked for (a stage that failed ends the process on purpose): restarted a second
   * later, as the process's supervisor (systemd, compose `restart:`) would, and counted.
   */
  unplannedExits = 0;
  private expectingExit = false;

  constructor(
    readonly name: string,
    private readonly command: 'bridge' | 'workers',
    private readonly env: Record<string, string>,
    readonly logFile: string,
  ) {
    if (!process.env.UNICOP_FAULT_UNICOP_JS) assertBuilt();
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.lines = [];
    this.starts += 1;
    this.expectingExit = false;
    // UNICOP_FAULT_UNICOP_JS: another build of the executable (one compiled from a clean checkout).
    const executable = process.env.UNICOP_FAULT_UNICOP_JS || unicopJs;
    const child = spawn(process.execPath, [executable, this.command], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(child);
    let partial = '';
    const collect = (chunk: Buffer) => {
      this.log.write(chunk);
      const text = partial + String(chunk);
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      // Only the start-up lines are looked at; keeping every line of a long soak would not fit.
      if (this.lines.length < 5000) this.lines.push(...parts);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        live.delete(child);
        resolve();
        if (this.expectingExit) return;
        this.unplannedExits += 1;
        this.log.write(`[fault suite] ${this.name} exited (${code ?? signal}) unasked; restarting in 1 s\n`);
        setTimeout(() => {
          if (!this.expectingExit && !this.running) this.start();
        }, 1000);
      }),
    );
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** True once a line of this incarnation contains `text`. */
  said(text: string): boolean {
    return this.lines.some((line) => line.includes(text));
  }

  /** A workers stage's start-up time in this incarnation (its 'stage started' line), if logged yet. */
  stageStartedMs(stage: string): number | undefined {
    for (const line of this.lines) {
      if (!line.includes('"stage started"')) continue;
      try {
        const entry = JSON.parse(line) as { stage?: string; ms?: number };
        if (entry.stage === stage && typeof entry.ms === 'number') return entry.ms;
      } catch {
        // not a JSON line
      }
    }
    return undefined;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.expectingExit = true;
    this.child?.kill(signal);
    await this.exited;
  }

  async close(): Promise<void> {
    this.expectingExit = true;
    if (this.running) {
      this.child?.kill('SIGTERM');
      const timer = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}

export interface SpawnedUnicop {
  bridge: UnicopProcess;
  bridgeUrl: string;
  workers: UnicopProcess[];
  /** Every log file the processes write. */
  logFiles(): string[];
  close(): Promise<void>;
}

/**
 * Whether a process is up again, from its own log: the bridge has connected to Kafka (its /readyz
 * also asks NetBox, which a loaded stack answers slowly), the workers run every stage.
 */
export function processReady(p: UnicopProcess): boolean {
  return p.running && p.said(p.name === 'bridge' ? 'the bridge is ready' : 'workers running');
}

/** Whether nothing listens on this port of 127.0.0.1 now (a listen there succeeds). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.on('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function spawnUnicop(options: {
  dir: string;
  workers: number;
  /** The bridge's port (default: one the OS picks). */
  bridgePort?: number;
  env: Record<string, string>;
  bridgeEnv: Record<string, string>;
  workersEnv: Record<string, string>;
}): Promise<SpawnedUnicop> {
  const port = options.bridgePort ?? (await freePort());
  const bridge = new UnicopProcess(
    'bridge',
    'bridge',
    {
      ...options.env,
      ...options.bridgeEnv,
      UNICOP_BRIDGE_HOST: '127.0.0.1',
      UNICOP_BRIDGE_PORT: String(port),
    },
    join(options.dir, 'bridge.log'),
  );
  const workers = Array.from(
    { length: options.workers },
    (_, i) =>
      new UnicopProcess(
        `workers-${i}`,
        'workers',
        { ...options.env, ...options.workersEnv, UNICOP_WORKERS_METRICS_PORT: '0' },
        join(options.dir, `workers-${i}.log`),
      ),
  );
  bridge.start();
  for (const w of workers) w.start();
  return {
    bridge,
    bridgeUrl: `http://127.0.0.1:${port}`,
    workers,
    logFiles: () => [bridge.logFile, ...workers.map((w) => w.logFile)],
    close: async () => {
      await Promise.all([bridge.close(), ...workers.map((w) => w.close())]);
    },
  };
}
