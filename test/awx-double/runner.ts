/**
 * One playbook run with ansible-runner, the way AWX's execution nodes run a job: a private data
 * directory per job (project, inventory, env/extravars, env/cmdline), the runner's artifacts read
 * back as the job's status, stdout and events. The runner gets its own process group so a cancel
 * stops ansible-playbook and its workers too; it is detached, so it outlives a double killed under
 * it, and a restarted double follows it by its pid (`reattach`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type RunnerOutcome = 'successful' | 'failed' | 'error' | 'canceled';

export interface RunnerEvent {
  uuid: string;
  counter: number;
  event: string;
  stdout: string;
  start_line: number;
  end_line: number;
  parent_uuid?: string;
  created?: string;
  event_data?: Record<string, unknown>;
}

export interface AnsibleRunOptions {
  /** Directory with ansible-runner (var/pyenv/bin). */
  ansibleBin: string;
  /** Private data directory of this job; created. */
  dir: string;
  projectDir: string;
  playbook: string;
  extraVars: Record<string, unknown>;
  check: boolean;
  limit?: string;
}

const ident = 'job';

export class AnsibleRun {
  private child: ChildProcess | undefined;
  private canceled = false;
  readonly done: Promise<{ outcome: RunnerOutcome; explanation: string }>;
  private resolveDone!: (v: { outcome: RunnerOutcome; explanation: string }) => void;

  constructor(private readonly options: AnsibleRunOptions) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  private get artifacts(): string {
    return join(this.options.dir, 'artifacts', ident);
  }

  /** Prepares the private data directory and starts ansible-runner; `done` settles when it ends. */
  async start(): Promise<void> {
    const { dir, projectDir, playbook, extraVars, check, limit, ansibleBin } = this.options;
    if (!existsSync(join(projectDir, playbook))) {
      this.resolveDone({ outcome: 'error', explanation: `playbook ${playbook} not found in the project` });
      return;
    }
    await mkdir(join(dir, 'inventory'), { recursive: true });
    await mkdir(join(dir, 'env'), { recursive: true });
    if (!existsSync(join(dir, 'project'))) await symlink(projectDir, join(dir, 'project'));
    await writeFile(
      join(dir, 'inventory', 'hosts'),
      'localhost ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"\n',
    );
    await writeFile(join(dir, 'env', 'extravars'), JSON.stringify(extraVars));
    if (this.canceled) {
      this.resolveDone({ outcome: 'canceled', explanation: 'Job canceled by user request.' });
      return;
    }
    const cmdline = [check ? '--check --diff' : '', limit ? `--limit ${limit}` : ''].join(' ').trim();
    if (cmdline) await writeFile(join(dir, 'env', 'cmdline'), cmdline);
    const child = spawn(join(ansibleBin, 'ansible-runner'), ['run', dir, '-p', playbook, '--ident', ident], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, PATH: `${ansibleBin}:${process.env.PATH ?? ''}`, ANSIBLE_NOCOLOR: '1' },
    });
    this.child = child;
    child.on('error', (err) =>
      this.resolveDone({ outcome: 'error', explanation: `ansible-runner: ${err.message}` }),
    );
    child.on('exit', () => {
      void this.readOutcome().then((o) => this.resolveDone(o));
    });
  }

  /** The ansible-runner process (and its process group), while this double started it. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Follows a run an earlier double process started (its ansible-runner is detached: it outlives
   * the double): `done` settles once process `pid` is gone, with the outcome its artifacts say —
   * at once when it has already ended.
   */
  reattach(pid: number | undefined): void {
    const alive = () => {
      if (!pid) return false;
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const check = () => {
      if (alive()) {
        setTimeout(check, 200).unref();
        return;
      }
      void this.readOutcome(true).then((o) => this.resolveDone(o));
    };
    check();
  }

  /** Stops the run: TERM to its process group, KILL after five seconds. */
  cancel(): void {
    this.canceled = true;
    const pid = this.child?.pid;
    if (!pid || this.child?.exitCode !== null) return;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      return;
    }
    setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 5_000).unref();
  }

  /**
   * The outcome ansible-runner wrote. `restarted`: the run was started by an earlier double process;
   * one that left no status ended with it, and the job is failed as AWX's start-up reaping fails a
   * job it finds running (awx/main/dispatch/reaper.py, the explanation is AWX's).
   */
  private async readOutcome(restarted = false): Promise<{ outcome: RunnerOutcome; explanation: string }> {
    if (this.canceled) return { outcome: 'canceled', explanation: 'Job canceled by user request.' };
    const status = await readFile(join(this.artifacts, 'status'), 'utf8').catch(() => '');
    if (status === 'successful') return { outcome: 'successful', explanation: '' };
    if (status === 'failed') return { outcome: 'failed', explanation: '' };
    if (restarted && status === '') {
      return {
        outcome: 'failed',
        explanation:
          'Task was marked as running at system start up. The system must have not shut down properly, so it has been marked as failed.',
      };
    }
    return { outcome: 'error', explanation: `ansible-runner ended with status '${status || 'unknown'}'` };
  }

  /** The job's output so far (ansible-playbook's stdout). */
  async stdout(): Promise<string> {
    return readFile(join(this.artifacts, 'stdout'), 'utf8').catch(() => '');
  }

  /** The job's events so far, in counter order. */
  async events(): Promise<RunnerEvent[]> {
    const dir = join(this.artifacts, 'job_events');
    const names = await readdir(dir).catch(() => [] as string[]);
    const events: RunnerEvent[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        events.push(JSON.parse(await readFile(join(dir, name), 'utf8')) as RunnerEvent);
      } catch {
        // a partially written event file: it is complete on the next read
      }
    }
    return events.sort((a, b) => a.counter - b.counter);
  }
}
