/**
 * The fail-safe (workers/failsafe/, decision 0055) against the real stack: real Kafka, the real
 * freeze view over `unicop.control`, the real resolver, dispatcher and consumer-lag reading. Each
 * trigger is tripped on its own (the others off) with small thresholds, and the freeze it sets is
 * read back from `unicop.control`: global, `actor: unicop`, a reason naming the trigger and its
 * figures, audited on `unicop.audit`. A condition that clears leaves automation frozen (only a
 * person resumes), and while frozen the real dispatcher queues nothing. The freeze is global on the
 * shared stack: each test resumes in `finally`, only a freeze it set itself.
 */
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FreezeView } from '../../core/control/freeze-view.js';
import { consumerGroupLag, KafkaEventStream } from '../../core/event-log/consumer.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { cloudEvent, type EventData, topics } from '../../core/events/catalogue.js';
import { intentMessage } from '../../core/events/intent.js';
import { uuidv7 } from '../../core/ids.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient } from '../../core/plugin/client.js';
import { startDispatcher } from '../../workers/dispatcher/dispatcher.js';
import { Failsafe, type FailsafeSettings } from '../../workers/failsafe/failsafe.js';
import { runEndsFrom } from '../../workers/failsafe/run-ends.js';
import { createWorkerMetrics, measuredStream, resolverAttempts } from '../../workers/metrics.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { startResolver } from '../../workers/resolver/resolver.js';
import { eventually } from '../awx/support.js';
import { startControlView } from '../support/freeze.js';
import { positionGroupAtEnd, type TailedMessage, TopicTail, testKafka } from '../support/kafka.js';
import { freePort } from '../support/ports.js';
import { stack, uniqueName } from '../support/stack.js';

const log = createLogger('failsafe-test', 'silent');

/** Every trigger off; a test turns on the one it trips. Evaluated every 200 ms. */
const allOff: FailsafeSettings = {
  checkMs: 200,
  lag: { records: 0, seconds: 0 },
  resolverErrors: { rate: 1, windowSeconds: 60, minRecords: 1 },
  failedRoots: { roots: 0, windowSeconds: 60 },
};

function changeEvent(): string {
  const changeId = uuidv7();
  const at = new Date().toISOString();
  const objectId = 2_000_000_000 + Math.floor(Math.random() * 100_000_000);
  return JSON.stringify(
    cloudEvent('change', {
      id: changeId,
      source: 'failsafe-test',
      subject: `dcim.manufacturer:${objectId}`,
      data: {
        changeId,
        event: 'updated',
        objectType: 'dcim.manufacturer',
        objectId,
        occurredAt: at,
        requestId: null,
        actor: 'failsafe-test',
        lastUpdated: at,
        data: { id: objectId },
        prechange: null,
        postchange: { id: objectId },
      },
    }),
  );
}

function runEnd(rootKey: string, state: EventData<'outcome'>['state']): string {
  const runId = uuidv7();
  const at = new Date().toISOString();
  return JSON.stringify(
    cloudEvent('outcome', {
      id: uuidv7(),
      source: 'unicop/reconciler',
      subject: rootKey,
      data: {
        runId,
        rootKey,
        state,
        failureClass: state === 'failed' ? 'job_failed' : state === 'canceled' ? 'canceled' : null,
        snapshotHash: 'a'.repeat(64),
        fencingToken: 1,
        intentId: null,
        awxJobId: null,
        awxJobUrl: null,
        summary: 'failsafe test',
        startedAt: at,
        finishedAt: at,
      },
    }),
  );
}

const freezeData = (m: TailedMessage) => m.value.data as EventData<'freeze'>;
const auditData = (m: TailedMessage) => m.value.data as EventData<'audit'>;

