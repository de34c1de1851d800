/**
 * The AWX double as the demo starts it: a separate process (`npx tsx test/awx-double/main.ts`) with
 * the example template file pointing at awx-playbooks/, the token from the environment, and a clean
 * stop on SIGTERM. And, as AWX keeps its jobs in PostgreSQL, the double keeps its jobs across a
 * kill -9 and restart on the same state directory (issue #14, observation 12).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AwxClient } from '../../core/awx/index.js';
import { repoRoot } from '../../core/config.js';
import { stack } from '../support/stack.js';
import { eventually } from './support.js';

/** Starts the double as a process; resolves with its URL once it listens. */
async function spawnDouble(config: string, stateDir: string, token: string) {
  // `node --import tsx` is what `npx tsx` runs, in one process, so a signal reaches the double itself.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/awx-double/main.ts', '--config', config, '--state-dir', stateDir],
    {
      cwd: repoRoot,
      env: { ...process.env, UNICOP_AWX_DOUBLE_TOKEN: token, UNICOP_ANSIBLE_BIN: stack.ansibleBin() },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = out.match(/awx-double listening on (\S+)/);
      if (match?.[1]) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`awx-double exited with ${code} before listening`)));
  });
  return { child, url };
}

describe('AWX double as a process', () => {
  let child: ChildProcess | undefined;
  let stateDir = '';

  afterAll(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('starts from the example template file, serves the API with the token from the environment, stops on SIGTERM', async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'unicop-awx-process-'));
    const token = randomBytes(16).toString('hex');
    const started = await spawnDouble('test/awx-double/templates.example.yaml', stateDir, token);
    child = started.child;
    const url = started.url;

    expect((await fetch(`${url}/api/v2/jobs/`)).status).toBe(401);
    const client = new AwxClient({ baseUrl: url, token });
    await expect(client.getJob(1)).rejects.toMatchObject({ name: 'AwxNotFoundError' });
    expect(await client.listPendingApprovals()).toEqual([]);
    // The templates are the example file's: its workflow 9 opens with the approval "Approve site
    // change" (no playbook runs), and a template id the file does not declare is unknown.
    const unicop = { root: 'site/1', snapshot: {}, hash: 'h', fencing_token: 1, run_id: 'double-process' };
    const { job: workflow } = await client.launchWorkflowJobTemplate(9, { unicop });
    expect(workflow.name).toBe('unicop-site-with-approval');
    const approvals = await eventually(
      async () => {
        const pending = await client.approvalsOfWorkflowJob(workflow.id);
        return pending.length > 0 ? pending : undefined;
      },
      'the approval of the example workflow',
      30_000,
    );
    expect(approvals.map((a) => a.name)).toEqual(['Approve site change']);
    await expect(client.launchWorkflowJobTemplate(99, { unicop })).rejects.toMatchObject({
      name: 'AwxNotFoundError',
    });

    const exited = new Promise<string>((resolve) =>
      child?.once('exit', (code, signal) => resolve(`${code}/${signal}`)),
    );
    child.kill('SIGTERM');
    expect(await exited).toBe('0/null');
    await expect(fetch(`${url}/api/v2/ping/`)).rejects.toThrow();
  });
});

describe('AWX double restarted: it keeps its jobs, as AWX keeps them in its database', () => {
  const children: ChildProcess[] = [];
  let dir = '';

  afterAll(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('killed (-9) and started again: a finished job is listed with its status; a job whose runner finished meanwhile ends successful; one whose runner died ends failed as AWX reaps it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'unicop-awx-restart-'));
    const stateDir = join(dir, 'state');
    await mkdir(join(dir, 'project'), { recursive: true });
    // A playbook that takes a few seconds: the double is killed while it runs.
    await writeFile(
      join(dir, 'project', 'slow.yml'),
      '- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: sleep 4\n      changed_when: false\n',
    );
    const config = join(dir, 'double.yaml');
    await writeFile(
      config,
      [
        'project_dir: project',
        'auth: { tokens: [], users: [] }',
        'job_templates:',
        '  - { id: 1, name: slow, playbook: slow.yml, allow_simultaneous: true }',
        'workflow_job_templates: []',
        '',
      ].join('\n'),
    );
    const token = randomBytes(16).toString('hex');
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const api = async (url: string, path: string, init: RequestInit = {}) => {
      const res = await fetch(`${url}/api/v2/${path}`, { ...init, headers });
      expect(res.status, path).toBeLessThan(300);
      return (await res.json()) as Record<string, unknown> & { id: number; status: string };
    };
    const launch = (url: string) => api(url, 'job_templates/1/launch/', { method: 'POST', body: '{}' });
    const statusOf = async (url: string, id: number) => (await api(url, `jobs/${id}/`)).status;

    const first = await spawnDouble(config, stateDir, token);
    children.push(first.child);
    const done = await launch(first.url);
    await eventually(
      async () => (await statusOf(first.url, done.id)) === 'successful',
      'the first job',
      60_000,
    );
    const survives = await launch(first.url);
    const orphaned = await launch(first.url);
    for (const job of [survives, orphaned]) {
      await eventually(
        async () => (await statusOf(first.url, job.id)) === 'running',
        `job ${job.id} running`,
        60_000,
      );
    }
    // The runner pids are on disk by the next tick after start; wait for both.
    const runnerPid = async (id: number) => {
      const saved = JSON.parse(await readFile(join(stateDir, 'jobs.json'), 'utf8')) as {
        jobs: { id: number; runnerPid?: number }[];
      };
      return saved.jobs.find((j) => j.id === id)?.runnerPid;
    };
    const orphanPid = await eventually(() => runnerPid(orphaned.id), 'the runner pid on disk', 30_000);
    await eventually(() => runnerPid(survives.id), 'the runner pid on disk', 30_000);
    const killed = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGKILL');
    await killed;
    // One runner dies with the double (as a job container would with its node); the other goes on.
    process.kill(-orphanPid, 'SIGKILL');

    const second = await spawnDouble(config, stateDir, token);
    children.push(second.child);
    const listed = (await api(second.url, 'jobs/')) as unknown as { results: { id: number }[] };
    expect(listed.results.map((j) => j.id)).toEqual(
      expect.arrayContaining([done.id, survives.id, orphaned.id]),
    );
    expect(await statusOf(second.url, done.id)).toBe('successful');
    await eventually(
      async () => (await statusOf(second.url, survives.id)) === 'successful',
      'the job whose runner outlived the double',
      60_000,
    );
    const reaped = await eventually(
      async () => {
        const job = await api(second.url, `jobs/${orphaned.id}/`);
        return job.status === 'running' ? undefined : job;
      },
      'the job whose runner died',
      60_000,
    );
    expect(reaped.status).toBe('failed');
    expect(reaped.job_explanation).toMatch(/marked as running at system start up/);
    // The id sequence goes on after the restored jobs.
    expect((await launch(second.url)).id).toBeGreaterThan(orphaned.id);
  });
});
