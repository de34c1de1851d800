/**
 * Issue #14 item 1 on the real Kafka and Redis: the workers' stages start on their own
 * (workers/startup.ts, the one start-up workers/main.ts uses). A process killed with -9 leaves its
 * member in the resolver's and dispatcher's consumer group; their restart waits for that member's
 * session to expire. Meanwhile the reconcile worker already takes queued jobs and the sweeper runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import type { Kafka } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { FreezeView, FreezeViewStoppedError } from '../../core/control/freeze-view.js';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { type ReconcileJobData, reconcileJobName } from '../../workers/reconcile-queue.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { startWorkerStages, type WorkerStageParts, type WorkerStages } from '../../workers/startup.js';
import { positionGroupAtEnd, testKafka } from '../support/kafka.js';
import { stack, uniqueName } from '../support/stack.js';

/** A consumer in `groupId` (30 s session, kafkajs's default) in its own process, killed with -9 once joined. */
async function leaveDeadMember(groupId: string, subscribed: string[]): Promise<void> {
  const script = `
    const { Kafka, logLevel } = require('kafkajs');
    const kafka = new Kafka({ clientId: 'dead-member', brokers: ${JSON.stringify(stack.kafkaBrokers())}, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: ${JSON.stringify(groupId)}, sessionTimeout: 30000 });
    consumer.on(consumer.events.GROUP_JOIN, () => process.stdout.write('joined\\n'));
    (async () => {
      await consumer.connect();
      for (const topic of ${JSON.stringify(subscribed)}) await consumer.subscribe({ topic });
      await consumer.run({ autoCommit: false, eachBatch: async () => new Promise(() => {}) });
    })();`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { cwd: repoRoot, stdio: 'pipe' });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (String(chunk).includes('joined')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`the member's process exited (${code}) before joining`)));
  });
  child.kill('SIGKILL');
}

async function groupState(kafka: Kafka, groupId: string): Promise<string> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.describeGroups([groupId])).groups[0]?.state ?? 'unknown';
  } finally {
    await admin.disconnect();
  }
}

describe('workers start-up', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });

  it('reconciles a queued job and runs the sweeper while the resolver and dispatcher still wait for their consumer group', async () => {
    const kafka = testKafka();
    const logs: string[] = [];
    const log = createLogger(
      'workers',
      'info',
      new Writable({
        write(chunk, _enc, done) {
          logs.push(String(chunk));
          done();
        },
      }),
    );
    // The consumers' group as a kill -9 leaves it: positioned at the end, one dead member in it.
    const group = uniqueName('startup-consumers');
    await positionGroupAtEnd(kafka, group, topics.changes);
    await positionGroupAtEnd(kafka, group, topics.intents);
    await leaveDeadMember(group, [topics.changes, topics.intents]);
    expect(await groupState(kafka, group)).toBe('Stable'); // the coordinator still counts the dead member

    const queueName = uniqueName('startup-reconcile');
    const queue = new Queue<ReconcileJobData>(queueName, { connection: { url: stack.redisUrl() } });
    cleanup.push(() => queue.obliterate({ force: true }).then(() => queue.close()));
    const job: ReconcileJobData = {
      rootKey: 'site/0',
      intentId: uniqueName('intent'),
      cause: {
        kind: 'manual',
        changeId: null,
        requestId: null,
        event: null,
        objectType: null,
        objectId: null,
        actor: 'test',
        at: new Date().toISOString(),
      },
    };
    await queue.add(reconcileJobName, job, { jobId: job.intentId });

    const joined = { resolver: false, dispatcher: false };
    const seen: { rootKey: string; resolverJoined: boolean; dispatcherJoined: boolean }[] = [];
    const reconciler = {
      reconcile: async (data: ReconcileJobData) => {
        seen.push({
          rootKey: data.rootKey,
          resolverJoined: joined.resolver,
          dispatcherJoined: joined.dispatcher,
        });
        return { kind: 'done' as const };
      },
    } as unknown as Parameters<typeof startReconcileWorker>[0]; // only reconcile() is called
    let sweeperStarted = false;
    const consumer = (topic: string, part: keyof typeof joined) => async () => {
      const stream = new KafkaEventStream(kafka, { topic, groupId: group }, log);
      await stream.start(async () => undefined);
      joined[part] = true;
      return stream;
    };
    const stages: WorkerStages = startWorkerStages(
      {
        freezeView: new FreezeView(
          new KafkaEventStream(kafka, { topic: topics.control, groupId: uniqueName('startup-control') }, log),
        ),
        awxNotifications: { start: async () => undefined, stop: async () => undefined },
        startResolver: consumer(topics.changes, 'resolver'),
        startDispatcher: consumer(topics.intents, 'dispatcher'),
        startReconcileWorker: () =>
          startReconcileWorker(reconciler, { redisUrl: stack.redisUrl(), concurrency: 1, queueName }, log),
        sweeper: {
          start: () => {
            sweeperStarted = true;
          },
          stop: () => undefined,
        },
      },
      log,
      (stage, error) => {
        if (!(error instanceof FreezeViewStoppedError))
          throw new Error(`stage ${stage} failed: ${String(error)}`);
      },
    );
    cleanup.push(() => stages.stop());

    await stages.started.reconciler;
    await stages.started.sweeper;
    expect(sweeperStarted).toBe(true);
    for (let i = 0; i < 600 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([{ rootKey: 'site/0', resolverJoined: false, dispatcherJoined: false }]);
    // They were held back by the rebalance (not merely slow to connect): the group waits for the dead member.
    let state = await groupState(kafka, group);
    for (let i = 0; i < 300 && state === 'Stable'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = await groupState(kafka, group);
    }
    expect({ state, ...joined }).toEqual({ state: 'PreparingRebalance', resolver: false, dispatcher: false });

    // The consumers are not left behind: they join once the dead member's session has expired.
    await Promise.all([stages.started.resolver, stages.started.dispatcher]);
    expect(joined).toEqual({ resolver: true, dispatcher: true });
    expect(logs.filter((l) => l.includes('"stage started"')).length).toBe(6);
  }, 180_000);
});

