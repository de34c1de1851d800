/**
 * Readings of where work stands in each stage, shared by the workers' /metrics (workers/metrics.ts)
 * and "why does it wait" (why-it-waits.ts): NetBox's background queue (webhooks not sent yet),
 * the consumer groups' lag, the reconcile queue, open runs by state, a root's lease, AWX's pending
 * jobs. Each is one read of the system that holds the figure — nothing is cached or derived — and
 * each throws when that system cannot be read (callers say "unknown", never "zero").
 */
import type { Queue } from 'bullmq';
import type { Kafka } from 'kafkajs';
import { consumerGroupLag } from '../event-log/consumer.js';
import { consumerGroups } from '../event-log/groups.js';
import { topics } from '../events/catalogue.js';
import type { NetboxRest } from '../netbox/rest.js';
import { type OpenRunState, openRunStates } from '../runs/state-machine.js';
import { type FetchLike, fetchTrusting } from '../tls/trusted-fetch.js';

/** NetBox's RQ queues (`GET /api/core/background-queues/`; NetBox 4.7 asks for a superuser token). */
export interface BackgroundQueue {
  name: string;
  /** Jobs waiting in the queue (webhooks, search indexing, scripts, …). */
  jobs: number;
  /** When the job at the head of the queue was enqueued; null when the queue is empty. */
  oldestJobAt: Date | null;
  workers: number;
  startedJobs: number;
  failedJobs: number;
}

interface BackgroundQueueAnswer {
  results: {
    name: string;
    jobs: number;
    oldest_job_timestamp: string;
    workers: number;
    started_jobs: number;
    failed_jobs: number;
  }[];
}

/**
 * django-rq writes the head job's enqueue time as "YYYY-MM-DD, HH:MM:SS" in NetBox's TIME_ZONE
 * (django_rq/utils.py get_statistics), "-" for an empty queue. `timeZoneOffset` is that zone's
 * offset ("Z" for UTC, the stack's TIME_ZONE).
 */
export function parseRqTimestamp(text: string, timeZoneOffset = 'Z'): Date | null {
  const m = /^(\d{4}-\d{2}-\d{2}), (\d{2}:\d{2}:\d{2})$/.exec(text.trim());
  if (!m) return null;
  const at = new Date(`${m[1]}T${m[2]}${timeZoneOffset}`);
  return Number.isNaN(at.getTime()) ? null : at;
}

export async function netboxBackgroundQueues(nb: NetboxRest): Promise<BackgroundQueue[]> {
  const answer = await nb<BackgroundQueueAnswer>('GET', '/api/core/background-queues/');
  return answer.results.map((q) => ({
    name: q.name,
    jobs: q.jobs,
    oldestJobAt: parseRqTimestamp(q.oldest_job_timestamp),
    workers: q.workers,
    startedJobs: q.started_jobs,
    failedJobs: q.failed_jobs,
  }));
}

/** UNICOP's consumer groups and the topic each consumes. */
export const consumedTopics = [
  { group: consumerGroups.resolver, topic: topics.changes },
  { group: consumerGroups.dispatcher, topic: topics.intents },
] as const;

export interface ConsumerLag {
  group: string;
  topic: string;
  /** Records on the topic the group has not committed (fetchTopicOffsets' high minus fetchOffsets'). */
  lag: number;
}

/** The lag of each of UNICOP's consumer groups (core/event-log/consumer.ts consumerGroupLag). */
export function consumerLags(kafka: Kafka): Promise<ConsumerLag[]> {
  return Promise.all(
    consumedTopics.map(async ({ group, topic }) => ({
      group,
      topic,
      lag: await consumerGroupLag(kafka, group, topic),
    })),
  );
}

/** The BullMQ states a reconcile job waits or runs in. */
export const queueStates = ['waiting', 'prioritized', 'delayed', 'active'] as const;
export type QueueState = (typeof queueStates)[number];

/** The part of a BullMQ Queue read here. */
export interface QueueCounts {
  getJobCounts(...states: QueueState[]): Promise<Record<string, number>>;
}

export async function reconcileQueueDepth(queue: QueueCounts): Promise<Record<QueueState, number>> {
  const counts = await queue.getJobCounts(...queueStates);
  return Object.fromEntries(queueStates.map((s) => [s, counts[s] ?? 0])) as Record<QueueState, number>;
}

export interface OpenRuns {
  state: OpenRunState;
  count: number;
  /** The oldest open run in this state: its root and when it started; null when there is none. */
  oldest: { runId: string; rootKey: string; startedAt: Date } | null;
}

interface RunListAnswer {
  count: number;
  results: { run_id: string; started: string; root: { key: string } | null }[];
}

/** Per open state, how many runs are in it and the oldest (the plugin's run listing, oldest first). */
export function openRuns(nb: NetboxRest): Promise<OpenRuns[]> {
  return Promise.all(
    openRunStates.map(async (state) => {
      const page = await nb<RunListAnswer>(
        'GET',
        `/api/plugins/unicop/runs/?state=${state}&ordering=started&limit=1`,
      );
      const first = page.results[0];
      return {
        state,
        count: page.count,
        oldest: first
          ? { runId: first.run_id, rootKey: first.root?.key ?? '', startedAt: new Date(first.started) }
          : null,
      };
    }),
  );
}

/** AWX's jobs that wait to start: `pending` (capacity) and `waiting` (dependencies). */
export interface AwxBacklog {
  pending: number;
  waiting: number;
  running: number;
  oldestWaiting: { id: number; type: string; name: string; createdAt: Date } | null;
}

