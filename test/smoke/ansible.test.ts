/** Smoke: a trivial playbook really runs through ansible-runner from the stack's venv. */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { stack } from '../support/stack.js';

const run = promisify(execFile);

describe('ansible-runner', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs a local playbook and reports its events and stats', async () => {
    dir = await mkdtemp(join(tmpdir(), 'unicop-runner-'));
    await mkdir(join(dir, 'project'));
    await mkdir(join(dir, 'inventory'));
    const target = join(dir, 'written.txt');
    await writeFile(
      join(dir, 'inventory', 'hosts'),
      'localhost ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"\n',
    );
    await writeFile(
      join(dir, 'project', 'smoke.yml'),
      [
        '- hosts: localhost',
        '  gather_facts: false',
        '  tasks:',
        '    - ansible.builtin.copy:',
        `        dest: ${target}`,
        '        content: "{{ greeting }}\\n"',
        '',
      ].join('\n'),
    );
    const bin = stack.ansibleBin();
    await run(
      join(bin, 'ansible-runner'),
      ['run', dir, '-p', 'smoke.yml', '--ident', 'smoke', '--cmdline', '-e greeting=hello-unicop'],
      { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } },
    );
    expect(await readFile(join(dir, 'artifacts', 'smoke', 'status'), 'utf8')).toBe('successful');
    expect(await readFile(target, 'utf8')).toBe('hello-unicop\n');
    const events = await readdir(join(dir, 'artifacts', 'smoke', 'job_events'));
    expect(events.length).toBeGreaterThan(2);
  });
});
