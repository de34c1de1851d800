/**
 * Benchmark: resolver throughput against the real plugin, and where a batch's time goes. A prefix
 * with 200 IP addresses is made in NetBox. Then:
 *
 * 1. Inside NetBox (bench/plugin/resolve_profile.py through `netbox shell`): one batch of 500 changes
 *    validated, resolved as a batch and resolved one change at a time — milliseconds and SQL queries.
 * 2. Over HTTP: `POST resolve/` with 1 change (NetBox's fixed cost per request) and with 500.
 * 3. Through Kafka, for each number of partitions handled at once (BENCH_RESOLVER_CONCURRENCY, e.g.
 *    `1,4`; the runs interleaved, BENCH_RESOLVER_ROUNDS rounds): N change events about those IPs are
 *    appended to unicop.changes and a resolver under a fresh consumer group, positioned just before
 *    them, turns them into intents. Timed until the group's lag on those changes is zero: from the
 *    resolver's start (group join included) and from its first batch (the throughput). Each batch's
 *    plugin call, intents append and handler are timed; CPU seconds per process group over the run.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { readStackEnv, repoRoot } from '../core/config.js';
import { type EventStream, KafkaEventStream } from '../core/event-log/consumer.js';
import { KafkaEventLog } from '../core/event-log/kafka.js';
import type { EventLog } from '../core/event-log/port.js';
import { cloudEvent, eventTypes, topics } from '../core/events/catalogue.js';
import { deterministicUuidv7 } from '../core/ids.js';
import { createLogger } from '../core/logger.js';
import { netboxRest } from '../core/netbox/rest.js';
import { type ChangeRef, PluginClient } from '../core/plugin/client.js';
import type { RootResolver } from '../workers/resolver/resolve-changes.js';
import { startResolver } from '../workers/resolver/resolver.js';
import { CpuByProcess } from './loop/usage.js';
import { commit, machine, type ScenarioResult } from './scenario-result.js';
import { memoryOf, percentile, sleep, table } from './support.js';

const changes = Number(process.env.BENCH_RESOLVER_CHANGES ?? 10000);
const concurrencies = (process.env.BENCH_RESOLVER_CONCURRENCY ?? '1,4').split(',').map(Number);
const rounds = Number(process.env.BENCH_RESOLVER_ROUNDS ?? 2);
const goal = 2000;

type Ip = { id: number; address: string };

interface ResolverRun {
  concurrency: number;
  fromStartSeconds: number;
  fromFirstBatchSeconds: number;
  batches: number[];
  resolveMs: number[];
  appendMs: number[];
  handlerMs: number[];
  cpu: Map<string, number>;
}

const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** The plugin's own cost of one batch, measured inside NetBox (bench/plugin/resolve_profile.py). */
function profilePlugin(ips: Ip[]): Record<string, number> {
  const out = execFileSync(
    join(repoRoot, 'scripts', 'stack.d', 'netbox.sh'),
    [
      'exec',
      `UNICOP_BENCH_RESOLVE_IPS=${JSON.stringify(ips.map((ip) => [ip.id, ip.address]))}`,
      'netbox',
      'shell',
    ],
    {
      input: readFileSync(join(repoRoot, 'bench', 'plugin', 'resolve_profile.py')),
      encoding: 'utf8',
      maxBuffer: 16 * 2 ** 20,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const line = out.split('\n').find((l) => l.startsWith('BENCH resolve_profile '));
  if (!line) throw new Error(`resolve_profile printed no BENCH line:\n${out.slice(-2000)}`);
  process.stderr.write(`${line}\n`);
  return Object.fromEntries(
    line
      .split(' ')
      .slice(2)
      .map((pair) => pair.split('='))
      .map(([name, value]) => [name as string, Number(value)]),
  );
}

function changeRef(ip: Ip): ChangeRef {
  const fields = { id: ip.id, address: ip.address };
  return {
    object_type: 'ipam.ipaddress',
    object_id: ip.id,
    event: 'updated',
    data: fields,
    postchange: fields,
  };
}

/** Median milliseconds of `POST resolve/` with `size` changes, over 7 calls. */
async function httpMs(plugin: PluginClient, ips: Ip[], size: number): Promise<number> {
  const batch = Array.from({ length: size }, (_, n) => changeRef(ips[n % ips.length] as Ip));
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    await plugin.resolve(batch);
    times.push(performance.now() - t);
  }
  return median(times);
}

/** Messages of `unicop.changes` not yet committed by the group (one admin client, polled). */
async function lagOf(admin: Admin, groupId: string): Promise<number> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topics.changes),
    admin.fetchOffsets({ groupId, topics: [topics.changes] }),
  ]);
  const done = new Map(committed[0]?.partitions.map((p) => [p.partition, Number(p.offset)]) ?? []);
  return ends.reduce(
    (total, p) => total + Math.max(0, Number(p.high) - Math.max(Number(p.low), done.get(p.partition) ?? -1)),
    0,
  );
}

