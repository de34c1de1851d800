/**
 * Real AWX on its own: launches of the stack's `unicop-site` template straight through AWX's API
 * (no UNICOP), each job's life split into phases from AWX's own records — the job's `created`,
 * `started` and `finished`, its first and last job event, and the `awx.analytics.job_lifecycle`
 * lines AWX logs for every state change (var/log/awx/job_lifecycle.log: created, waiting, pre run,
 * preparing playbook, running playbook, work unit assigned, stats wrapup, post run, finalize run,
 * notifications sent). Launches carry the extra vars a UNICOP run would (an empty site snapshot for
 * a root of the bench's own, `site/bench-real-awx-<tag>-<i>`), so the playbook does what a real run
 * of an empty site does; the root directories it writes under the target are removed afterwards.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readStackEnv, repoRoot, resolveSecret } from '../../core/config.js';
import { sleep } from '../support.js';

export interface AwxStack {
  url: string;
  token: string;
  siteTemplateId: number;
  prefixTemplateId: number | undefined;
  targetDir: string;
}

export function awxStack(): AwxStack {
  const env = readStackEnv();
  const ids = JSON.parse(env.UNICOP_AWX_TEMPLATE_IDS ?? '{}') as Record<string, { id: number }>;
  const site = ids['unicop-site'];
  const prefix = ids['unicop-prefix'];
  if (!env.UNICOP_AWX_REAL_URL || !env.UNICOP_AWX_REAL_TOKEN || !site) {
    throw new Error('real AWX is not in var/stack.env: scripts/stack up awx');
  }
  return {
    url: env.UNICOP_AWX_REAL_URL,
    token: resolveSecret(env.UNICOP_AWX_REAL_TOKEN, process.env),
    siteTemplateId: site.id,
    prefixTemplateId: prefix?.id,
    targetDir: env.UNICOP_AWX_TARGET_DIR ?? join(repoRoot, 'var', 'awx', 'targets'),
  };
}

export async function awxRequest<T>(awx: AwxStack, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${awx.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${awx.token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(60_000),
  });
  if (!res.ok)
    throw new Error(`${method} ${path}: AWX answered ${res.status} ${(await res.text()).slice(0, 300)}`);
  return (await res.json()) as T;
}

export interface AwxJobRow {
  id: number;
  status: string;
  created: string;
  started: string | null;
  finished: string | null;
  elapsed: number;
  extra_vars: string;
}

const finalStates = new Set(['successful', 'failed', 'error', 'canceled']);

/** The jobs with these ids, polled once a second until each is in a final state (or the cap passes). */
export async function waitForJobs(awx: AwxStack, ids: number[], capMs: number): Promise<AwxJobRow[]> {
  const deadline = Date.now() + capMs;
  for (;;) {
    const rows: AwxJobRow[] = [];
    for (let from = 0; from < ids.length; from += 100) {
      const page = await awxRequest<{ results: AwxJobRow[] }>(
        awx,
        'GET',
        `/api/v2/jobs/?id__in=${ids.slice(from, from + 100).join(',')}&page_size=100`,
      );
      rows.push(...page.results);
    }
    if (rows.length === ids.length && rows.every((r) => finalStates.has(r.status))) return rows;
    if (Date.now() > deadline) return rows;
    await sleep(1000);
  }
}

/** A job's first and last job event (their `created`: stamped by ansible-runner in the container). */
export async function eventSpan(
  awx: AwxStack,
  id: number,
): Promise<{ first: number; last: number; count: number }> {
  const page = await awxRequest<{ count: number; results: { created: string }[] }>(
    awx,
    'GET',
    `/api/v2/jobs/${id}/job_events/?order_by=created&page_size=200`,
  );
  const times = page.results.map((e) => Date.parse(e.created));
  return { first: Math.min(...times), last: Math.max(...times), count: page.count };
}

