/**
 * Benchmark: the reconcile loop end to end against the real stack. Intents for R site roots are
 * appended to unicop.intents; a dispatcher under a fresh consumer group (positioned at the end)
 * queues them on a fresh BullMQ queue; a reconcile worker with concurrency C takes the lease,
 * snapshots the root in NetBox, launches AWX job template 8 (site.yml) on the AWX double, which
 * really runs ansible-runner, follows the job, writes the run and journal to NetBox and the outcome
 * to unicop.outcomes. Each root's latency is from appending its intent to receiving its outcome.
 * Also: K intents for one root in a burst → how many AWX launches, and how long until it is in sync.
 *
 * Then UNICOP's own overhead: the double ends every job at once (no ansible-runner), one intent
 * for each of BENCH_LOOP_INSTANT_ROOTS new sites (default 1000), one pass per worker concurrency in
 * BENCH_LOOP_INSTANT_C (default 4): runs/s, intent → AWX launch, AWX end → outcome in NetBox and on
 * unicop.outcomes, memory and CPU of the process hosting the worker.
 *
 * Alone: `npx tsx bench/loop.ts` (needs `scripts/stack up`) replaces this section of
 * docs/benchmarks.md. BENCH_LOOP_ROOTS (default 20) and BENCH_LOOP_BURST (default 50) set R and K.
 * `BENCH_LOOP_ONLY=instant npx tsx bench/loop.ts` runs and replaces only the instant subsection.
 */

import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { AwxClient } from '../core/awx/index.js';
import { parseConfig, readStackEnv, repoRoot } from '../core/config.js';
import { FreezeView } from '../core/control/freeze-view.js';
import { KafkaEventStream } from '../core/event-log/consumer.js';
import { type EventData, topics } from '../core/events/catalogue.js';
import { intentMessage as buildIntent } from '../core/events/intent.js';
import { createLogger } from '../core/logger.js';
import type { PluginRun } from '../core/plugin/client.js';
import type { DoubleJobRecord, TestDouble } from '../test/awx/support.js';
import { positionGroupAtEnd } from '../test/support/kafka.js';
import { netbox } from '../test/support/netbox.js';
import { type BackHalf, createSite, startBackHalf } from '../test/support/reconciler.js';
import { dispatchIntents, type ReconcileJobData } from '../workers/dispatcher/dispatcher.js';
import { pollingOnly } from '../workers/reconciler/awx-notifications.js';
import { reconcilerOptions } from '../workers/reconciler/options.js';
import { Reconciler, reconcilerSource } from '../workers/reconciler/reconciler.js';
import { startReconcileWorker } from '../workers/reconciler/worker.js';
import { percentile, table } from './support.js';

/** The bench runs against the AWX double (its job records time each step); never real AWX. */
function doubleOf(back: BackHalf): TestDouble {
  if (!back.awx.double)
    throw new Error('the loop bench needs the AWX double (startBackHalf({ awx: "double" }))');
  return back.awx.double;
}

const rootCount = Number(process.env.BENCH_LOOP_ROOTS ?? 20);
const burstSize = Number(process.env.BENCH_LOOP_BURST ?? 50);
const sequentialCount = 5;
const title = '## Reconcile loop: intents → dispatcher → BullMQ → reconciler → AWX double → outcomes';

type CauseKind = EventData<'intent'>['cause']['kind'];

interface Scenario {
  label: string;
  concurrency: number;
  /** AWX's allow_simultaneous on the templates; off by default in AWX and in startBackHalf(). */
  simultaneous: boolean;
  /** Following the AWX job: first poll interval, doubling up to the maximum (no notifications here). */
  poll: { minMs: number; maxMs: number };
  /** burst: every intent appended at once; sequential: the next only after the previous outcome. */
  mode: 'burst' | 'sequential';
}

const fastPoll = { minMs: 100, maxMs: 500 };
const productionPoll = { minMs: 1000, maxMs: 15000 }; // UNICOP_POLL_MIN_MS / UNICOP_POLL_MAX_MS defaults

const scenarios: Scenario[] = [
  { label: 'one at a time', concurrency: 1, simultaneous: false, poll: fastPoll, mode: 'sequential' },
  {
    label: 'one at a time, polling 1→15 s',
    concurrency: 1,
    simultaneous: false,
    poll: productionPoll,
    mode: 'sequential',
  },
  { label: 'burst', concurrency: 1, simultaneous: false, poll: fastPoll, mode: 'burst' },
  { label: 'burst', concurrency: 4, simultaneous: false, poll: fastPoll, mode: 'burst' },
  { label: 'burst', concurrency: 2, simultaneous: true, poll: fastPoll, mode: 'burst' },
  { label: 'burst', concurrency: 4, simultaneous: true, poll: fastPoll, mode: 'burst' },
];

// ---- observing unicop.intents, unicop.outcomes and unicop.audit -----------------------------

interface SeenOutcome {
  receivedAt: number;
  data: EventData<'outcome'>;
}

interface SeenAudit {
  source: string;
  data: EventData<'audit'>;
}

/**
 * A consumer from the current end of intents, outcomes and audit, keeping what concerns the bench's
 * roots. Intents the bench did not append (`foreignIntents`) and reconciler audit events from
 * holders that are not the bench's show another process working on the same roots.
 */
class LoopObserver {
  readonly outcomes: SeenOutcome[] = [];
  /** The same outcomes by the intent id they answer. */
  readonly outcomeByIntent = new Map<string, SeenOutcome>();
  readonly audit: SeenAudit[] = [];
  readonly foreignIntents: { source: string; kind: string }[] = [];
  /** Intent ids the bench appended. */
  readonly mine = new Set<string>();
  /** Lease holder names of the bench's reconcilers. */
  readonly holders = new Set<string>();
  private consumer: Consumer | undefined;

  constructor(
    private readonly kafka: Kafka,
    readonly roots: Set<string>,
  ) {}

  async start(): Promise<void> {
    const groupId = `bench-loop-observer-${randomUUID()}`;
    const watched = [topics.intents, topics.outcomes, topics.audit];
    for (const topic of watched) await positionGroupAtEnd(this.kafka, groupId, topic);
    this.consumer = this.kafka.consumer({ groupId, maxWaitTimeInMs: 50 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: watched });
    await this.consumer.run({
      eachMessage: async ({ topic, message }) => {
        const key = message.key?.toString() ?? '';
        if (!this.roots.has(key)) return;
        const event = JSON.parse(String(message.value)) as { source: string; data: unknown };
        if (topic === topics.outcomes) {
          const outcome = { receivedAt: Date.now(), data: event.data as EventData<'outcome'> };
          this.outcomes.push(outcome);
          if (outcome.data.intentId) this.outcomeByIntent.set(outcome.data.intentId, outcome);
        } else if (topic === topics.audit) {
          this.audit.push({ source: event.source, data: event.data as EventData<'audit'> });
        } else {
          const intent = event.data as EventData<'intent'>;
          if (!this.mine.has(intent.intentId)) {
            this.foreignIntents.push({ source: event.source, kind: intent.cause.kind });
          }
        }
      },
    });
  }

