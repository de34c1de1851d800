/**
 * Benchmark (`npx tsx bench/kafka-rejoin.ts`): Kafka killed and started again → how long until a new
 * record is acknowledged to the bridge's producer and handed to a workers' consumer (decision 0063).
 *
 * It runs a private single-node broker — the stack's jars (var/kafka/libs) and server.properties
 * template (scripts/stack.d/kafka), its own ports and a temporary data directory — so the stack's Kafka,
 * which everyone else uses, is never touched. Per pass (one consumer session timeout), in a fresh
 * group: UNICOP's own consumer (KafkaEventStream, as the resolver and dispatcher run it) reads a topic
 * and UNICOP's own producer (KafkaEventLog, as the bridge appends) writes to it. Each round kills the
 * broker's process group (-9), waits the downtime, starts it again; from the moment its port accepts
 * connections ("back", as the fault suite counts it) the bench appends a probe record, again every
 * 250 ms while the append is refused (NetBox re-sends a refused webhook after 1 s, 2 s, …), and
 * times back → probe acknowledged and back → probe handed to the consumer.
 *
 * Options (environment): BENCH_REJOIN_SESSIONS (ms, comma-separated; default 10000,6000),
 * BENCH_REJOIN_ROUNDS (per pass, default 2), BENCH_REJOIN_DOWN_MS (default 4000),
 * BENCH_REJOIN_PORT (the broker's; the controller takes the next one; default 29092).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { repoRoot } from '../core/config.js';
import { KafkaEventStream } from '../core/event-log/consumer.js';
import { KafkaEventLog } from '../core/event-log/kafka.js';
import { percentile, sleep, table, until } from './support.js';

const sessions = (process.env.BENCH_REJOIN_SESSIONS ?? '10000,6000').split(',').map(Number);
const rounds = Number(process.env.BENCH_REJOIN_ROUNDS ?? 2);
const downMs = Number(process.env.BENCH_REJOIN_DOWN_MS ?? 4000);
const port = Number(process.env.BENCH_REJOIN_PORT ?? 29092);
const host = '127.0.0.1';
const topic = 'rejoin-bench';
/** Caps, never budgets. */
const brokerStartCapMs = 180_000;
const probeCapMs = 120_000;

const conf = join(repoRoot, 'scripts/stack.d/kafka');
const libs = join(repoRoot, 'var/kafka/libs');

/** A broker of the bench's own: started, killed and started again on the same data. */
class PrivateBroker {
  private readonly dir = mkdtempSync(join(tmpdir(), 'unicop-rejoin-'));
  private readonly props = join(this.dir, 'server.properties');
  private process: ChildProcess | undefined;

  constructor() {
    const rendered = readFileSync(join(conf, 'server.properties.in'), 'utf8')
      .replaceAll('@UNICOP_HOST@', host)
      .replaceAll('@UNICOP_KAFKA_PORT@', String(port))
      .replaceAll('@UNICOP_KAFKA_CONTROLLER_PORT@', String(port + 1))
      .replaceAll('@data_dir@', join(this.dir, 'data'));
    writeFileSync(this.props, rendered);
  }

  private java(args: string[], heap: string, logName: string): ChildProcess {
    const out = openSync(join(this.dir, logName), 'a');
    return spawn(
      'java',
      [
        heap,
        `-Dkafka.logs.dir=${join(this.dir, 'logs')}`,
        `-Dlog4j2.configurationFile=${join(conf, 'log4j2.yaml')}`,
        '-cp',
        `${libs}/*`,
        ...args,
      ],
      { detached: true, stdio: ['ignore', out, out] },
    );
  }

  async format(): Promise<void> {
    const clusterId = randomBytes(16).toString('base64url');
    const tool = this.java(
      ['kafka.tools.StorageTool', 'format', '--standalone', '-t', clusterId, '-c', this.props],
      '-Xmx256m',
      'format.log',
    );
    const code = await new Promise<number | null>((resolve) => tool.on('exit', resolve));
    if (code !== 0) throw new Error(`formatting the private broker failed (see ${this.dir}/format.log)`);
  }

