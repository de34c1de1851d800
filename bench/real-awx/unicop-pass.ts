/**
 * UNICOP in front of real AWX: the compiled workers process (resolver, dispatcher, reconciler,
 * sweeper; `dist/`, `npm run build`) and the compiled bridge (where AWX posts its notifications,
 * when that port is free), spawned as operators run them, against the stack's real AWX. N new
 * NetBox sites (`bench-real-awx-…`, the bench's own roots) get one `manual` intent each, appended
 * to unicop.intents in one append; each run snapshots its site, launches `unicop-site`, follows the
 * job (AWX's notification wakes it) and writes its outcome. Measured from the append to each
 * root's outcome on unicop.outcomes; the AWX job of each run from AWX's own record; CPU of AWX's
 * parts, of the job containers and of the two UNICOP processes.
 *
 * Isolation on the shared stack, as the fault suite does it (test/faults/suite): the workers'
 * consumer groups are moved to the end of their topics first (refused while another workers process
 * is in them); the reconcile queue, the sweeper's epoch key and the bridge's delivery memory live in
 * the delivery bench's Redis database (benchmarks run one after another; the queue is obliterated
 * afterwards); no sweep (epoch key set, the periodic sweep a day away). Intents appended by
 * anyone else meanwhile are the workers' too: counted as foreign.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { repoRoot } from '../../core/config.js';
import { consumerGroups } from '../../core/event-log/groups.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { topics } from '../../core/events/catalogue.js';
import { reconcileQueueName } from '../../core/queues.js';
import { portFree, processReady, spawnUnicop } from '../../test/faults/suite/processes.js';
import { positionGroupAtEnd, topicEnds } from '../../test/support/kafka.js';
import { redisDatabaseUrl, stack, stackFact, testRedisDatabases } from '../../test/support/stack.js';
import { redisEpochKey } from '../../workers/sweeper/sweeper.js';
import { makeSites, queuedJobs, removeSites } from '../coalesce.js';
import { watch } from '../loop/observer.js';
import { intentMessage } from '../loop/pipeline.js';
import { CpuByProcess } from '../loop/usage.js';
import { sleep, until } from '../support.js';
import { type AwxStack, waitForJobs } from './awx-alone.js';
import { AwxCpu } from './awx-cpu.js';

export interface UnicopRun {
  rootKey: string;
  state: string;
  /** The intent's append handed to the producer → its outcome received on unicop.outcomes. */
  latencyMs: number;
  /** When the append was handed to the producer (ms since the epoch). */
  appendedAt: number;
  awxJobId: number | null;
  /** AWX's own record of the run's job: created, started, finished (ms since the epoch). */
  job?: { created: number; started: number; finished: number };
}

export interface UnicopPass {
  runs: UnicopRun[];
  /** First append → last outcome. */
  wallMs: number;
  missing: number;
  /** Intents for the bench's roots it did not append (a resolver turning their edits into intents). */
  foreignIntents: number;
  /**
   * Everything else the workers took from Kafka during the pass: changes appended to unicop.changes
   * (other sessions' NetBox edits, resolved by this resolver too) and intents not the bench's.
   */
  otherTraffic: { changes: number; intents: number };
  awxCpu: ReturnType<AwxCpu['stop']>;
  /** CPU seconds of the spawned workers and bridge processes. */
  unicopCpu: { workers: number; bridge: number };
  /** The stack's other services over the pass (bench/loop/usage.ts groups). */
  stackCpu: Map<string, number>;
  bridgeNotified: boolean;
}

const redisDb = testRedisDatabases.deliveryBench;

function cpuOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text
      .slice(text.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    return ((f[11] ?? 0) + (f[12] ?? 0) + (f[13] ?? 0) + (f[14] ?? 0)) / 100;
  } catch {
    return 0;
  }
}

/**
 * Moves the workers' consumer groups to the end of their topics; Kafka refuses while a group has
 * members (another workers process: a test's, the demo), so this waits for them to leave (a cap).
 */
async function takeConsumerGroups(kafka: Kafka, capMs: number): Promise<void> {
  const deadline = Date.now() + capMs;
  for (;;) {
    try {
      await positionGroupAtEnd(kafka, consumerGroups.resolver, topics.changes);
      await positionGroupAtEnd(kafka, consumerGroups.dispatcher, topics.intents);
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(
          `the workers' consumer groups still have members (another workers process) after ${capMs / 1000} s: ${(error as Error).message}`,
        );
      }
      await sleep(5000);
    }
  }
}

