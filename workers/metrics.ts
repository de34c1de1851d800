/**
 * The workers' Prometheus metrics (served on UNICOP_WORKERS_METRICS_HOST:PORT at /metrics).
 *
 * - Per stage, RED: `unicop_stage_items_total{stage,outcome}` (rate and errors) and
 *   `unicop_stage_duration_seconds{stage}` (a resolver or dispatcher batch, a reconcile job).
 * - Per AWX template (`job/9`, `workflow/12`): runs launched, runs ended by outcome, their duration.
 * - Per outcome branch: runs ended by state and failure class, reconcile jobs by queue result.
 * - Lease renewals by result; sweeps done, the last one's time and the interval (for "no sweep").
 * - Read when scraped, from the system that holds them (core/status/readings.ts): the reconcile
 *   queue's depth by BullMQ state, each consumer group's lag, open runs and the oldest one's age by
 *   state. A reading that fails leaves its gauge empty and counts a probe failure — never a zero.
 * - The global freeze: `unicop_frozen{reason}` (1 for why it is frozen: `person`, or the fail-safe
 *   trigger that froze it; 0 for the others) and the fail-safe's trips by trigger (decision 0055).
 * - Gradual rollouts, read when scraped (decision 0069): `unicop_rollouts{state}` (live rollouts: open,
 *   halted) and `unicop_rollout_roots{state}` (their roots held for a later wave, or released and not
 *   ended), one plugin reading per scrape.
 *
 * The wrappers below put the counting around a stage without the stage knowing.
 */
import type { Kafka } from 'kafkajs';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { failsafeTriggers, freezeReasonLabel } from '../core/control/automatic-freeze.js';
import type { GlobalFreeze } from '../core/control/freeze-view.js';
import type { BatchHandler, EventStream } from '../core/event-log/consumer.js';
import type { NetboxRest } from '../core/netbox/rest.js';
import { NetboxUnavailableError, PluginConflictError } from '../core/plugin/client.js';
import type { LiveRolloutRoots } from '../core/rollout/store.js';
import {
  consumerLags,
  type OpenRuns,
  openRuns,
  type QueueCounts,
  queueStates,
  reconcileQueueDepth,
} from '../core/status/readings.js';
import type { Executor, RunStore } from './reconciler/ports.js';
import type { Reconciler } from './reconciler/reconcile.js';

/** Where the scrape-time gauges read from; a source left out leaves its gauges empty. */
export interface WorkerReadings {
  reconcileQueue?: QueueCounts;
  kafka?: Kafka;
  netbox?: NetboxRest;
  /** The global freeze as this process sees it (its freeze view). */
  freeze?: { globalState(): GlobalFreeze };
  /** The plugin's live rollouts (rollouts/live/: their counts per state). */
  rollouts?: { live(): Promise<LiveRolloutRoots> };
}

export type StageName = 'resolver' | 'dispatcher' | 'reconciler';