/** AWX's lifecycle states of each job, from its job_lifecycle log: state → ms since the epoch. */
export function lifecycleOf(ids: number[]): Map<number, Map<string, number>> {
  const file = join(repoRoot, 'var', 'log', 'awx', 'job_lifecycle.log');
  const wanted = new Set(ids);
  const found = new Map<number, Map<string, number>>();
  if (!existsSync(file)) return found;
  const text = readFileSync(file, 'utf8');
  // Only the tail can hold the bench's jobs: AWX appends, and the file grows by ~2 kB per job.
  const tail = text.slice(Math.max(0, text.length - 4_000 * (ids.length + 50)));
  const line = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*? job-(\d+) .*?"state": "([a-z_]+)"/;
  for (const l of tail.split('\n')) {
    const m = line.exec(l);
    if (!m) continue;
    const id = Number(m[3]);
    if (!wanted.has(id)) continue;
    // AWX's processes run with TZ=UTC (scripts/stack.d/awx.sh).
    const at = Date.parse(`${(m[1] as string).replace(' ', 'T')}.${m[2]}Z`);
    const states = found.get(id) ?? new Map<string, number>();
    // The first time of each state; of `notifications_sent` the last (the `started` notification
    // is sent too, while the job runs).
    if (!states.has(m[4] as string) || m[4] === 'notifications_sent') states.set(m[4] as string, at);
    found.set(id, states);
  }
  return found;
}

/** One job of the bench as AWX recorded it, with the bench's own launch times. */
export interface TimedJob {
  id: number;
  rootKey: string;
  status: string;
  /** When the bench sent the launch request, and when AWX answered it (201). */
  sentAt: number;
  answeredAt: number;
  created: number;
  started: number;
  finished: number;
  lifecycle: Map<string, number>;
  events: { first: number; last: number; count: number };
}

/** What a pass launches: a template, and the extra vars of a UNICOP run of one of the bench's roots. */
export interface JobSpec {
  templateId: number;
  /** The root kind of the bench's root keys (`<kind>/bench-real-awx-<tag>-<i>`). */
  kind: string;
  extraVars(rootKey: string, targetDir: string): Record<string, unknown>;
}

/** The extra vars of a UNICOP run of a root with this snapshot. */
export function runVars(rootKey: string, targetDir: string, snapshot: unknown): Record<string, unknown> {
  return {
    unicop: { root: rootKey, snapshot, hash: '0'.repeat(64), fencing_token: 1, run_id: randomUUID() },
    unicop_target_dir: targetDir,
  };
}

/** `unicop-site` for an empty site: what UNICOP launches for a site root without devices. */
export function emptySite(awx: AwxStack): JobSpec {
  return {
    templateId: awx.siteTemplateId,
    kind: 'site',
    extraVars: (rootKey, targetDir) =>
      runVars(rootKey, targetDir, {
        root: { kind: 'site', key: rootKey, anchor: { name: rootKey } },
        members: [],
      }),
  };
}

export async function launch(
  awx: AwxStack,
  spec: JobSpec,
  rootKey: string,
): Promise<{ id: number; sentAt: number; answeredAt: number }> {
  const sentAt = Date.now();
  const job = await awxRequest<{ id: number }>(
    awx,
    'POST',
    `/api/v2/job_templates/${spec.templateId}/launch/`,
    {
      extra_vars: spec.extraVars(rootKey, awx.targetDir),
    },
  );
  return { id: job.id, sentAt, answeredAt: Date.now() };
}

/**
 * Follows jobs with one list request a second for all of them (a GET of AWX's job list costs its
 * API tens of ms of CPU: polling each job on its own took more CPU than the jobs' AWX side).
 */
class JobWatch {
  private readonly waiting = new Map<number, (row: AwxJobRow) => void>();
  readonly rows = new Map<number, AwxJobRow>();
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(private readonly awx: AwxStack) {
    this.loop = this.poll();
  }

  finished(id: number): Promise<AwxJobRow> {
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }

