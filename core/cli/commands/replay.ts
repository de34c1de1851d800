/**
 * `unicop replay --from <time|offset> --root <key> --dry-run`: forensics. Reads unicop.changes from
 * `--from` to its current end and derives, through the resolver's own step (resolveChanges: the
 * plugin's answer of now), the intents it would emit for the root today — with the same intent ids
 * as the first time, since they derive from change id and root key. It prints them and publishes
 * nothing: an intent only asks for a reconcile of NetBox's current state, so publishing old ones
 * again would do what one `unicop reconcile <key>` does. Without --dry-run it refuses (exit 2)
 * and says so (docs/decisions/0034-operator-cli.md).
 */
import { resolveChanges } from '../../../workers/resolver/resolve-changes.js';
import type { UnicopConfig } from '../../config.js';
import type { LogRecord } from '../../event-log/consumer.js';
import { parseEvent, topics } from '../../events/catalogue.js';
import { PluginClient, pluginClientOptions } from '../../plugin/client.js';
import { cliKafka, partitionKey, type ReadOptions, type ReadRecord, readLog } from './event-reader.js';
import { CommandFailedError, type Output, parseSince, UsageError } from './output.js';

export const replayRefusal =
  'replay publishes nothing: an intent asks for a reconcile of what NetBox holds now, so publishing ' +
  'past intents again would do what one `unicop reconcile <key>` does (use that). Add --dry-run to ' +
  'print the intents the resolver would emit for the root now.';

/** `--from`: a time, a duration ago, an offset on every partition (`1200`), or `P:N[,P:N…]`. */
export function parseFrom(text: string, now: Date): ReadOptions['from'] {
  if (/^\d+$/.test(text)) return { offsets: new Map(), others: BigInt(text) };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(text)) {
    const offsets = new Map<string, bigint>();
    for (const pair of text.split(',')) {
      const [partition, offset] = pair.split(':');
      offsets.set(partitionKey(topics.changes, Number(partition)), BigInt(offset as string));
    }
    return { offsets };
  }
  try {
    return { since: parseSince(text, now, '--from') };
  } catch {
    throw new UsageError(
      `--from: expected a time (2026-12-01T15:00:00Z), a duration ago (2h), an offset on every partition (1200) or partition:offset pairs (0:1200,1:900), got '${text}'`,
    );
  }
}

export interface ReplayedIntent {
  intentId: string;
  change: {
    changeId: string;
    event: string;
    objectType: string;
    objectId: number;
    actor: string | null;
    requestId: string | null;
    occurredAt: string;
    topic: string;
    partition: number;
    offset: string;
  };
}

export async function replay(options: {
  config: UnicopConfig;
  out: Output;
  from: ReadOptions['from'];
  fromText: string;
  rootKey: string;
}): Promise<number> {
  const { config, out, rootKey } = options;
  if (!config.UNICOP_NETBOX_TOKEN) {
    throw new CommandFailedError(
      'replay asks the NetBox plugin which roots each change touches: set UNICOP_NETBOX_TOKEN',
    );
  }
  const brokers = config.UNICOP_KAFKA_BROKERS;
  const kafka = cliKafka(brokers);
  let records: ReadRecord[] = [];
  await readLog(kafka, brokers, {
    topics: [topics.changes],
    from: options.from,
    onProgress: (read, total) => out.progress(`reading unicop.changes: ${read} of ${total} records`),
    onBacklog: (backlog) => {
      records = backlog;
    },
  });
  out.progress(`asking the plugin which roots ${records.length} changes touch`);
  const plugin = new PluginClient(pluginClientOptions(config));
  const logRecords: LogRecord[] = records.map(({ timestamp: _t, ...r }) => r);
  const emitted = await resolveChanges(logRecords, plugin);
  out.progressDone();
  const byChangeId = new Map<string, ReadRecord>();
  for (const record of records) {
    const change = parseEvent('change', record.value);
    if (change) byChangeId.set(change.data.changeId, record);
  }
  const intents: ReplayedIntent[] = [];
  for (const message of emitted) {
    if (message.topic !== topics.intents || message.key !== rootKey) continue;
    const intent = parseEvent('intent', message.value);
    const changeId = intent?.data.cause.changeId;
    const record = changeId ? byChangeId.get(changeId) : undefined;
    const change = record ? parseEvent('change', record.value) : null;
    if (!intent || !record || !change) continue;
    intents.push({
      intentId: intent.data.intentId,
      change: {
        changeId: change.data.changeId,
        event: change.data.event,
        objectType: change.data.objectType,
        objectId: change.data.objectId,
        actor: change.data.actor,
        requestId: change.data.requestId,
        occurredAt: change.data.occurredAt,
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
      },
    });
  }
  const lines = [
    `replay of ${topics.changes} from ${options.fromText} for ${rootKey} (dry run: nothing is published)`,
    ...intents.flatMap((i) => [
      `${i.change.occurredAt.replace('T', ' ').slice(0, 23)}  ${i.change.event} ${i.change.objectType} #${i.change.objectId} by ${i.change.actor ?? 'unknown'} (change ${i.change.changeId}, ${i.change.topic}/${i.change.partition}@${i.change.offset})`,
      `    -> intent ${i.intentId} for ${rootKey} (cause change)`,
    ]),
    `${records.length} changes read; the resolver would emit ${intents.length} intent(s) for ${rootKey} now.`,
  ];
  out.result(
    { rootKey, from: options.fromText, dryRun: true, changesRead: records.length, intents },
    lines.join('\n'),
  );
  return 0;
}
