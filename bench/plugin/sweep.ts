/**
 * Benchmark: one sweep over many roots, against the real plugin (`npm run bench -- sweep`; issue #15's
 * goal: 100,000 roots in ≤ 60 s, measured, not extrapolated; docs/decisions/0043).
 *
 * bench/plugin/sweep_fixture.py makes BENCH_SWEEP_ROOTS sites and their roots in bulk inside NetBox's
 * Python (ORM bulk inserts, no REST), every hash stored and fresh, BENCH_SWEEP_DRIFTED of them drifted.
 * The workers' own Sweeper then walks the plugin's listing (pages of sweepPageSize) and emits an intent
 * and an audit event per root that needs one — appended with acks=all to a topic of the benchmark's
 * own, so that no worker reconciles the bench roots. Timed: each whole sweep (BENCH_SWEEP_RUNS of them),
 * and each page of the listing; CPU per process group over the sweeps.
 *
 * Then the background recompute: BENCH_SWEEP_STALE bench roots are marked stale (as a change marks
 * them, one UPDATE), a sweep runs while they are (it emits for them: a stale root is reconciled), and
 * the stack's `netbox unicop_hashes` is timed until none is stale: its rate bounds the staleness.
 * The fixture is removed afterwards (BENCH_SWEEP_KEEP=1 keeps it).
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { readStackEnv, repoRoot } from '../../core/config.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import type { EventLog } from '../../core/event-log/port.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient, type PluginRoot } from '../../core/plugin/client.js';
import { postgresEnv } from '../../test/support/stack.js';
import { Sweeper, sweepPageSize, sweptFields } from '../../workers/sweeper/sweeper.js';
import { CpuByProcess } from '../loop/usage.js';
import { commit, goal, machine, type ScenarioResult } from '../scenario-result.js';
import { percentile, sleep, table } from '../support.js';

const roots = Number(process.env.BENCH_SWEEP_ROOTS ?? 100_000);
const drifted = Number(process.env.BENCH_SWEEP_DRIFTED ?? 1_000);
const runs = Number(process.env.BENCH_SWEEP_RUNS ?? 3);
const staleCount = Number(process.env.BENCH_SWEEP_STALE ?? 500);
const run = promisify(execFile);

function fixture(extraEnv: string[]): string {
  const out = execFileSync(
    join(repoRoot, 'scripts', 'stack.d', 'netbox.sh'),
    ['exec', ...extraEnv, 'netbox', 'shell'],
    {
      input: readFileSync(join(repoRoot, 'bench', 'plugin', 'sweep_fixture.py')),
      encoding: 'utf8',
      maxBuffer: 16 * 2 ** 20,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const line = out.split('\n').find((l) => l.startsWith('BENCH '));
  if (!line) throw new Error(`sweep fixture printed no BENCH line:\n${out.slice(-2000)}`);
  process.stderr.write(`${line}\n`);
  return line;
}

/** psql against the stack's PostgreSQL, the password in the environment. */
async function sql(query: string): Promise<string> {
  const { stdout } = await run('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', query], {
    env: postgresEnv(),
  });
  return stdout.trim();
}

const benchRoots = `SELECT r.id FROM unicop_root r JOIN dcim_site s ON r.kind = 'site' AND r.anchor_id = s.id
  WHERE s.slug LIKE 'unicop-sweep-%'`;

/** The plugin client's listing, each page timed. */
function timedListing(plugin: PluginClient, pages: number[]) {
  return {
    async *allRoots(pageSize: number, fields?: readonly (keyof PluginRoot)[]): AsyncGenerator<PluginRoot> {
      let cursor: string | null = null;
      do {
        const t = performance.now();
        const page = await plugin.listRoots({ cursor, limit: pageSize, ...(fields ? { fields } : {}) });
        pages.push(performance.now() - t);
        yield* page.results;
        cursor = page.next_cursor;
      } while (cursor);
    },
    releaseLease: plugin.releaseLease.bind(plugin),
  };
}

interface SweepRun {
  label: string;
  scanned: number;
  emitted: number;
  seconds: number;
  pages: number[];
  cpu: Map<string, number>;
}

