/**
 * CPU seconds spent by real AWX's parts, read from /proc and from podman's cgroups (cgroup v1
 * cpuacct, `cgroup_manager = "cgroupfs"` in scripts/stack.d/awx.sh): the API (uwsgi), the
 * dispatcher (task manager, the job's RunJob, notifications), the callback receiver (job events
 * into PostgreSQL), receptor with the `ansible-runner worker` and `podman run` it starts per job,
 * and each job's container (ansible-playbook and its
 * modules), by AWX job id. A process tree counts its living processes' own time plus the time of
 * the children they reaped (cutime, cstime), so per-job processes that came and went between two
 * readings are not lost. A container is read every 200 ms while it lives: the last < 200 ms of
 * each is missed (the same in every pass, so comparisons hold).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../core/config.js';

export const awxCpuGroups = [
  'uwsgi (API)',
  'dispatcher',
  'callback receiver',
  'receptor + runner + podman',
] as const;
type Group = (typeof awxCpuGroups)[number];

const ticks = 100; // USER_HZ
const cgroupRoot = '/sys/fs/cgroup/cpuacct/libpod_parent';

function stat(pid: string): { ppid: string; own: number; children: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const n = (i: number) => Number(fields[i] ?? 0);
    return { ppid: fields[1] ?? '0', own: (n(11) + n(12)) / ticks, children: (n(13) + n(14)) / ticks };
  } catch {
    return undefined; // ended meanwhile
  }
}

function daemonPid(name: string): string | undefined {
  const file = join(process.env.UNICOP_VAR ?? join(repoRoot, 'var'), 'run', `${name}.pid`);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** Each group's CPU seconds so far (since its processes started). */
function readGroups(): Map<Group, number> {
  const procs = new Map<string, { ppid: string; own: number; children: number; cmd: string }>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const s = stat(pid);
    if (!s) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    procs.set(pid, { ...s, cmd });
  }
  const roots: [Group, string | undefined][] = [
    ['uwsgi (API)', daemonPid('awx-uwsgi')],
    ['dispatcher', daemonPid('awx-dispatcher')],
    ['callback receiver', daemonPid('awx-callback')],
    ['receptor + runner + podman', daemonPid('awx-receptor')],
  ];
  const groupOf = new Map<string, Group>();
  for (const [group, pid] of roots) if (pid) groupOf.set(pid, group);
  const find = (pid: string): Group | undefined => {
    const seen: string[] = [];
    for (let p = pid; p && p !== '0' && p !== '1'; p = procs.get(p)?.ppid ?? '0') {
      const known = groupOf.get(p);
      if (known) {
        for (const s of seen) groupOf.set(s, known);
        return known;
      }
      seen.push(p);
    }
    return undefined;
  };
  const sums = new Map<Group, number>(awxCpuGroups.map((g) => [g, 0]));
  for (const [pid, p] of procs) {
    const group = find(pid);
    if (group) sums.set(group, (sums.get(group) ?? 0) + p.own + p.children);
  }
  return sums;
}

/** A container's processes carry the AWX job id in their environment (JOB_ID, set by AWX). */
function jobOfContainer(dir: string): number | undefined {
  try {
    for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const id = env.find((e) => e.startsWith('JOB_ID='));
      if (id) return Number(id.slice('JOB_ID='.length));
    }
  } catch {
    // the container ended meanwhile
  }
  return undefined;
}

/** AWX's CPU by group over an interval, and each job container's CPU by AWX job id. */
export class AwxCpu {
  private before = new Map<Group, number>();
  private readonly containers = new Map<string, { job: number | undefined; seconds: number }>();
  private timer: NodeJS.Timeout | undefined;

  start(): void {
    this.before = readGroups();
    this.timer = setInterval(() => this.readContainers(), 200);
  }

  private readContainers(): void {
    let dirs: string[] = [];
    try {
      dirs = readdirSync(cgroupRoot).filter((d) => d.startsWith('libpod-'));
    } catch {
      return; // no container yet on this machine
    }
    for (const d of dirs) {
      const dir = join(cgroupRoot, d);
      try {
        const seconds = Number(readFileSync(join(dir, 'cpuacct.usage'), 'utf8')) / 1e9;
        const known = this.containers.get(d);
        const job = known?.job ?? jobOfContainer(dir);
        this.containers.set(d, { job, seconds });
      } catch {
        // removed meanwhile
      }
    }
  }

  /** Seconds per group since start(), and per job container (job id → seconds). */
  stop(): { groups: Map<Group, number>; containers: Map<number, number> } {
    clearInterval(this.timer);
    this.readContainers();
    const after = readGroups();
    const groups = new Map<Group, number>();
    for (const g of awxCpuGroups) groups.set(g, Math.max(0, (after.get(g) ?? 0) - (this.before.get(g) ?? 0)));
    const containers = new Map<number, number>();
    for (const { job, seconds } of this.containers.values()) {
      if (job !== undefined) containers.set(job, (containers.get(job) ?? 0) + seconds);
    }
    return { groups, containers };
  }
}