async function runResolver(
  kafka: Kafka,
  admin: Admin,
  eventLog: KafkaEventLog,
  plugin: PluginClient,
  ips: Ip[],
  concurrency: number,
): Promise<ResolverRun> {
  const groupId = `bench-resolver-${randomUUID()}`;
  const start = await admin.fetchTopicOffsets(topics.changes);
  await admin.setOffsets({
    groupId,
    topic: topics.changes,
    partitions: start.map((p) => ({ partition: p.partition, offset: p.high })),
  });
  const now = Date.now();
  const messages = Array.from({ length: changes }, (_, n) => {
    const ip = ips[n % ips.length] as Ip;
    const occurredAt = new Date(now + n).toISOString();
    const changeId = deterministicUuidv7(now + n, 'bench', groupId, n);
    const event = cloudEvent('change', {
      id: changeId,
      source: 'unicop/bench',
      subject: `ipam.ipaddress:${ip.id}`,
      time: occurredAt,
      data: {
        changeId,
        event: 'updated',
        objectType: 'ipam.ipaddress',
        objectId: ip.id,
        occurredAt,
        requestId: null,
        actor: 'bench',
        lastUpdated: occurredAt,
        data: { id: ip.id, address: ip.address },
        prechange: null,
        postchange: { id: ip.id, address: ip.address },
      },
    });
    return { topic: eventTypes.change.topic, key: event.subject, value: JSON.stringify(event) };
  });
  for (let i = 0; i < messages.length; i += 1000) await eventLog.append(messages.slice(i, i + 1000));

  const run: ResolverRun = {
    concurrency,
    fromStartSeconds: 0,
    fromFirstBatchSeconds: 0,
    batches: [],
    resolveMs: [],
    appendMs: [],
    handlerMs: [],
    cpu: new Map(),
  };
  const timed = async <T>(into: number[], work: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await work();
    } finally {
      into.push(performance.now() - t);
    }
  };
  const stream = new KafkaEventStream(
    kafka,
    { topic: topics.changes, groupId, partitionsConcurrently: concurrency },
    createLogger('bench-resolver', 'silent'),
  );
  let firstBatch: number | undefined;
  const measuredStream: EventStream = {
    start: (handler) =>
      stream.start(async (records) => {
        firstBatch ??= performance.now();
        run.batches.push(records.length);
        await timed(run.handlerMs, () => handler(records));
      }),
    stop: () => stream.stop(),
    lag: () => stream.lag(),
  };
  const measuredResolver: RootResolver = {
    resolve: (refs) => timed(run.resolveMs, () => plugin.resolve(refs)),
  };
  const measuredLog: EventLog = {
    append: (appended) => timed(run.appendMs, () => eventLog.append(appended)),
    healthy: () => eventLog.healthy(),
    close: () => eventLog.close(),
  };

  const cpu = new CpuByProcess();
  cpu.start();
  const t0 = performance.now();
  const resolver = await startResolver({
    changes: measuredStream,
    eventLog: measuredLog,
    resolver: measuredResolver,
    log: createLogger('bench-resolver', 'silent'),
  });
  while ((await lagOf(admin, groupId)) > 0) await sleep(50);
  const done = performance.now();
  run.cpu = cpu.stop();
  await resolver.stop();
  await admin.deleteGroups([groupId]).catch(() => undefined);
  run.fromStartSeconds = (done - t0) / 1000;
  run.fromFirstBatchSeconds = (done - (firstBatch ?? t0)) / 1000;
  process.stderr.write(
    `resolver (${concurrency} partitions at once): ${(changes / run.fromFirstBatchSeconds).toFixed(0)} changes/s ` +
      `from the first batch, ${(changes / run.fromStartSeconds).toFixed(0)} from the start\n`,
  );
  return run;
}