  private async poll(): Promise<void> {
    while (!this.stopped) {
      await sleep(1000);
      const ids = [...this.waiting.keys()];
      if (ids.length === 0) continue;
      const rows = await waitForJobs(this.awx, ids, 0).catch(() => [] as AwxJobRow[]);
      for (const row of rows) {
        this.rows.set(row.id, row);
        if (finalStates.has(row.status)) {
          this.waiting.get(row.id)?.(row);
          this.waiting.delete(row.id);
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

/**
 * N launches with at most `inFlight` jobs unfinished at once (N = inFlight: one burst), each job's
 * record and phases once all have ended. The roots' directories at the target are removed after.
 */
export async function launchAndTime(
  awx: AwxStack,
  tag: string,
  count: number,
  inFlight: number,
  capMs = 900_000,
  spec: JobSpec = emptySite(awx),
): Promise<{ jobs: TimedJob[]; wallMs: number }> {
  const roots = Array.from({ length: count }, (_, i) => `${spec.kind}/bench-real-awx-${tag}-${i}`);
  const launched: { id: number; rootKey: string; sentAt: number; answeredAt: number }[] = [];
  const watch = new JobWatch(awx);
  const t0 = Date.now();
  let next = 0;
  const lane = async () => {
    while (next < roots.length) {
      const rootKey = roots[next++] as string;
      const l = await launch(awx, spec, rootKey);
      launched.push({ ...l, rootKey });
      await Promise.race([watch.finished(l.id), sleep(capMs)]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  await watch.stop();
  const rows = await waitForJobs(
    awx,
    launched.map((l) => l.id),
    capMs,
  );
  const wallMs = Math.max(...rows.map((r) => Date.parse(r.finished ?? ''))) - t0;
  // The lifecycle log's last lines (stats wrapup, notifications) come just after `finished`.
  await sleep(2000);
  const lifecycle = lifecycleOf(launched.map((l) => l.id));
  const jobs: TimedJob[] = [];
  for (const l of launched) {
    const row = rows.find((r) => r.id === l.id);
    jobs.push({
      ...l,
      status: row?.status ?? 'unknown',
      created: Date.parse(row?.created ?? ''),
      started: Date.parse(row?.started ?? ''),
      finished: Date.parse(row?.finished ?? ''),
      lifecycle: lifecycle.get(l.id) ?? new Map(),
      events: await eventSpan(awx, l.id).catch(() => ({ first: Number.NaN, last: Number.NaN, count: 0 })),
    });
  }
  for (const root of roots) {
    rmSync(join(awx.targetDir, root.replace('/', '-')), { recursive: true, force: true });
  }
  return { jobs, wallMs };
}

/**
 * The phases of one job, in ms, in the order they happen. Each is the gap between two of AWX's
 * records; a phase whose records are missing is NaN.
 */
export const phaseNames = [
  'launch answered (POST → 201)',
  'created → waiting (task manager)',
  'waiting → pre run (dispatcher worker)',
  'pre run → running playbook (private data dir)',
  'running playbook → work unit assigned (receptor submit)',
  'work unit → first event (podman + ansible-playbook start)',
  'first → last event (the playbook)',
  'last event → post run (runner exit, results stream)',
  'post run → finished (status saved)',
  'finished → notification sent (events saved: stats wrapup)',
] as const;

export function phasesOf(job: TimedJob): number[] {
  const s = (name: string) => job.lifecycle.get(name) ?? Number.NaN;
  return [
    job.answeredAt - job.sentAt,
    s('waiting') - s('created'),
    s('pre_run') - s('waiting'),
    s('running_playbook') - s('pre_run'),
    s('work_unit_id_assigned') - s('running_playbook'),
    job.events.first - s('work_unit_id_assigned'),
    job.events.last - job.events.first,
    s('post_run') - job.events.last,
    job.finished - s('post_run'),
    // AWX sends a job's success/failure notifications once it is finished and its events are saved
    // (awx/main/tasks/jobs.py; awx/main/dispatch/worker/callback.py job_stats_wrapup), whichever
    // comes last; `notifications sent` is logged only when the receiver answered.
    Math.max(job.finished, s('stats_wrapup_finished')) - job.finished,
  ];
}
