/**
 * One fault run on the real stack (issue #14 item 6): the compiled bridge and several workers
 * processes, real NetBox edits across the run's roots (real webhooks to the run's bridge), and a
 * seeded schedule of kill -9 and restart — the suite's own processes, and through the service hooks
 * Kafka, Redis, NetBox's gunicorn and rqworker and AWX — then, once all is quiet, the invariant
 * checker (checker.ts). Each fault is measured: the service back after its restart, the first new
 * edit reconciled after that, the runs open at the kill all ended after that.
 *
 * Isolation on a shared stack: the run's NetBox webhook fires only for the run's own sites (an
 * event-rule condition on the name), its queue and sweeper state live in their own Redis database,
 * and which kinds it fires is an option (only the process faults until the stack is the run's alone).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { notificationName } from '../../../core/awx/bootstrap.js';
import { repoRoot, resolveSecret } from '../../../core/config.js';
import { consumerGroups } from '../../../core/event-log/groups.js';
import { topics } from '../../../core/events/catalogue.js';
import { NetboxUnavailableError } from '../../../core/netbox/rest.js';
import { terminalRunStates } from '../../../core/runs/state-machine.js';
import { redisEpochKey } from '../../../workers/sweeper/sweeper.js';
import { takeRealAwx } from '../../support/awx.js';
import { positionGroupAtEnd } from '../../support/kafka.js';
import { netbox } from '../../support/netbox.js';
import { stack, stackFact } from '../../support/stack.js';
import { type CheckResult, checkInvariants, topicEnds } from './checker.js';
import { type FaultRoot, patchUntilAcknowledged, startEditors } from './generator.js';
import { portFree, processReady, type SpawnedUnicop, spawnUnicop } from './processes.js';
import { type FaultKind, faultSchedule, type ScheduledFault, seededRandom } from './schedule.js';
import { isServiceFault, killService, restartService, serviceHealthy } from './services.js';

export interface FaultRunOptions {
  seed: number;
  kinds: readonly FaultKind[];
  /** Faults at least (each kind once per round); with `edits`, faults go on until the edits are made. */
  faults: number;
  /** Edits to make in all; without it the editors edit until the faults are over. */
  edits?: number;
  roots: number;
  workers: number;
  /** Runs each workers process follows at once (UNICOP_RECONCILE_CONCURRENCY). */
  concurrency: number;
  editors: number;
  editPauseMs: [number, number];
  /** Editors wait while more roots than this are out of sync (see startEditors' holdWhile). */
  maxBacklog: number;
  gapMs: [number, number];
  downMs: [number, number];
  leaseTtlSeconds: number;
  /** Redis database of the run's queue and sweeper epoch (the stack's NetBox uses 2 and 3). */
  redisDb: number;
  /** Caps, not budgets: how long a service may take to come back, a recovery, the final quiet. */
  capMs: { back: number; recovery: number; quiet: number };
  /** Progress lines (seed, each fault, each figure). */
  say: (line: string) => void;
}

export interface Recovery {
  kind: FaultKind;
  target: number;
  /** When the kill happened, ms after the run began. */
  atMs: number;
  downMs: number;
  /** Restart begun → the service answers (bridge /readyz; workers: every stage running). */
  backMs: number;
  /**
   * Workers only: process start → its reconcile worker taking jobs (the 'stage started' line; issue
   * #14 item 1 asks ≤ 2 s). The resolver and dispatcher join their Kafka groups after it.
   */
  reconcilerStartedMs: number | null;
  /** Service back → a new edit of the probe root reconciled (null: not within the cap). */
  editReconciledMs: number | null;
  /** Service back → every run open at the kill ended (null: not within the cap). */
  openRunsEndedMs: number | null;
  openRuns: number;
  /**
   * Where the probe edit's time went (null: not reconciled, or its run not readable): edit → its run
   * record started (NetBox's webhook, bridge, resolver, dispatcher, the wait for a reconcile slot);
   * → its AWX job started (UNICOP's launch and AWX's own pending/waiting); the AWX job itself; its
   * end → the run finished in NetBox (UNICOP following and writing the outcome). Wall clock of one
   * machine (NetBox's and AWX's timestamps, this process's for the edit).
   */
  probeParts: ProbeParts | null;
}

export interface ProbeParts {
  toRunStartMs: number;
  toAwxStartMs: number;
  awxMs: number;
  toRunEndMs: number;
}