  /** Reconciler audit events for the bench's roots written by a holder that is not the bench's. */
  foreignReconcilerActions(from = 0): SeenAudit[] {
    return this.audit
      .slice(from)
      .filter((a) => a.source === reconcilerSource && !this.holders.has(a.data.actor));
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

// ---- memory of this process and of its ansible-runner children ------------------------------

/** Samples the bench process's RSS and heap, and the summed RSS of its descendants (ansible-runner). */
class MemorySampler {
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

/**
 * CPU seconds since boot: the whole machine's busy time (/proc/stat, idle and iowait excluded) and
 * this process's with its ended children (ansible-runner). The difference over a scenario is what
 * the stack's services (NetBox, PostgreSQL, Kafka, Redis) and anything else on the machine used.
 */
function cpuSeconds(): { machine: number; bench: number } {
  const ticks = 100; // USER_HZ on Linux
  const [, user, nice, system, , , irq, softirq, steal] = (
    readFileSync('/proc/stat', 'utf8').split('\n')[0] as string
  )
    .trim()
    .split(/\s+/)
    .map(Number);
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  // utime, stime, cutime, cstime are fields 14-17 of /proc/pid/stat (11-14 after the name and state).
  const own = (fields[11] ?? 0) + (fields[12] ?? 0) + (fields[13] ?? 0) + (fields[14] ?? 0);
  const busy = [user, nice, system, irq, softirq, steal].reduce((a, b) => (a ?? 0) + (b ?? 0), 0) ?? 0;
  return { machine: busy / ticks, bench: own / ticks };
}

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
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
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
class CpuByProcess {
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

function descendantsRssMiB(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
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

// ---- one loop: dispatcher + queue + reconcile worker on a back half -------------------------

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
  /** The logged error's type and message, ids replaced by `:id` so that alike errors count together. */
  error?: string;
}

function errorText(err: { type?: string; message?: string } | undefined): string | undefined {
  if (!err) return undefined;
  const text = `${err.type ?? 'Error'}: ${err.message ?? ''}`
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, ':id')
    .replace(/\d+/g, ':id');
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

/** A warn/error line or a delayed job, as counted in the section: message, reason, error. */
const notableKey = (l: LogLine) =>
  `${l.msg}${l.reason ? ` (${l.reason})` : ''}${l.error ? ` — ${l.error}` : ''}`;

interface Loop {
  back: BackHalf;
  queue: Queue<ReconcileJobData>;
  logs: LogLine[];
  stop(): Promise<void>;
}

interface LoopSettings {
  concurrency: number;
  simultaneous: boolean;
  poll: { minMs: number; maxMs: number };
  /** The double ends every job successful at once, without ansible-runner. */
  instant?: boolean;
}

async function startLoop(
  settings: LoopSettings,
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<Loop> {
  const env = readStackEnv();
  const redisUrl = env.UNICOP_REDIS_URL as string;
  const back = await startBackHalf({
    awx: 'double',
    simultaneous: settings.simultaneous,
    instant: settings.instant === true,
  });
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      const line = JSON.parse(String(chunk)) as LogLine & { err?: { type?: string; message?: string } };
      const error = errorText(line.err);
      logs.push({
        level: line.level,
        msg: line.msg,
        ...(line.reason ? { reason: line.reason } : {}),
        ...(error ? { error } : {}),
      });
      done();
    },
  });
  const log = createLogger('bench-loop', 'info', sink);
  const queueName = `bench-reconcile-${randomUUID()}`;
  const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: redisUrl } });
  const groupId = `bench-loop-dispatcher-${randomUUID()}`;
  await positionGroupAtEnd(back.kafka, groupId, topics.intents);
  const intents = new KafkaEventStream(back.kafka, { topic: topics.intents, groupId }, log);
  // Other suites may append intents for their own roots meanwhile: only the bench's are dispatched.
  await intents.start((records) =>
    dispatchIntents(
      records.filter((r) => r.key !== null && observer.roots.has(r.key)),
      { queue, freezeView, eventLog: back.eventLog },
    ),
  );
  // The production options (core/config.ts defaults: lease TTL 60 s, retries); polling as given.
  const holder = `bench-loop-${process.pid}-${randomUUID().slice(0, 8)}`;
  observer.holders.add(holder);
  const options = reconcilerOptions(parseConfig(env), holder);
  const reconciler = new Reconciler({
    plugin: back.plugin,
    awx: new AwxClient({ baseUrl: back.awx.url, token: back.awx.token }),
    eventLog: back.eventLog,
    wakeups: pollingOnly,
    log: log.child({ part: 'reconciler' }),
    options: { ...options, pollMinMs: settings.poll.minMs, pollMaxMs: settings.poll.maxMs },
  });
  const worker = startReconcileWorker(
    reconciler,
    { redisUrl, concurrency: settings.concurrency, queueName },
    log.child({ part: 'worker' }),
  );
  await worker.waitUntilReady();
  return {
    back,
    queue,
    logs,
    stop: async () => {
      await worker.close();
      await intents.stop();
      await queue.obliterate({ force: true });
      await queue.close();
      await back.stop();
    },
  };
}

function intentMessage(observer: LoopObserver, rootKey: string, kind: CauseKind) {
  const intent = buildIntent('unicop/bench', rootKey, { kind, actor: 'bench' });
  observer.mine.add(intent.intentId);
  return intent;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(probe: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await sleep(50);
  }
  return false;
}

function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

// ---- the throughput and latency scenarios --------------------------------------------------

interface ScenarioResult {
  scenario: Scenario;
  roots: number;
  seconds: number;
  latenciesMs: number[];
  states: Map<string, number>;
  missing: number;
  memory: MemorySampler;
  /** CPU seconds during the scenario: the bench process with its children, and the rest of the machine. */
  cpu: { bench: number; rest: number };
  /** Per run, ms: append → run started, → AWX job created, AWX pending, AWX running, → outcome. */
  segments: number[][];
  awxLaunches: number;
  auditActions: Map<string, number>;
  /** Warn/error log lines and delayed jobs, counted by message (and reason). */
  notable: Map<string, number>;
  foreignIntents: number;
  foreignActions: number;
}

const perRunTimeoutMs = 120_000;