export async function benchSweep(): Promise<{ section: string; result: ScenarioResult }> {
  const env = readStackEnv();
  const plugin = new PluginClient({
    baseUrl: env.UNICOP_NETBOX_URL as string,
    token: env.UNICOP_NETBOX_TOKEN as string,
    timeoutMs: 120_000,
  });
  const kafka = new Kafka({
    clientId: 'bench-sweep',
    brokers: env.UNICOP_KAFKA_BROKERS?.split(',') ?? [],
    logLevel: logLevel.NOTHING,
  });
  const benchTopic = `unicop.bench-sweep-${Date.now().toString(36)}`;
  const admin = kafka.admin();
  await admin.connect();
  const [intentsMeta] = (await admin.fetchTopicMetadata({ topics: [topics.intents] })).topics;
  await admin.createTopics({
    topics: [{ topic: benchTopic, numPartitions: intentsMeta?.partitions.length ?? 1 }],
    waitForLeaders: true,
  });
  const kafkaLog = new KafkaEventLog(kafka);
  // The sweep's intents and audit events, with the cost of real appends, on the benchmark's topic.
  const eventLog: EventLog = {
    append: (messages) => kafkaLog.append(messages.map((m) => ({ ...m, topic: benchTopic }))),
    healthy: () => kafkaLog.healthy(),
    close: () => kafkaLog.close(),
  };
  const log = createLogger('bench-sweep', 'silent');

  const t0 = performance.now();
  const made = fixture([`UNICOP_BENCH_SWEEP_ROOTS=${roots}`, `UNICOP_BENCH_SWEEP_DRIFTED=${drifted}`]);
  const fixtureSeconds = (performance.now() - t0) / 1000;
  const sweeps: SweepRun[] = [];
  let recompute = { stale: 0, seconds: Number.NaN };
  const sweepOnce = async (label: string) => {
    const pages: number[] = [];
    const sweeper = new Sweeper({
      plugin: timedListing(plugin, pages),
      eventLog,
      log,
      intervalMs: 3_600_000,
    });
    const cpu = new CpuByProcess();
    cpu.start();
    const t = performance.now();
    const report = await sweeper.sweep();
    const seconds = (performance.now() - t) / 1000;
    const swept = {
      label,
      scanned: report.scanned,
      emitted: report.emitted.length,
      seconds,
      pages,
      cpu: cpu.stop(),
    };
    process.stderr.write(
      `sweep (${label}): ${swept.scanned} roots in ${seconds.toFixed(1)} s, ${swept.emitted} intents\n`,
    );
    sweeps.push(swept);
  };
  try {
    for (let i = 0; i < runs; i++) await sweepOnce('all fresh');

    // Stale roots: marked as a change marks them; swept while stale; recomputed by unicop_hashes.
    await sql(`UPDATE unicop_root SET hash_dirty = true, hash_generation = hash_generation + 1,
      hash_stale_since = now() WHERE id IN (${benchRoots} ORDER BY r.id DESC LIMIT ${staleCount})`);
    const t = performance.now();
    const recomputed = (async () => {
      for (;;) {
        const left = Number(
          await sql(`SELECT count(*) FROM unicop_root WHERE hash_dirty AND id IN (${benchRoots})`),
        );
        if (left === 0) return (performance.now() - t) / 1000;
        if (performance.now() - t > 1_800_000)
          throw new Error(`${left} bench roots still stale after 30 min`);
        await sleep(250);
      }
    })();
    await sweepOnce(`${staleCount} stale`);
    recompute = { stale: staleCount, seconds: await recomputed };
  } finally {
    await eventLog.close();
    await admin.deleteTopics({ topics: [benchTopic] }).catch(() => undefined);
    await admin.disconnect();
    if (!process.env.BENCH_SWEEP_KEEP) fixture(['UNICOP_BENCH_CLEANUP=1']);
  }

  const fresh = sweeps.filter((s) => s.label === 'all fresh');
  const median =
    [...fresh.map((s) => s.seconds)].sort((a, b) => a - b)[Math.floor(fresh.length / 2)] ?? Number.NaN;
  const scanned = fresh[0]?.scanned ?? 0;
  const rows = sweeps.map((s) => {
    const sorted = [...s.pages].sort((a, b) => a - b);
    return [
      s.label,
      s.scanned,
      s.emitted,
      s.seconds,
      s.scanned / s.seconds,
      s.pages.length,
      percentile(sorted, 50),
      percentile(sorted, 95),
      s.cpu.get('NetBox') ?? 0,
      s.cpu.get('PostgreSQL') ?? 0,
      s.cpu.get('bench process') ?? 0,
    ];
  });
  const section = [
    '## Sweep: every root of the plugin listing, against the real plugin',
    '',
    `Run ${new Date().toISOString()} at ${commit()} (\`npm run bench -- sweep\`), load average`,
    `${machine().loadAverage.join(' ')} at the end. Fixture (\`bench/plugin/sweep_fixture.py\` through`,
    `\`netbox shell\`, ORM bulk inserts): ${made.replace(/^BENCH sweep_fixture /, '')} (${fixtureSeconds.toFixed(0)} s with`,
    "Django's start-up; `VACUUM ANALYZE unicop_root` at its end), removed afterwards. Every bench root has a stored, fresh hash; the drifted ones",
    "have another last reconciled hash. The workers' own `Sweeper` walks the listing in pages of",
    `${sweepPageSize}, only the fields it reads (\`fields=${sweptFields.join(',')}\`), and appends an intent and an audit event per root that needs one (acks=all, to a topic of the`,
    "benchmark's own: no worker reconciles these roots). The listing holds every root of the dev NetBox,",
    'not only the bench roots. CPU seconds per process group over each sweep (machine-wide: other',
    "sessions' work on the same NetBox and PostgreSQL counts too).",
    '',
    table(
      [
        'sweep',
        'roots',
        'intents',
        'seconds',
        'roots/s',
        'pages',
        'page p50 ms',
        'page p95 ms',
        'CPU s NetBox',
        'CPU s PostgreSQL',
        'CPU s bench',
      ],
      rows,
    ),
    '',
    `Background recompute: ${recompute.stale} bench roots marked stale at once (one UPDATE, as changes`,
    'mark them); the sweep started right after emitted an intent for each (a stale root is reconciled,',
    `not skipped); the stack's \`netbox unicop_hashes\` stored all their hashes ${recompute.seconds.toFixed(1)} s after`,
    `the mark (${(recompute.stale / recompute.seconds).toFixed(0)} roots/s for one-site roots, the sweep running beside it).`,
  ].join('\n');
  // Met only when the sweep really covered 100,000 roots.
  const sweepGoal = goal(median, 60, true, ' s');
  if (scanned < 100_000) sweepGoal.met = false;
  const result: ScenarioResult = {
    scenario: 'sweep',
    at: new Date().toISOString(),
    machine: machine(),
    commit: commit(),
    figures: {
      roots: scanned,
      benchRoots: roots,
      drifted,
      sweeps: sweeps.map((s) => ({
        label: s.label,
        scanned: s.scanned,
        emitted: s.emitted,
        seconds: s.seconds,
      })),
      medianSeconds: median,
      recompute,
    },
    goals: { sweep100kSeconds: sweepGoal },
  };
  return { section, result };
}