export interface FaultRunReport {
  seed: number;
  tag: string;
  logDir: string;
  schedule: ScheduledFault[];
  recoveries: Recovery[];
  /** Roots edited (the probe root not counted). */
  roots: number;
  edits: number;
  editRetries: number;
  seconds: number;
  quietMs: number;
  /** Exits of the spawned processes nobody asked for (each restarted as a supervisor would). */
  unplannedExits: Record<string, number>;
  check: CheckResult;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const openStates = ['queued', 'leased', 'launched', 'awaiting_approval', 'running'] as const;

async function until(
  what: string,
  capMs: number,
  probe: () => Promise<boolean>,
  everyMs = 250,
): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await probe().catch(() => false)) return Date.now() - start;
    if (Date.now() - start > capMs) throw new Error(`${what}: not within ${capMs} ms`);
    await sleep(everyMs);
  }
}

interface RootState {
  key: string;
  current_hash: string;
  /** The current hash is not recomputed since the last change yet (plugin decision 0043). */
  hash_stale: boolean;
  last_reconciled_hash: string;
  last_run: { started: string | null; finished: string | null; awx_job_id: number | null } | null;
}

/** The probe's last run split at its AWX job's start and end (see Recovery.probeParts). */
function probeParts(
  editAt: number,
  run: RootState['last_run'],
  job: { started?: string | null; finished?: string | null } | undefined,
): ProbeParts | null {
  if (!run?.started || !run.finished || !job?.started || !job.finished) return null;
  const [runStart, awxStart, awxEnd, runEnd] = [run.started, job.started, job.finished, run.finished].map(
    (t) => Date.parse(t),
  ) as [number, number, number, number];
  return {
    toRunStartMs: runStart - editAt,
    toAwxStartMs: awxStart - runStart,
    awxMs: awxEnd - awxStart,
    toRunEndMs: runEnd - awxEnd,
  };
}

/** The root's reconciled hash is its current one, and that current hash is not stale. */
const inSync = (state: RootState | undefined) =>
  state !== undefined && !state.hash_stale && state.current_hash === state.last_reconciled_hash;

/**
 * The port of the bridge real AWX notifies (the notification template `awx bootstrap` made, which the
 * stack's templates carry; on 127.0.0.1 only), if any.
 */
async function awxNotificationPort(url: string, token: string): Promise<number | undefined> {
  const res = await fetch(`${url}/api/v2/notification_templates/?name=${notificationName}`, {
    headers: { authorization: `Bearer ${token}` },
  }).catch(() => undefined);
  if (!res?.ok) return undefined;
  const page = (await res.json()) as { results: { notification_configuration?: { url?: string } }[] };
  const target = page.results[0]?.notification_configuration?.url;
  if (!target) return undefined;
  const parsed = new URL(target);
  return parsed.hostname === '127.0.0.1' && parsed.port ? Number(parsed.port) : undefined;
}

/** How many of the sites' roots (`anchor_id=…&…`) are not in sync now. */
async function rootsOutOfSync(anchorQuery: string): Promise<number> {
  const page = await netbox<{ results: RootState[] }>(
    'GET',
    `/api/plugins/unicop/roots/?kind=site&${anchorQuery}&fields=key,current_hash,hash_stale,last_reconciled_hash`,
  );
  return page.results.filter((r) => !inSync(r)).length;
}

async function rootState(key: string): Promise<RootState | undefined> {
  const page = await netbox<{ results: RootState[] }>(
    'GET',
    `/api/plugins/unicop/roots/?key=${encodeURIComponent(key)}`,
  );
  return page.results.find((r) => r.key === key);
}

/** Run ids of the run's roots that are not terminal now. */
async function openRunIds(keys: Set<string>): Promise<string[]> {
  const query = openStates.map((s) => `state=${s}`).join('&');
  const ids: string[] = [];
  let path: string | null = `/api/plugins/unicop/runs/?${query}&limit=500`;
  while (path) {
    const page: { next: string | null; results: { run_id: string; root: { key: string } }[] } = await netbox(
      'GET',
      path,
    );
    ids.push(...page.results.filter((r) => keys.has(r.root.key)).map((r) => r.run_id));
    path = page.next ? new URL(page.next).pathname + new URL(page.next).search : null;
  }
  return ids;
}

async function runEnded(runId: string): Promise<boolean> {
  const run = await netbox<{ state: string }>('GET', `/api/plugins/unicop/runs/${runId}/`);
  return (terminalRunStates as readonly string[]).includes(run.state);
}

