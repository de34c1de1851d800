/**
 * "Why does it wait": reads every stage a change passes — NetBox's background queue (its webhook is
 * sent from there), the resolver's and dispatcher's consumer lag, the reconcile queue, the root
 * (frozen, its lease, its open run) and AWX's pending jobs — and names the first stage, in the
 * change's own order, that holds work; given a root, also where that root's newest change is held
 * (root-change.ts: its job n-th in the queue, its lease, its AWX job, …). What could not be read is
 * reported `unknown` with the reason, never as zero. Used by the admin API's `GET /status`, `unicop status`, the demo when no
 * outcome came, and `unicop root why`.
 */
import type { Kafka } from 'kafkajs';
import type { NetboxRest } from '../netbox/rest.js';
import type { PluginRoot } from '../plugin/client.js';
import { isTerminal, type RunState } from '../runs/state-machine.js';
import {
  type AwxReader,
  awxBacklog,
  awxJobStatus,
  consumerLags,
  netboxBackgroundQueues,
  type QueueCounts,
  type RootJob,
  type RootJobQueue,
  reconcileJobOfRoot,
  reconcileQueueDepth,
} from './readings.js';
import { type HeldBy, heldSummary, locateRootChange, type RootChange } from './root-change.js';

/** The stages in the order a change passes them. */
export const stageOrder = ['netbox', 'resolver', 'dispatcher', 'reconcile-queue', 'root', 'awx'] as const;
export type StageName = (typeof stageOrder)[number];

export interface StageReading {
  stage: StageName;
  /** holding: work waits here; clear: nothing waits here; unknown: it could not be read (summary says why). */
  state: 'holding' | 'clear' | 'unknown';
  summary: string;
  figures: Record<string, unknown>;
}

export interface PipelineStatus {
  at: string;
  rootKey: string | null;
  /** The first stage, in the change's order, that holds work; null when none does. */
  holding: StageReading | null;
  /** With a root: where its newest change is held (root-change.ts); null without a root. */
  change: RootChange | null;
  stages: StageReading[];
}

/** Where the readings come from; a source left out is reported `unknown` ("not configured"). */
export interface StatusSources {
  /** NetBox's REST API with a superuser token (background queues need one). */
  netbox?: NetboxRest;
  kafka?: Kafka;
  /** The reconcile queue; a BullMQ Queue also finds a root's own job (RootJobQueue). */
  reconcileQueue?: QueueCounts | RootJobQueue;
  /** The plugin's root lookup, for a root's freeze, lease and open run. */
  findRoot?: (key: string) => Promise<PluginRoot | null>;
  /** The live rollout holding a root (read only for a root whose status is `held`), or null. */
  heldBy?: (key: string) => Promise<HeldBy | null>;
  awx?: AwxReader;
  now?: () => Date;
  /** How long one reading may take before its stage is reported unknown (a Redis that is away never answers). */
  readCapMs?: number;
}

/** Rejects when `reading` has not settled within `ms`: the stage is then unknown, never waited for. */
function within<T>(ms: number, reading: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([reading, cap]).finally(() => clearTimeout(timer));
}

const ago = (from: Date, now: Date) =>
  `${Math.max(0, Math.round((now.getTime() - from.getTime()) / 1000))} s ago`;

function unknown(stage: StageName, error: unknown): StageReading {
  const why = error instanceof Error ? error.message : String(error);
  return { stage, state: 'unknown', summary: `could not be read: ${why}`, figures: {} };
}

const notConfigured = (stage: StageName, what: string): StageReading => ({
  stage,
  state: 'unknown',
  summary: `not configured (${what})`,
  figures: {},
});

async function netboxStage(sources: StatusSources, now: Date): Promise<StageReading> {
  if (!sources.netbox) return notConfigured('netbox', 'no NetBox token');
  const queues = await netboxBackgroundQueues(sources.netbox);
  const jobs = queues.reduce((n, q) => n + q.jobs, 0);
  const oldest = queues
    .map((q) => q.oldestJobAt)
    .filter((d): d is Date => d !== null)
    .sort((a, b) => a.getTime() - b.getTime())[0];
  const workers = Math.max(0, ...queues.map((q) => q.workers));
  const figures = {
    jobs,
    oldestJobAt: oldest?.toISOString() ?? null,
    workers,
    queues: queues.map((q) => ({ name: q.name, jobs: q.jobs, workers: q.workers })),
  };
  if (jobs === 0) {
    return { stage: 'netbox', state: 'clear', summary: 'background queues empty', figures };
  }
  const summary = `${jobs} background job(s) queued in NetBox${oldest ? `, the oldest enqueued ${ago(oldest, now)}` : ''}, ${workers} worker(s): a change's webhook is sent once the jobs ahead of it are done${workers === 0 ? ' — and no rqworker is running' : ''}`;
  return { stage: 'netbox', state: 'holding', summary, figures };
}

