/**
 * CPU and memory accounting for the loop bench, read from /proc: the bench process's RSS and heap
 * with its ansible-runner children's RSS, CPU seconds of the bench and of the whole machine, and
 * CPU seconds by process group (the stack's services, the bench, the rest).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readStackEnv, repoRoot } from '../../core/config.js';

/** The fields of /proc/<pid>/stat after the command name: state is [0], ppid [1], utime [11]. */
function statFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Process ids in /proc. */
function pids(): string[] {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
}

// ---- memory of this process and of its ansible-runner children ------------------------------

/** Samples the bench process's RSS and heap, and the summed RSS of its descendants (ansible-runner). */
export class MemorySampler {
  rssMiB = 0;
  heapMiB = 0;
  childrenMiB = 0;
  private timer: NodeJS.Timeout | undefined;

  /** children: also walk /proc for descendants (none when the double runs no ansible-runner). */
  constructor(private readonly children = true) {}

  start(): void {
    this.timer = setInterval(() => this.sample(), 200);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  private sample(): void {
    const { rss, heapUsed } = process.memoryUsage();
    this.rssMiB = Math.max(this.rssMiB, rss / 2 ** 20);
    this.heapMiB = Math.max(this.heapMiB, heapUsed / 2 ** 20);
    if (this.children) this.childrenMiB = Math.max(this.childrenMiB, descendantsRssMiB(process.pid));
  }
}

function descendantsRssMiB(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of pids()) {
    try {
      const ppid = Number(statFields(entry)[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  let pages = 0;
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length > 0) {
    const child = stack.pop() as number;
    try {
      pages += Number(readFileSync(`/proc/${child}/statm`, 'utf8').split(' ')[1]);
    } catch {
      // ended meanwhile
    }
    stack.push(...(children.get(child) ?? []));
  }
  return (pages * 4096) / 2 ** 20;
}

// ---- CPU seconds: the machine, this process, and every process by group ----------------------

/**
 * CPU seconds since boot: the whole machine's busy time (/proc/stat, idle and iowait excluded) and
 * this process's with its ended children (ansible-runner). The difference over a scenario is what
 * the stack's services (NetBox, PostgreSQL, Kafka, Redis) and anything else on the machine used.
 */
export function cpuSeconds(): { machine: number; bench: number } {
  const ticks = 100; // USER_HZ on Linux
  const [, user, nice, system, , , irq, softirq, steal] = (
    readFileSync('/proc/stat', 'utf8').split('\n')[0] as string
  )
    .trim()
    .split(/\s+/)
    .map(Number);
  const fields = statFields('self').map(Number);
  // utime, stime, cutime, cstime are fields 14-17 of /proc/pid/stat (11-14 after the name and state).
  const own = (fields[11] ?? 0) + (fields[12] ?? 0) + (fields[13] ?? 0) + (fields[14] ?? 0);
  const busy = [user, nice, system, irq, softirq, steal].reduce((a, b) => (a ?? 0) + (b ?? 0), 0) ?? 0;
  return { machine: busy / ticks, bench: own / ticks };
}

/** The groups processGroup() puts processes in, and CpuByProcess's "unattributed", in report order. */
export const cpuGroupNames = [
  'NetBox',
  'PostgreSQL',
  'Kafka',
  'Redis',
  'bench process',
  'other',
  'unattributed',
];

/**
 * What a process is, for the CPU breakdown: one of this stack's services (by command line, and by
 * its NetBox chroot, its data directory under this repository or its port), the bench process, or
 * "other" — which includes another clone's stack running on the same machine.
 */
function processGroup(
  pid: number,
  cmdline: string,
  parentCmdline: string,
  root: string,
  redisPort: string,
): string {
  if (pid === process.pid) return 'bench process';
  const ours =
    root.startsWith(`${repoRoot}/`) ||
    `${cmdline} ${parentCmdline}`.includes(`${repoRoot}/`) ||
    cmdline.includes(`:${redisPort}`);
  if (!ours) return 'other';
  if (/gunicorn|rqworker/.test(cmdline)) return 'NetBox';
  if (/^postgres|\/postgres /.test(cmdline)) return 'PostgreSQL';
  if (/kafka\.Kafka/.test(cmdline)) return 'Kafka';
  if (/redis-server/.test(cmdline)) return 'Redis';
  return 'other';
}

/** Every process's own CPU seconds (utime + stime; not its ended children's), by pid, with its group. */
function cpuOfProcesses(): Map<string, { group: string; seconds: number }> {
  const found = new Map<string, { ppid: string; seconds: number; cmdline: string; root: string }>();
  for (const entry of pids()) {
    try {
      const fields = statFields(entry);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      let root = '/';
      try {
        root = readlinkSync(`/proc/${entry}/root`);
      } catch {
        // not ours to look at: counted by command line alone
      }
      const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
      found.set(entry, { ppid: fields[1] ?? '0', seconds: ticks / 100, cmdline, root });
    } catch {
      // the process ended while we looked
    }
  }
  const redisPort = new URL(readStackEnv().UNICOP_REDIS_URL ?? 'redis://localhost:6379').port;
  const byPid = new Map<string, { group: string; seconds: number }>();
  for (const [pid, p] of found) {
    const parent = found.get(p.ppid)?.cmdline ?? '';
    const group = processGroup(Number(pid), p.cmdline, parent, p.root, redisPort);
    byPid.set(pid, { group, seconds: p.seconds });
  }
  return byPid;
}

/**
 * CPU seconds by process group over an interval, machine-wide: every process is read at the start,
 * once a second and at the end, and counts from its first reading to its last (from 0 if it
 * started meanwhile). Time of processes that lived less than a second between readings, and of
 * the kernel, is "unattributed": the machine's busy time (/proc/stat) minus the groups.
 */
export class CpuByProcess {
  private readonly seen = new Map<string, { group: string; first: number; last: number }>();
  private machineBefore = 0;
  private timer: NodeJS.Timeout | undefined;

  start(): void {
    this.machineBefore = cpuSeconds().machine;
    for (const [pid, { group, seconds }] of cpuOfProcesses()) {
      this.seen.set(pid, { group, first: seconds, last: seconds });
    }
    this.timer = setInterval(() => this.read(), 1000);
  }

  /** Seconds per group, and "unattributed". */
  stop(): Map<string, number> {
    clearInterval(this.timer);
    this.read();
    const groups = new Map<string, number>();
    for (const { group, first, last } of this.seen.values()) {
      groups.set(group, (groups.get(group) ?? 0) + last - first);
    }
    const attributed = [...groups.values()].reduce((a, b) => a + b, 0);
    groups.set('unattributed', cpuSeconds().machine - this.machineBefore - attributed);
    return groups;
  }

  private read(): void {
    for (const [pid, { group, seconds }] of cpuOfProcesses()) {
      const known = this.seen.get(pid);
      if (known && seconds >= known.last) known.last = seconds;
      else if (!known) this.seen.set(pid, { group, first: 0, last: seconds });
    }
  }
}