async function runScenario(
  scenario: Scenario,
  siteKeys: string[],
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<ScenarioResult> {
  const loop = await startLoop(scenario, observer, freezeView);
  const keys = scenario.mode === 'sequential' ? siteKeys.slice(0, sequentialCount) : siteKeys;
  const memory = new MemorySampler();
  const from = { audit: observer.audit.length, foreign: observer.foreignIntents.length };
  const appended = new Map<string, number>(); // intent id → when its append was called
  const outcomeOf = (intentId: string) => observer.outcomes.find((o) => o.data.intentId === intentId);
  memory.start();
  const cpuBefore = cpuSeconds();
  const t0 = Date.now();
  if (scenario.mode === 'burst') {
    const intents = keys.map((key) => intentMessage(observer, key, 'manual'));
    const at = Date.now();
    await loop.back.eventLog.append(intents.map((i) => i.message));
    for (const i of intents) appended.set(i.intentId, at);
    await until(
      () => [...appended.keys()].every((id) => outcomeOf(id)),
      perRunTimeoutMs * Math.ceil(keys.length / scenario.concurrency),
    );
  } else {
    for (const key of keys) {
      const intent = intentMessage(observer, key, 'manual');
      const at = Date.now();
      await loop.back.eventLog.append([intent.message]);
      appended.set(intent.intentId, at);
      await until(() => outcomeOf(intent.intentId) !== undefined, perRunTimeoutMs);
    }
  }
  memory.stop();
  const cpuAfter = cpuSeconds();
  const benchCpu = cpuAfter.bench - cpuBefore.bench;
  const cpu = { bench: benchCpu, rest: cpuAfter.machine - cpuBefore.machine - benchCpu };
  const seen = [...appended].flatMap(([id, at]) => {
    const outcome = outcomeOf(id);
    return outcome ? [{ at, outcome }] : [];
  });
  const seconds = (Math.max(t0, ...seen.map((s) => s.outcome.receivedAt)) - t0) / 1000;
  const jobs = new Map<number, DoubleJobRecord & { created?: string }>(
    (await doubleOf(loop.back).doubleJobs()).filter((j) => j.type === 'job').map((j) => [j.id, j]),
  );
  const ms = (iso: string | null | undefined) => (iso ? Date.parse(iso) : Number.NaN);
  const segments = seen.map(({ at, outcome }) => {
    const job = jobs.get(outcome.data.awxJobId ?? -1);
    const runStarted = ms(outcome.data.startedAt);
    return [
      runStarted - at,
      ms(job?.created) - runStarted,
      ms(job?.started) - ms(job?.created),
      ms(job?.finished) - ms(job?.started),
      outcome.receivedAt - ms(job?.finished),
    ];
  });
  const logs = loop.logs;
  await loop.stop();
  await sleep(500); // the last runs' lease.released audit events are appended after their outcomes
  const result: ScenarioResult = {
    scenario,
    roots: keys.length,
    seconds,
    latenciesMs: seen.map((s) => s.outcome.receivedAt - s.at).sort((a, b) => a - b),
    states: countBy(seen, (s) => s.outcome.data.state),
    missing: appended.size - seen.length,
    memory,
    cpu,
    segments,
    awxLaunches: jobs.size,
    auditActions: countBy(observer.audit.slice(from.audit), (a) => a.data.action),
    notable: countBy(
      logs.filter((l) => l.level >= 40 || l.msg === 'job delayed'),
      notableKey,
    ),
    foreignIntents: observer.foreignIntents.length - from.foreign,
    foreignActions: observer.foreignReconcilerActions(from.audit).length,
  };
  process.stderr.write(
    `loop ${describe(scenario)}: ${result.roots} roots in ${seconds.toFixed(1)} s, ` +
      `p50 ${percentile(result.latenciesMs, 50).toFixed(0)} ms, missing ${result.missing}, ` +
      `foreign intents ${result.foreignIntents}, foreign reconciler actions ${result.foreignActions}\n`,
  );
  return result;
}

function describe(s: Scenario): string {
  const template = s.simultaneous ? 'allow_simultaneous' : 'one job of the template at a time';
  return `${s.label}, C=${s.concurrency}, ${template}`;
}

/** Untimed: every site reconciled once, so each is in sync before the timed scenarios start. */
async function warmUp(
  siteKeys: string[],
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<{ text: string; foreign: number }> {
  const loop = await startLoop({ concurrency: 4, simultaneous: true, poll: fastPoll }, observer, freezeView);
  const intents = siteKeys.map((key) => intentMessage(observer, key, 'change'));
  const from = { audit: observer.audit.length, foreign: observer.foreignIntents.length };
  const t0 = Date.now();
  await loop.back.eventLog.append(intents.map((i) => i.message));
  const ids = new Set(intents.map((i) => i.intentId));
  const done = () => observer.outcomes.filter((o) => ids.has(o.data.intentId ?? ''));
  await until(() => done().length >= ids.size, perRunTimeoutMs * Math.ceil(siteKeys.length / 4));
  await loop.stop();
  const seconds = ((Date.now() - t0) / 1000).toFixed(0);
  return {
    text: `${countsText(countBy(done(), (o) => o.data.state))} in ${seconds} s`,
    foreign:
      observer.foreignIntents.length - from.foreign + observer.foreignReconcilerActions(from.audit).length,
  };
}

// ---- coalescing: K intents for one root ------------------------------------------------------

interface CoalescingResult {
  kind: CauseKind;
  intents: number;
  queued: number;
  coalesced: number;
  launches: number;
  states: Map<string, number>;
  inSyncMs: number;
  quietMs: number;
  foreign: number;
}

async function runCoalescing(
  kind: CauseKind,
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<CoalescingResult> {
  const site = await createSite();
  observer.roots.add(site.rootKey);
  const loop = await startLoop({ concurrency: 4, simultaneous: false, poll: fastPoll }, observer, freezeView);
  const from = { audit: observer.audit.length, foreign: observer.foreignIntents.length };
  const intents = Array.from({ length: burstSize }, () => intentMessage(observer, site.rootKey, kind));
  const ids = new Set(intents.map((i) => i.intentId));
  const dispatched = () =>
    observer.audit.filter(
      (a) =>
        (a.data.action === 'intent.queued' || a.data.action === 'intent.coalesced') &&
        ids.has(String(a.data.correlation.intentId)),
    );
  const t0 = Date.now();
  await loop.back.eventLog.append(intents.map((i) => i.message));
  let inSyncMs = Number.NaN;
  await until(async () => {
    if ((await loop.back.plugin.findRoot(site.rootKey))?.status !== 'in_sync') return false;
    inSyncMs = Date.now() - t0;
    return true;
  }, perRunTimeoutMs);
  let quietMs = Number.NaN;
  await until(async () => {
    if (dispatched().length < burstSize) return false;
    const counts = await loop.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (Object.values(counts).some((n) => n > 0)) return false;
    quietMs = Date.now() - t0;
    return true;
  }, perRunTimeoutMs * 2);
  const launches = (await loop.back.awx.jobs()).filter((j) => j.root === site.rootKey).length;
  await loop.stop();
  await sleep(500);
  await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  const queued = dispatched().filter((a) => a.data.action === 'intent.queued').length;
  process.stderr.write(`loop coalescing (${kind}): ${burstSize} intents → ${launches} AWX launches\n`);
  return {
    kind,
    intents: burstSize,
    queued,
    coalesced: dispatched().length - queued,
    launches,
    states: countBy(
      observer.outcomes.filter((o) => o.data.rootKey === site.rootKey),
      (o) => o.data.state,
    ),
    inSyncMs,
    quietMs,
    foreign:
      observer.foreignIntents.length - from.foreign + observer.foreignReconcilerActions(from.audit).length,
  };
}

// ---- UNICOP's own overhead: the AWX double ending every job at once ---------------------------

const instantRootCount = Number(process.env.BENCH_LOOP_INSTANT_ROOTS ?? 1000);
/** Worker concurrencies tried, one pass over every root each. */
const instantConcurrencies = (process.env.BENCH_LOOP_INSTANT_C ?? '4,8').split(',').map(Number);
/** A pass that has not received every outcome by then is reported as it stands. */
const instantPassMs = Number(process.env.BENCH_LOOP_INSTANT_PASS_SECONDS ?? 60) * 1000;
const cpuGroupNames = ['NetBox', 'PostgreSQL', 'Kafka', 'Redis', 'bench process', 'other', 'unattributed'];
/** How long to wait for NetBox's background queues to empty after the sites are created. */
const backgroundDrainMs = 300_000;
const instantTitle = '### AWX double completing at once (UNICOP overhead only)';
const siteBatch = 100; // sites per bulk POST or DELETE on /api/dcim/sites/

/** Bulk requests on /api/dcim/sites/ at once: NetBox's gunicorn workers in the stack. */
const siteRequestsInParallel = 3;

/** Calls `each` for every batch of `items`, `siteRequestsInParallel` batches at a time, in order. */
async function inBatches<T, R>(items: T[], size: number, each: (batch: T[]) => Promise<R[]>): Promise<R[]> {
  const batches = Array.from({ length: Math.ceil(items.length / size) }, (_, i) =>
    items.slice(i * size, (i + 1) * size),
  );
  const results: R[][] = new Array(batches.length);
  let next = 0;
  const lane = async () => {
    while (next < batches.length) {
      const i = next++;
      results[i] = await each(batches[i] as T[]);
    }
  };
  await Promise.all(Array.from({ length: siteRequestsInParallel }, lane));
  return results.flat();
}

/** R new sites in bulk requests; the plugin makes a root `site/<id>` for each. */
async function createSites(count: number): Promise<{ id: number; rootKey: string }[]> {
  const prefix = `bench-loop-${randomUUID().slice(0, 8)}`;
  const bodies = Array.from({ length: count }, (_, i) => ({
    name: `${prefix}-${i}`,
    slug: `${prefix}-${i}`,
    status: 'active',
  }));
  const created = await inBatches(bodies, siteBatch, (batch) =>
    netbox<{ id: number }[]>('POST', '/api/dcim/sites/', batch),
  );
  return created.map((s) => ({ id: s.id, rootKey: `site/${s.id}` }));
}

async function deleteSites(sites: { id: number }[]): Promise<void> {
  await inBatches(sites, siteBatch, async (batch) => {
    await netbox(
      'DELETE',
      '/api/dcim/sites/',
      batch.map((s) => ({ id: s.id })),
    ).catch((error: unknown) =>
      process.stderr.write(`loop: ${batch.length} sites left in NetBox: ${String(error)}\n`),
    );
    return [];
  });
}

/**
 * Jobs in NetBox's background queues (its RQ worker): event-rule webhooks and search-index updates,
 * queued by creating or deleting sites and by every write of a run record or journal entry.
 */
async function netboxBackgroundJobs(): Promise<{ queued: number; seen: number }> {
  type Queue = Record<'jobs' | 'started_jobs' | 'deferred_jobs', number>;
  type RqWorker = Record<'successful_job_count' | 'failed_job_count', number>;
  const queues = await netbox<{ results: Queue[] }>('GET', '/api/core/background-queues/');
  const workers = await netbox<{ results: RqWorker[] }>('GET', '/api/core/background-workers/');
  const waiting = queues.results.reduce((n, q) => n + q.jobs + q.started_jobs + q.deferred_jobs, 0);
  const done = workers.results.reduce((n, w) => n + w.successful_job_count + w.failed_job_count, 0);
  return {
    queued: queues.results.reduce((n, q) => n + q.jobs, 0),
    // Every job queued so far (waiting, running, or done by a worker): its growth over an interval
    // is the jobs queued meanwhile. The workers' counters, unlike RQ's registries, are never pruned.
    seen: waiting + done,
  };
}

/** The plugin's run records by run id (60 ids per request: gunicorn takes request lines up to 4 KiB). */
async function runsById(runIds: string[]): Promise<Map<string, PluginRun>> {
  const runs = new Map<string, PluginRun>();
  for (let from = 0; from < runIds.length; from += 60) {
    const query = runIds
      .slice(from, from + 60)
      .map((id) => `run_id=${encodeURIComponent(id)}`)
      .join('&');
    const page = await netbox<{ results: PluginRun[] }>('GET', `/api/plugins/unicop/runs/?limit=60&${query}`);
    for (const run of page.results) runs.set(run.run_id, run);
  }
  return runs;
}

/**
 * Counts and times every HTTP request this process makes while installed (the reconciler's calls to
 * NetBox and to the double, and the bench's own), by method and path with ids replaced by `:id`.
 */
class HttpTally {
  readonly calls = new Map<string, { count: number; totalMs: number; maxMs: number }>();
  private original: typeof fetch | undefined;

  constructor(private readonly services: { name: string; url: string }[]) {}

  install(): void {
    const original = globalThis.fetch;
    this.original = original;
    globalThis.fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      const started = performance.now();
      try {
        return await original(input, init);
      } finally {
        this.record(`${method} ${this.label(url)}`, performance.now() - started);
      }
    };
  }

  uninstall(): void {
    if (this.original) globalThis.fetch = this.original;
  }

  private label(url: string): string {
    const service = this.services.find((s) => url.startsWith(s.url));
    const path = new URL(url).pathname
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, ':id')
      .replace(/\/\d+(?=\/|$)/g, '/:id');
    return `${service?.name ?? 'other'} ${path}`;
  }

  private record(key: string, ms: number): void {
    const entry = this.calls.get(key) ?? { count: 0, totalMs: 0, maxMs: 0 };
    entry.count += 1;
    entry.totalMs += ms;
    entry.maxMs = Math.max(entry.maxMs, ms);
    this.calls.set(key, entry);
  }
}

/** Per-run measures of a pass, each sorted ascending (ms). */
const instantMeasures = [
  ['intent appended → AWX job created (launch)', 'appendToLaunch'],
  ['… of which intent appended → job taken from the queue', 'appendToTaken'],
  ['… of which job taken → AWX job created', 'takenToLaunch'],
  ['AWX job finished → reconciler has seen it (outcome `finishedAt`)', 'finishToSeen'],
  ['AWX job finished → run finished in NetBox', 'finishToNetbox'],
  ['AWX job finished → outcome received from unicop.outcomes', 'finishToOutcome'],
  ['intent appended → outcome received (end to end)', 'appendToOutcome'],
] as const;

type InstantMeasure = (typeof instantMeasures)[number][1];

interface InstantResult {
  concurrency: number;
  roots: number;
  outcomes: number;
  seconds: number;
  /** The pass's deadline came first. */
  cutShort: boolean;
  measures: Record<InstantMeasure, number[]>;
  states: Map<string, number>;
  awxLaunches: number;
  /** Roots the double launched more than one job for. */
  rootsLaunchedTwice: number;
  memory: MemorySampler;
  /** RSS and heap of the bench process just before the intents were appended. */
  baseline: { rssMiB: number; heapMiB: number };
  /** CPU seconds during the pass by process group, machine-wide (processGroup()). */
  cpuGroups: Map<string, number>;
  /** Event-loop delay of the bench process during the pass, ms. */
  loopDelay: { p50: number; p99: number; max: number };
  /** Jobs waiting in NetBox's background queues when the pass began and ended; jobs queued meanwhile. */
  backgroundJobs: { start: number; end: number; added: number };
  /** HTTP requests during the pass, by method and path. */
  http: HttpTally['calls'];
  auditActions: Map<string, number>;
  notable: Map<string, number>;
  foreign: number;
}

async function runInstantPass(
  concurrency: number,
  siteKeys: string[],
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<InstantResult> {
  const loop = await startLoop(
    { concurrency, simultaneous: true, instant: true, poll: fastPoll },
    observer,
    freezeView,
  );
  const from = { audit: observer.audit.length, foreign: observer.foreignIntents.length };
  const intents = siteKeys.map((key) => intentMessage(observer, key, 'manual'));
  const memory = new MemorySampler(false);
  const { rss, heapUsed } = process.memoryUsage();
  const baseline = { rssMiB: rss / 2 ** 20, heapMiB: heapUsed / 2 ** 20 };
  const backgroundAtStart = await netboxBackgroundJobs();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  const http = new HttpTally([
    { name: 'NetBox', url: readStackEnv().UNICOP_NETBOX_URL as string },
    { name: 'AWX', url: loop.back.awx.url },
  ]);
  http.install();
  memory.start();
  delay.enable();
  const processes = new CpuByProcess();
  processes.start();
  const t0 = Date.now();
  await loop.back.eventLog.append(intents.map((i) => i.message));
  const appendedAt = Date.now(); // acknowledged by Kafka (acks=all): the intents are on the log
  const done = () => intents.filter((i) => observer.outcomeByIntent.has(i.intentId)).length;
  const cutShort = !(await until(() => done() === intents.length, instantPassMs));
  http.uninstall();
  delay.disable();
  memory.stop();
  const cpuGroups = processes.stop();
  const backgroundAtEnd = await netboxBackgroundJobs();
  const backgroundJobs = {
    start: backgroundAtStart.queued,
    end: backgroundAtEnd.queued,
    added: backgroundAtEnd.seen - backgroundAtStart.seen,
  };
  const seen = intents.flatMap((i) => {
    const outcome = observer.outcomeByIntent.get(i.intentId);
    return outcome ? [{ intentId: i.intentId, outcome }] : [];
  });
  const seconds = (Math.max(t0, ...seen.map((s) => s.outcome.receivedAt)) - t0) / 1000;

  const jobs = (await doubleOf(loop.back).doubleJobs()).filter(
    (j) => j.type === 'job',
  ) as (DoubleJobRecord & {
    created: string;
  })[];
  const jobByRun = new Map(jobs.map((j) => [j.run_id, j]));
  const taken = new Map<string, number>();
  for (const job of await loop.queue.getJobs(['completed', 'active', 'delayed', 'waiting'])) {
    if (job?.id && job.processedOn) taken.set(job.id, job.processedOn);
  }
  const runs = await runsById(seen.map((s) => s.outcome.data.runId));
  const ms = (iso: string | null | undefined) => (iso ? Date.parse(iso) : Number.NaN);
  const measures = Object.fromEntries(instantMeasures.map(([, key]) => [key, [] as number[]])) as Record<
    InstantMeasure,
    number[]
  >;
  for (const { intentId, outcome } of seen) {
    const job = jobByRun.get(outcome.data.runId);
    const launched = ms(job?.created);
    const finished = ms(job?.finished);
    const takenAt = taken.get(intentId) ?? Number.NaN;
    const values: Record<InstantMeasure, number> = {
      appendToLaunch: launched - appendedAt,
      appendToTaken: takenAt - appendedAt,
      takenToLaunch: launched - takenAt,
      finishToSeen: ms(outcome.data.finishedAt) - finished,
      finishToNetbox: ms(runs.get(outcome.data.runId)?.finished) - finished,
      finishToOutcome: outcome.receivedAt - finished,
      appendToOutcome: outcome.receivedAt - appendedAt,
    };
    for (const [key, value] of Object.entries(values)) {
      if (Number.isFinite(value)) measures[key as InstantMeasure].push(value);
    }
  }
  for (const values of Object.values(measures)) values.sort((a, b) => a - b);
  const launchesPerRoot = countBy(jobs, (j) => j.root ?? '');
  const logs = loop.logs;
  await loop.stop();
  await sleep(1000); // the last runs' lease.released audit events are appended after their outcomes
  const result: InstantResult = {
    concurrency,
    roots: siteKeys.length,
    outcomes: seen.length,
    seconds,
    cutShort,
    measures,
    states: countBy(seen, (s) => s.outcome.data.state),
    awxLaunches: jobs.length,
    rootsLaunchedTwice: [...launchesPerRoot.values()].filter((n) => n > 1).length,
    memory,
    baseline,
    cpuGroups,
    backgroundJobs,
    loopDelay: {
      p50: delay.percentile(50) / 1e6,
      p99: delay.percentile(99) / 1e6,
      max: delay.max / 1e6,
    },
    http: http.calls,
    auditActions: countBy(observer.audit.slice(from.audit), (a) => a.data.action),
    notable: countBy(
      logs.filter((l) => l.level >= 40 || l.msg === 'job delayed'),
      notableKey,
    ),
    foreign:
      observer.foreignIntents.length - from.foreign + observer.foreignReconcilerActions(from.audit).length,
  };
  process.stderr.write(
    `loop instant C=${concurrency}: ${seen.length}/${siteKeys.length} outcomes in ${seconds.toFixed(1)} s ` +
      `(${(seen.length / seconds).toFixed(1)} runs/s)${cutShort ? ', cut short' : ''}, ` +
      `launch p50 ${percentile(measures.appendToLaunch, 50).toFixed(0)} ms, ` +
      `outcome after AWX end p50 ${percentile(measures.finishToOutcome, 50).toFixed(0)} ms, ` +
      `notable ${countsText(result.notable)}, foreign ${result.foreign}\n`,
  );
  return result;
}

/** The observer and the freeze view a bench needs on Kafka, for the given roots. */
async function watch(roots: string[]) {
  const env = readStackEnv();
  const kafka = new Kafka({
    clientId: `bench-loop-${process.pid}`,
    brokers: env.UNICOP_KAFKA_BROKERS?.split(',') ?? [],
    logLevel: logLevel.NOTHING,
  });
  const observer = new LoopObserver(kafka, new Set(roots));
  await observer.start();
  const freezeView = new FreezeView(
    new KafkaEventStream(
      kafka,
      { topic: topics.control, groupId: `bench-loop-control-${randomUUID()}` },
      createLogger('bench-loop', 'silent'),
    ),
  );
  await freezeView.start();
  await sleep(2000); // the control topic is read from its start: a global freeze would hold every intent
  return {
    observer,
    freezeView,
    frozen: freezeView.globalState()?.frozen === true,
    stop: async () => {
      await observer.stop();
      await freezeView.stop();
    },
  };
}

/** The subsection: R new sites, one pass per concurrency with the double ending jobs at once. */
export async function benchInstantLoop(): Promise<string> {
  const load = loadavg()
    .map((n) => n.toFixed(1))
    .join(', ');
  const createdAt = Date.now();
  const sites = await createSites(instantRootCount);
  const createSeconds = (Date.now() - createdAt) / 1000;
  process.stderr.write(`loop instant: ${sites.length} sites created in ${createSeconds.toFixed(1)} s\n`);
  const siteKeys = sites.map((s) => s.rootKey);
  // NetBox's RQ worker delivers the creations' webhooks meanwhile: the passes start once it is idle.
  const drainedAt = Date.now();
  const backgroundAfterCreate = (await netboxBackgroundJobs()).queued;
  let queued = backgroundAfterCreate;
  while (queued > 0 && Date.now() - drainedAt < backgroundDrainMs) {
    await sleep(1000);
    queued = (await netboxBackgroundJobs()).queued;
  }
  const drained = queued === 0;
  const drainSeconds = (Date.now() - drainedAt) / 1000;
  process.stderr.write(
    `loop instant: NetBox background jobs ${backgroundAfterCreate}, ` +
      `${drained ? 'drained' : 'still queued'} after ${drainSeconds.toFixed(0)} s\n`,
  );
  const watched = await watch(siteKeys);
  const results: InstantResult[] = [];
  try {
    for (const c of instantConcurrencies) {
      results.push(await runInstantPass(c, siteKeys, watched.observer, watched.freezeView));
    }
  } finally {
    await watched.stop();
    const deletedAt = Date.now();
    await deleteSites(sites);
    process.stderr.write(
      `loop instant: sites deleted in ${((Date.now() - deletedAt) / 1000).toFixed(1)} s\n`,
    );
  }
  const p = (values: number[], q: number) => percentile(values, q);
  const notable = results.filter((r) => r.notable.size > 0);
  const foreign = results.reduce((n, r) => n + r.foreign, 0);
  return [
    instantTitle,
    '',
    `Run ${new Date().toISOString()}: \`${instantCommand()}\`. The double ends every job`,
    '`successful` the moment it starts (`startBackHalf({instant: true, simultaneous: true})`: no',
    'ansible-runner, template 8 with allow_simultaneous, its pending → waiting → running steps 20 ms',
    "each), so what is left is UNICOP's own work and the stack's: dispatch, BullMQ, lease, snapshot,",
    'run records, the launch and poll calls, the outcome write and the events.',
    '',
    `How it was run: ${instantRootCount} new sites created in bulk (${siteBatch} per POST to /api/dcim/sites/,`,
    `${siteRequestsInParallel} POSTs at a time, ${createSeconds.toFixed(0)} s; the plugin makes a root \`site/<id>\` for each;`,
    "deleted the same way afterwards). Each site created queues three jobs on NetBox's RQ worker:",
    "the webhook of the stack's event rule `unicop-bridge` and",
    `search-index updates for the site and its root. ${backgroundAfterCreate} were still queued when the creation ended;`,
    `the passes began once NetBox's background queues were ${drained ? 'empty' : '**still not empty**'} (${drainSeconds.toFixed(0)} s later), so they do not`,
    'compete with them (the deletions queue more after the bench). For each worker concurrency C in',
    'turn: a fresh double, a dispatcher on a fresh consumer group and a reconcile worker on a fresh',
    'BullMQ queue, all in the bench process, with the production options (lease TTL 60 s, retries)',
    `and polling ${fastPoll.minMs} ms doubling to ${fastPoll.maxMs} ms; then one \`manual\` intent per root (manual: every run`,
    'launches, whatever the hash), all appended to unicop.intents in one go. That is a burst: most of',
    'the launch latency is waiting in the queue behind the other roots, hence its split below. A pass',
    `ends at its last outcome or after ${instantPassMs / 1000} s, whichever comes first; a pass cut short reports the runs`,
    'that finished, i.e. the first ones in the queue, so its queue waits are the shorter ones. Runs/s:',
    'outcomes ÷ (first append → last outcome received by a consumer in the bench). Per run:',
    '"appended" is when Kafka acknowledged the append; the AWX launch and end are the double\'s job',
    'record (`created`, `finished`, matched by run id); "taken from the queue" is the BullMQ job\'s',
    '`processedOn`; "reconciler has seen it" is the outcome\'s `finishedAt`; "run finished in NetBox"',
    "is the plugin's run record `finished` (NetBox's clock when the terminal state is written; same",
    "machine); the outcome is its arrival at the bench's consumer on unicop.outcomes. Memory is the",
    "bench process's, which hosts the worker **and** the double, the dispatcher and the observing",
    'consumer, so it is an upper bound for a worker; "before" is its RSS just before the intents were',
    "appended, sampled every 200 ms after. Event-loop delay is that process's (perf_hooks).",
    `Load average (1, 5, 15 min) when the bench began: ${load}.`,
    watched.frozen
      ? '**Automation was frozen globally on unicop.control during this run: intents were held.**'
      : '',
    '',
    table(
      [
        'C',
        'roots',
        'outcomes',
        'seconds',
        'runs/s',
        'AWX launches',
        'RSS MiB before → peak',
        'heap MiB peak',
        'event-loop delay p99 / max ms',
        'NetBox background jobs: waiting at start → end; queued per run',
      ],
      results.map((r) => [
        r.concurrency,
        r.roots,
        r.cutShort
          ? `${countsText(r.states)} (cut short at ${instantPassMs / 1000} s; all ${r.roots} at this rate: ` +
            `≈ ${((r.roots * r.seconds) / Math.max(1, r.outcomes)).toFixed(0)} s)`
          : countsText(r.states),
        r.seconds,
        r.outcomes / r.seconds,
        `${r.awxLaunches}${r.rootsLaunchedTwice ? ` (${r.rootsLaunchedTwice} roots twice)` : ''}`,
        `${r.baseline.rssMiB.toFixed(0)} → ${r.memory.rssMiB.toFixed(0)}`,
        r.memory.heapMiB,
        `${r.loopDelay.p99.toFixed(0)} / ${r.loopDelay.max.toFixed(0)}`,
        `${r.backgroundJobs.start} → ${r.backgroundJobs.end}; ${(r.backgroundJobs.added / Math.max(1, r.outcomes)).toFixed(1)}`,
      ]),
    ),
    '',
    "CPU seconds during each pass by process, machine-wide: this stack's services (NetBox = its",
    'gunicorn workers and RQ worker), the bench process (it hosts the worker, the double, the',
    'dispatcher and the observer), "other" (anything else, another clone\'s stack included), and',
    '"unattributed": processes that lived under a second between readings (NetBox\'s RQ worker forks',
    "one per background job) and the kernel. Two cores give at most 2 × the pass's seconds:",
    '',
    table(
      ['C', 'seconds', ...cpuGroupNames, 'CPU s per run, all'],
      results.map((r) => [
        r.concurrency,
        r.seconds,
        ...cpuGroupNames.map((g) => r.cpuGroups.get(g) ?? 0),
        [...r.cpuGroups.values()].reduce((a, b) => a + b, 0) / Math.max(1, r.outcomes),
      ]),
    ),
    '',
    'Per run, ms:',
    '',
    table(
      ['C', 'measure', 'p50', 'p95', 'p99', 'max'],
      results.flatMap((r) =>
        instantMeasures.map(([label, key]) => [
          r.concurrency,
          label,
          p(r.measures[key], 50),
          p(r.measures[key], 95),
          p(r.measures[key], 99),
          p(r.measures[key], 100),
        ]),
      ),
    ),
    '',
    "HTTP requests made by the bench process during each pass (the reconcilers' calls to NetBox and",
    'to the double; ids in paths shown as `:id`), by total time spent waiting on them:',
    '',
    table(
      ['C', 'request', 'calls', 'per run', 'mean ms', 'max ms', 'total s'],
      results.flatMap((r) =>
        [...r.http]
          .sort(([, a], [, b]) => b.totalMs - a.totalMs)
          .map(([request, t]) => [
            r.concurrency,
            `\`${request}\``,
            t.count,
            t.count / Math.max(1, r.outcomes),
            t.totalMs / t.count,
            t.maxMs,
            t.totalMs / 1000,
          ]),
      ),
    ),
    '',
    ...instantReading(results),
    'Audit actions for the roots, per pass:',
    '',
    ...results.map((r) => `- C=${r.concurrency}: ${countsText(r.auditActions)}`),
    '',
    notable.length
      ? `Worker and reconciler log lines at warn or above, and delayed jobs:\n\n${notable
          .map((r) => `- C=${r.concurrency}: ${countsText(r.notable)}`)
          .join('\n')}`
      : 'No worker or reconciler log line at warn or above, and no delayed job.',
    '',
    foreign > 0
      ? `**Another process worked on these roots during the run** (${foreign} intents or reconciler ` +
        'actions not from the bench): the figures are disturbed.'
      : 'No other process appended intents for these roots or reconciled them during the run.',
  ]
    .filter((line, i, all) => !(line === '' && all[i - 1] === ''))
    .join('\n');
}

/** A few sentences computed from the passes: where a run's cost goes, and what more concurrency did. */
function instantReading(results: InstantResult[]): string[] {
  const [first, ...others] = results;
  if (!first || first.outcomes === 0) return [];
  const perRun = (r: InstantResult, group: string) => (r.cpuGroups.get(group) ?? 0) / r.outcomes;
  const busy = (r: InstantResult) => [...r.cpuGroups.values()].reduce((a, b) => a + b, 0);
  const netboxCalls = (r: InstantResult) =>
    [...r.http]
      .filter(([request]) => request.includes(' NetBox /api/plugins/'))
      .reduce((n, [, t]) => n + t.count, 0) / r.outcomes;
  const awxLookups = (r: InstantResult) =>
    (r.http.get('GET AWX /api/v2/jobs/')?.count ?? 0) /
    Math.max(1, r.http.get('POST AWX /api/v2/job_templates/:id/launch/')?.count ?? 0);
  const median = (r: InstantResult, key: InstantMeasure) => percentile(r.measures[key], 50).toFixed(0);
  const rate = (r: InstantResult) => (r.outcomes / r.seconds).toFixed(1);
  return [
    `Reading: at C=${first.concurrency}, ${rate(first)} runs/s with the two cores ${((100 * busy(first)) / (2 * first.seconds)).toFixed(0)}% busy.`,
    `A run costs ${(busy(first) / first.outcomes).toFixed(2)} CPU s on this machine: NetBox ${perRun(first, 'NetBox').toFixed(2)}, PostgreSQL`,
    `${perRun(first, 'PostgreSQL').toFixed(2)}, the bench process (worker, double, dispatcher, observer) ${perRun(first, 'bench process').toFixed(2)}, unattributed`,
    `${perRun(first, 'unattributed').toFixed(2)}. It makes ${netboxCalls(first).toFixed(1)} requests to the plugin's API (table above) and queues`,
    `${(first.backgroundJobs.added / first.outcomes).toFixed(1)} jobs on NetBox's RQ worker: "Search cache update" jobs, seen in RQ, for each write of a run`,
    "record (the plugin's search index on runs) and for the journal entry. Inside a run, job taken →",
    `AWX launch takes ${median(first, 'takenToLaunch')} ms and AWX end → outcome on Kafka ${median(first, 'finishToOutcome')} ms (p50), nearly all of it waiting`,
    "for NetBox. Before each launch the AWX client lists the template's jobs created since the run",
    'started − 60 s, 200 a page, for one carrying the run id (a launch is never repeated): here',
    `${awxLookups(first).toFixed(2)} list requests per launch; the pages grow with the launches per minute.`,
    ...others.map(
      (r) =>
        `C=${r.concurrency} gives ${rate(r)} runs/s: the extra runs queue at NetBox's gunicorn workers: job taken → AWX launch ` +
        `${median(r, 'takenToLaunch')} ms and AWX end → outcome ${median(r, 'finishToOutcome')} ms (p50).`,
    ),
    '',
  ];
}

function instantCommand(): string {
  const set = ['BENCH_LOOP_INSTANT_ROOTS', 'BENCH_LOOP_INSTANT_C', 'BENCH_LOOP_INSTANT_PASS_SECONDS'].filter(
    (name) => process.env[name],
  );
  return [
    ...set.map((name) => `${name}=${process.env[name]}`),
    'BENCH_LOOP_ONLY=instant npx tsx bench/loop.ts',
  ].join(' ');
}

// ---- the section ---------------------------------------------------------------------------

function countsText(m: Map<string, number>): string {
  return (
    [...m]
      .sort()
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || '—'
  );
}

function command(): string {
  const set = ['BENCH_LOOP_ROOTS', 'BENCH_LOOP_BURST'].filter((name) => process.env[name]);
  return [...set.map((name) => `${name}=${process.env[name]}`), 'npx tsx bench/loop.ts'].join(' ');
}

export async function benchReconcileLoop(): Promise<string> {
  const sites: { id: number; rootKey: string }[] = [];
  for (let i = 0; i < rootCount; i++) sites.push(await createSite());
  const siteKeys = sites.map((s) => s.rootKey);
  const { observer, freezeView, frozen, stop } = await watch(siteKeys);

  const warm = await warmUp(siteKeys, observer, freezeView);
  process.stderr.write(`loop warm-up: ${warm.text}, foreign ${warm.foreign}\n`);
  const results: ScenarioResult[] = [];
  for (const scenario of scenarios) results.push(await runScenario(scenario, siteKeys, observer, freezeView));
  const coalescing = [
    await runCoalescing('change', observer, freezeView),
    await runCoalescing('manual', observer, freezeView),
  ];
  if (process.env.BENCH_LOOP_DUMP) {
    const { audit, outcomes, foreignIntents } = observer;
    writeFileSync(process.env.BENCH_LOOP_DUMP, JSON.stringify({ audit, outcomes, foreignIntents }, null, 1));
  }
  await stop();
  await deleteSites(sites);
  const instant = await benchInstantLoop();

  const median = (values: number[]) =>
    percentile(
      [...values].sort((a, b) => a - b),
      50,
    );
  const segment = (r: ScenarioResult, i: number) => median(r.segments.map((s) => s[i] as number));
  const awxRunning = (r: ScenarioResult) => r.segments.map((s) => s[3] as number).sort((a, b) => a - b);
  const notable = results.filter((r) => r.notable.size > 0);
  const foreign = results.reduce((n, r) => n + r.foreignIntents + r.foreignActions, 0);
  const foreignElsewhere = coalescing.reduce((n, c) => n + c.foreign, warm.foreign);
  const reading = readingOf(results);

  return [
    title,
    '',
    `Run ${new Date().toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ` +
      `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}: \`${command()}\``,
    '(also part of `npm run bench`), against the local stack (NetBox with the plugin, Kafka, Redis)',
    'and the AWX double, started in the bench process (`startBackHalf()`), whose job template 8',
    'runs `awx-playbooks/site.yml` with the real ansible-runner. Everything shares the two cores.',
    '',
    `- ${rootCount} new sites, each reconciled once untimed (${warm.text}), then reused by every`,
    '  scenario: one `manual` intent per root (manual, so every run launches even at the same hash)',
    `  appended to unicop.intents — all at once ("burst"), or one root after another, the next after`,
    `  the previous outcome ("one at a time", ${sequentialCount} roots). A dispatcher on a fresh consumer group`,
    "  positioned at the end queues them on a fresh BullMQ queue (only the bench's roots: other suites",
    '  share the topic); one reconcile worker with concurrency C runs them with the production',
    '  options (lease TTL 60 s, retries). Each scenario has its own double (a fresh job list).',
    "- Latency: from the append of a root's intent to the arrival of its outcome on unicop.outcomes",
    '  at a consumer in the bench; in a burst it is mostly time spent waiting behind the other roots.',
    '  Runs/min: roots ÷ (first append → last outcome). Not timed: creating the sites, starting the',
    '  double, the dispatcher and the worker.',
    '- No bridge sits in front of the double, so no AWX notifications: the reconciler polls the job,',
    `  ${fastPoll.minMs} ms doubling to ${fastPoll.maxMs} ms (about a notification's wake-up), except the "polling 1→15 s"`,
    '  row: the production poll settings, what a run costs when its notifications are lost.',
    '- Memory, sampled every 200 ms during each scenario: RSS and V8 heap of the bench process',
    '  (double, dispatcher, worker, observer) and the summed RSS of its child processes',
    '  (ansible-runner, ansible-playbook and its workers).',
    frozen
      ? '- **Automation was frozen globally on unicop.control during this run: intents were held.**'
      : '',
    '',
    table(
      [
        'scenario',
        'C',
        'AWX template 8',
        'roots',
        'seconds',
        'runs/min',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'max ms',
        'outcomes',
        'RSS MiB',
        'heap MiB',
        'ansible MiB',
      ],
      results.map((r) => [
        r.scenario.label,
        r.scenario.concurrency,
        r.scenario.simultaneous ? 'allow_simultaneous' : 'one job at a time',
        r.roots,
        r.seconds,
        (r.roots - r.missing) / (r.seconds / 60),
        percentile(r.latenciesMs, 50),
        percentile(r.latenciesMs, 95),
        percentile(r.latenciesMs, 99),
        percentile(r.latenciesMs, 100),
        `${countsText(r.states)}${r.missing ? `, missing ${r.missing}` : ''}`,
        r.memory.rssMiB,
        r.memory.heapMiB,
        r.memory.childrenMiB,
      ]),
    ),
    '',
    ...reading,
    "Where the time goes, per run (medians in ms; the AWX times are the double's own job record):",
    '"before the run" = dispatch, waiting in the queue, lease, snapshot; "launch" = run record and the',
    'AWX launch call; "AWX pending" = waiting for the template (one job of it at a time) and the',
    'double\'s start step; "ansible-runner" = AWX started → finished; "→ outcome" = the poll noticing',
    'the end, run + journal written to NetBox, outcome appended and consumed. CPU seconds over the',
    'scenario (two cores: at most 2 × its seconds): the bench process with its ansible-runner children,',
    "and the rest of the machine: the stack's NetBox, PostgreSQL, Kafka, Redis, and anything else.",
    '',
    table(
      [
        'scenario',
        'C',
        'before the run',
        'launch',
        'AWX pending',
        'ansible-runner p50',
        'ansible-runner p95',
        '→ outcome',
        'AWX launches',
        'CPU s bench',
        'CPU s rest',
      ],
      results.map((r) => [
        r.scenario.label,
        r.scenario.concurrency,
        segment(r, 0),
        segment(r, 1),
        segment(r, 2),
        percentile(awxRunning(r), 50),
        percentile(awxRunning(r), 95),
        segment(r, 4),
        r.awxLaunches,
        r.cpu.bench,
        r.cpu.rest,
      ]),
    ),
    '',
    `Coalescing: ${burstSize} intents for one new site appended in one burst, worker C=4. "queued" and`,
    '"coalesced" are the dispatcher\'s audit events for them; "in sync" is the first time the plugin',
    'reports the root `in_sync`; "quiet" is when every intent was dispatched and the queue holds no job.',
    '',
    table(
      ['cause', 'intents', 'queued', 'coalesced', 'AWX launches', 'outcomes', 'in sync ms', 'quiet ms'],
      coalescing.map((c) => [
        c.kind,
        c.intents,
        c.queued,
        c.coalesced,
        c.launches,
        countsText(c.states),
        c.inSyncMs,
        c.quietMs,
      ]),
    ),
    '',
    "Audit actions for the bench's roots, per scenario:",
    '',
    ...results.map((r) => `- ${describe(r.scenario)}: ${countsText(r.auditActions)}`),
    '',
    notable.length
      ? `Worker and reconciler log lines at warn or above, and delayed jobs:\n\n${notable
          .map((r) => `- ${describe(r.scenario)}: ${countsText(r.notable)}`)
          .join('\n')}`
      : 'No worker or reconciler log line at warn or above, and no delayed job.',
    '',
    foreign + foreignElsewhere > 0
      ? `**Another process worked on the bench's roots during the run** (${foreign + foreignElsewhere} ` +
        "intents or reconciler actions not from the bench, e.g. a sweeper or a test's workers): the figures " +
        'are disturbed.'
      : "No other process appended intents for the bench's roots or reconciled them during the run.",
    '',
    instant,
  ]
    .filter((line, i, all) => !(line === '' && all[i - 1] === ''))
    .join('\n');
}

/** Two sentences computed from the results: UNICOP's share of a run, and concurrency against AWX's. */
function readingOf(results: ScenarioResult[]): string[] {
  const find = (mode: Scenario['mode'], c: number, simultaneous: boolean, poll = fastPoll) =>
    results.find(
      (r) =>
        r.scenario.mode === mode &&
        r.scenario.concurrency === c &&
        r.scenario.simultaneous === simultaneous &&
        r.scenario.poll === poll,
    );
  const p50 = (values: number[]) =>
    percentile(
      [...values].sort((a, b) => a - b),
      50,
    );
  const alone = find('sequential', 1, false);
  const polled = find('sequential', 1, false, productionPoll);
  const c1 = find('burst', 1, false);
  const c4 = find('burst', 4, false);
  if (!alone || !polled || !c1 || !c4) return [];
  const e2e = p50(alone.latenciesMs);
  const ansible = p50(alone.segments.map((s) => s[3] as number));
  const rate = (r: ScenarioResult) => ((r.roots - r.missing) / (r.seconds / 60)).toFixed(1);
  return [
    `Reading: one root at a time, a run takes ${e2e.toFixed(0)} ms from intent to outcome (p50), of which`,
    `ansible-runner ${ansible.toFixed(0)} ms: UNICOP's share is about ${(e2e - ansible).toFixed(0)} ms; with the production poll`,
    `settings and no notifications it is ${(p50(polled.latenciesMs) - p50(polled.segments.map((s) => s[3] as number))).toFixed(0)} ms.`,
    `With template 8 running one job at a time (AWX's default), C=4 gives ${rate(c4)} runs/min`,
    `against ${rate(c1)} at C=1: the extra runs hold their root's lease while they wait in AWX`,
    `(median ${p50(c4.segments.map((s) => s[2] as number)).toFixed(0)} ms pending), and that wait counts against their run timeout.`,
    '',
  ];
}

/** Replaces this section of docs/benchmarks.md (or adds it after the resolver's), keeping the rest. */
function writeSection(section: string): void {
  const file = join(repoRoot, 'docs', 'benchmarks.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const parts = text.split(/\n(?=## )/).map((p) => p.trimEnd());
  const mine = parts.findIndex((p) => p.split('\n')[0] === title);
  if (mine > 0) parts[mine] = section;
  else {
    const resolver = parts.findIndex((p) => p.startsWith('## Resolver'));
    parts.splice(resolver > 0 ? resolver + 1 : parts.length, 0, section);
  }
  writeFileSync(file, `${parts.join('\n\n')}\n`);
}

/** Replaces only the instant subsection inside this section (added at its end if missing). */
function writeInstantSubsection(subsection: string): void {
  const file = join(repoRoot, 'docs', 'benchmarks.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const section = text.split(/\n(?=## )/).find((p) => p.split('\n')[0] === title);
  if (!section) {
    writeSection([title, '', subsection].join('\n'));
    return;
  }
  const parts = section.trimEnd().split(/\n(?=### )/);
  const mine = parts.findIndex((p) => p.split('\n')[0] === instantTitle);
  if (mine > 0) parts[mine] = subsection;
  else parts.push(subsection);
  writeSection(parts.map((p) => p.trimEnd()).join('\n\n'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.env.BENCH_LOOP_ONLY === 'instant') {
    const subsection = await benchInstantLoop();
    writeInstantSubsection(subsection);
    process.stdout.write(`${subsection}\n\nwrote docs/benchmarks.md\n`);
  } else {
    const section = await benchReconcileLoop();
    writeSection(section);
    process.stdout.write(`${section}\n\nwrote docs/benchmarks.md\n`);
  }
  process.exit(0);
}
