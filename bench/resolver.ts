/**
 * Benchmark: resolver throughput against the real plugin. A prefix with 200 IP addresses is made in
 * NetBox; N change events about those IPs are appended to unicop.changes; a resolver under a fresh
 * consumer group, positioned just before them, turns them into intents. Reports changes/s and
 * intents/s until the group's lag on those changes reaches zero, and the bench process's RSS.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { readStackEnv } from '../core/config.js';
import { consumerGroupLag, KafkaEventStream } from '../core/event-log/consumer.js';
import { KafkaEventLog } from '../core/event-log/kafka.js';
import { cloudEvent, eventTypes, topics } from '../core/events/catalogue.js';
import { deterministicUuidv7 } from '../core/ids.js';
import { createLogger } from '../core/logger.js';
import { netboxRest } from '../core/netbox/rest.js';
import { PluginClient } from '../core/plugin/client.js';
import { startResolver } from '../workers/resolver/resolver.js';
import { commit, machine } from './scenario-result.js';
import { memoryOf, table } from './support.js';

const changes = Number(process.env.BENCH_RESOLVER_CHANGES ?? 5000);

export async function benchResolver(): Promise<string> {
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
  const ips: { id: number; address: string }[] = [];
  for (let first = 1; first <= 200; first += 50) {
    ips.push(
      ...(await nb<{ id: number; address: string }[]>(
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
  const groupId = `bench-resolver-${randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  const start = await admin.fetchTopicOffsets(topics.changes);
  await admin.setOffsets({
    groupId,
    topic: topics.changes,
    partitions: start.map((p) => ({ partition: p.partition, offset: p.high })),
  });
  await admin.disconnect();

  const eventLog = new KafkaEventLog(kafka);
  const now = Date.now();
  const messages = Array.from({ length: changes }, (_, n) => {
    const ip = ips[n % ips.length] as { id: number; address: string };
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

  const log = createLogger('bench-resolver', 'silent');
  const t0 = performance.now();
  const resolver = await startResolver({
    changes: new KafkaEventStream(kafka, { topic: topics.changes, groupId }, log),
    eventLog,
    resolver: new PluginClient({ baseUrl: netboxUrl, token }),
    log,
  });
  while ((await consumerGroupLag(kafka, groupId, topics.changes)) > 0) {
    await new Promise((r) => setTimeout(r, 250));
  }
  const seconds = (performance.now() - t0) / 1000;
  const mem = memoryOf(process.pid);
  await resolver.stop();
  await eventLog.close();
  for (let i = 0; i < ips.length; i += 50) {
    await nb(
      'DELETE',
      '/api/ipam/ip-addresses/',
      ips.slice(i, i + 50).map((ip) => ({ id: ip.id })),
    );
  }
  await nb('DELETE', `/api/ipam/prefixes/${prefix.id}/`);
  process.stderr.write(`resolver: ${(changes / seconds).toFixed(0)} changes/s\n`);
  return [
    '## Resolver: changes → intents against the real plugin',
    '',
    `${changes} change events about 200 IP addresses of one prefix, resolved by the plugin's`,
    '`POST resolve/` (batched per Kafka batch) and appended as intents + audit events (acks=all);',
    'timed from the resolver starting until its group has committed every change. Each change',
    'touches one root, so intents/s = changes/s. RSS is the bench process (resolver + producer).',
    `Run ${new Date().toISOString()} at ${commit()}, load average ${machine().loadAverage.join(' ')} at the end.`,
    `Fixture: the prefix and its 200 addresses made through NetBox's REST API (bulk POSTs of 50)`,
    `in ${fixtureSeconds.toFixed(1)} s, not timed.`,
    '',
    table(
      ['changes', 'seconds', 'changes/s', 'intents/s', 'RSS MiB', 'peak MiB'],
      [[changes, seconds, changes / seconds, changes / seconds, mem.rssMiB, mem.peakMiB]],
    ),
  ].join('\n');
}
