/**
 * Reads UNICOP's event log for a person: every record of the given topics from a start (a time, or
 * given offsets) up to the end each partition had when reading began — returned in time order —
 * and, when following, every record written after that, as it comes, until the signal aborts.
 * A throwaway consumer group that commits nothing (deleted at the end) starts at the topics' ends
 * and seeks each partition to its start once it runs: kafkajs's admin.setOffsets joins the group
 * once per topic (5 s each on the stack, 35 s for the seven topics), a seek costs nothing. A fetch
 * made before the seek can only have read records past the ends (live ones), which the seek then
 * brings again: those are recognised by their offset and handed on once.
 */
import { Kafka, logLevel } from 'kafkajs';
import { uuidv7 } from '../../ids.js';
import { CommandFailedError } from './output.js';

/** The commands' Kafka client: few retries, so an unreachable broker is said within seconds. */
export function cliKafka(brokers: string[]): Kafka {
  return new Kafka({
    clientId: 'unicop-cli',
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 2, initialRetryTime: 300, maxRetryTime: 2000 },
  });
}

/** Reads as readEvents does; a Kafka failure becomes a CommandFailedError naming the brokers. */
export async function readLog(kafka: Kafka, brokers: string[], options: ReadOptions): Promise<void> {
  try {
    await readEvents(kafka, options);
  } catch (error) {
    if (error instanceof CommandFailedError) throw error;
    throw new CommandFailedError(
      `cannot read the event log from Kafka (${brokers.join(',')}): ${(error as Error).message}`,
    );
  }
}

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: string;
  /** When Kafka stored the record (its timestamp), ISO 8601. */
  timestamp: string;
  key: string | null;
  value: string;
}

export interface ReadOptions {
  topics: readonly string[];
  /**
   * Where to start: a time (each partition's first record at or after it), or offsets by
   * `topic/partition` (a partition not named starts at `others`, or at its end without it).
   */
  from: { since: Date } | { offsets: Map<string, bigint>; others?: bigint };
  /** Called once with the records up to the ends at the start, in timestamp order. */
  onBacklog(records: ReadRecord[]): void;
  /** With follow: called for each later record, as it arrives. */
  onLive?(record: ReadRecord): void;
  /** Keep reading after the backlog until this aborts; without it, stop after the backlog. */
  follow?: AbortSignal;
  /** Called every few thousand backlog records (a progress display). */
  onProgress?(read: number, total: number): void;
}

/** "topic/partition" → offset, for explicit starts. */
export const partitionKey = (topic: string, partition: number) => `${topic}/${partition}`;

export async function readEvents(kafka: Kafka, options: ReadOptions): Promise<void> {
  const groupId = `unicop-cli-${uuidv7()}`;
  const admin = kafka.admin();
  await admin.connect();
  const starts = new Map<string, bigint>();
  const ends = new Map<string, bigint>();
  try {
    for (const topic of options.topics) {
      const offsets = await admin.fetchTopicOffsets(topic);
      const from = options.from;
      const byTime =
        'since' in from
          ? new Map(
              (await admin.fetchTopicOffsetsByTimestamp(topic, from.since.getTime())).map((p) => [
                p.partition,
                BigInt(p.offset),
              ]),
            )
          : null;
      for (const p of offsets) {
        const key = partitionKey(topic, p.partition);
        const low = BigInt(p.low);
        const high = BigInt(p.high);
        let start = low;
        if (byTime) start = byTime.get(p.partition) ?? high;
        else if ('offsets' in from) start = from.offsets.get(key) ?? from.others ?? high;
        // -1 (no record at or after the time) and anything past the ends mean "from the end".
        if (start < 0n || start > high) start = high;
        if (start < low) start = low;
        starts.set(key, start);
        ends.set(key, high);
      }
    }
  } catch (error) {
    await admin.disconnect();
    throw error;
  }
  const total = [...ends].reduce((sum, [key, high]) => sum + Number(high - (starts.get(key) ?? high)), 0);
  const pending = new Set(
    [...ends].filter(([key, high]) => (starts.get(key) ?? high) < high).map(([k]) => k),
  );
  const backlog: ReadRecord[] = [];
  // Records written after reading began that came before the whole backlog was read: live ones,
  // handed on after the backlog.
  const early: ReadRecord[] = [];
  let caughtUp = false;
  // The highest live offset handed on per partition: the seek may bring live records again.
  const liveSeen = new Map<string, bigint>();
  const flushBacklog = () => {
    caughtUp = true;
    backlog.sort((a, b) => a.timestamp.localeCompare(b.timestamp));
    options.onBacklog(backlog);
    for (const record of early) options.onLive?.(record);
  };
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  try {
    let done: () => void = () => undefined;
    const backlogRead = new Promise<void>((resolve) => {
      done = resolve;
    });
    if (pending.size === 0) {
      flushBacklog();
      done();
    }
    await consumer.connect();
    await consumer.subscribe({ topics: [...options.topics], fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        const key = partitionKey(topic, partition);
        const offset = BigInt(message.offset);
        if (offset < (starts.get(key) ?? 0n)) return;
        const record: ReadRecord = {
          topic,
          partition,
          offset: message.offset,
          timestamp: new Date(Number(message.timestamp)).toISOString(),
          key: message.key ? message.key.toString() : null,
          value: message.value ? message.value.toString() : '',
        };
        const live = offset >= (ends.get(key) ?? 0n);
        if (live) {
          if (offset <= (liveSeen.get(key) ?? -1n)) return;
          liveSeen.set(key, offset);
        }
        if (caughtUp) {
          options.onLive?.(record);
          return;
        }
        if (!live) {
          backlog.push(record);
          if (backlog.length % 2000 === 0) options.onProgress?.(backlog.length, total);
        } else {
          early.push(record);
        }
        // The backlog's last record read: this partition is done (in order within a partition).
        if (!live && offset === (ends.get(key) ?? 0n) - 1n) pending.delete(key);
        if (pending.size === 0 && !caughtUp) {
          flushBacklog();
          done();
        }
      },
    });
    for (const [key, start] of starts) {
      const slash = key.lastIndexOf('/');
      consumer.seek({
        topic: key.slice(0, slash),
        partition: Number(key.slice(slash + 1)),
        offset: String(start),
      });
    }
    await backlogRead;
    const follow = options.follow;
    if (follow && !follow.aborted) {
      await new Promise<void>((resolve) => follow.addEventListener('abort', () => resolve(), { once: true }));
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