  /** Starts the JVM; resolves when its port accepts connections (the moment it counts as back). */
  async start(): Promise<number> {
    this.process = this.java(['kafka.Kafka', this.props], '-Xmx384m', 'broker.log');
    if (!(await until(() => portOpen(port), brokerStartCapMs))) {
      throw new Error(`the private broker did not listen within ${brokerStartCapMs} ms (see ${this.dir})`);
    }
    return Date.now();
  }

  kill(): void {
    const pid = this.process?.pid;
    if (pid) process.kill(-pid, 'SIGKILL');
    this.process = undefined;
  }

  remove(): void {
    this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function portOpen(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port: p });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Round {
  session: number;
  acknowledgedMs: number | null;
  consumedMs: number | null;
  load: string;
}

const load = () =>
  loadavg()
    .map((n) => n.toFixed(1))
    .join(' ');

async function pass(broker: PrivateBroker, session: number): Promise<Round[]> {
  const kafka = new Kafka({
    clientId: 'rejoin-bench',
    brokers: [`${host}:${port}`],
    logLevel: logLevel.NOTHING,
  });
  const log = pino({ level: 'silent' });
  const producer = new KafkaEventLog(kafka);
  const consumedAt = new Map<string, number>();
  const stream = new KafkaEventStream(
    kafka,
    { topic, groupId: `rejoin-${session}-${randomBytes(4).toString('hex')}`, sessionTimeoutMs: session },
    log,
  );
  await stream.start(async (records) => {
    for (const r of records) if (!consumedAt.has(r.value)) consumedAt.set(r.value, Date.now());
  });
  const append = (value: string) => producer.append([{ topic, key: 'k', value }]);
  const warm = `warm-${session}`;
  await append(warm);
  if (!(await until(() => consumedAt.has(warm), probeCapMs))) throw new Error('the consumer never got going');
  const results: Round[] = [];
  for (let round = 1; round <= rounds; round += 1) {
    broker.kill();
    await sleep(downMs);
    const back = await broker.start();
    const probe = `probe-${session}-${round}`;
    let acknowledged: number | null = null;
    while (acknowledged === null && Date.now() - back < probeCapMs) {
      try {
        await append(probe);
        acknowledged = Date.now();
      } catch {
        await sleep(250);
      }
    }
    await until(() => consumedAt.has(probe), probeCapMs);
    const consumed = consumedAt.get(probe);
    results.push({
      session,
      acknowledgedMs: acknowledged === null ? null : acknowledged - back,
      consumedMs: consumed === undefined ? null : consumed - back,
      load: load(),
    });
    process.stderr.write(`rejoin: session ${session} ms round ${round}: ${JSON.stringify(results.at(-1))}\n`);
  }
  await stream.stop();
  await producer.close();
  return results;
}

async function main(): Promise<void> {
  const broker = new PrivateBroker();
  const loadBefore = load();
  const started = new Date().toISOString();
  const all: Round[] = [];
  try {
    await broker.format();
    await broker.start();
    const admin = new Kafka({
      clientId: 'rejoin-admin',
      brokers: [`${host}:${port}`],
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    for (const session of sessions) all.push(...(await pass(broker, session)));
  } finally {
    broker.remove();
  }
  const seconds = (values: (number | null)[]) => {
    const got = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
    return got.length === values.length
      ? `${(percentile(got, 50) / 1000).toFixed(1)} / ${((got.at(-1) ?? 0) / 1000).toFixed(1)}`
      : `${values.length - got.length} never`;
  };
  const rows = sessions.map((session) => {
    const mine = all.filter((r) => r.session === session);
    return [
      `${session}`,
      `${mine.length}`,
      seconds(mine.map((r) => r.acknowledgedMs)),
      seconds(mine.map((r) => r.consumedMs)),
      mine.map((r) => r.load).join('; '),
    ];
  });
  process.stdout.write(
    `Run ${started} (\`npx tsx bench/kafka-rejoin.ts\`), load average ${loadBefore} at the start; ` +
      `a private broker, ${rounds} kill -9 rounds per pass, ${downMs} ms down.\n\n` +
      table(
        [
          'session timeout ms',
          'rounds',
          'back → probe acknowledged p50 / max s',
          'back → probe consumed p50 / max s',
          'load after each round',
        ],
        rows,
      ),
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
