/**
 * The AWX double as the demo starts it: a separate process (`npx tsx test/awx-double/main.ts`) with
 * the example template file pointing at awx-playbooks/, the token from the environment, and a clean
 * stop on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AwxClient } from '../../core/awx/index.js';
import { repoRoot } from '../../core/config.js';
import { stack } from '../support/stack.js';
import { eventually } from './support.js';

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
    // `node --import tsx` is what `npx tsx` runs, in one process, so SIGTERM reaches the double itself.
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'test/awx-double/main.ts',
        '--config',
        'test/awx-double/templates.example.yaml',
        '--state-dir',
        stateDir,
      ],
      {
        cwd: repoRoot,
        env: { ...process.env, UNICOP_AWX_DOUBLE_TOKEN: token, UNICOP_ANSIBLE_BIN: stack.ansibleBin() },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child?.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = out.match(/awx-double listening on (\S+)/);
        if (match?.[1]) resolve(match[1]);
      });
      child?.once('exit', (code) => reject(new Error(`awx-double exited with ${code} before listening`)));
    });

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