/**
 * A NetBox call of the run's own set-up, made again while NetBox is away (refused, timing out,
 * 5xx: a service fault of an earlier run, or a stack restarting) — up to the cap.
 */
async function whileNetboxAway<T>(call: () => Promise<T>, capMs = 300_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof NetboxUnavailableError) || Date.now() - start > capMs) throw error;
      await sleep(1000);
    }
  }
}

/** NetBox's webhook and event rule for the run's own sites only (a condition on the name). */
async function hookSites(bridgeUrl: string, secret: string, tag: string) {
  const webhook = await whileNetboxAway(() =>
    netbox<{ id: number }>('POST', '/api/extras/webhooks/', {
      name: tag,
      payload_url: `${bridgeUrl}/webhooks/netbox`,
      http_method: 'POST',
      http_content_type: 'application/json',
      secret,
    }),
  );
  const rule = await whileNetboxAway(() =>
    netbox<{ id: number }>('POST', '/api/extras/event-rules/', {
      name: tag,
      object_types: ['dcim.site'],
      event_types: ['object_created', 'object_updated', 'object_deleted'],
      action_type: 'webhook',
      action_object_type: 'extras.webhook',
      action_object_id: webhook.id,
      conditions: { attr: 'name', value: tag, op: 'contains' },
    }),
  );
  return async () => {
    await netbox('DELETE', `/api/extras/event-rules/${rule.id}/`).catch(() => undefined);
    await netbox('DELETE', `/api/extras/webhooks/${webhook.id}/`).catch(() => undefined);
  };
}

/** The site named so, made now or by an earlier attempt whose answer was lost. */
async function createSite(name: string): Promise<FaultRoot> {
  const slug = name.toLowerCase();
  const site = await whileNetboxAway(async () => {
    const found = await netbox<{ results: { id: number }[] }>('GET', `/api/dcim/sites/?slug=${slug}`);
    return (
      found.results[0] ?? netbox<{ id: number }>('POST', '/api/dcim/sites/', { name, slug, status: 'active' })
    );
  });
  return { siteId: site.id, rootKey: `site/${site.id}` };
}

function secretsToScan(webhookSecret: string): Record<string, string> {
  const out: Record<string, string> = {
    'the run’s NetBox webhook secret': webhookSecret,
    'the NetBox API token': stackFact('UNICOP_NETBOX_TOKEN'),
    'the AWX API token': resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env),
    'the AWX webhook secret': resolveSecret(stackFact('UNICOP_AWX_REAL_WEBHOOK_SECRET'), process.env),
    'the AWX admin password': readFileSync(stackFact('UNICOP_AWX_ADMIN_PASSWORD_FILE'), 'utf8').trim(),
  };
  try {
    out['the PostgreSQL password'] = stackFact('UNICOP_PG_PASSWORD');
  } catch {
    // a stack without it recorded
  }
  return out;
}

/** The stack's service logs and their sizes now: the check scans what was written from here on. */
function stackLogs(): { file: string; from: number }[] {
  const dir = join(process.env.UNICOP_VAR ?? join(repoRoot, 'var'), 'log');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .map((f) => ({ file: join(dir, f), from: statSync(join(dir, f)).size }));
}