export async function runUnicopPass(
  awx: AwxStack,
  count: number,
  concurrency: number,
  capMs: number,
): Promise<UnicopPass> {
  const kafka = new Kafka({
    clientId: `bench-real-awx-${process.pid}`,
    brokers: stack.kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const redisUrl = redisDatabaseUrl(redisDb);
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const sites = await makeSites('bench-real-awx', count);
  const keys = sites.map((s) => s.rootKey);
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const drainStarted = Date.now();
    while ((await queuedJobs()) > 0 && Date.now() - drainStarted < 60_000) await sleep(2000);
    await takeConsumerGroups(kafka, 600_000);
    await redis.set(redisEpochKey, new Date().toISOString());
    const notifyPort = Number(new URL(stackFact('UNICOP_AWX_NOTIFY_URL')).port);
    const bridgeNotified = await portFree(notifyPort);
    const logDir = join(repoRoot, 'var', 'bench', `real-awx-${Date.now()}`);
    mkdirSync(logDir, { recursive: true });
    const unicop = await spawnUnicop({
      dir: logDir,
      workers: 1,
      ...(bridgeNotified ? { bridgePort: notifyPort } : {}),
      env: {
        UNICOP_VAR: process.env.UNICOP_VAR ?? join(repoRoot, 'var'),
        UNICOP_LOG_LEVEL: 'info',
        UNICOP_REDIS_URL: redisUrl,
        UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
        UNICOP_NETBOX_URL: stack.netboxUrl(),
        UNICOP_NETBOX_TOKEN: stack.netboxToken(),
      },
      bridgeEnv: {
        UNICOP_WEBHOOK_SECRETS: randomBytes(24).toString('hex'),
        UNICOP_AWX_WEBHOOK_SECRET: stackFact('UNICOP_AWX_REAL_WEBHOOK_SECRET'), // a file: reference
      },
      workersEnv: {
        UNICOP_AWX_URL: awx.url,
        UNICOP_AWX_TOKEN: stackFact('UNICOP_AWX_REAL_TOKEN'), // a file: reference, resolved by the process
        UNICOP_RECONCILE_CONCURRENCY: String(concurrency),
        UNICOP_SWEEP_ON_START: 'false',
        // No drift checks of the shared stack's other roots (decision 0054): they would share AWX.
        UNICOP_DRIFT_CHECK_SECONDS: '0',
        UNICOP_SWEEP_INTERVAL_SECONDS: '86400',
      },
    });
    cleanups.push(() => unicop.close());
    const eventLog = new KafkaEventLog(kafka);
    cleanups.push(() => eventLog.close());
    const watched = await watch(keys);
    cleanups.push(() => watched.stop());
    const ready = await until(
      () => processReady(unicop.bridge) && unicop.workers.every(processReady),
      180_000,
    );
    if (!ready)
      throw new Error(`the spawned bridge or workers did not get ready in 180 s (logs in ${logDir})`);
    const { observer } = watched;
    const intents = keys.map((key) => ({ key, ...intentMessage(observer, key, 'manual') }));
    const awxCpu = new AwxCpu();
    const stackCpu = new CpuByProcess();
    const workersPid = unicop.workers[0]?.pid;
    const bridgePid = unicop.bridge.pid;
    const before = { workers: cpuOf(workersPid), bridge: cpuOf(bridgePid) };
    const ends = async (topic: string) =>
      (await topicEnds(kafka, topic)).reduce((n, p) => n + Number(p.offset), 0);
    const changesBefore = await ends(topics.changes);
    const intentsBefore = await ends(topics.intents);
    awxCpu.start();
    stackCpu.start();
    const t0 = Date.now();
    await eventLog.append(intents.map((i) => i.message));
    await until(() => intents.every((i) => observer.outcomeByIntent.has(i.intentId)), capMs);
    const unicopCpu = {
      workers: cpuOf(workersPid) - before.workers,
      bridge: cpuOf(bridgePid) - before.bridge,
    };
    const usedAwx = awxCpu.stop();
    const usedStack = stackCpu.stop();
    const otherTraffic = {
      changes: (await ends(topics.changes)) - changesBefore,
      intents: (await ends(topics.intents)) - intentsBefore - intents.length,
    };
    const outcomes = intents.map((i) => ({ key: i.key, outcome: observer.outcomeByIntent.get(i.intentId) }));
    const jobIds = outcomes
      .map((o) => o.outcome?.data.awxJobId)
      .filter((id): id is number => typeof id === 'number');
    const rows = jobIds.length > 0 ? await waitForJobs(awx, jobIds, 0) : [];
    const runs: UnicopRun[] = [];
    for (const { key, outcome } of outcomes) {
      if (!outcome) continue;
      const row = rows.find((r) => r.id === outcome.data.awxJobId);
      runs.push({
        rootKey: key,
        state: outcome.data.state,
        latencyMs: outcome.receivedAt - t0,
        appendedAt: t0,
        awxJobId: outcome.data.awxJobId,
        ...(row
          ? {
              job: {
                created: Date.parse(row.created),
                started: Date.parse(row.started ?? ''),
                finished: Date.parse(row.finished ?? ''),
              },
            }
          : {}),
      });
    }
    return {
      runs,
      wallMs: Math.max(...runs.map((r) => r.latencyMs)),
      missing: intents.length - runs.length,
      foreignIntents: observer.foreignIntents.length,
      otherTraffic,
      awxCpu: usedAwx,
      unicopCpu,
      stackCpu: usedStack,
      bridgeNotified,
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    const queue = new Queue(reconcileQueueName, { connection: redis });
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await redis.del(redisEpochKey);
    redis.disconnect();
    await removeSites(sites);
    for (const s of sites) rmSync(join(awx.targetDir, `site-${s.id}`), { recursive: true, force: true });
  }
}
