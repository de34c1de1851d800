/**
 * The reconciler playbooks (awx-playbooks/) run as AWX would run them: launched through the client
 * on the AWX double, executed by ansible-runner, against a temporary target directory. For each
 * root kind: apply, idempotent re-run (changed=0), check-mode drift after a manual change at the
 * target (nothing changed), a stale fencing token refused, and a later apply converging again.
 */
import { execFile } from 'node:child_process';
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AwxClient, AwxJob } from '../../core/awx/index.js';
import { stack, uniqueName } from '../support/stack.js';
import { playbookProject, startTestDouble, type TestDouble, unicopVars, waitForJob } from './support.js';

const exec = promisify(execFile);

/**
 * Generous caps on waits for real ansible-runner work (each test runs up to five playbooks): a
 * 2-core machine shared with other suites ran these past a 60 s budget. The tests run one at a
 * time, so one test's jobs do not slow another's.
 */
const jobCapMs = 300_000;
const testCapMs = 900_000;

interface Summary {
  root: string;
  run_id: string;
  fencing_token: number;
  mode: 'apply' | 'check';
  drift: boolean;
  changed_files: string[];
  [field: string]: unknown;
}

/** The fence record at a root's directory (awx-playbooks/README.md, "Fencing at the target"). */
const fence = async (dir: string) =>
  JSON.parse(await readFile(join(dir, 'unicop-state.json'), 'utf8')) as {
    fencing_token: number;
    run_id: string;
  };

/** The `changed` count of the run's PLAY RECAP, from its playbook_on_stats event. */
async function changedCount(client: AwxClient, job: AwxJob): Promise<number> {
  const events = await client.listJobEvents(job.id);
  const stats = events.results.find((e) => e.event === 'playbook_on_stats');
  const changed = (stats?.event_data?.changed ?? {}) as Record<string, number>;
  return Object.values(changed).reduce((a, b) => a + b, 0);
}