export async function runFaults(options: FaultRunOptions): Promise<FaultRunReport> {
  const { say } = options;
  const began = Date.now();
  const tag = `fsuite-${options.seed}-${began.toString(36)}`;
  const logDir = join(process.env.UNICOP_VAR ?? join(repoRoot, 'var'), 'faults', tag);
  mkdirSync(logDir, { recursive: true });
  const scheduleRandom = seededRandom(options.seed);
  const editRandom = seededRandom((options.seed ^ 0x9e3779b9) >>> 0);
  const schedule = faultSchedule(scheduleRandom, {
    kinds: options.kinds,
    count: options.edits === undefined ? options.faults : Math.max(options.faults, 10_000),
    workers: options.workers,
    gapMs: options.gapMs,
    downMs: options.downMs,
  });
  say(
    `fault run ${tag}: seed ${options.seed} (UNICOP_FAULT_SEED=${options.seed} repeats it); logs in ${logDir}`,
  );
  say(
    `schedule: ${schedule
      .slice(0, options.faults)
      .map((f) => (f.kind === 'workers' ? `workers#${f.target}` : f.kind))
      .join(', ')}${options.edits === undefined ? '' : ', … until the edits are made'}`,
  );

  const kafka = new Kafka({ clientId: tag, brokers: stack.kafkaBrokers(), logLevel: logLevel.NOTHING });
  const redisUrl = `${stack.redisUrl().replace(/\/\d*$/, '')}/${options.redisDb}`;
  const webhookSecret = randomBytes(24).toString('hex');
  const secrets = secretsToScan(webhookSecret);
  const logsAtStart = stackLogs();

  // From now on: the workers' groups at the end of their topics (as `npm run demo` does), the
  // sweeper's epoch set in the run's Redis database (no sweep of every root at start).
  for (const [group, topic] of [
    [consumerGroups.resolver, topics.changes],
    [consumerGroups.dispatcher, topics.intents],
  ] as const) {
    await positionGroupAtEnd(kafka, group, topic).catch((error: Error) => {
      throw new Error(
        `Kafka group ${group} has members (another workers process, \`npm run demo\`?): stop them first (${error.message})`,
      );
    });
  }
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect();
  await redis.flushdb();
  await redis.set(redisEpochKey, new Date().toISOString());
  redis.disconnect();
  const changesStart = await topicEnds(kafka, topics.changes);
  const outcomesStart = await topicEnds(kafka, topics.outcomes);
  const awx = await takeRealAwx();

  const common = {
    UNICOP_VAR: process.env.UNICOP_VAR ?? join(repoRoot, 'var'),
    UNICOP_LOG_LEVEL: 'info',
    UNICOP_REDIS_URL: redisUrl,
    UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
    UNICOP_NETBOX_URL: stack.netboxUrl(),
    UNICOP_NETBOX_TOKEN: stack.netboxToken(),
  };
  // Real AWX notifies one bridge address (scripts/stack.d/awx.sh); the run's bridge takes it when free,
  // so runs are woken by AWX's notifications as in production, not only by polling.
  const notified = await awxNotificationPort(awx.url, awx.token);
  const bridgePort = notified !== undefined && (await portFree(notified)) ? notified : undefined;
  say(
    bridgePort === undefined
      ? `AWX notifies ${notified === undefined ? 'no bridge' : `port ${notified}, which is taken`}: runs follow their AWX jobs by polling alone`
      : `the run's bridge takes port ${bridgePort}, where AWX sends its notifications`,
  );
  const unicop: SpawnedUnicop = await spawnUnicop({
    dir: logDir,
    workers: options.workers,
    ...(bridgePort === undefined ? {} : { bridgePort }),
    env: common,
    bridgeEnv: {
      UNICOP_WEBHOOK_SECRETS: webhookSecret,
      UNICOP_AWX_WEBHOOK_SECRET: stackFact('UNICOP_AWX_REAL_WEBHOOK_SECRET'), // file: reference
    },
    workersEnv: {
      UNICOP_AWX_URL: stackFact('UNICOP_AWX_REAL_URL'),
      UNICOP_AWX_TOKEN: stackFact('UNICOP_AWX_REAL_TOKEN'), // a file: reference, resolved by the process
      UNICOP_LEASE_TTL_SECONDS: String(options.leaseTtlSeconds),
      UNICOP_RECONCILE_CONCURRENCY: String(options.concurrency),
      UNICOP_SWEEP_ON_START: 'false',
      // Check runs of other roots of a shared stack would queue real AWX jobs (decision 0054).
      UNICOP_DRIFT_CHECK_SECONDS: '0',
      // The faults are what the fail-safe freezes on (decision 0055); this suite asserts convergence
      // without a person, so its triggers are off here.
      UNICOP_FAILSAFE_LAG_RECORDS: '0',
      UNICOP_FAILSAFE_RESOLVER_ERROR_RATE: '1',
      UNICOP_FAILSAFE_FAILED_ROOTS: '0',
    },
  });
  const cleanups: (() => Promise<unknown>)[] = [() => unicop.close()];
  try {
    await until('the bridge ready', options.capMs.back, async () => processReady(unicop.bridge));
    for (const w of unicop.workers) {
      await until(`${w.name} running`, options.capMs.back, async () => processReady(w));
    }
    cleanups.push(await hookSites(unicop.bridgeUrl, webhookSecret, tag));
    const roots: FaultRoot[] = [];
    for (let i = 0; i < options.roots; i++)
      roots.push(await createSite(`${tag}-${String(i).padStart(3, '0')}`));
    const probe = await createSite(`${tag}-probe`);
    const keys = new Set([...roots, probe].map((r) => r.rootKey));
    const siteOf = new Map([...roots, probe].map((r) => [r.rootKey, r.siteId]));
    const probeEdited: { siteId: number; description: string; at: number }[] = [];
    say(
      `${options.roots} roots and a probe root made (${roots[0]?.rootKey} …); bridge at ${unicop.bridgeUrl}, ${options.workers} workers processes`,
    );

    const siteIds = roots.map((r) => `anchor_id=${r.siteId}`).join('&');
    // New sites are new roots, each reconciled once: the faults begin when that is done, so the
    // editors' closed loop (below) starts from an empty backlog instead of waiting it out.
    const firstSyncMs = await until(
      "the run's roots reconciled once",
      options.capMs.quiet,
      async () => (await rootsOutOfSync(siteIds)) === 0,
      2000,
    );
    say(`the run's roots reconciled once ${Math.round(firstSyncMs / 1000)} s after they were made`);
    const editors = startEditors({
      roots,
      editors: options.editors,
      pauseMs: options.editPauseMs,
      random: editRandom,
      maxEdits: options.edits ?? Number.MAX_SAFE_INTEGER,
      // Closed loop: no new edit while more of the run's roots wait for a run than there are reconcile
      // slots, so a probe edit waits for a slot, not behind a backlog the machine cannot clear.
      holdWhile: async () => (await rootsOutOfSync(siteIds)) > options.maxBacklog,
    });
    let editsDone = false;
    void editors.reachedMax.then(() => {
      editsDone = true;
    });

    const recoveries: Recovery[] = [];
    let probeEdits = 0;
    for (const [i, fault] of schedule.entries()) {
      if (i >= options.faults && (options.edits === undefined || editsDone)) break;
      await sleep(fault.gapMs);
      const open = await whileNetboxAway(() => openRunIds(keys));
      const atMs = Date.now() - began;
      const victim =
        fault.kind === 'workers'
          ? unicop.workers[fault.target]
          : fault.kind === 'bridge'
            ? unicop.bridge
            : undefined;
      if (victim) await victim.kill('SIGKILL');
      else if (isServiceFault(fault.kind)) killService(fault.kind);
      say(
        `fault ${i + 1}: kill -9 ${victim?.name ?? fault.kind} at ${Math.round(atMs / 1000)} s (${open.length} runs open); down ${fault.downMs} ms`,
      );
      await sleep(fault.downMs);
      const restartAt = Date.now();
      if (victim) victim.start();
      else if (isServiceFault(fault.kind))
        await restartService(fault.kind, join(logDir, `restart-${fault.kind}.log`));
      await until(`${fault.kind} back`, options.capMs.back, () =>
        victim
          ? Promise.resolve(processReady(victim))
          : isServiceFault(fault.kind)
            ? serviceHealthy(fault.kind)
            : Promise.resolve(true),
      );
      const backAt = Date.now();
      const backMs = backAt - restartAt;

      // Both measured from the moment the service is back, side by side.
      const description = `probe ${++probeEdits}`;
      const probeReconciled = async (): Promise<number | null> => {
        await patchUntilAcknowledged(`/api/dcim/sites/${probe.siteId}/`, { description }, () => false);
        probeEdited.push({ siteId: probe.siteId, description, at: Date.now() });
        // The hash NetBox computes for the edit: the change marked it stale; read it once recomputed
        // (the background pass, or the run's own snapshot read, whichever comes first).
        let wanted: string | undefined;
        await until('the probe edit hashed', options.capMs.recovery, async () => {
          const state = await rootState(probe.rootKey);
          wanted = state && !state.hash_stale ? state.current_hash : undefined;
          return wanted !== undefined;
        });
        await until(
          'the probe edit reconciled',
          options.capMs.recovery,
          async () => (await rootState(probe.rootKey))?.last_reconciled_hash === wanted,
        );
        return Date.now() - backAt;
      };
      const openRunsEnded = async (): Promise<number | null> => {
        const pending = new Set(open);
        await until(
          'the open runs ended',
          options.capMs.recovery,
          async () => {
            for (const id of [...pending]) if (await runEnded(id)) pending.delete(id);
            return pending.size === 0;
          },
          1000,
        );
        return Date.now() - backAt;
      };
      const [editReconciledMs, openRunsEndedMs] = await Promise.all([
        probeReconciled().catch(() => null),
        openRunsEnded().catch(() => null),
      ]);
      const editAt = probeEdited.at(-1)?.at ?? backAt;
      const parts =
        editReconciledMs === null
          ? null
          : await rootState(probe.rootKey)
              .then(async (state) => {
                const jobId = state?.last_run?.awx_job_id;
                // One GET of that job, not the run's whole job list (hundreds of jobs by the last fault).
                const job = jobId ? await awx.client.getJob(jobId) : undefined;
                return probeParts(editAt, state?.last_run ?? null, job);
              })
              .catch(() => null);
      const recovery = {
        kind: fault.kind,
        target: fault.target,
        atMs,
        downMs: fault.downMs,
        backMs,
        editReconciledMs,
        openRunsEndedMs,
        openRuns: open.length,
        probeParts: parts,
        reconcilerStartedMs: fault.kind === 'workers' ? (victim?.stageStartedMs('reconciler') ?? null) : null,
      };
      recoveries.push(recovery);
      say(
        `  ${fault.kind}: back after ${backMs} ms; new edit reconciled ${editReconciledMs ?? 'NOT'} ms after; ${open.length} open runs ended ${openRunsEndedMs ?? 'NOT'} ms after (edits so far ${editors.edits.length})`,
      );
      if (recovery.reconcilerStartedMs !== null)
        say(
          `    its reconcile worker took jobs ${recovery.reconcilerStartedMs} ms after the process started`,
        );
      if (parts)
        say(
          `    probe edit → run started ${parts.toRunStartMs} ms → AWX job started ${parts.toAwxStartMs} ms → AWX job ${parts.awxMs} ms → run finished ${parts.toRunEndMs} ms`,
        );
    }
    await editors.stop();
    say(
      `${editors.edits.length} edits acknowledged by NetBox (editors held ${Math.round(editors.heldMs() / 1000)} s by the backlog); waiting for quiet`,
    );

    // Quiet: every root reconciled at NetBox's current state, no run open, no AWX job of ours running.
    const quietMs = await until(
      'quiet (every root in sync, no run open)',
      options.capMs.quiet,
      async () => {
        for (const key of keys) {
          const state = await rootState(key);
          if (!inSync(state)) return false;
        }
        if ((await openRunIds(keys)).length > 0) return false;
        return (await awx.jobs()).every((j) => j.root === null || !keys.has(j.root) || j.finished !== null);
      },
      2000,
    ).catch((error: Error) => {
      say(`${error.message}; checking anyway`);
      return -1;
    });
    const finalDescription = new Map(editors.finalDescription);
    finalDescription.set(probe.rootKey, `probe ${probeEdits}`);
    const check = await checkInvariants({
      kafka,
      roots: [...roots, probe],
      finalDescription,
      changesStart,
      outcomesStart,
      bridgeLogs: [unicop.bridge.logFile],
      edits: [
        ...editors.edits.map((e) => ({
          siteId: siteOf.get(e.rootKey) as number,
          description: e.description,
          at: e.at,
        })),
        ...probeEdited,
      ],
      processLogs: unicop.logFiles(),
      awxJobs: await awx.jobs(),
      // The processes' logs and the service restarts' output (all in logDir), the stack's since the start.
      logs: [...readdirSync(logDir).map((f) => ({ file: join(logDir, f), from: 0 })), ...logsAtStart],
      secrets,
    });
    const sorted = [...check.changeLatencyMs].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    say(
      `edit → unicop.changes p50 ${at(0.5)} ms, p95 ${at(0.95)} ms (${sorted.length} edits, ${check.editsWithoutChange} without a change); logs: ${check.unstructuredLines} unstructured lines, ${check.connectionResets} ECONNRESET; failed runs ${JSON.stringify(check.failedByClass)}`,
    );
    for (const inv of check.invariants)
      say(`${inv.held ? 'held' : 'BROKEN'}: ${inv.name} — ${inv.detail.slice(0, 5).join('; ')}`);
    return {
      seed: options.seed,
      tag,
      logDir,
      schedule: schedule.slice(0, recoveries.length),
      recoveries,
      roots: roots.length,
      edits: editors.edits.length,
      editRetries: editors.edits.reduce((n, e) => n + e.attempts - 1, 0),
      seconds: Math.round((Date.now() - began) / 1000),
      quietMs,
      unplannedExits: Object.fromEntries(
        [unicop.bridge, ...unicop.workers].map((p) => [p.name, p.unplannedExits]),
      ),
      check,
    };
  } finally {
    for (const step of cleanups.reverse()) await step().catch(() => undefined);
    await awx.stop();
  }
}