async function lagStages(sources: StatusSources): Promise<StageReading[]> {
  if (!sources.kafka) {
    return [notConfigured('resolver', 'no Kafka'), notConfigured('dispatcher', 'no Kafka')];
  }
  const lags = await consumerLags(sources.kafka);
  return lags.map(({ group, topic, lag }) => {
    const stage: StageName = group.endsWith('resolver') ? 'resolver' : 'dispatcher';
    return {
      stage,
      state: lag > 0 ? 'holding' : 'clear',
      summary:
        lag > 0
          ? `group ${group} has ${lag} record(s) of ${topic} not yet handled`
          : `group ${group} is at the end of ${topic}`,
      figures: { group, topic, lag },
    };
  });
}

async function queueStage(sources: StatusSources): Promise<StageReading> {
  if (!sources.reconcileQueue) return notConfigured('reconcile-queue', 'no Redis');
  const depth = await reconcileQueueDepth(sources.reconcileQueue);
  const waiting = depth.waiting + depth.prioritized;
  const later = depth.delayed
    ? `; ${depth.delayed} delayed until a later time (lease busy, window, retry, approval re-check)`
    : '';
  return {
    stage: 'reconcile-queue',
    state: waiting > 0 ? 'holding' : 'clear',
    summary:
      waiting > 0
        ? `${waiting} reconcile job(s) wait for a worker, ${depth.active} running${later}`
        : `no job waits for a worker, ${depth.active} running${later}`,
    figures: depth,
  };
}

function rootStage(
  root: PluginRoot | null,
  rootKey: string,
  now: Date,
  heldBy?: HeldBy | null | Error,
): StageReading {
  if (!root) {
    return { stage: 'root', state: 'unknown', summary: `NetBox has no root ${rootKey}`, figures: {} };
  }
  const run = root.last_run;
  const openRun = run && !isTerminal(run.state as RunState) ? run : null;
  const figures = {
    frozen: root.frozen,
    lease: {
      live: root.lease.live,
      holder: root.lease.holder,
      token: root.lease.token,
      expiresAt: root.lease.expires_at,
    },
    openRun: openRun
      ? {
          runId: openRun.run_id,
          state: openRun.state,
          started: openRun.started,
          awxJobId: openRun.awx_job_id,
        }
      : null,
  };
  if (root.frozen) {
    const summary = `root ${rootKey} is frozen: ${root.frozen_reason || 'no reason recorded'}`;
    return { stage: 'root', state: 'holding', summary, figures };
  }
  if (root.status === 'held') {
    const by = heldBy && !(heldBy instanceof Error) ? heldBy : null;
    return {
      stage: 'root',
      state: 'holding',
      summary: heldSummary(rootKey, heldBy),
      figures: { ...figures, heldBy: by },
    };
  }
  if (openRun) {
    const job = openRun.awx_job_id ? `, AWX job ${openRun.awx_job_id}` : '';
    const holder = root.lease.live ? `; lease held by ${root.lease.holder} (token ${root.lease.token})` : '';
    const summary = `run ${openRun.run_id} is ${openRun.state} since ${ago(new Date(openRun.started), now)}${job}${holder}`;
    return { stage: 'root', state: 'holding', summary, figures };
  }
  if (root.lease.live) {
    const summary = `lease held by ${root.lease.holder} (token ${root.lease.token}) until ${root.lease.expires_at}`;
    return { stage: 'root', state: 'holding', summary, figures };
  }
  return { stage: 'root', state: 'clear', summary: `root ${rootKey}: ${root.status}, lease free`, figures };
}

async function awxStage(sources: StatusSources, now: Date): Promise<StageReading> {
  if (!sources.awx) return notConfigured('awx', 'no AWX token');
  const backlog = await awxBacklog(sources.awx);
  const waiting = backlog.pending + backlog.waiting;
  const oldest = backlog.oldestWaiting;
  const figures = {
    pending: backlog.pending,
    waiting: backlog.waiting,
    running: backlog.running,
    oldestWaiting: oldest ? { ...oldest, createdAt: oldest.createdAt.toISOString() } : null,
  };
  if (waiting === 0) {
    return {
      stage: 'awx',
      state: 'clear',
      summary: `no job waits to start, ${backlog.running} running`,
      figures,
    };
  }
  const summary = `${waiting} AWX job(s) wait to start (${backlog.pending} pending, ${backlog.waiting} waiting)${oldest ? `, the oldest ${oldest.type} ${oldest.id} created ${ago(oldest.createdAt, now)}` : ''}, ${backlog.running} running`;
  return { stage: 'awx', state: 'holding', summary, figures };
}

const findsRootJobs = (queue: StatusSources['reconcileQueue']): queue is RootJobQueue =>
  queue !== undefined && 'getDeduplicationJobId' in queue;