describe('reconciler playbooks through the AWX double', () => {
  let awx: TestDouble;
  let target: string;

  beforeAll(async () => {
    target = await mkdtemp(join(tmpdir(), 'unicop-target-'));
    const template = (id: number, name: string, playbook: string) => ({
      id,
      name,
      playbook,
      ask_variables_on_launch: true,
      ask_job_type_on_launch: true,
      extra_vars: { unicop_target_dir: target },
    });
    awx = await startTestDouble({
      project_dir: playbookProject,
      job_templates: [template(1, 'unicop-prefix', 'prefix.yml'), template(2, 'unicop-site', 'site.yml')],
    });
  });

  afterAll(async () => {
    await awx?.stop();
    if (target) await rm(target, { recursive: true, force: true });
  });

  /** Launches one run of a root and waits for it; returns the job, its summary and changed count. */
  async function run(templateId: number, root: string, token: number, snapshot: unknown, jobType?: 'check') {
    const { job } = await awx.client.launchJobTemplate(templateId, {
      unicop: unicopVars(root, uniqueName('run'), token, snapshot),
      ...(jobType ? { jobType } : {}),
    });
    // A cap, not a budget: on a loaded machine ansible-runner may take minutes; the wait ends as
    // soon as AWX reports the job ended.
    const done = await waitForJob(awx.client, job.id, jobCapMs);
    const summary = (done.artifacts?.unicop_summary ?? {}) as Summary;
    return { job: done, summary, changed: await changedCount(awx.client, done) };
  }

  /** Every file under a root's directory and its content. */
  const treeOf = async (dir: string) => {
    const tree: Record<string, string> = {};
    for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) {
        const path = join(entry.parentPath, entry.name);
        tree[path.slice(dir.length + 1)] = await readFile(path, 'utf8');
      }
    }
    return tree;
  };

  describe('each root kind', () => {
    it(
      'prefix: renders A and PTR zones checked by named-checkzone, idempotent, drift in check mode, fenced',
      async () => {
        const root = `prefix/${Math.floor(Math.random() * 1e6)}`;
        const dir = join(target, root.replace('/', '-'));
        const snapshot = {
          root: {
            kind: 'prefix',
            key: root,
            anchor: { id: 1, prefix: '10.20.30.0/24', dns_zone: 'example.net' },
          },
          members: [
            { object_type: 'ipam.ipaddress', id: 1, address: '10.20.30.5/24', dns_name: 'web1.example.net' },
            { object_type: 'ipam.ipaddress', id: 2, address: '10.20.30.10/24', dns_name: 'db.example.net.' },
            { object_type: 'ipam.ipaddress', id: 3, address: '10.20.30.11/24', dns_name: '' },
          ],
        };
        const forward = join(dir, 'example.net.zone');
        const reverse = join(dir, '30.20.10.in-addr.arpa.zone');

        const applied = await run(1, root, 5, snapshot);
        expect(applied.job.status).toBe('successful');
        expect(applied.summary).toMatchObject({ root, mode: 'apply', drift: true, fencing_token: 5 });
        expect(applied.summary.a_records).toBe(2);
        expect(applied.summary.ptr_records).toBe(2);
        const zone = await readFile(forward, 'utf8');
        expect(zone).toContain('web1.example.net. IN A 10.20.30.5');
        expect(zone).toContain('db.example.net. IN A 10.20.30.10');
        expect(await readFile(reverse, 'utf8')).toContain(
          '5.30.20.10.in-addr.arpa. IN PTR web1.example.net.',
        );
        await exec('named-checkzone', ['example.net', forward]);
        await exec('named-checkzone', ['30.20.10.in-addr.arpa', reverse]);

        const again = await run(1, root, 6, snapshot);
        expect(again.job.status).toBe('successful');
        expect(again.changed).toBe(0);
        expect(again.summary.drift).toBe(false);
        expect(again.summary.serial).toBe(5);
        expect(await readFile(forward, 'utf8')).toBe(zone);
        expect((await fence(dir)).fencing_token).toBe(6);

        await appendFile(forward, 'rogue.example.net. IN A 10.20.30.99\n');
        const manual = await readFile(forward, 'utf8');
        const check = await run(1, root, 7, snapshot, 'check');
        expect(check.job.status).toBe('successful');
        expect(check.job.job_type).toBe('check');
        expect(check.summary).toMatchObject({
          mode: 'check',
          drift: true,
          changed_files: ['example.net.zone'],
        });
        expect(await readFile(forward, 'utf8')).toBe(manual);
        expect((await fence(dir)).fencing_token).toBe(6);

        const stale = await run(1, root, 3, { ...snapshot, members: [] });
        expect(stale.job.status).toBe('failed');
        expect(await awx.client.getJobStdout(stale.job.id)).toContain(
          `stale fencing token 3 for root ${root}`,
        );
        expect(await readFile(forward, 'utf8')).toBe(manual);
        expect((await fence(dir)).fencing_token).toBe(6);

        const converged = await run(1, root, 8, snapshot);
        expect(converged.summary.drift).toBe(true);
        expect(converged.summary.changed_files).toEqual(['example.net.zone']);
        expect(await readFile(forward, 'utf8')).toBe(zone);

        // The SOA serial is the token of the run that last changed the records: 5 until now.
        const fewer = await run(1, root, 9, { ...snapshot, members: snapshot.members.slice(1) });
        expect(fewer.summary).toMatchObject({ serial: 9, a_records: 1, ptr_records: 1 });
        expect(await readFile(forward, 'utf8')).toContain('( 9 3600 600');
        expect(await readFile(reverse, 'utf8')).toContain('( 9 3600 600');
      },
      testCapMs,
    );

    it(
      'prefix: a zone that named-checkzone rejects is never installed',
      async () => {
        const root = `prefix/${Math.floor(Math.random() * 1e6)}`;
        const snapshot = {
          root: {
            kind: 'prefix',
            key: root,
            anchor: { id: 2, prefix: '10.40.0.0/16', dns_zone: 'example.org' },
          },
          members: [
            { object_type: 'ipam.ipaddress', id: 1, address: '10.40.1.5/16', dns_name: 'bad..example.org' },
          ],
        };
        const refused = await run(1, root, 1, snapshot);
        expect(refused.job.status).toBe('failed');
        expect(await awx.client.getJobStdout(refused.job.id)).toContain('failed to validate');
        expect(await readdir(join(target, root.replace('/', '-')))).not.toContain('example.org.zone');
      },
      testCapMs,
    );

    it(
      "prefix: reads the forward zone from the plugin snapshot's custom field",
      async () => {
        const root = `prefix/${Math.floor(Math.random() * 1e6)}`;
        const snapshot = {
          root: {
            kind: 'prefix',
            key: root,
            anchor: {
              object_type: 'ipam.prefix',
              id: 3,
              prefix: '10.50.60.0/24',
              custom_fields: { dns_zone: 'Lab.Example.COM.' },
            },
          },
          members: [
            {
              object_type: 'ipam.ipaddress',
              id: 9,
              address: '10.50.60.7/24',
              dns_name: 'app.lab.example.com',
            },
          ],
        };
        const applied = await run(1, root, 1, snapshot);
        expect(applied.job.status).toBe('successful');
        const zone = await readFile(join(target, root.replace('/', '-'), 'lab.example.com.zone'), 'utf8');
        expect(zone).toContain('app.lab.example.com. IN A 10.50.60.7');
      },
      testCapMs,
    );

    it(
      'site: renders the device inventory tree, idempotent, drift in check mode, fenced, prunes',
      async () => {
        const root = `site/${Math.floor(Math.random() * 1e6)}`;
        const dir = join(target, root.replace('/', '-'));
        const device = (id: number, name: string, role: string, status: string) => ({
          object_type: 'dcim.device',
          id,
          name,
          role: { id, slug: role, name: role },
          status: { value: status, label: status },
        });
        const snapshot = {
          root: { kind: 'site', key: root, anchor: { id: 3, name: 'Paris', slug: 'paris' } },
          members: [
            device(1, 'sw1', 'access-switch', 'active'),
            device(2, 'rtr1', 'router', 'planned'),
            { object_type: 'dcim.interface', id: 9, name: 'eth0' },
          ],
        };

        const applied = await run(2, root, 5, snapshot);
        expect(applied.job.status).toBe('successful');
        expect(applied.summary).toMatchObject({ root, mode: 'apply', drift: true, devices: 2 });
        expect((await readdir(join(dir, 'devices'))).sort()).toEqual(['rtr1.json', 'sw1.json']);
        const sw1 = await readFile(join(dir, 'devices', 'sw1.json'), 'utf8');
        expect(JSON.parse(sw1)).toMatchObject({ name: 'sw1', role: 'access-switch', status: 'active', root });
        const index = JSON.parse(await readFile(join(dir, 'inventory.json'), 'utf8'));
        expect(index.devices.map((d: { name: string }) => d.name)).toEqual(['rtr1', 'sw1']);

        const again = await run(2, root, 6, snapshot);
        expect(again.changed).toBe(0);
        expect(again.summary.drift).toBe(false);

        await writeFile(join(dir, 'devices', 'sw1.json'), '{"name": "sw1", "role": "hand-edited"}\n');
        await writeFile(join(dir, 'devices', 'ghost.json'), '{}\n');
        const check = await run(2, root, 7, snapshot, 'check');
        expect(check.job.status).toBe('successful');
        expect(check.summary).toMatchObject({
          mode: 'check',
          drift: true,
          changed_files: ['devices/sw1.json'],
        });
        expect(check.summary.removed_files).toEqual(['devices/ghost.json']);
        expect(await readFile(join(dir, 'devices', 'sw1.json'), 'utf8')).toContain('hand-edited');
        expect((await readdir(join(dir, 'devices'))).sort()).toEqual(['ghost.json', 'rtr1.json', 'sw1.json']);
        expect((await fence(dir)).fencing_token).toBe(6);

        // A stale token changes nothing at all: not the files, not the fence record.
        const before = await treeOf(dir);
        const stale = await run(2, root, 4, { ...snapshot, members: [] });
        expect(stale.job.status).toBe('failed');
        expect(await awx.client.getJobStdout(stale.job.id)).toContain(
          `stale fencing token 4 for root ${root}`,
        );
        expect(await treeOf(dir)).toEqual(before);

        // The apply that follows changes exactly what check mode reported.
        const repaired = await run(2, root, 8, snapshot);
        expect(repaired.summary).toMatchObject({
          mode: 'apply',
          drift: true,
          changed_files: check.summary.changed_files,
          removed_files: check.summary.removed_files,
        });
        expect(await readFile(join(dir, 'devices', 'sw1.json'), 'utf8')).toBe(sw1);

        const smaller = { ...snapshot, members: [snapshot.members[0]] };
        const converged = await run(2, root, 9, smaller);
        expect(converged.job.status).toBe('successful');
        expect(converged.summary).toMatchObject({
          changed_files: ['inventory.json'],
          removed_files: ['devices/rtr1.json'],
          devices: 1,
        });
        expect(await readdir(join(dir, 'devices'))).toEqual(['sw1.json']);
        expect(await readFile(join(dir, 'devices', 'sw1.json'), 'utf8')).toBe(sw1);
        expect((await fence(dir)).fencing_token).toBe(9);
      },
      testCapMs,
    );
  });
});

