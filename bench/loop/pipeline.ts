/**
 * One loop as the bench runs it: a back half with the AWX double, a dispatcher on a fresh consumer
 * group and a reconcile worker on a fresh BullMQ queue, all in the bench process, with the
 * production options and the poll settings given; its log lines are kept to count the notable ones.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import { AwxClient } from '../../core/awx/index.js';
import { parseConfig, readStackEnv } from '../../core/config.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { intentMessage as buildIntent } from '../../core/events/intent.js';
import { createLogger } from '../../core/logger.js';
import type { TestDouble } from '../../test/awx/support.js';
import { positionGroupAtEnd } from '../../test/support/kafka.js';
import { type BackHalf, startBackHalf } from '../../test/support/reconciler.js';
import { dispatchIntents } from '../../workers/dispatcher/dispatcher.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { pollingOnly } from '../../workers/reconciler/awx-notifications.js';
import { reconcilerOptions } from '../../workers/reconciler/options.js';
import { createReconciler } from '../../workers/reconciler/reconcile.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { countBy, sleep } from '../support.js';
import type { LoopObserver } from './observer.js';

export type CauseKind = EventData<'intent'>['cause']['kind'];

/** The bench runs against the AWX double (its job records time each step); never real AWX. */
export function doubleOf(back: BackHalf): TestDouble {
  if (!back.awx.double)
    throw new Error('the loop bench needs the AWX double (startBackHalf({ awx: "double" }))');
  return back.awx.double;
}

/** A time in the double's job records or an event, in ms since the epoch; NaN when there is none. */
export const msOf = (iso: string | null | undefined) => (iso ? Date.parse(iso) : Number.NaN);

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
  /** The logged error's type and message, ids replaced by `:id` so that alike errors count together. */
  error?: string;
}

function errorText(err: { type?: string; message?: string } | undefined): string | undefined {
  if (!err) return undefined;
  const text = `${err.type ?? 'Error'}: ${err.message ?? ''}`
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, ':id')
    .replace(/\d+/g, ':id');
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

/** A warn/error line or a delayed job, as counted in the section: message, reason, error. */
const notableKey = (l: LogLine) =>
  `${l.msg}${l.reason ? ` (${l.reason})` : ''}${l.error ? ` — ${l.error}` : ''}`;

/** Log lines at warn or above and delayed jobs, counted by notableKey(). */
export function notableOf(logs: LogLine[]): Map<string, number> {
  return countBy(
    logs.filter((l) => l.level >= 40 || l.msg === 'job delayed'),
    notableKey,
  );
}

export interface Loop {
  back: BackHalf;
  queue: Queue<ReconcileJobData>;
  logs: LogLine[];
  stop(): Promise<void>;
}

export interface LoopSettings {
  concurrency: number;
  simultaneous: boolean;
  poll: { minMs: number; maxMs: number };
  /** The double ends every job successful at once, without ansible-runner. */
  instant?: boolean;
  /** The lease asked for with its context (the default) or without (bench/loop/settings.ts). */
  leaseContext?: boolean;
}

export async function startLoop(
  settings: LoopSettings,
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<Loop> {
  const env = readStackEnv();
  const redisUrl = env.UNICOP_REDIS_URL as string;
  const back = await startBackHalf({
    awx: 'double',
    simultaneous: settings.simultaneous,
    instant: settings.instant === true,
  });
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      const line = JSON.parse(String(chunk)) as LogLine & { err?: { type?: string; message?: string } };
      const error = errorText(line.err);
      logs.push({
        level: line.level,
        msg: line.msg,
        ...(line.reason ? { reason: line.reason } : {}),
        ...(error ? { error } : {}),
      });
      done();
    },
  });
  const log = createLogger('bench-loop', 'info', sink);
  const queueName = `bench-reconcile-${randomUUID()}`;
  const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: redisUrl } });
  const groupId = `bench-loop-dispatcher-${randomUUID()}`;
  await positionGroupAtEnd(back.kafka, groupId, topics.intents);
  const intents = new KafkaEventStream(back.kafka, { topic: topics.intents, groupId }, log);
  // Other suites may append intents for their own roots meanwhile: only the bench's are dispatched.
  await intents.start((records) =>
    dispatchIntents(
      records.filter((r) => r.key !== null && observer.roots.has(r.key)),
      { queue, freezeView, eventLog: back.eventLog },
    ),
  );
  // The production options (core/config.ts defaults: lease TTL 60 s, retries); polling as given.
  const holder = `bench-loop-${process.pid}-${randomUUID().slice(0, 8)}`;
  observer.holders.add(holder);
  const options = reconcilerOptions(parseConfig(env), holder);
  const plugin = back.plugin;
  const reconciler = createReconciler({
    plugin:
      settings.leaseContext === false
        ? Object.assign(Object.create(plugin) as typeof plugin, {
            acquireLease: (id: number, holder: string, ttl: number) => plugin.acquireLease(id, holder, ttl),
          })
        : plugin,
    awx: new AwxClient({ baseUrl: back.awx.url, token: back.awx.token }),
    eventLog: back.eventLog,
    wakeups: pollingOnly,
    log: log.child({ part: 'reconciler' }),
    options: { ...options, pollMinMs: settings.poll.minMs, pollMaxMs: settings.poll.maxMs },
  });
  const worker = startReconcileWorker(
    reconciler,
    { redisUrl, concurrency: settings.concurrency, queueName },
    log.child({ part: 'worker' }),
  );
  await worker.waitUntilReady();
  return {
    back,
    queue,
    logs,
    stop: async () => {
      await worker.close();
      await intents.stop();
      await queue.obliterate({ force: true });
      await queue.close();
      await back.stop();
    },
  };
}

/**
 * Stops the loop, waits `settleMs` for the audit events its last runs append after their outcomes
 * (lease.released), and counts its notable log lines, those logged while stopping included.
 */
export async function stopLoop(loop: Loop, settleMs: number): Promise<Map<string, number>> {
  await loop.stop();
  await sleep(settleMs);
  return notableOf(loop.logs);
}

export function intentMessage(observer: LoopObserver, rootKey: string, kind: CauseKind) {
  const intent = buildIntent('unicop/bench', rootKey, { kind, actor: 'bench' });
  observer.mine.add(intent.intentId);
  return intent;
}
