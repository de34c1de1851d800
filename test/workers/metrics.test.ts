/**
 * Issue #16 item 4 on the real stack: after one real run — a site created in NetBox, its webhook
 * through a bridge, a resolver, a dispatcher and a reconciler composed as workers/main.ts composes
 * them (the same metric wrappers), the stack's real AWX running the job — the workers' and the
 * bridge's /metrics text (parsed from the exposition format) has each named metric with real
 * values: RED per stage, runs per AWX template, lease renewals, the reconcile queue's depth by
 * state, consumer lag per group, open runs and the oldest one's age by state.
 *
 * The run launches its AWX job only once its lease has been renewed (a third of its 10 s TTL): a
 * fast AWX job would otherwise end before any renewal and leave the counter at zero. On a shared
 * stack the bridge keeps its delivery memory in a Redis database of its own and the dispatcher
 * takes only the intents of changes that bridge accepted for the site (OwnIntents).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwxClient } from '../../core/awx/index.js';
import { FreezeView } from '../../core/control/freeze-view.js';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { netboxRest } from '../../core/netbox/rest.js';
import { startDispatcher } from '../../workers/dispatcher/dispatcher.js';
import {
  countingLaunches,
  countingLeaseRenewals,
  createWorkerMetrics,
  measureBatches,
  measuredReconciler,
  measuredStream,
} from '../../workers/metrics.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { pollingOnly } from '../../workers/reconciler/awx-notifications.js';
import { createReconciler } from '../../workers/reconciler/reconcile.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { startResolver } from '../../workers/resolver/resolver.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { positionGroupAtEnd } from '../support/kafka.js';
import { hookNetboxTo, OwnIntents } from '../support/pipeline.js';
import {
  type BackHalf,
  createSite,
  eventually,
  startBackHalf,
  testReconcilerOptions,
} from '../support/reconciler.js';
import { redisDatabaseUrl, stack, testRedisDatabases, uniqueName } from '../support/stack.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped; label values without escapes). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[k as string] = v as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

// Caps, not budgets: NetBox's one rqworker may have a backlog, and a real AWX job starts a container;
// a 10 s lease is renewed every 3.3 s, later on a loaded machine.
const runCapMs = 600_000;
const renewalCapMs = 120_000;

describe('workers and bridge /metrics after a real run', () => {
  const metrics = createWorkerMetrics();
  const log = createLogger('metrics-test', process.env.UNICOP_TEST_LOG ?? 'silent');
  const stops: (() => Promise<unknown>)[] = [];
  let back: BackHalf;
  let bridge: RunningBridge;
  let queue: Queue<ReconcileJobData>;
  let own: OwnIntents;
  const renewalsOk = async () =>
    parseExposition(await metrics.registry.metrics())
      .filter((s) => s.name === 'unicop_lease_renewals_total' && s.labels.result === 'ok')
      .reduce((sum, s) => sum + s.value, 0);

  beforeAll(async () => {
    back = await startBackHalf({ awx: 'real' });
    stops.push(() => back.stop());
    const secret = randomBytes(24).toString('hex');
    bridge = await startBridge({
      UNICOP_WEBHOOK_SECRETS: secret,
      UNICOP_REDIS_URL: redisDatabaseUrl(testRedisDatabases.metrics),
    });
    stops.push(() => bridge.close());
    own = new OwnIntents(bridge);
    stops.push(await hookNetboxTo(bridge.url, secret, ['dcim.site']));
    const resolverGroup = uniqueName('resolver');
    await positionGroupAtEnd(back.kafka, resolverGroup, topics.changes);
    const resolver = await startResolver({
      changes: measuredStream(
        new KafkaEventStream(back.kafka, { topic: topics.changes, groupId: resolverGroup }, log),
        metrics,
        'resolver',
      ),
      eventLog: back.eventLog,
      resolver: back.plugin,
      log,
    });
    stops.push(() => resolver.stop());
    const queueName = uniqueName('reconcile');
    queue = new Queue<ReconcileJobData>(queueName, { connection: { url: stack.redisUrl() } });
    stops.push(async () => {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    });
    metrics.readFrom({
      reconcileQueue: queue,
      kafka: back.kafka,
      netbox: netboxRest(stack.netboxUrl(), stack.netboxToken(), 30_000),
    });
    const freezeView = new FreezeView(
      new KafkaEventStream(back.kafka, { topic: topics.control, groupId: uniqueName('control') }, log),
    );
    await freezeView.start();
    stops.push(() => freezeView.stop());
    const dispatcherGroup = uniqueName('dispatcher');
    await positionGroupAtEnd(back.kafka, dispatcherGroup, topics.intents);
    const dispatcher = await startDispatcher(
      { queue, freezeView, eventLog: back.eventLog },
      {
        kafka: back.kafka,
        log,
        groupId: dispatcherGroup,
        wrapBatches: (handler) => {
          const measured = measureBatches(metrics, 'dispatcher', handler);
          return async (records) => {
            const kept = records.filter(own.accepts);
            if (kept.length > 0) await measured(kept);
          };
        },
      },
    );
    stops.push(() => dispatcher.stop());
    const awx = countingLaunches(
      new AwxClient({ baseUrl: back.awx.url, token: back.awx.token, timeoutMs: 30_000 }),
      metrics,
    );
    // The launch waits for the lease's first renewal (up to its cap; launched anyway after it, and
    // the renewal check below fails): the run is leased by then, its renewal timer going.
    const renewedOnce = () =>
      eventually(async () => (await renewalsOk()) > 0, 'a lease renewal', renewalCapMs).catch(
        () => undefined,
      );
    const reconciler = createReconciler({
      plugin: countingLeaseRenewals(back.plugin, metrics),
      awx: {
        ...awx,
        launchJobTemplate: async (id, request) => {
          await renewedOnce();
          return awx.launchJobTemplate(id, request);
        },
        launchWorkflowJobTemplate: async (id, request) => {
          await renewedOnce();
          return awx.launchWorkflowJobTemplate(id, request);
        },
      },
      eventLog: back.eventLog,
      wakeups: pollingOnly,
      log,
      // A 10 s lease, renewed every 3.3 s.
      options: testReconcilerOptions(uniqueName('worker')),
      metrics,
      freezeView,
    });
    const worker = startReconcileWorker(
      measuredReconciler(reconciler, metrics),
      { redisUrl: stack.redisUrl(), concurrency: 2, queueName, metrics },
      log,
    );
    stops.push(() => worker.close());
  }, 180_000);

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });

  it(
    'a created site run by real AWX shows in every named metric, with real values',
    async () => {
      const site = await createSite({ created: (rootKey) => own.roots.add(rootKey) });
      const root = await back.plugin.findRoot(site.rootKey);
      const template = `${root?.awx_template?.type === 'workflow' ? 'workflow' : 'job'}/${root?.awx_template?.id}`;
      // This reconciler's run of the site ended with an AWX job (a workers process elsewhere on the
      // stack could take the same change; then this waits to its cap and fails here, saying so).
      await eventually(
        async () => {
          const ended = parseExposition(await metrics.registry.metrics()).filter(
            (s) => s.name === 'unicop_awx_runs_ended_total' && s.labels.template === template,
          );
          return ended.length ? ended : undefined;
        },
        `this reconciler's AWX run of ${site.rootKey} (${template}) ended`,
        runCapMs,
      );
      // The creation's run; a later save of the site (NetBox's own) may add a skipped one after it.
      const runs = await back.plugin.listRuns(site.rootKey);
      expect(runs.map((r) => r.state)).toContain('succeeded');
      // The run is written in NetBox before its job returns (outcome appended, lease released): wait for the job.
      await eventually(
        async () => {
          const counts = await queue.getJobCounts('completed', 'active');
          return counts.completed && !counts.active ? counts : undefined;
        },
        'the reconcile job completed',
        runCapMs,
      );

      const workers = parseExposition(await metrics.registry.metrics());
      const ingest = parseExposition(await (await fetch(`${bridge.url}/metrics`)).text());
      const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
        samples
          .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
          .reduce((sum, s) => sum + s.value, 0);
      const present = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
        samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

      // RED per stage: items handled without error, and a duration observed.
      for (const stage of ['resolver', 'dispatcher', 'reconciler']) {
        expect(value(workers, 'unicop_stage_items_total', { stage, outcome: 'ok' }), stage).toBeGreaterThan(
          0,
        );
        expect(value(workers, 'unicop_stage_duration_seconds_count', { stage }), stage).toBeGreaterThan(0);
        expect(value(workers, 'unicop_stage_duration_seconds_sum', { stage }), stage).toBeGreaterThan(0);
      }
      expect(
        value(ingest, 'unicop_stage_items_total', { stage: 'bridge_ingest', outcome: 'ok' }),
      ).toBeGreaterThan(0);
      expect(
        value(ingest, 'unicop_stage_duration_seconds_count', { stage: 'bridge_ingest' }),
      ).toBeGreaterThan(0);

      // Per AWX template: launched, ended by outcome, and the duration.
      expect(value(workers, 'unicop_awx_runs_started_total', { template })).toBe(1);
      expect(value(workers, 'unicop_awx_runs_ended_total', { template, outcome: 'succeeded' })).toBe(1);
      expect(value(workers, 'unicop_awx_run_duration_seconds_count', { template })).toBe(1);
      expect(value(workers, 'unicop_awx_run_duration_seconds_sum', { template })).toBeGreaterThan(1);

      // The run's lease was renewed before its launch (at a third of its 10 s TTL), none refused.
      expect(value(workers, 'unicop_lease_renewals_total', { result: 'ok' })).toBeGreaterThan(0);
      expect(value(workers, 'unicop_lease_renewals_total', { result: 'refused' })).toBe(0);

      // Read when scraped: every BullMQ state, both groups, every open state; no probe failed.
      for (const state of ['waiting', 'prioritized', 'delayed', 'active']) {
        expect(present(workers, 'unicop_reconcile_queue_jobs', { state }), state).toHaveLength(1);
      }
      for (const [group, topic] of [
        ['unicop-resolver', topics.changes],
        ['unicop-dispatcher', topics.intents],
      ] as const) {
        const [lag] = present(workers, 'unicop_consumer_lag_messages', { group, topic });
        expect(lag?.value, group).toBeGreaterThanOrEqual(0);
      }
      for (const state of ['queued', 'leased', 'launched', 'awaiting_approval', 'running']) {
        expect(present(workers, 'unicop_open_runs', { state }), state).toHaveLength(1);
        expect(present(workers, 'unicop_open_run_oldest_age_seconds', { state }), state).toHaveLength(1);
      }
      expect(value(workers, 'unicop_metrics_probe_failures_total')).toBe(0);

      // An open run of this test's own (a leased run of a second site, as a worker holding it
      // writes it): the scrape counts it and reports its age, which grows past zero.
      const held = await createSite();
      const lease = await back.plugin.acquireLease(held.root.id, uniqueName('metrics-holder'), 120);
      const runId = randomUUID();
      await back.plugin.createRun({
        run_id: runId,
        root: held.rootKey,
        snapshot_hash: randomBytes(32).toString('hex'),
        cause: 'manual',
        fencing_token: lease.token,
        state: 'leased',
      });
      try {
        const aged = await eventually(
          async () => {
            const now = parseExposition(await metrics.registry.metrics());
            const [age] = present(now, 'unicop_open_run_oldest_age_seconds', { state: 'leased' });
            return (age?.value ?? 0) > 0 ? now : undefined;
          },
          'the open leased run to be counted with an age above zero',
          120_000,
        );
        expect(value(aged, 'unicop_open_runs', { state: 'leased' })).toBeGreaterThanOrEqual(1);
      } finally {
        await back.plugin.updateRun(runId, { fencing_token: lease.token, state: 'skipped' });
        await back.plugin.releaseLease(held.root.id, lease.token);
      }
    },
    runCapMs + renewalCapMs + 60_000,
  );
});