export async function benchResolver(): Promise<{ section: string; result: ScenarioResult }> {
  const env = readStackEnv();
  const netboxUrl = env.UNICOP_NETBOX_URL as string;
  const token = env.UNICOP_NETBOX_TOKEN as string;
  // NetBox's bulk create costs tens of ms per object on a loaded machine (its change log, search
  // index and a job per object; the plugin only marks the prefix's root stale, decision 0043), so
  // the 200 addresses go in bulk POSTs of 50 with a generous timeout.
  const nb = netboxRest(netboxUrl, token, 300_000);
  const net = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
  const fixtureStart = performance.now();
  const prefix = await nb<{ id: number }>('POST', '/api/ipam/prefixes/', { prefix: `${net}.0/24` });
  const ips: Ip[] = [];
  for (let first = 1; first <= 200; first += 50) {
    ips.push(
      ...(await nb<Ip[]>(
        'POST',
        '/api/ipam/ip-addresses/',
        Array.from({ length: 50 }, (_, i) => ({ address: `${net}.${first + i}/24` })),
      )),
    );
  }
  const fixtureSeconds = (performance.now() - fixtureStart) / 1000;
  process.stderr.write(`resolver fixture: a prefix and 200 IP addresses in ${fixtureSeconds.toFixed(1)} s\n`);

  const kafka = new Kafka({
    clientId: 'bench-resolver',
    brokers: env.UNICOP_KAFKA_BROKERS?.split(',') ?? [],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const eventLog = new KafkaEventLog(kafka);
  const plugin = new PluginClient({ baseUrl: netboxUrl, token });
  const runs: ResolverRun[] = [];
  let profile: Record<string, number>;
  let http: { one: number; batch: number };
  try {
    profile = profilePlugin(ips);
    http = { one: await httpMs(plugin, ips, 1), batch: await httpMs(plugin, ips, 500) };
    for (let round = 0; round < rounds; round++) {
      for (const concurrency of concurrencies) {
        runs.push(await runResolver(kafka, admin, eventLog, plugin, ips, concurrency));
      }
    }
  } finally {
    await eventLog.close();
    await admin.disconnect();
    for (let i = 0; i < ips.length; i += 50) {
      await nb(
        'DELETE',
        '/api/ipam/ip-addresses/',
        ips.slice(i, i + 50).map((ip) => ({ id: ip.id })),
      );
    }
    await nb('DELETE', `/api/ipam/prefixes/${prefix.id}/`);
  }
  const mem = memoryOf(process.pid);
  const load = machine().loadAverage.join(' ');
  const best = Math.max(...runs.map((r) => changes / r.fromFirstBatchSeconds));
  const rows = runs.map((r) => {
    const wallMs = r.fromFirstBatchSeconds * 1000;
    return [
      r.concurrency,
      r.fromStartSeconds,
      r.fromFirstBatchSeconds,
      changes / r.fromFirstBatchSeconds,
      r.batches.length,
      sum(r.batches) / r.batches.length,
      median(r.resolveMs),
      median(r.appendMs),
      median(r.handlerMs),
      `${((100 * sum(r.resolveMs)) / wallMs).toFixed(0)} / ${((100 * sum(r.appendMs)) / wallMs).toFixed(0)}`,
      r.cpu.get('NetBox') ?? 0,
      r.cpu.get('PostgreSQL') ?? 0,
      r.cpu.get('Kafka') ?? 0,
      r.cpu.get('bench process') ?? 0,
    ];
  });
  const perChange = (ms: number) => ((1000 * ms) / (profile.batch ?? 500)).toFixed(0);
  const section = [
    '## Resolver: changes → intents against the real plugin',
    '',
    `Run ${new Date().toISOString()} at ${commit()} (\`npm run bench -- resolver\`), load average ${load} at the end.`,
    `Fixture: a prefix and 200 IP addresses made through NetBox's REST API (bulk POSTs of 50) in`,
    `${fixtureSeconds.toFixed(1)} s, not timed. Every change is an update of one of those addresses (REST \`data\` and`,
    '`postchange` carry its id and address) and touches one root, so intents/s = changes/s.',
    '',
    `**Inside NetBox** (\`bench/plugin/resolve_profile.py\` through \`netbox shell\`, no HTTP; medians of 5):`,
    `a batch of ${profile.batch} changes is validated by the endpoint's serializer in ${profile.validate_ms} ms`,
    `(${perChange(profile.validate_ms ?? 0)} µs per change) and resolved in ${profile.batch_ms} ms with ${profile.batch_queries} SQL`,
    `queries (${perChange(profile.batch_ms ?? 0)} µs per change); the same changes resolved one at a time — the`,
    `per-change queries of resolution before decision 0046 — take ${profile.one_by_one_ms} ms and ${profile.one_by_one_queries} queries.`,
    `**Over HTTP** (medians of 7): \`POST resolve/\` with 1 change ${http.one.toFixed(1)} ms (NetBox's fixed cost per`,
    `request: authentication, middleware), with 500 changes ${http.batch.toFixed(1)} ms.`,
    '',
    `**Through Kafka**: ${changes} change events on \`unicop.changes\` (12 partitions), resolved by the`,
    "workers' own resolver (`startResolver`, `POST resolve/` per Kafka batch, intents + audit events",
    'appended with acks=all, offsets committed after the append) under a fresh consumer group, with',
    `1 or more partitions' batches handled at once (\`partitionsConcurrently\`), the runs interleaved.`,
    "Timed until the group has committed every change, from the resolver's start (its group join",
    'included) and from its first batch (the throughput). Per batch: the plugin call, the append and',
    'the whole handler (medians); the plugin call and the append as a share of the wall time (they',
    'overlap when partitions run at once); CPU seconds per process group over the run (machine-wide:',
    "other sessions' work on the same services counts too).",
    '',
    table(
      [
        'partitions at once',
        's from start',
        's from 1st batch',
        'changes/s',
        'batches',
        'changes/batch',
        'plugin ms',
        'append ms',
        'handler ms',
        'plugin / append % of wall',
        'CPU s NetBox',
        'CPU s PostgreSQL',
        'CPU s Kafka',
        'CPU s bench',
      ],
      rows,
    ),
    '',
    `Bench process RSS ${mem.rssMiB.toFixed(1)} MiB (peak ${mem.peakMiB.toFixed(1)} MiB). Goal (issue #15): ≥ ${goal} changes/s; best run`,
    `${best.toFixed(0)} changes/s: ${best >= goal ? 'met' : 'not met'}.`,
  ].join('\n');
  return {
    section,
    result: {
      scenario: 'resolver',
      at: new Date().toISOString(),
      machine: machine(),
      commit: commit(),
      figures: {
        changes,
        profile,
        httpMs: http,
        runs: runs.map((r) => ({
          concurrency: r.concurrency,
          fromStartSeconds: r.fromStartSeconds,
          fromFirstBatchSeconds: r.fromFirstBatchSeconds,
          changesPerSecond: changes / r.fromFirstBatchSeconds,
          batches: r.batches.length,
          pluginMsMedian: median(r.resolveMs),
          appendMsMedian: median(r.appendMs),
          handlerMsMedian: median(r.handlerMs),
          cpuSeconds: Object.fromEntries(r.cpu),
        })),
      },
      goals: { resolverChangesPerSecond: { target: `≥ ${goal} changes/s`, value: best, met: best >= goal } },
    },
  };
}