export interface AwxReader {
  url: string;
  /** A value, or a function giving the current one (a `vault:` token kept current): read per request. */
  token: string | (() => string);
  timeoutMs?: number;
  /** PEM CA bundle trusted for an https AWX instead of the system's (UNICOP_AWX_CA_FILE, decision 0056). */
  ca?: string;
}

/** One fetch per CA bundle (each keeps its own connection pool). */
const trustedFetches = new Map<string, FetchLike>();

/** A GET of AWX's API with the reader's token, timeout and trust. */
function awxGet(awx: AwxReader, path: string): Promise<Response> {
  const request = new Request(`${awx.url}${path}`, {
    headers: {
      authorization: `Bearer ${typeof awx.token === 'function' ? awx.token() : awx.token}`,
      accept: 'application/json',
    },
  });
  const signal = AbortSignal.timeout(awx.timeoutMs ?? 10_000);
  if (awx.ca === undefined) return fetch(request, { signal });
  let trusted = trustedFetches.get(awx.ca);
  if (!trusted) {
    trusted = fetchTrusting(awx.ca);
    trustedFetches.set(awx.ca, trusted);
  }
  return trusted(request, { signal });
}

interface UnifiedJobsAnswer {
  count: number;
  results: { id: number; type: string; name: string; created: string; status: string }[];
}

/** AWX's unified jobs by status (`/api/v2/unified_jobs/`: jobs, workflow jobs, project updates, …). */
export async function awxBacklog(awx: AwxReader): Promise<AwxBacklog> {
  const read = async (query: string) => {
    const res = await awxGet(awx, `/api/v2/unified_jobs/?${query}`);
    if (!res.ok) throw new Error(`AWX answered ${res.status} (GET /api/v2/unified_jobs/)`);
    return (await res.json()) as UnifiedJobsAnswer;
  };
  const [pending, waiting, running, oldest] = await Promise.all([
    read('status=pending&page_size=1'),
    read('status=waiting&page_size=1'),
    read('status=running&page_size=1'),
    read('status__in=pending,waiting&order_by=created&page_size=1'),
  ]);
  const first = oldest.results[0];
  return {
    pending: pending.count,
    waiting: waiting.count,
    running: running.count,
    oldestWaiting: first
      ? { id: first.id, type: first.type, name: first.name, createdAt: new Date(first.created) }
      : null,
  };
}

/** The part of the reconcile queue (a BullMQ Queue) read to find one root's job. */
export type RootJobQueue = QueueCounts &
  Pick<Queue, 'getDeduplicationJobId' | 'getJobState' | 'getJob' | 'getRanges' | 'toKey' | 'getBackend'>;

/** A root's job in the reconcile queue (at most one waits per root: jobs are deduplicated by root key). */
export interface RootJob {
  jobId: string;
  state: string;
  /** The intent the job carries (its newest: a later intent replaces a waiting job's data). */
  intentId: string | null;
  /** Waiting or prioritized: how many jobs BullMQ hands to workers before this one. */
  ahead: number | null;
  /** Delayed: when it becomes due (lease busy, change window, retry). */
  dueAt: Date | null;
  /** Active: a newer intent BullMQ keeps for when this job ends (`keepLastIfActive`), or null. */
  nextIntentId: string | null;
}

/**
 * The root's job: the job its deduplication id (the root key) names, where it stands, and — waiting —
 * its place: the wait list is taken first (oldest first), then the prioritized set (lowest number,
 * then oldest), so the jobs ahead are those listed before it in that order. Null when the root has
 * no job waiting or running.
 */
export async function reconcileJobOfRoot(queue: RootJobQueue, rootKey: string): Promise<RootJob | null> {
  const jobId = await queue.getDeduplicationJobId(rootKey);
  if (!jobId) return null;
  const state = await queue.getJobState(jobId);
  if (!['waiting', 'prioritized', 'delayed', 'active'].includes(state)) return null;
  const job = await queue.getJob(jobId);
  const data = (job?.data ?? {}) as { intentId?: string };
  let ahead: number | null = null;
  if (state === 'waiting' || state === 'prioritized') {
    const order = await queue.getRanges(['waiting', 'prioritized'], 0, -1, true);
    const at = order.indexOf(jobId);
    ahead = at < 0 ? null : at;
  }
  const client = await queue.getBackend().client;
  let dueAt: Date | null = null;
  if (state === 'delayed') {
    // The delayed set's score is the due time in ms times 0x1000 plus a counter (BullMQ addDelayedJob).
    const score = await client.zscore(queue.toKey('delayed'), jobId);
    dueAt = score === null ? null : new Date(Math.floor(Number(score) / 0x1000));
  }
  const nextIntentId =
    state === 'active' ? ((await client.hget(queue.toKey(`dn:${rootKey}`), 'jid')) ?? null) : null;
  return { jobId, state, intentId: data.intentId ?? null, ahead, dueAt, nextIntentId };
}

/** One AWX job's status now (`/api/v2/jobs/<id>/` or `/api/v2/workflow_jobs/<id>/`). */
export async function awxJobStatus(awx: AwxReader, kind: 'job' | 'workflow', id: number): Promise<string> {
  const path = `/api/v2/${kind === 'workflow' ? 'workflow_jobs' : 'jobs'}/${id}/`;
  const res = await awxGet(awx, path);
  if (!res.ok) throw new Error(`AWX answered ${res.status} (GET ${path})`);
  return ((await res.json()) as { status: string }).status;
}