const asError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)));

/** The root, its job in the queue and its open run's AWX status, each an Error when it could not be read. */
async function rootReadings(sources: StatusSources, rootKey: string, capMs: number) {
  const rootRead = sources.findRoot
    ? within(capMs, sources.findRoot(rootKey)).catch(asError)
    : Promise.resolve(new Error('not configured (no NetBox token)'));
  const queue = sources.reconcileQueue;
  const jobRead: Promise<RootJob | null | Error> = findsRootJobs(queue)
    ? within(capMs, reconcileJobOfRoot(queue, rootKey)).catch(asError)
    : Promise.resolve(new Error('not configured (no Redis)'));
  const [root, job] = await Promise.all([rootRead, jobRead]);
  const heldBy =
    root instanceof Error || root?.status !== 'held'
      ? undefined
      : sources.heldBy
        ? await within(capMs, sources.heldBy(rootKey)).catch(asError)
        : new Error('not configured (no NetBox token)');
  const run = root instanceof Error ? null : root?.last_run;
  const awxStatus =
    run?.awx_job_id && !isTerminal(run.state as RunState) && sources.awx
      ? await within(
          capMs,
          awxJobStatus(sources.awx, run.awx_job_type === 'workflow' ? 'workflow' : 'job', run.awx_job_id),
        ).catch(() => null)
      : null;
  return { root, job, awxStatus, ...(heldBy === undefined ? {} : { heldBy }) };
}

/**
 * Reads every stage (concurrently) and names the first, in the change's order, that holds work;
 * with a root, also where that root's newest change is held (root-change.ts).
 */
export async function whyItWaits(
  sources: StatusSources,
  options: { rootKey?: string | null } = {},
): Promise<PipelineStatus> {
  const now = (sources.now ?? (() => new Date()))();
  const rootKey = options.rootKey ?? null;
  const capMs = sources.readCapMs ?? 10_000;
  const ofRoot = rootKey ? rootReadings(sources, rootKey, capMs) : null;
  const read = <T>(stages: StageName[], reading: () => Promise<T>, wrap: (v: T) => StageReading[]) =>
    within(capMs, reading()).then(wrap, (error: unknown) => stages.map((s) => unknown(s, error)));
  const readings = (
    await Promise.all([
      read(
        ['netbox'],
        () => netboxStage(sources, now),
        (r) => [r],
      ),
      read(
        ['resolver', 'dispatcher'],
        () => lagStages(sources),
        (r) => r,
      ),
      read(
        ['reconcile-queue'],
        () => queueStage(sources),
        (r) => [r],
      ),
      rootKey && ofRoot
        ? ofRoot.then(({ root, heldBy }) => [
            root instanceof Error
              ? sources.findRoot
                ? unknown('root', root)
                : notConfigured('root', 'no NetBox token')
              : rootStage(root, rootKey, now, heldBy),
          ])
        : Promise.resolve([]),
      read(
        ['awx'],
        () => awxStage(sources, now),
        (r) => [r],
      ),
    ])
  ).flat();
  const stages = readings.sort((a, b) => stageOrder.indexOf(a.stage) - stageOrder.indexOf(b.stage));
  const upstream = ['netbox', 'resolver', 'dispatcher'];
  const change =
    rootKey && ofRoot
      ? locateRootChange({
          rootKey,
          ...(await ofRoot),
          upstream: stages.filter((s) => upstream.includes(s.stage)),
          now,
        })
      : null;
  return {
    at: now.toISOString(),
    rootKey,
    holding: stages.find((s) => s.state === 'holding') ?? null,
    change,
    stages,
  };
}

/** Where a root's newest change is, for a person: `reconciled: …` or `held at <stage> (<reason>): …`. */
export function describeRootChange(change: RootChange): string {
  if (change.reconciled) return change.summary;
  return `held at ${change.stage ?? '(stage unknown)'} (${change.reason}): ${change.summary}`;
}

/** The report as lines for a person: the root's change (with a root), the holding stage, then every stage. */
export function describeWait(status: PipelineStatus): string {
  const head = status.holding
    ? `held at ${status.holding.stage}: ${status.holding.summary}`
    : `no stage holds work${status.stages.some((s) => s.state === 'unknown') ? ' (some could not be read)' : ''}`;
  const mark = { holding: '>', clear: ' ', unknown: '?' } as const;
  return [
    ...(status.change
      ? [`${status.change.rootKey}: newest change ${describeRootChange(status.change)}`]
      : []),
    `${status.change ? 'pipeline: ' : ''}${head}`,
    ...status.stages.map((s) => `  ${mark[s.state]} ${s.stage.padEnd(16)}${s.state.padEnd(8)} ${s.summary}`),
  ].join('\n');
}
