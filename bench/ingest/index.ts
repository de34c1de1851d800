/**
 * Ingest scenario (`npm run bench -- ingest`): the same load generator drives, in one run, a bare
 * Node sink, the UNICOP bridge and ansible-rulebook's `ansible.eda.webhook` at each connection
 * count (8 and 64 by default; BENCH_INGEST_CONNECTIONS), BENCH_SECONDS (15) per point after a short
 * untimed warm-up. Points are interleaved (sink, bridge, rulebook at 8; then at 64) so background
 * load on the shared cores falls on all three alike; figures are meant as ratios within one run.
 * Every change id the bridge answered 202 for is then looked up on unicop.changes. The bridge runs
 * with tracing off, as deployed by default (BENCH_BRIDGE_TRACING=1: exporting to the stack's Jaeger).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Kafka, logLevel } from 'kafkajs';
import { sleep } from '../../core/clock.js';
import { readStackEnv } from '../../core/config.js';
import { commit, goal, machine, type ScenarioResult } from '../scenario-result.js';
import { memoryOf, percentile, table } from '../support.js';
import { drive, type LoadResult } from './load.js';
import { idsBetween, markEnd } from './readback.js';
import { buildBridge, type Receiver, startBridge, startRulebook, startSink } from './receivers.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 15);
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const connectionCounts = (process.env.BENCH_INGEST_CONNECTIONS ?? '8,64').split(',').map(Number);
const wanted = new Set((process.env.BENCH_INGEST_RECEIVERS ?? 'sink,bridge,rulebook').split(','));
const bridgeNodeArgs = (process.env.BENCH_BRIDGE_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** Optional: another build's dist/bin/unicop.js, measured beside this tree's bridge (not a goal). */
const baselineBridge = process.env.BENCH_BASELINE_BRIDGE;
/** Optional: settings for that build only, `KEY=value,KEY=value` (e.g. UNICOP_PUBLISH_LINGER_MS=0). */
const baselineSettings = Object.fromEntries(
  (process.env.BENCH_BASELINE_SETTINGS ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);

type Kind = 'sink' | 'bridge' | 'baseline' | 'rulebook';

interface Point {
  kind: Kind;
  connections: number;
  load: LoadResult;
  /** CPU time of the receiver's process per accepted request, ms. */
  cpuMsPerRequest: number;
}

/** User + system CPU time of a process so far, in ms (from /proc; clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Waits (at most 20 s) until the receivers together use under 10 % of a CPU: ansible-rulebook
 * answers before its rule engine has handled the events, and a JVM warms up after it listens, so
 * work left over from one point must not run during the next receiver's.
 */
async function settle(pids: number[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const before = pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
    await sleep(1000);
    if (pids.reduce((sum, pid) => sum + cpuMs(pid), 0) - before < 100) return;
  }
}

export const ingestHeading = '## Ingest: bare sink, UNICOP bridge and ansible-rulebook side by side';

export async function benchIngest(): Promise<{ section: string; result: ScenarioResult }> {
  const stackEnv = readStackEnv();
  const secret = `bench-${randomUUID()}`;
  const kafka = new Kafka({
    clientId: 'bench-ingest',
    brokers: stackEnv.UNICOP_KAFKA_BROKERS?.split(',') ?? [],
    logLevel: logLevel.NOTHING,
  });
  const loadBefore = loadavg();
  if (wanted.has('bridge')) buildBridge();

  const receivers = new Map<Kind, Receiver>();
  const points: Point[] = [];
  const changeIds: string[] = [];
  let bridgeRss = 0;
  let bridgePeakRss = 0;
  const before = await markEnd(kafka);
  try {
    if (wanted.has('sink')) receivers.set('sink', await startSink(18191, secret));
    if (wanted.has('bridge'))
      receivers.set('bridge', await startBridge(18192, secret, stackEnv, bridgeNodeArgs));
    if (baselineBridge)
      receivers.set(
        'baseline',
        await startBridge(18194, secret, stackEnv, bridgeNodeArgs, baselineBridge, baselineSettings),
      );
    if (wanted.has('rulebook')) receivers.set('rulebook', await startRulebook(18193, secret));
    let firstDelivery = Date.now() % 1_000_000_000;
    for (const connections of connectionCounts) {
      for (const [kind, receiver] of receivers) {
        const pid = receiver.process.pid as number;
        const timed = async (durationMs: number) => {
          const load = await drive({
            url: receiver.url,
            secret,
            connections,
            durationMs,
            firstDelivery,
            accepted: (status) => status === receiver.acceptedStatus,
            keepBodies: kind === 'bridge',
          });
          firstDelivery += 10_000_000;
          for (const body of load.bodies) changeIds.push((JSON.parse(body) as { changeId: string }).changeId);
          load.bodies.length = 0;
          return load;
        };
        await settle([...receivers.values()].map((r) => r.process.pid as number));
        await timed(warmupSeconds * 1000);
        const sampler =
          kind === 'bridge'
            ? setInterval(() => {
                bridgeRss = Math.max(bridgeRss, memoryOf(pid).rssMiB);
              }, 250)
            : undefined;
        const cpuBefore = cpuMs(pid);
        const load = await timed(seconds * 1000);
        const cpu = cpuMs(pid) - cpuBefore;
        clearInterval(sampler);
        if (kind === 'bridge') bridgePeakRss = Math.max(bridgePeakRss, memoryOf(pid).peakMiB);
        points.push({ kind, connections, load, cpuMsPerRequest: cpu / Math.max(1, load.accepted) });
        process.stderr.write(
          `ingest ${kind} × ${connections}: ${load.perSecond.toFixed(0)}/s, p99 ${percentile(load.latencies, 99).toFixed(1)} ms\n`,
        );
      }
    }
  } finally {
    for (const receiver of receivers.values()) await receiver.stop();
  }
  // Warm-up answers are counted too: every 202 the bridge gave must be on the topic.
  const after = await markEnd(kafka);
  const onTopic = wanted.has('bridge') ? await idsBetween(kafka, before, after) : new Set<string>();
  const durable = changeIds.filter((id) => onTopic.has(id)).length;
  return report(points, {
    durable,
    answered: changeIds.length,
    bridgeRss,
    bridgePeakRss,
    loadAverage: { before: loadBefore, after: loadavg() },
  });
}

interface Extras {
  durable: number;
  answered: number;
  bridgeRss: number;
  bridgePeakRss: number;
  loadAverage: { before: number[]; after: number[] };
}

const names: Record<Kind, string> = {
  sink: 'bare Node sink (HMAC verify + JSON parse, nothing kept)',
  bridge: 'UNICOP bridge (202 after Kafka acks=all)',
  baseline: 'UNICOP bridge, another build (BENCH_BASELINE_BRIDGE)',
  rulebook: 'ansible-rulebook 1.3.2 `ansible.eda.webhook` (answers before anything is durable)',
};

function report(points: Point[], extras: Extras): { section: string; result: ScenarioResult } {
  const at = (kind: Kind, connections: number) =>
    points.find((p) => p.kind === kind && p.connections === connections);
  const rate = (kind: Kind, connections: number) => at(kind, connections)?.load.perSecond ?? Number.NaN;
  const p99 = (kind: Kind, connections: number) =>
    percentile(at(kind, connections)?.load.latencies ?? [], 99);
  const figures = {
    seconds,
    warmupSeconds,
    points: points.map((p) => ({
      receiver: p.kind,
      connections: p.connections,
      accepted: p.load.accepted,
      refused: p.load.refused,
      failed: p.load.failed,
      perSecond: Math.round(p.load.perSecond),
      p50Ms: percentile(p.load.latencies, 50),
      p95Ms: percentile(p.load.latencies, 95),
      p99Ms: percentile(p.load.latencies, 99),
      cpuMsPerRequest: p.cpuMsPerRequest,
    })),
    bridge: {
      answered202: extras.answered,
      onUnicopChanges: extras.durable,
      rssMiB: extras.bridgeRss,
      peakRssMiB: extras.bridgePeakRss,
    },
    loadAverage: extras.loadAverage,
  };
  const goals = {
    'bridge/rulebook at 8 connections': goal(rate('bridge', 8) / rate('rulebook', 8), 2, false, '×'),
    'bridge/rulebook at 64 connections': goal(rate('bridge', 64) / rate('rulebook', 64), 2, false, '×'),
    'bridge p99 at 8 connections (ms)': goal(p99('bridge', 8), 20, true, ' ms'),
    'bridge p99 at 64 connections (ms)': goal(p99('bridge', 64), 50, true, ' ms'),
    'bridge/bare sink at 64 connections': goal(rate('bridge', 64) / rate('sink', 64), 0.33, false, '×'),
    'bridge peak RSS (MiB)': goal(extras.bridgePeakRss, 200, true, ' MiB'),
    'bridge 202s missing from unicop.changes': goal(extras.answered - extras.durable, 0, true),
  };
  const result: ScenarioResult = {
    scenario: 'ingest',
    at: new Date().toISOString(),
    machine: machine(),
    commit: commit(),
    figures,
    goals,
  };
  const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : '—');
  const section = [
    ingestHeading,
    '',
    `Run ${result.at} at ${result.commit} on ${result.machine.cpus} × ${result.machine.model}, Node ${result.machine.node}`,
    '(`npm run bench -- ingest`). One load generator (Node, keep-alive connections, distinct signed',
    `NetBox 4.7 bodies) drives each receiver for ${seconds} s per point after ${warmupSeconds} s of warm-up,`,
    'receivers interleaved per connection count, each point begun once all receivers are idle (at most',
    '20 s); load generator, receivers, Kafka and Redis share the',
    `same cores (load average ${extras.loadAverage.before.map(fmt).join(' ')} before, ${extras.loadAverage.after.map(fmt).join(' ')} after), so the ratios`,
    'within this run are the figures to read. CPU is the receiver process only. The bridge runs with',
    process.env.BENCH_BRIDGE_TRACING === '1'
      ? "tracing on, exporting a trace per change to the stack's Jaeger (BENCH_BRIDGE_TRACING=1)."
      : 'tracing off, as deployed by default (BENCH_BRIDGE_TRACING=1 turns it on).',
    '',
    table(
      [
        'receiver',
        'connections',
        'accepted',
        'webhooks/s',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'refused/failed',
        'CPU ms/webhook',
      ],
      points.map((p) => [
        names[p.kind],
        p.connections,
        p.load.accepted,
        Math.round(p.load.perSecond),
        percentile(p.load.latencies, 50),
        percentile(p.load.latencies, 95),
        percentile(p.load.latencies, 99),
        `${p.load.refused}/${p.load.failed}`,
        fmt(p.cpuMsPerRequest),
      ]),
    ),
    '',
    `Durability: ${extras.durable} of the bridge's ${extras.answered} answers 202 (warm-up included) are on`,
    `\`unicop.changes\`, read back after the run. Bridge RSS ${fmt(extras.bridgeRss)} MiB under load, peak ${fmt(extras.bridgePeakRss)} MiB.`,
    '',
    table(
      ['goal', 'target', 'measured', 'met'],
      Object.entries(goals).map(([name, g]) => [name, g.target, fmt(g.value), g.met ? 'yes' : 'no']),
    ),
  ].join('\n');
  return { section, result };
}
