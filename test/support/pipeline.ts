/**
 * The front half of UNICOP wired for a test against the real services: a bridge on a free port,
 * NetBox's webhook and event rule pointing at it (made through NetBox REST, removed afterwards),
 * and a resolver consuming from the current end of unicop.changes under a fresh consumer group.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Kafka, logLevel } from 'kafkajs';
import { configDefaults } from '../../core/config.js';
import { KafkaEventStream, type LogRecord } from '../../core/event-log/consumer.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import type { EventLog } from '../../core/event-log/port.js';
import { parseEvent, topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient } from '../../core/plugin/client.js';
import { startResolver } from '../../workers/resolver/resolver.js';
import { type RunningBridge, startBridge } from './bridge.js';
import { positionGroupAtEnd } from './kafka.js';
import { netbox } from './netbox.js';
import { stack, uniqueName } from './stack.js';

/**
 * A NetBox webhook to `bridgeUrl` and its event rule for `objectTypes`; with `nameContains`, only
 * objects whose name contains it (a test's own sites). Returns the undo.
 */
export async function hookNetboxTo(
  bridgeUrl: string,
  secret: string,
  objectTypes: string[],
  nameContains?: string,
): Promise<() => Promise<void>> {
  const name = uniqueName('test-hook');
  const webhook = await netbox<{ id: number }>('POST', '/api/extras/webhooks/', {
    name,
    payload_url: `${bridgeUrl}/webhooks/netbox`,
    http_method: 'POST',
    http_content_type: 'application/json',
    secret,
  });
  const rule = await netbox<{ id: number }>('POST', '/api/extras/event-rules/', {
    name,
    object_types: objectTypes,
    event_types: ['object_created', 'object_updated', 'object_deleted'],
    action_type: 'webhook',
    action_object_type: 'extras.webhook',
    action_object_id: webhook.id,
    ...(nameContains ? { conditions: { attr: 'name', value: nameContains, op: 'contains' } } : {}),
  });
  return async () => {
    await netbox('DELETE', `/api/extras/event-rules/${rule.id}/`).catch(() => undefined);
    await netbox('DELETE', `/api/extras/webhooks/${webhook.id}/`).catch(() => undefined);
  };
}

export async function startTestResolver(groupId = uniqueName('resolver')) {
  const kafka = new Kafka({ clientId: groupId, brokers: stack.kafkaBrokers(), logLevel: logLevel.NOTHING });
  await positionGroupAtEnd(kafka, groupId, topics.changes);
  return startResolverAt(kafka, groupId);
}

/**
 * A resolver consuming unicop.changes under `groupId`. `wrapEventLog` puts something in front of
 * its real Kafka event log (a test holding some appends back at a gate).
 */
export async function startResolverAt(
  kafka: Kafka,
  groupId: string,
  options: { wrapEventLog?: (real: EventLog) => EventLog } = {},
) {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const log = createLogger('resolver', 'debug', sink);
  const eventLog = new KafkaEventLog(kafka);
  const resolver = await startResolver({
    changes: new KafkaEventStream(
      kafka,
      {
        topic: topics.changes,
        groupId,
        initialBackoffMs: 200,
        maxBackoffMs: 2000,
        // As the workers handle them (UNICOP_RESOLVER_CONCURRENCY's default).
        partitionsConcurrently: configDefaults.UNICOP_RESOLVER_CONCURRENCY,
      },
      log,
    ),
    eventLog: options.wrapEventLog ? options.wrapEventLog(eventLog) : eventLog,
    resolver: new PluginClient({ baseUrl: stack.netboxUrl(), token: stack.netboxToken(), timeoutMs: 5000 }),
    log,
  });
  return {
    groupId,
    logs,
    stop: async () => {
      await resolver.stop();
      await eventLog.close();
    },
  };
}

export interface FrontHalf {
  bridge: RunningBridge;
  resolverLogs: string[];
  resolverGroupId: string;
  secret: string;
  stop(): Promise<void>;
}

/**
 * Bridge + NetBox hook + resolver, for tests that edit NetBox and look at Kafka. `bridgeEnv` adds to
 * the bridge's configuration (a Redis database of its own, so that other tests' bridges, sent the
 * same NetBox events by their hooks, do not answer its deliveries as duplicates).
 */
export async function startFrontHalf(
  objectTypes: string[],
  bridgeEnv: Record<string, string> = {},
): Promise<FrontHalf> {
  const secret = randomBytes(24).toString('hex');
  const bridge = await startBridge({ ...bridgeEnv, UNICOP_WEBHOOK_SECRETS: secret });
  const unhook = await hookNetboxTo(bridge.url, secret, objectTypes);
  const resolver = await startTestResolver();
  return {
    bridge,
    resolverLogs: resolver.logs,
    resolverGroupId: resolver.groupId,
    secret,
    stop: async () => {
      await unhook();
      await resolver.stop();
      await bridge.close();
    },
  };
}

/**
 * The intents a test's own loop takes from unicop.intents (startDispatchAndReconcile's
 * `onlyIntents`): those for its roots that name a change its own bridge accepted (a retry of such a
 * run names the same change). On a shared stack the topic carries every test's intents, other
 * tests' bridges publish their own changes for the same NetBox edit (their hooks get it too), and
 * every running resolver resolves every change: one accepted change may have several intents. The
 * first of them on the topic is taken and the others are not (they would coalesce, and count as
 * dispatched, twice); a TopicTail sees the same first one, the root's intents being on one
 * partition.
 */
export class OwnIntents {
  readonly roots: Set<string>;
  private readonly accepted = new Set<string>();
  /** The intent taken for each accepted change, and their ids. */
  private readonly takenFor = new Map<string, string>();
  private readonly takenIds = new Set<string>();
  private readLines = 0;

  constructor(
    private readonly bridge: Pick<RunningBridge, 'logs'>,
    roots: Iterable<string> = [],
  ) {
    this.roots = new Set(roots);
  }

  /** For `onlyIntents`: is this record an intent this loop takes? */
  readonly accepts = (record: LogRecord): boolean => {
    if (record.key === null || !this.roots.has(record.key)) return false;
    const intent = parseEvent('intent', record.value)?.data;
    const changeId = intent?.cause.changeId;
    if (!intent || !changeId || !this.changeAccepted(changeId)) return false;
    if (intent.cause.kind === 'change') {
      const first = this.takenFor.get(changeId) ?? intent.intentId;
      this.takenFor.set(changeId, first);
      if (first !== intent.intentId) return false; // the first, delivered again, is still taken
    }
    this.takenIds.add(intent.intentId);
    return true;
  };

  /** Did this bridge accept the change (its log line `change accepted`)? */
  changeAccepted(changeId: string): boolean {
    for (; this.readLines < this.bridge.logs.length; this.readLines++) {
      const line = JSON.parse(this.bridge.logs[this.readLines] as string) as {
        msg?: string;
        changeId?: string;
      };
      if (line.msg === 'change accepted' && line.changeId) this.accepted.add(line.changeId);
    }
    return this.accepted.has(changeId);
  }

  /** Was this intent taken (handed to this loop's dispatcher)? */
  taken(intentId: string): boolean {
    return this.takenIds.has(intentId);
  }
}