describe('workers stages, in memory', () => {
  const never = () => new Promise<never>(() => undefined);
  function parts(overrides: Partial<WorkerStageParts> = {}) {
    let replay: () => void = () => undefined;
    let abandon: (error: Error) => void = () => undefined;
    const replayed = new Promise<void>((resolve, reject) => {
      replay = resolve;
      abandon = reject;
    });
    const calls: string[] = [];
    const built: WorkerStageParts = {
      // As FreezeView: stopping it before the replay rejects the replay.
      freezeView: {
        start: () => replayed,
        replayed: () => replayed,
        stop: async () => abandon(new FreezeViewStoppedError()),
      },
      awxNotifications: { start: never, stop: async () => undefined },
      startResolver: never,
      startDispatcher: never,
      startReconcileWorker: () => {
        calls.push('reconcile worker');
        return { close: async () => undefined };
      },
      sweeper: { start: () => calls.push('sweeper'), stop: () => undefined },
      ...overrides,
    };
    return { built, calls, replay };
  }
  const quiet = createLogger('workers', 'silent');

  it('starts the reconcile worker and the sweeper once the freeze view is replayed, not before', async () => {
    const { built, calls, replay } = parts();
    const stages = startWorkerStages(built, quiet, (stage) => {
      throw new Error(`${stage} failed`);
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual([]); // a restart during a global freeze launches nothing before the replay
    replay();
    await Promise.all([stages.started.reconciler, stages.started.sweeper]);
    expect(calls).toEqual(['reconcile worker', 'sweeper']);
  });

  it('reports a stage that fails to start, and none that was stopped while starting', async () => {
    const failed: string[] = [];
    const { built } = parts({ startResolver: () => Promise.reject(new Error('no broker')) });
    const stages = startWorkerStages(built, quiet, (stage) => failed.push(stage));
    await stages.started.resolver.catch(() => undefined);
    expect(failed).toEqual(['resolver']);
    await stages.stop(); // before the freeze view was replayed: its stages never start, and never fail
    await Promise.allSettled([stages.started.reconciler, stages.started.sweeper]);
    expect(failed).toEqual(['resolver']);
  });
});
