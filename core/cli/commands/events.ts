/**
 * `unicop root timeline <key> [--since] [--follow]` and `unicop tail [--root] [--type] [--since]
 * [--follow]`: UNICOP's event log (Kafka) read for a person. A root's timeline is every event
 * about it — keyed by it (intents, outcomes, audit), or naming it — plus the NetBox changes its
 * intents came from and AWX's notifications about its jobs. Human lines by default; with --json one
 * JSON object per line (the event as it is on the log, with where it is). --follow keeps reading
 * until SIGINT/SIGTERM, then stops cleanly (exit 0).
 */
import type { UnicopConfig } from '../../config.js';
import { topics } from '../../events/catalogue.js';
import { cliKafka, type ReadRecord, readLog } from './event-reader.js';
import type { Output } from './output.js';

/** A record as the commands show it. */
export interface ShownEvent {
  time: string;
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  /** The CloudEvents type's name (`intent`, `audit`, …); null for a record that is not an event. */
  type: string | null;
  subject: string | null;
  data: Record<string, unknown> | null;
}

export function shownEvent(record: ReadRecord): ShownEvent {
  let parsed: { type?: unknown; subject?: unknown; data?: unknown; time?: unknown } = {};
  try {
    const json: unknown = JSON.parse(record.value);
    if (json && typeof json === 'object' && !Array.isArray(json)) parsed = json;
  } catch {
    // not JSON: shown as a record without an event
  }
  const type =
    typeof parsed.type === 'string'
      ? (/^io\.unicop\.(.+)\.v\d+$/.exec(parsed.type)?.[1] ?? parsed.type)
      : null;
  const data =
    parsed.data && typeof parsed.data === 'object' && !Array.isArray(parsed.data)
      ? (parsed.data as Record<string, unknown>)
      : null;
  return {
    time: typeof parsed.time === 'string' ? parsed.time : record.timestamp,
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    key: record.key,
    type,
    subject: typeof parsed.subject === 'string' ? parsed.subject : null,
    data,
  };
}

/** One line of what an event says. */
export function describeEvent(e: ShownEvent): string {
  const d = e.data ?? {};
  const str = (v: unknown) => (v === null || v === undefined ? '' : String(v));
  switch (e.type) {
    case 'change':
      return `${str(d.event)} ${str(d.objectType)} #${str(d.objectId)} by ${str(d.actor) || 'unknown'}`;
    case 'intent': {
      const cause = (d.cause ?? {}) as Record<string, unknown>;
      return `intent ${str(d.intentId)} for ${str(d.rootKey)} (cause ${str(cause.kind)})`;
    }
    case 'outcome':
      return `${str(d.state)}${d.failureClass ? ` (${str(d.failureClass)})` : ''}: ${str(d.summary)}${d.awxJobId ? ` — AWX job ${str(d.awxJobId)}` : ''}`;
    case 'awx-job-status':
      return `AWX says ${str(d.kind)} ${str(d.awxJobId)} is ${str(d.status)}`;
    case 'awx-approval':
      return `AWX approval "${str(d.approvalName)}" of workflow ${str(d.workflowJobId)}: ${str(d.status)}`;
    case 'freeze':
      return `${d.frozen ? 'frozen' : 'resumed'} (${str(d.scope)}${d.rootKey ? ` ${str(d.rootKey)}` : ''}) by ${str(d.actor)}: ${str(d.reason)}`;
    case 'dead-letter':
      return `set aside by ${str(d.consumer)} (${str(d.kind)}): ${str(d.reason)}`;
    case 'audit': {
      const c = (d.correlation ?? {}) as Record<string, unknown>;
      const extra = [
        c.fencingToken !== undefined && c.fencingToken !== null ? `token ${str(c.fencingToken)}` : '',
        c.awxJobId ? `AWX job ${str(c.awxJobId)}` : '',
        d.reason ? str(d.reason) : '',
      ].filter(Boolean);
      return `${str(d.action)} by ${str(d.actor)}${extra.length ? ` — ${extra.join(', ')}` : ''}`;
    }
    default:
      return e.type ? `${e.type} event` : 'a record that is not an UNICOP event';
  }
}