/**
 * The module both reconcilers converge a root's directory with (awx-playbooks/library/unicop_files.py,
 * decision 0058), run on its own through `ansible` for what the playbooks' snapshots cannot reach.
 */
describe('the unicop_files module', () => {
  let target: string;

  beforeAll(async () => {
    target = await mkdtemp(join(tmpdir(), 'unicop-files-'));
  });

  afterAll(async () => {
    if (target) await rm(target, { recursive: true, force: true });
  });

  /** Runs the module once on localhost; its result (Ansible's `host | STATUS => {…}` line). */
  async function unicopFiles(args: Record<string, unknown>, check = false) {
    const bin = stack.ansibleBin();
    const argv = ['localhost', '-i', 'localhost,', '-c', 'local'];
    argv.push(
      '-e',
      `ansible_python_interpreter=${join(bin, 'python3')}`,
      '-M',
      join(playbookProject, 'library'),
    );
    argv.push('-m', 'unicop_files', '-a', JSON.stringify(args), ...(check ? ['--check'] : []));
    const out = await exec(join(bin, 'ansible'), argv).then(
      (r) => r.stdout,
      (e: { stdout?: string }) => e.stdout ?? '',
    );
    // `localhost | FAILED! => {…}` (or CHANGED, SUCCESS): the status, then the module's result.
    const line = /^localhost \| ([A-Z]+)!? => /m.exec(out);
    if (!line) throw new Error(`no result from ansible:\n${out}`);
    return {
      failed: line[1] === 'FAILED',
      ...(JSON.parse(out.slice(line.index + line[0].length)) as {
        changed: boolean;
        msg?: string;
        changed_files?: string[];
      }),
    };
  }

  const fenceOf = (token: number) => ({ root: 'site/1', fencing_token: token, run_id: `run-${token}` });

  it(
    'refuses a file path outside the root directory before anything is written',
    async () => {
      const dir = join(target, 'escape');
      const result = await unicopFiles({ root_dir: dir, fence: fenceOf(1), files: { '../evil': 'x' } });
      expect(result).toMatchObject({
        failed: true,
        msg: expect.stringContaining("'../evil' must be relative"),
      });
      await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
      await expect(readdir(target)).resolves.not.toContain('evil');
    },
    testCapMs,
  );

  it(
    'refuses a subdirectory that is a symbolic link (it may lead outside) before anything is written',
    async () => {
      const dir = join(target, 'link');
      const outside = join(target, 'outside');
      await mkdir(dir);
      await mkdir(outside);
      await writeFile(join(outside, 'keep.txt'), 'keep\n');
      await symlink(outside, join(dir, 'devices'));
      const args = {
        root_dir: dir,
        fence: fenceOf(1),
        files: { 'devices/a.json': '{}' },
        prune: ['devices'],
      };
      for (const check of [true, false]) {
        expect(await unicopFiles(args, check)).toMatchObject({
          failed: true,
          msg: expect.stringContaining('is a symbolic link'),
        });
      }
      expect(await readdir(outside)).toEqual(['keep.txt']);
      expect(await readdir(dir)).toEqual(['devices']);
    },
    testCapMs,
  );

  it(
    'keeps the root directory at mode 0755 (bookkeeping: not reported as a change)',
    async () => {
      const dir = join(target, 'root-mode');
      await mkdir(dir, { mode: 0o700 });
      const result = await unicopFiles({ root_dir: dir, fence: fenceOf(1), files: {} });
      expect(result).toMatchObject({ failed: false, changed: false });
      expect((await stat(dir)).mode & 0o777).toBe(0o755);
    },
    testCapMs,
  );

  it(
    'refuses a validate command without %s before anything is written, in check mode too',
    async () => {
      const dir = join(target, 'no-placeholder');
      const args = {
        root_dir: dir,
        fence: fenceOf(1),
        files: { 'a.txt': 'a\n' },
        validate: { 'a.txt': 'true' },
      };
      for (const check of [true, false]) {
        expect(await unicopFiles(args, check)).toMatchObject({
          failed: true,
          msg: expect.stringContaining('must contain %s'),
        });
      }
      await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
    },
    testCapMs,
  );

  it(
    'validates every file before installing any: one refused, none installed, no directory made, the fence kept',
    async () => {
      const dir = join(target, 'validate');
      const result = await unicopFiles({
        root_dir: dir,
        fence: fenceOf(2),
        files: { 'a.txt': 'ok\n', 'b.txt': 'not good\n', 'sub/c.txt': 'ok\n' },
        validate: { 'a.txt': 'grep -qx ok %s', 'b.txt': 'grep -qx ok %s' },
        prune: ['pruned'],
      });
      expect(result).toMatchObject({
        failed: true,
        msg: expect.stringContaining('b.txt failed to validate'),
      });
      // The token is recorded before any content (a stale holder starting later is refused).
      expect(await readdir(dir)).toEqual(['unicop-state.json']);
      expect((await fence(dir)).fencing_token).toBe(2);
    },
    testCapMs,
  );

  it(
    'refuses to change anything when the fence record is not JSON',
    async () => {
      const dir = join(target, 'corrupt');
      await mkdir(dir);
      await writeFile(join(dir, 'unicop-state.json'), 'not json');
      const result = await unicopFiles({ root_dir: dir, fence: fenceOf(3), files: { 'a.txt': 'a\n' } });
      expect(result).toMatchObject({
        failed: true,
        msg: expect.stringContaining('refusing to change anything'),
      });
      expect(await readdir(dir)).toEqual(['unicop-state.json']);
      expect(await readFile(join(dir, 'unicop-state.json'), 'utf8')).toBe('not json');
      // JSON, but a token that is not a number.
      for (const token of ['"x"', 'null']) {
        const record = `{"fencing_token": ${token}}`;
        await writeFile(join(dir, 'unicop-state.json'), record);
        const bad = await unicopFiles({ root_dir: dir, fence: fenceOf(3), files: { 'a.txt': 'a\n' } });
        expect(bad).toMatchObject({ failed: true, msg: expect.stringContaining('is unreadable') });
        expect(await readdir(dir)).toEqual(['unicop-state.json']);
        expect(await readFile(join(dir, 'unicop-state.json'), 'utf8')).toBe(record);
      }
    },
    testCapMs,
  );

  it(
    'in check mode reports what an apply would write, and writes nothing (no fence record either)',
    async () => {
      const dir = join(target, 'check');
      const files = { 'a.txt': 'a\n', 'sub/b.txt': 'b\n' };
      const check = await unicopFiles({ root_dir: dir, fence: fenceOf(4), files }, true);
      expect(check).toMatchObject({ changed: true, changed_files: ['a.txt', 'sub/b.txt'] });
      await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
      const apply = await unicopFiles({ root_dir: dir, fence: fenceOf(4), files });
      expect(apply).toMatchObject({ changed: true, changed_files: ['a.txt', 'sub/b.txt'] });
      expect(await readFile(join(dir, 'sub', 'b.txt'), 'utf8')).toBe('b\n');
    },
    testCapMs,
  );
});