const durationBuckets = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export function createWorkerMetrics() {
  const registry = new Registry();
  const readings: WorkerReadings = {};
  const runs = new Counter({
    name: 'unicop_runs_total',
    help: 'Runs ended, by terminal state and failure class ("none" on success or skip)',
    labelNames: ['state', 'failure_class'] as const,
    registers: [registry],
  });
  const runDuration = new Histogram({
    name: 'unicop_run_duration_seconds',
    help: 'From the run record to its terminal state, by terminal state',
    labelNames: ['state'] as const,
    buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const jobs = new Counter({
    name: 'unicop_reconcile_jobs_total',
    help: 'Reconcile jobs handled, by what the queue did with them (done, later, paused, failed)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const swept = new Counter({
    name: 'unicop_sweep_intents_total',
    help: 'Intents emitted by the sweeper, by cause (sweep, resume)',
    labelNames: ['cause'] as const,
    registers: [registry],
  });
  const sweeps = new Counter({
    name: 'unicop_sweeps_total',
    help: 'Sweeps completed, by cause (sweep, resume)',
    labelNames: ['cause'] as const,
    registers: [registry],
  });
  const lastSweep = new Gauge({
    name: 'unicop_sweep_last_completed_timestamp_seconds',
    help: 'When the last sweep completed (Unix time)',
    registers: [registry],
  });
  const sweepInterval = new Gauge({
    name: 'unicop_sweep_interval_seconds',
    help: 'The configured sweep interval (UNICOP_SWEEP_INTERVAL_SECONDS)',
    registers: [registry],
  });
  const stageItems = new Counter({
    name: 'unicop_stage_items_total',
    help: 'Items a stage handled (records of a batch, reconcile jobs), by outcome (ok, error)',
    labelNames: ['stage', 'outcome'] as const,
    registers: [registry],
  });
  const stageDuration = new Histogram({
    name: 'unicop_stage_duration_seconds',
    help: 'Time a stage took per batch (resolver, dispatcher) or per reconcile job (reconciler)',
    labelNames: ['stage'] as const,
    buckets: durationBuckets,
    registers: [registry],
  });
  const awxRunsStarted = new Counter({
    name: 'unicop_awx_runs_started_total',
    help: 'AWX jobs launched for runs, by template (job/<id>, workflow/<id>)',
    labelNames: ['template'] as const,
    registers: [registry],
  });
  const awxRunsEnded = new Counter({
    name: 'unicop_awx_runs_ended_total',
    help: 'Runs with an AWX job that ended, by template and outcome (the run terminal state)',
    labelNames: ['template', 'outcome'] as const,
    registers: [registry],
  });
  const awxRunDuration = new Histogram({
    name: 'unicop_awx_run_duration_seconds',
    help: 'From the run record to its end, for runs with an AWX job, by template',
    labelNames: ['template'] as const,
    buckets: [1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600],
    registers: [registry],
  });
  const leaseRenewals = new Counter({
    name: 'unicop_lease_renewals_total',
    help: 'Root lease renewals, by result (ok, refused: lost to the fence, unavailable, error)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const probeFailures = new Counter({
    name: 'unicop_metrics_probe_failures_total',
    help: 'Scrape-time readings that failed (their gauges stay empty), by probe',
    labelNames: ['probe'] as const,
    registers: [registry],
  });
  const failsafeTrips = new Counter({
    name: 'unicop_failsafe_trips_total',
    help: 'Global freezes the fail-safe set, by trigger (consumer_lag, resolver_errors, failed_roots)',
    labelNames: ['trigger'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'unicop_frozen',
    help: 'Automation frozen globally: 1 for the reason (person, or the fail-safe trigger), 0 for the others',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      const freeze = readings.freeze;
      if (!freeze) return;
      const reason = freezeReasonLabel(freeze.globalState());
      for (const label of ['person', ...failsafeTriggers])
        this.set({ reason: label }, label === reason ? 1 : 0);
    },
  });
  const probe = async (name: string, gauge: Gauge<string>, read: () => Promise<void>) => {
    gauge.reset();
    await read().catch(() => probeFailures.inc({ probe: name }));
  };
  new Gauge({
    name: 'unicop_reconcile_queue_jobs',
    help: 'Reconcile jobs in the BullMQ queue, by state (waiting, prioritized, delayed, active)',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const queue = readings.reconcileQueue;
      if (!queue) return;
      await probe('reconcile_queue', this, async () => {
        const depth = await reconcileQueueDepth(queue);
        for (const state of queueStates) this.set({ state }, depth[state]);
      });
    },
  });
  new Gauge({
    name: 'unicop_consumer_lag_messages',
    help: 'Records a consumer group has not committed, by group and topic',
    labelNames: ['group', 'topic'] as const,
    registers: [registry],
    async collect() {
      const kafka = readings.kafka;
      if (!kafka) return;
      await probe('consumer_lag', this, async () => {
        for (const { group, topic, lag } of await consumerLags(kafka)) this.set({ group, topic }, lag);
      });
    },
  });
  // Both gauges come from one reading of the plugin per scrape: the registry collects its metrics
  // concurrently, so each gauge awaits the reading already under way instead of starting another.
  let openRunsReading: Promise<OpenRuns[]> | null = null;
  const readOpenRuns = (netbox: NetboxRest): Promise<OpenRuns[]> => {
    openRunsReading ??= openRuns(netbox).finally(() => {
      openRunsReading = null;
    });
    return openRunsReading;
  };
  const openRunGauge = (name: string, help: string, value: (runs: OpenRuns, now: number) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const netbox = readings.netbox;
        if (!netbox) return;
        await probe('open_runs', this, async () => {
          const now = Date.now();
          for (const runs of await readOpenRuns(netbox)) this.set({ state: runs.state }, value(runs, now));
        });
      },
    });
  openRunGauge('unicop_open_runs', 'Runs not yet ended, by state (NetBox plugin)', (runs) => runs.count);
  openRunGauge(
    'unicop_open_run_oldest_age_seconds',
    'Age of the oldest run not yet ended, by state (awaiting_approval: the oldest approval waiting)',
    (runs, now) => (runs.oldest ? Math.max(0, (now - runs.oldest.startedAt.getTime()) / 1000) : 0),
  );
  // Both rollout gauges from one reading per scrape, as the open-run gauges above.
  let liveReading: Promise<LiveRolloutRoots> | null = null;
  const readLive = (source: { live(): Promise<LiveRolloutRoots> }): Promise<LiveRolloutRoots> => {
    liveReading ??= source.live().finally(() => {
      liveReading = null;
    });
    return liveReading;
  };
  const rolloutGauge = (name: string, help: string, counts: (live: LiveRolloutRoots) => object | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const source = readings.rollouts;
        if (!source) return;
        await probe('rollouts', this, async () => {
          const found = counts(await readLive(source));
          if (!found) throw new Error('rollouts/live/ answered no counts'); // an older plugin: no gauge
          for (const [state, n] of Object.entries(found)) this.set({ state }, Number(n));
        });
      },
    });
  rolloutGauge('unicop_rollouts', 'Live gradual rollouts, by state (open, halted)', (live) => live.rollouts);
  rolloutGauge(
    'unicop_rollout_roots',
    'Roots of live rollouts, by member state (held: waiting for a later wave; released: run not ended)',
    (live) => live.members,
  );
  return {
    registry,
    runs,
    runDuration,
    jobs,
    swept,
    sweeps,
    lastSweep,
    sweepInterval,
    stageItems,
    stageDuration,
    awxRunsStarted,
    awxRunsEnded,
    awxRunDuration,
    leaseRenewals,
    probeFailures,
    failsafeTrips,
    /** Sets where the scrape-time gauges read from (workers/main.ts; tests). */
    readFrom(sources: WorkerReadings): void {
      Object.assign(readings, sources);
    },
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

/** A stage's handling timed and counted: items by outcome, duration per call. */
async function measured<T>(
  metrics: WorkerMetrics,
  stage: StageName,
  items: number,
  handle: () => Promise<T>,
): Promise<T> {
  const end = metrics.stageDuration.startTimer({ stage });
  try {
    const result = await handle();
    metrics.stageItems.inc({ stage, outcome: 'ok' }, items);
    return result;
  } catch (error) {
    metrics.stageItems.inc({ stage, outcome: 'error' }, items);
    throw error;
  } finally {
    end();
  }
}

/** A consumer's batch handler with its stage's RED metrics (a thrown batch counts its records as errors). */
export function measureBatches(
  metrics: WorkerMetrics,
  stage: StageName,
  handler: BatchHandler,
): BatchHandler {
  return (records) => measured(metrics, stage, records.length, () => handler(records));
}

/** An event stream whose batches are measured as `stage`. */
export function measuredStream(stream: EventStream, metrics: WorkerMetrics, stage: StageName): EventStream {
  return {
    start: (handler) => stream.start(measureBatches(metrics, stage, handler)),
    stop: () => stream.stop(),
    lag: () => stream.lag(),
  };
}

/** The reconciler with the `reconciler` stage measured per job (a throw — paused or terminal — is an error). */
export function measuredReconciler(reconciler: Reconciler, metrics: WorkerMetrics): Reconciler {
  return { reconcile: (job) => measured(metrics, 'reconciler', 1, () => reconciler.reconcile(job)) };
}

/** The run store with each lease renewal counted by result. */
export function countingLeaseRenewals(store: RunStore, metrics: WorkerMetrics): RunStore {
  return {
    findRoot: (key) => store.findRoot(key),
    acquireLease: (id, holder, ttl, options) => store.acquireLease(id, holder, ttl, options),
    renewLease: async (id, token, ttl) => {
      try {
        const lease = await store.renewLease(id, token, ttl);
        metrics.leaseRenewals.inc({ result: 'ok' });
        return lease;
      } catch (error) {
        const result =
          error instanceof PluginConflictError
            ? 'refused'
            : error instanceof NetboxUnavailableError
              ? 'unavailable'
              : 'error';
        metrics.leaseRenewals.inc({ result });
        throw error;
      }
    },
    releaseLease: (id, token) => store.releaseLease(id, token),
    listRuns: (key, states) => store.listRuns(key, states),
    runsAtHash: (key, state, hash, limit) => store.runsAtHash(key, state, hash, limit),
    snapshot: (id) => store.snapshot(id),
    currentHash: (id) => store.currentHash(id),
    createRun: (run) => store.createRun(run),
    writeRun: (runId, write) => store.writeRun(runId, write),
  };
}

/** The template label of an AWX template: `job/<id>` or `workflow/<id>`. */
export const templateLabel = (type: 'job' | 'workflow', id: number | null) => `${type}/${id ?? 'none'}`;

/** The executor with each launch counted per template (a launch an earlier attempt made is not counted again). */
export function countingLaunches(awx: Executor, metrics: WorkerMetrics): Executor {
  return {
    launchJobTemplate: async (id, request) => {
      const launched = await awx.launchJobTemplate(id, request);
      if (!launched.adopted) metrics.awxRunsStarted.inc({ template: templateLabel('job', id) });
      return launched;
    },
    launchWorkflowJobTemplate: async (id, request) => {
      const launched = await awx.launchWorkflowJobTemplate(id, request);
      if (!launched.adopted) metrics.awxRunsStarted.inc({ template: templateLabel('workflow', id) });
      return launched;
    },
    findJobByRunId: (id, runId, since) => awx.findJobByRunId(id, runId, since),
    findWorkflowJobByRunId: (id, runId, since) => awx.findWorkflowJobByRunId(id, runId, since),
    getJob: (id) => awx.getJob(id),
    getWorkflowJob: (id) => awx.getWorkflowJob(id),
    approvalsOfWorkflowJob: (id) => awx.approvalsOfWorkflowJob(id),
    cancelJob: (id) => awx.cancelJob(id),
    cancelWorkflowJob: (id) => awx.cancelWorkflowJob(id),
  };
}

/** A run that had an AWX job ended: counted and timed per template. */
export function recordAwxRunEnd(
  metrics: WorkerMetrics | undefined,
  template: { type: 'job' | 'workflow'; id: number | null },
  outcome: string,
  seconds: number,
): void {
  const label = templateLabel(template.type, template.id);
  metrics?.awxRunsEnded.inc({ template: label, outcome });
  metrics?.awxRunDuration.observe({ template: label }, seconds);
}

/** The resolver's cumulative record attempts by outcome, for the fail-safe's error rate. */
export async function resolverAttempts(metrics: WorkerMetrics): Promise<{ ok: number; error: number }> {
  const counts = { ok: 0, error: 0 };
  for (const { labels, value } of (await metrics.stageItems.get()).values) {
    if (labels.stage === 'resolver' && (labels.outcome === 'ok' || labels.outcome === 'error')) {
      counts[labels.outcome] += value;
    }
  }
  return counts;
}
