/**
 * Kafka alone, without the bridge: how fast can `concurrency` callers get a change and its audit
 * event acknowledged (acks=all), each waiting for its own acknowledgement like a webhook does? The
 * floor under the bridge's latency, and whether the client is the limit (decision 0059).
 *
 *   npx tsx bench/ingest/kafka-alone.ts [seconds=5] [concurrency=8,64]
 *
 * Modes, each on its own pair of topics shaped like unicop.changes and unicop.audit (same
 * partition counts), messages sized like the ingest benchmark's:
 * - `kafkajs send`: a bare kafkajs producer configured as the bridge's (idempotent, one request in
 *   flight), one `send` (change + audit, one request) per caller — what kafkajs gives without help;
 * - `group commit`: the bridge's KafkaEventLog (core/event-log/kafka.ts), one append per caller;
 * - `group commit, TCP_NODELAY`: the same over sockets without Nagle's algorithm (noDelaySocketFactory);
 * - `group commit, linger 0`: the same, an idle producer writing once the event loop's turn is done;
 * (BENCH_KAFKA_ALONE_MODES="mode;mode" picks some.)
 * - `kafkajs send, not idempotent`: requests in flight without limit (not what the bridge may do:
 *   an idempotent producer keeps one), to show what a round trip costs when nobody waits in line.
 */
import { randomUUID } from 'node:crypto';
import { isIP, connect as tcpConnect } from 'node:net';
import { loadavg } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { type ISocketFactory, Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { readStackEnv } from '../../core/config.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import type { EventLogMessage } from '../../core/event-log/port.js';
import { topics } from '../../core/events/catalogue.js';
import { percentile } from '../support.js';
import { signedDelivery } from './deliveries.js';

/**
 * kafkajs's sockets as its own factory makes them (TCP keep-alive after 60 s), with Nagle's algorithm
 * off (kafkajs leaves it on). Tried in the bridge and taken out again (decision 0059).
 */
const noDelaySocketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : tcpConnect({ host, port }, onConnect);
  socket.setKeepAlive(true, 60_000);
  socket.setNoDelay(true);
  return socket;
};

const seconds = Number(process.argv[2] ?? 5);
const concurrencies = (process.argv[3] ?? '8,64').split(',').map(Number);

interface Counted {
  kafka: Kafka;
  produceRequests: () => number;
}

/** A Kafka whose producers count the produce requests they send (kafkajs instrumentation events). */
function counting(kafka: Kafka): Counted {
  let requests = 0;
  const wrapped = Object.create(kafka) as Kafka;
  wrapped.producer = (config) => {
    const producer = kafka.producer(config);
    producer.on(producer.events.REQUEST, (e) => {
      if ((e.payload as { apiName: string }).apiName === 'Produce') requests++;
    });
    return producer;
  };
  return { kafka: wrapped, produceRequests: () => requests };
}

async function run(
  concurrency: number,
  append: (messages: EventLogMessage[]) => Promise<void>,
  pair: { changes: string; audit: string },
) {
  const latencies: number[] = [];
  let n = 0;
  const until = performance.now() + seconds * 1000;
  const caller = async () => {
    while (performance.now() < until) {
      const key = `dcim.site:${n++}`;
      const change = { topic: pair.changes, key, value: signedDelivery(n, 'alone').body };
      const audit = {
        topic: pair.audit,
        key,
        value: JSON.stringify({ id: randomUUID(), n, pad: 'x'.repeat(500) }),
      };
      const t = performance.now();
      await append([change, audit]);
      latencies.push(performance.now() - t);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, caller));
  latencies.sort((a, b) => a - b);
  return { perSecond: latencies.length / ((performance.now() - started) / 1000), latencies };
}

function producerAsBridge(kafka: Kafka, idempotent: boolean): Producer {
  return kafka.producer({
    idempotent,
    ...(idempotent ? { maxInFlightRequests: 1 } : {}),
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  });
}

async function main(): Promise<void> {
  const client = (noDelay: boolean) =>
    new Kafka({
      clientId: 'bench-kafka-alone',
      brokers: readStackEnv().UNICOP_KAFKA_BROKERS?.split(',') ?? [],
      logLevel: logLevel.NOTHING,
      ...(noDelay ? { socketFactory: noDelaySocketFactory } : {}),
    });
  const base = client(false);
  const admin = base.admin();
  await admin.connect();
  const meta = await admin.fetchTopicMetadata({ topics: [topics.changes, topics.audit] });
  const partitions = (name: string) => meta.topics.find((t) => t.name === name)?.partitions.length ?? 1;
  const pair = { changes: 'bench.kafka-alone.changes', audit: 'bench.kafka-alone.audit' };
  await admin.createTopics({
    topics: [
      { topic: pair.changes, numPartitions: partitions(topics.changes) },
      { topic: pair.audit, numPartitions: partitions(topics.audit) },
    ],
    waitForLeaders: true,
  });
  await admin.disconnect();
  process.stdout.write(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
  process.stdout.write('| mode | callers | appends/s | p50 ms | p99 ms | produce requests per append |\n');
  process.stdout.write('| --- | --- | --- | --- | --- | --- |\n');
  for (const concurrency of concurrencies) {
    const modes = (
      process.env.BENCH_KAFKA_ALONE_MODES?.split(';') ?? [
        'kafkajs send',
        'group commit',
        'group commit, linger 0',
        'group commit, TCP_NODELAY',
        'kafkajs send, not idempotent',
      ]
    ).map((m) => m.trim());
    for (const mode of modes) {
      const { kafka, produceRequests } = counting(mode.includes('TCP_NODELAY') ? client(true) : base);
      let append: (messages: EventLogMessage[]) => Promise<void>;
      let close: () => Promise<void>;
      if (mode.startsWith('group commit')) {
        const lingerMs = mode.includes('linger 0') ? 0 : undefined;
        const log = new KafkaEventLog(kafka, { ...(lingerMs === undefined ? {} : { lingerMs }) });
        append = (messages) => log.append(messages);
        close = () => log.close();
      } else {
        const producer = producerAsBridge(kafka, !mode.includes('not idempotent'));
        await producer.connect();
        append = async (messages) => {
          await producer.sendBatch({
            acks: -1,
            topicMessages: messages.map((m) => ({
              topic: m.topic,
              messages: [{ key: m.key, value: m.value }],
            })),
          });
        };
        close = () => producer.disconnect();
      }
      await run(concurrency, append, pair); // warm-up (connections, metadata, JIT)
      const before = produceRequests();
      const result = await run(concurrency, append, pair);
      const requests = produceRequests() - before;
      await close();
      const appends = result.latencies.length;
      process.stdout.write(
        `| ${mode} | ${concurrency} | ${result.perSecond.toFixed(0)} | ${percentile(result.latencies, 50).toFixed(1)} | ${percentile(result.latencies, 99).toFixed(1)} | ${(requests / Math.max(1, appends)).toFixed(2)} |\n`,
      );
    }
  }
  process.stdout.write(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
}

await main();
