/**
 * Benchmark: the reconcile loop end to end against the real stack. Intents for R site roots are
 * appended to unicop.intents; a dispatcher under a fresh consumer group (positioned at the end)
 * queues them on a fresh BullMQ queue; a reconcile worker with concurrency C takes the lease,
 * snapshots the root in NetBox, launches AWX job template 8 (site.yml) on the AWX double, which
 * really runs ansible-runner, follows the job, writes the run and journal to NetBox and the outcome
 * to unicop.outcomes. Each root's latency is from appending its intent to receiving its outcome.
 * Also: K intents for one root in a burst → how many AWX launches, and how long until it is in sync.
 *
 * Alone: `npx tsx bench/loop.ts` (needs `scripts/stack up`) replaces this section of
 * docs/benchmarks.md. BENCH_LOOP_ROOTS (default 20) and BENCH_LOOP_BURST (default 50) set R and K.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { AwxClient } from '../core/awx/index.js';
import { parseConfig, readStackEnv, repoRoot } from '../core/config.js';
import { FreezeView } from '../core/control/freeze-view.js';
import { KafkaEventStream } from '../core/event-log/consumer.js';
import { cloudEvent, type EventData, eventTypes, topics } from '../core/events/catalogue.js';
import { uuidv7 } from '../core/ids.js';
import { createLogger } from '../core/logger.js';
import type { DoubleJobRecord } from '../test/awx/support.js';
import { positionGroupAtEnd } from '../test/support/kafka.js';
import { netbox } from '../test/support/netbox.js';
import { type BackHalf, createSite, startBackHalf } from '../test/support/reconciler.js';
import { dispatchIntents, type ReconcileJobData } from '../workers/dispatcher/dispatcher.js';
import { pollingOnly } from '../workers/reconciler/awx-notifications.js';
import { reconcilerOptions } from '../workers/reconciler/options.js';
import { Reconciler, reconcilerSource } from '../workers/reconciler/reconciler.js';
import { startReconcileWorker } from '../workers/reconciler/worker.js';
import { percentile, table } from './support.js';

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
          this.outcomes.push({ receivedAt: Date.now(), data: event.data as EventData<'outcome'> });
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
    this.childrenMiB = Math.max(this.childrenMiB, descendantsRssMiB(process.pid));
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
}

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
}

async function startLoop(
  settings: LoopSettings,
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<Loop> {
  const env = readStackEnv();
  const redisUrl = env.UNICOP_REDIS_URL as string;
  const back = await startBackHalf({ simultaneous: settings.simultaneous });
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      const line = JSON.parse(String(chunk)) as LogLine;
      logs.push({ level: line.level, msg: line.msg, ...(line.reason ? { reason: line.reason } : {}) });
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
  const intentId = uuidv7();
  observer.mine.add(intentId);
  const event = cloudEvent('intent', {
    id: intentId,
    source: 'unicop/bench',
    subject: rootKey,
    data: {
      intentId,
      rootKey,
      cause: {
        kind,
        changeId: null,
        requestId: null,
        event: null,
        objectType: null,
        objectId: null,
        actor: 'bench',
        at: new Date().toISOString(),
      },
    },
  });
  return {
    intentId,
    message: { topic: eventTypes.intent.topic, key: rootKey, value: JSON.stringify(event) },
  };
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
    (await loop.back.awx.doubleJobs()).filter((j) => j.type === 'job').map((j) => [j.id, j]),
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
      (l) => `${l.msg}${l.reason ? ` (${l.reason})` : ''}`,
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
  const launches = (await loop.back.awx.doubleJobs()).filter((j) => j.root === site.rootKey).length;
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
  const env = readStackEnv();
  const kafka = new Kafka({
    clientId: `bench-loop-${process.pid}`,
    brokers: env.UNICOP_KAFKA_BROKERS?.split(',') ?? [],
    logLevel: logLevel.NOTHING,
  });
  const sites: { id: number; rootKey: string }[] = [];
  for (let i = 0; i < rootCount; i++) sites.push(await createSite());
  const siteKeys = sites.map((s) => s.rootKey);
  const observer = new LoopObserver(kafka, new Set(siteKeys));
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
  const frozen = freezeView.globalState()?.frozen === true;

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
  await observer.stop();
  await freezeView.stop();
  await netbox(
    'DELETE',
    '/api/dcim/sites/',
    sites.map((s) => ({ id: s.id })),
  ).catch((error: unknown) => process.stderr.write(`loop: sites left in NetBox: ${String(error)}\n`));

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

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const section = await benchReconcileLoop();
  writeSection(section);
  process.stdout.write(`${section}\n\nwrote docs/benchmarks.md\n`);
  process.exit(0);
}