function humanLine(e: ShownEvent, withSubject: boolean): string {
  const time = e.time.replace('T', ' ').slice(0, 23);
  const subject = withSubject ? `${(e.subject ?? e.key ?? '').padEnd(24)} ` : '';
  return `${time}  ${e.topic.padEnd(18)} ${subject}${describeEvent(e)}`;
}

/** What the type filter matches: the event's type name, or an audit action (`run.` for a prefix). */
export function typeMatches(e: ShownEvent, wanted: readonly string[]): boolean {
  if (wanted.length === 0) return true;
  const action = e.type === 'audit' ? String(e.data?.action ?? '') : '';
  return wanted.some(
    (w) => w === e.type || (action !== '' && (w === action || (w.endsWith('.') && action.startsWith(w)))),
  );
}

/**
 * Which events are about a root. Keyed by it or naming it is direct; a NetBox change is about it
 * when one of its intents came from that change, an AWX notification when the job is one of its
 * runs' — so this remembers those ids from the events it has seen (feed them in log order).
 */
export class RootFilter {
  private readonly changeIds = new Set<string>();
  private readonly awxJobIds = new Set<string>();
  constructor(readonly rootKey: string) {}

  private direct(e: ShownEvent): boolean {
    const d = e.data ?? {};
    return (
      e.key === this.rootKey ||
      d.rootKey === this.rootKey ||
      e.subject === this.rootKey ||
      e.subject === `root/${this.rootKey}`
    );
  }

  /** Learns from an event about the root: the change it came from, the AWX job it ran. */
  learn(e: ShownEvent): void {
    if (!this.direct(e)) return;
    const d = e.data ?? {};
    const cause = (d.cause ?? {}) as Record<string, unknown>;
    const correlation = (d.correlation ?? {}) as Record<string, unknown>;
    if (typeof cause.changeId === 'string') this.changeIds.add(cause.changeId);
    if (typeof correlation.changeId === 'string') this.changeIds.add(correlation.changeId);
    for (const job of [d.awxJobId, correlation.awxJobId]) if (job) this.awxJobIds.add(String(job));
  }

  matches(e: ShownEvent): boolean {
    if (this.direct(e)) return true;
    const d = e.data ?? {};
    if (e.type === 'change') return typeof d.changeId === 'string' && this.changeIds.has(d.changeId);
    if (e.type === 'awx-job-status') return this.awxJobIds.has(String(d.awxJobId));
    if (e.type === 'awx-approval') return this.awxJobIds.has(String(d.workflowJobId));
    return false;
  }
}

export interface StreamOptions {
  config: UnicopConfig;
  out: Output;
  since: Date;
  rootKey: string | null;
  types: string[];
  follow: boolean;
  /** Aborted on SIGINT/SIGTERM while following. */
  stop: AbortSignal;
}

/** Prints the events from `since` (and, following, what comes after); returns how many it printed. */
export async function streamEvents(options: StreamOptions): Promise<number> {
  const { out, rootKey, types } = options;
  const brokers = options.config.UNICOP_KAFKA_BROKERS;
  const kafka = cliKafka(brokers);
  const filter = rootKey ? new RootFilter(rootKey) : null;
  let printed = 0;
  const show = (e: ShownEvent) => {
    if (!typeMatches(e, types)) return;
    printed++;
    out.line(e, humanLine(e, rootKey === null));
  };
  await readLog(kafka, brokers, {
    topics: Object.values(topics),
    from: { since: options.since },
    onProgress: (read, total) => out.progress(`reading the event log: ${read} of ${total} records`),
    onBacklog: (records) => {
      out.progressDone();
      // In the order things happened (each event's own time: an intent takes its change's), which
      // the log's order by partition and arrival does not give across topics.
      const events = records
        .map(shownEvent)
        .sort((a, b) => (Date.parse(a.time) || 0) - (Date.parse(b.time) || 0));
      if (filter) for (const e of events) filter.learn(e);
      for (const e of events) if (!filter || filter.matches(e)) show(e);
    },
    onLive: (record) => {
      const e = shownEvent(record);
      filter?.learn(e);
      if (!filter || filter.matches(e)) show(e);
    },
    ...(options.follow ? { follow: options.stop } : {}),
  });
  return printed;
}