describe('fail-safe: UNICOP freezes itself globally when it cannot trust its inputs', () => {
  const kafka = testKafka();
  const eventLog = new KafkaEventLog(kafka);
  let view: FreezeView;
  let tail: TopicTail;
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    view = await startControlView(kafka, log);
    tail = await TopicTail.start([topics.control, topics.audit]);
  });
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });
  afterAll(async () => {
    await view?.stop();
    await tail?.stop();
    await eventLog.close();
  });

  /** Starts a fail-safe on the real freeze view and Kafka, once nobody else holds automation frozen. */
  async function startFailsafe(
    settings: FailsafeSettings,
    parts: Partial<
      Pick<ConstructorParameters<typeof Failsafe>[0], 'readLag' | 'lagOf' | 'resolverAttempts'>
    > & {
      metrics?: ReturnType<typeof createWorkerMetrics>;
      /** Another freeze view (a restarted process's); then automation may be frozen already. */
      freezeView?: FreezeView;
    } = {},
  ): Promise<Failsafe> {
    if (!parts.freezeView) {
      await eventually(
        async () => (view.globalState()?.frozen ? undefined : true),
        'automation not frozen globally (another test or a person holds it)',
        120_000,
      );
    }
    const failsafe = new Failsafe({
      freezeView: parts.freezeView ?? view,
      eventLog,
      readLag: parts.readLag ?? (async () => 0),
      lagOf: parts.lagOf ?? { group: 'none', topic: topics.changes },
      resolverAttempts: parts.resolverAttempts ?? (async () => ({ ok: 0, error: 0 })),
      runEnds: runEndsFrom(kafka, uniqueName('failsafe-run-ends'), () => new Date(), log),
      settings,
      log,
      ...(parts.metrics ? { metrics: parts.metrics } : {}),
    });
    cleanup.push(() => failsafe.stop());
    await failsafe.start();
    return failsafe;
  }

  /** Waits for the fail-safe's freeze naming `trigger` (and `naming`) on unicop.control, then its audit. */
  async function tripOnControl(trigger: string, naming: string) {
    const [record] = await tail.waitFor(
      (m) =>
        m.topic === topics.control &&
        freezeData(m).actor === 'unicop' &&
        freezeData(m).frozen &&
        freezeData(m).reason.startsWith(`fail-safe ${trigger}: `) &&
        freezeData(m).reason.includes(naming),
      1,
      60_000,
    );
    const freeze = freezeData(record as TailedMessage);
    // Whatever else the test asserts, automation is resumed afterwards if a fail-safe freeze naming
    // what this test tripped (its group, its roots) still holds it — also a second one a broken
    // fail-safe would append.
    cleanup.push(async () => {
      const now = view.globalState();
      if (!now?.frozen || now.actor !== 'unicop' || !now.reason.includes(naming)) return;
      await resume('fail-safe test teardown');
    });
    const [audit] = await tail.waitFor(
      (m) =>
        m.topic === topics.audit &&
        auditData(m).action === 'automation.frozen' &&
        auditData(m).reason === freeze.reason,
      1,
      60_000,
    );
    return { record: record as TailedMessage, freeze, audit: auditData(audit as TailedMessage) };
  }

  /** A person's resume, as the admin API writes it (the route itself: test/bridge/admin.test.ts). */
  async function resume(reason: string): Promise<void> {
    const data: EventData<'freeze'> = {
      scope: 'global',
      rootKey: null,
      frozen: false,
      reason,
      actor: 'failsafe-test',
      at: new Date().toISOString(),
    };
    const event = cloudEvent('freeze', { id: uuidv7(), source: 'failsafe-test', subject: 'global', data });
    await eventLog.append([{ topic: topics.control, key: 'global', value: JSON.stringify(event) }]);
    await eventually(
      async () => (view.globalState()?.frozen ? undefined : true),
      'the resume applied',
      60_000,
    );
  }

  it('consumer_lag: a group lagging above N records for M seconds freezes globally (actor unicop, the figures); clearing it does not unfreeze', async () => {
    const group = uniqueName('failsafe-lag');
    await positionGroupAtEnd(kafka, group, topics.changes);
    const failsafe = await startFailsafe(
      { ...allOff, lag: { records: 3, seconds: 1 } },
      {
        readLag: () => consumerGroupLag(kafka, group, topics.changes),
        lagOf: { group, topic: topics.changes },
      },
    );
    const key = uniqueName('failsafe-lag');
    await eventLog.append(
      Array.from({ length: 4 }, () => ({ topic: topics.changes, key, value: changeEvent() })),
    );

    const { freeze, audit, record } = await tripOnControl('consumer_lag', group);
    expect(record.key).toBe('global');
    expect(freeze).toMatchObject({ scope: 'global', rootKey: null, frozen: true, actor: 'unicop' });
    expect(freeze.reason).toMatch(
      new RegExp(
        `^fail-safe consumer_lag: consumer group ${group} has \\d+ records of unicop\\.changes not handled, above 3 on every reading for \\d+ s \\(threshold 1 s\\)$`,
      ),
    );
    expect(audit).toMatchObject({
      actor: 'unicop',
      subjectType: 'automation',
      subjectId: 'global',
      outcome: 'ok',
    });
    expect(audit.metadata).toMatchObject({ trigger: 'consumer_lag' });

    // The condition clears: the group is at the end again (read here: a frozen fail-safe reads nothing).
    await positionGroupAtEnd(kafka, group, topics.changes);
    const cleared = await eventually(
      async () =>
        (await consumerGroupLag(kafka, group, topics.changes)) <= 3 ? failsafe.evaluations : undefined,
      'the lag back at or below 3',
      60_000,
    );
    await eventually(
      async () => (failsafe.evaluations >= cleared + 5 ? true : undefined),
      'five more evaluations after the lag cleared',
      60_000,
    );
    expect(view.globalState()).toMatchObject({ frozen: true, actor: 'unicop', reason: freeze.reason });
    const lifted = tail.messages.filter(
      (m) => m.topic === topics.control && !freezeData(m).frozen && freezeData(m).at >= freeze.at,
    );
    expect(lifted).toEqual([]);
  });

  it('resolver_errors: the real resolver failing on every batch (NetBox unreachable) above the rate freezes globally; the metrics say why', async () => {
    const metrics = createWorkerMetrics();
    metrics.readFrom({ freeze: view });
    const group = uniqueName('failsafe-resolver');
    await positionGroupAtEnd(kafka, group, topics.changes);
    const unreachable = `http://127.0.0.1:${await freePort()}`;
    const resolver = await startResolver({
      changes: measuredStream(
        new KafkaEventStream(
          kafka,
          { topic: topics.changes, groupId: group, initialBackoffMs: 50, maxBackoffMs: 200 },
          log,
        ),
        metrics,
        'resolver',
      ),
      eventLog,
      resolver: new PluginClient({ baseUrl: unreachable, token: stack.netboxToken(), timeoutMs: 2000 }),
      log,
    });
    cleanup.push(() => resolver.stop());
    await startFailsafe(
      { ...allOff, resolverErrors: { rate: 0.5, windowSeconds: 60, minRecords: 5 } },
      { resolverAttempts: () => resolverAttempts(metrics), metrics },
    );
    await eventLog.append([
      { topic: topics.changes, key: uniqueName('failsafe-resolver'), value: changeEvent() },
    ]);

    const { freeze, audit } = await tripOnControl(
      'resolver_errors',
      'resolver record attempts ended in an error',
    );
    expect(freeze).toMatchObject({ scope: 'global', frozen: true, actor: 'unicop' });
    expect(freeze.reason).toMatch(
      /^fail-safe resolver_errors: (\d+) of \1 resolver record attempts ended in an error over the last \d+ s \(100\.0 %, above 50 %; at least 5 attempts counted\)$/,
    );
    expect(audit.metadata).toMatchObject({ trigger: 'resolver_errors' });
    const text = await metrics.registry.metrics();
    expect(text).toContain('unicop_frozen{reason="resolver_errors"} 1');
    expect(text).toContain('unicop_frozen{reason="person"} 0');
    expect(text).toContain('unicop_failsafe_trips_total{trigger="resolver_errors"} 1');
  });

  it('failed_roots: runs failed for more than K distinct roots within the window freeze globally; the real dispatcher then queues nothing', async () => {
    const kind = uniqueName('failsafe').replace(/[^a-z0-9-]/g, '');
    await startFailsafe({ ...allOff, failedRoots: { roots: 2, windowSeconds: 60 } });
    // Two failures of one root, one timed out, one canceled by a person, one success: 3 roots failed.
    await eventLog.append(
      (
        [
          [`${kind}/1`, 'failed'],
          [`${kind}/1`, 'failed'],
          [`${kind}/2`, 'timed_out'],
          [`${kind}/3`, 'canceled'],
          [`${kind}/4`, 'succeeded'],
          [`${kind}/5`, 'failed'],
        ] as const
      ).map(([rootKey, state]) => ({ topic: topics.outcomes, key: rootKey, value: runEnd(rootKey, state) })),
    );

    const { freeze } = await tripOnControl('failed_roots', `${kind}/5`);
    expect(freeze).toMatchObject({ scope: 'global', frozen: true, actor: 'unicop' });
    expect(freeze.reason).toMatch(
      /^fail-safe failed_roots: runs failed for \d+ distinct roots within 60 s \(more than 2\): /,
    );
    for (const failed of [`${kind}/1`, `${kind}/2`, `${kind}/5`]) expect(freeze.reason).toContain(failed);
    for (const notFailed of [`${kind}/3`, `${kind}/4`]) expect(freeze.reason).not.toContain(notFailed);

    // Frozen by the fail-safe, the real dispatcher holds an intent (audited) and queues no job.
    const queue = new Queue<ReconcileJobData>(uniqueName('failsafe-reconcile'), {
      connection: { url: stack.redisUrl() },
    });
    cleanup.push(async () => {
      await queue.obliterate({ force: true });
      await queue.close();
    });
    const dispatchGroup = uniqueName('failsafe-dispatcher');
    await positionGroupAtEnd(kafka, dispatchGroup, topics.intents);
    const dispatcher = await startDispatcher(
      { queue, freezeView: view, eventLog },
      { kafka, log, groupId: dispatchGroup },
    );
    cleanup.push(() => dispatcher.stop());
    const { intentId, message } = intentMessage(
      'failsafe-test',
      `site/${2_000_000_000 + Math.floor(Math.random() * 1e8)}`,
      { kind: 'manual', actor: 'failsafe-test' },
    );
    await eventLog.append([message]);
    const [held] = await tail.waitFor(
      (m) =>
        m.topic === topics.audit &&
        auditData(m).action === 'intent.held' &&
        auditData(m).correlation.intentId === intentId,
      1,
      60_000,
    );
    expect(auditData(held as TailedMessage).reason).toBe(`automation frozen globally: ${freeze.reason}`);
    expect(await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active')).toEqual({
      waiting: 0,
      prioritized: 0,
      delayed: 0,
      active: 0,
    });
  });

  it('trips nothing while automation is frozen already, and counts nothing from before a person resumed', async () => {
    const kind = uniqueName('failsafe-resumed').replace(/[^a-z0-9-]/g, '');
    const failsafe = await startFailsafe({ ...allOff, failedRoots: { roots: 2, windowSeconds: 60 } });
    await eventLog.append(
      [1, 2, 3].map((n) => ({
        topic: topics.outcomes,
        key: `${kind}/${n}`,
        value: runEnd(`${kind}/${n}`, 'failed'),
      })),
    );
    const { freeze } = await tripOnControl('failed_roots', `${kind}/3`);
    // A person resumes: the three failures were seen and judged; they do not freeze again.
    await resume('failsafe test: judged');
    const resumedAt = failsafe.evaluations;
    await eventually(
      async () => (failsafe.evaluations >= resumedAt + 5 ? true : undefined),
      'five evaluations after the resume',
      60_000,
    );
    expect(view.globalState()).toMatchObject({ frozen: false, reason: 'failsafe test: judged' });
    const again = tail.messages.filter(
      (m) =>
        m.topic === topics.control &&
        freezeData(m).frozen &&
        freezeData(m).reason.includes(`${kind}/`) &&
        freezeData(m).at > freeze.at,
    );
    expect(again).toEqual([]);
    // Three new failures after the resume trip it again.
    await eventLog.append(
      [4, 5, 6].map((n) => ({
        topic: topics.outcomes,
        key: `${kind}/${n}`,
        value: runEnd(`${kind}/${n}`, 'failed'),
      })),
    );
    const second = await tripOnControl('failed_roots', `${kind}/6`);
    expect(second.freeze.reason).not.toContain(`${kind}/1`);
  });

  it('a restarted fail-safe finds its trip on unicop.control: the condition still holding, it appends no second freeze', async () => {
    const group = uniqueName('failsafe-restart');
    await positionGroupAtEnd(kafka, group, topics.changes);
    const settings = { ...allOff, lag: { records: 3, seconds: 1 } };
    const lagOf = { group, topic: topics.changes };
    const readLag = () => consumerGroupLag(kafka, group, topics.changes);
    const first = await startFailsafe(settings, { readLag, lagOf });
    await eventLog.append(
      Array.from({ length: 4 }, () => ({ topic: topics.changes, key: group, value: changeEvent() })),
    );
    const { freeze } = await tripOnControl('consumer_lag', group);
    await first.stop();

    // A new process: its own freeze view replayed from unicop.control, the lag still above N.
    const restartedView = await startControlView(kafka, log);
    cleanup.push(() => restartedView.stop());
    const restarted = await startFailsafe(settings, { readLag, lagOf, freezeView: restartedView });
    await eventually(
      async () => (restarted.evaluations >= 10 ? true : undefined),
      'ten evaluations of the restarted fail-safe',
      60_000,
    );
    expect(restarted.latest).toMatchObject({ frozen: true, trip: null });
    expect(restarted.latest?.lag).toBeNull(); // frozen: not read
    expect(await readLag()).toBeGreaterThan(3);
    expect(restartedView.globalState()).toMatchObject({
      frozen: true,
      actor: 'unicop',
      reason: freeze.reason,
    });
    const freezes = tail.messages.filter(
      (m) => m.topic === topics.control && freezeData(m).frozen && freezeData(m).reason.includes(group),
    );
    expect(freezes).toHaveLength(1);
  });
});
