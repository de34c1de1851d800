/**
 * UNICOP's own overhead: the AWX double ends every job at once (no ansible-runner). R new sites are
 * created in bulk; once NetBox's background queues are empty, one pass per worker concurrency
 * appends one `manual` intent per root and measures each run's steps (the double's job record, the
 * BullMQ job, the plugin's run record, the outcome), memory, event-loop delay, CPU by process and
 * the HTTP requests made. The sites are deleted afterwards.
 */
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readStackEnv } from '../../core/config.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import type { DoubleJobRecord } from '../../test/awx/support.js';
import { countBy, countsText, percentile, sleep, until } from '../support.js';
import { HttpTally } from './http-tally.js';
import { createSites, deleteSites, netboxBackgroundJobs, runsById } from './netbox.js';
import { type NetboxSide, NetboxSideTally } from './netbox-side.js';
import { type LoopObserver, watch } from './observer.js';
import { doubleOf, intentMessage, msOf, startLoop, stopLoop } from './pipeline.js';
import {
  backgroundDrainMs,
  fastPoll,
  instantConcurrencies,
  instantLeaseContext,
  instantPassMs,
  instantRootCount,
} from './settings.js';
import { CpuByProcess, MemorySampler } from './usage.js';

/** Per-run measures of a pass, each sorted ascending (ms). */
export const instantMeasures = [
  ['intent appended → AWX job created (launch)', 'appendToLaunch'],
  ['… of which intent appended → job taken from the queue', 'appendToTaken'],
  ['… of which job taken → AWX job created', 'takenToLaunch'],
  ['AWX job finished → reconciler has seen it (outcome `finishedAt`)', 'finishToSeen'],
  ['AWX job finished → run finished in NetBox', 'finishToNetbox'],
  ['AWX job finished → outcome received from unicop.outcomes', 'finishToOutcome'],
  ['intent appended → outcome received (end to end)', 'appendToOutcome'],
] as const;

export type InstantMeasure = (typeof instantMeasures)[number][1];

export interface InstantResult {
  concurrency: number;
  /** The reconciler asked for the lease with its context (settings.ts, instantLeaseContext). */
  leaseContext: boolean;
  roots: number;
  outcomes: number;
  seconds: number;
  /** The pass's deadline came first. */
  cutShort: boolean;
  measures: Record<InstantMeasure, number[]>;
  states: Map<string, number>;
  awxLaunches: number;
  /** Roots the double launched more than one job for. */
  rootsLaunchedTwice: number;
  memory: MemorySampler;
  /** RSS and heap of the bench process just before the intents were appended. */
  baseline: { rssMiB: number; heapMiB: number };
  /** CPU seconds during the pass by process group, machine-wide (processGroup()). */
  cpuGroups: Map<string, number>;
  /** Event-loop delay of the bench process during the pass, ms. */
  loopDelay: { p50: number; p99: number; max: number };
  /** Jobs waiting in NetBox's background queues when the pass began and ended; jobs queued meanwhile. */
  backgroundJobs: { start: number; end: number; added: number };
  /** HTTP requests during the pass, by method and path. */
  http: HttpTally['calls'];
  /** NetBox's side of the pass: its RQ jobs and, with an access log, its server times. */
  netboxSide: NetboxSide;
  auditActions: Map<string, number>;
  notable: Map<string, number>;
  foreign: number;
}

async function runInstantPass(
  concurrency: number,
  leaseContext: boolean,
  siteKeys: string[],
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<InstantResult> {
  const loop = await startLoop(
    { concurrency, simultaneous: true, instant: true, poll: fastPoll, leaseContext },
    observer,
    freezeView,
  );
  const from = observer.mark();
  const intents = siteKeys.map((key) => intentMessage(observer, key, 'manual'));
  const memory = new MemorySampler(false);
  const { rss, heapUsed } = process.memoryUsage();
  const baseline = { rssMiB: rss / 2 ** 20, heapMiB: heapUsed / 2 ** 20 };
  const backgroundAtStart = await netboxBackgroundJobs();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  const http = new HttpTally([
    { name: 'NetBox', url: readStackEnv().UNICOP_NETBOX_URL as string },
    { name: 'AWX', url: loop.back.awx.url },
  ]);
  http.install();
  memory.start();
  delay.enable();
  const processes = new CpuByProcess();
  processes.start();
  const netboxSide = new NetboxSideTally();
  netboxSide.start();
  const t0 = Date.now();
  await loop.back.eventLog.append(intents.map((i) => i.message));
  const appendedAt = Date.now(); // acknowledged by Kafka (acks=all): the intents are on the log
  const done = () => intents.filter((i) => observer.outcomeByIntent.has(i.intentId)).length;
  const cutShort = !(await until(() => done() === intents.length, instantPassMs));
  http.uninstall();
  delay.disable();
  memory.stop();
  const cpuGroups = processes.stop();
  const backgroundAtEnd = await netboxBackgroundJobs();
  const backgroundJobs = {
    start: backgroundAtStart.queued,
    end: backgroundAtEnd.queued,
    added: backgroundAtEnd.seen - backgroundAtStart.seen,
  };
  // The pass's outcomes: those received by its end (the worker goes on until stopLoop()).
  const seen = intents.flatMap((i) => {
    const outcome = observer.outcomeByIntent.get(i.intentId);
    return outcome ? [{ intentId: i.intentId, outcome }] : [];
  });
  // The jobs the pass queued are counted once the RQ worker has run them (their CPU is in the pass's
  // figures only as far as they ran during it).
  await drainBackground();
  const seconds = (Math.max(t0, ...seen.map((s) => s.outcome.receivedAt)) - t0) / 1000;

  const jobs = (await doubleOf(loop.back).doubleJobs()).filter(
    (j) => j.type === 'job',
  ) as (DoubleJobRecord & {
    created: string;
  })[];
  const jobByRun = new Map(jobs.map((j) => [j.run_id, j]));
  const taken = new Map<string, number>();
  for (const job of await loop.queue.getJobs(['completed', 'active', 'delayed', 'waiting'])) {
    if (job?.id && job.processedOn) taken.set(job.id, job.processedOn);
  }
  const runs = await runsById(seen.map((s) => s.outcome.data.runId));
  const netboxWork = await netboxSide.stop(new Set([...runs.values()].map((r) => r.id)));
  const measures = Object.fromEntries(instantMeasures.map(([, key]) => [key, [] as number[]])) as Record<
    InstantMeasure,
    number[]
  >;
  for (const { intentId, outcome } of seen) {
    const job = jobByRun.get(outcome.data.runId);
    const launched = msOf(job?.created);
    const finished = msOf(job?.finished);
    const takenAt = taken.get(intentId) ?? Number.NaN;
    const values: Record<InstantMeasure, number> = {
      appendToLaunch: launched - appendedAt,
      appendToTaken: takenAt - appendedAt,
      takenToLaunch: launched - takenAt,
      finishToSeen: msOf(outcome.data.finishedAt) - finished,
      finishToNetbox: msOf(runs.get(outcome.data.runId)?.finished) - finished,
      finishToOutcome: outcome.receivedAt - finished,
      appendToOutcome: outcome.receivedAt - appendedAt,
    };
    for (const [key, value] of Object.entries(values)) {
      if (Number.isFinite(value)) measures[key as InstantMeasure].push(value);
    }
  }
  for (const values of Object.values(measures)) values.sort((a, b) => a - b);
  const launchesPerRoot = countBy(jobs, (j) => j.root ?? '');
  const notable = await stopLoop(loop, 1000);
  const result: InstantResult = {
    concurrency,
    leaseContext,
    roots: siteKeys.length,
    outcomes: seen.length,
    seconds,
    cutShort,
    measures,
    states: countBy(seen, (s) => s.outcome.data.state),
    awxLaunches: jobs.length,
    rootsLaunchedTwice: [...launchesPerRoot.values()].filter((n) => n > 1).length,
    memory,
    baseline,
    cpuGroups,
    backgroundJobs,
    loopDelay: {
      p50: delay.percentile(50) / 1e6,
      p99: delay.percentile(99) / 1e6,
      max: delay.max / 1e6,
    },
    http: http.calls,
    netboxSide: netboxWork,
    auditActions: countBy(observer.audit.slice(from.audit), (a) => a.data.action),
    notable,
    foreign: observer.foreignSince(from),
  };
  process.stderr.write(
    `loop instant C=${concurrency}${leaseContext ? '' : ' (lease without context)'}: ${seen.length}/${siteKeys.length} outcomes in ${seconds.toFixed(1)} s ` +
      `(${(seen.length / seconds).toFixed(1)} runs/s)${cutShort ? ', cut short' : ''}, ` +
      `launch p50 ${percentile(measures.appendToLaunch, 50).toFixed(0)} ms, ` +
      `outcome after AWX end p50 ${percentile(measures.finishToOutcome, 50).toFixed(0)} ms, ` +
      `notable ${countsText(result.notable)}, foreign ${result.foreign}\n`,
  );
  return result;
}

/** Waits (up to backgroundDrainMs) until NetBox's background queues are empty and their last job ended. */
async function drainBackground(): Promise<boolean> {
  const from = Date.now();
  while (Date.now() - from < backgroundDrainMs) {
    if ((await netboxBackgroundJobs()).queued === 0) {
      await sleep(2000); // a job taken just now (tens of ms) ends and is logged
      return true;
    }
    await sleep(1000);
  }
  return false;
}

/** What the passes measured, and how the sites were prepared for them. */
export interface InstantRun {
  /** Load average (1, 5, 15 min) when the bench began. */
  load: string;
  createSeconds: number;
  /** Jobs queued in NetBox's background queues when the creation ended. */
  backgroundAfterCreate: number;
  drained: boolean;
  drainSeconds: number;
  frozen: boolean;
  results: InstantResult[];
}

/** R new sites, one pass per concurrency with the double ending jobs at once. */
export async function runInstantPasses(): Promise<InstantRun> {
  const load = loadavg()
    .map((n) => n.toFixed(1))
    .join(', ');
  const createdAt = Date.now();
  const sites = await createSites(instantRootCount);
  const createSeconds = (Date.now() - createdAt) / 1000;
  process.stderr.write(`loop instant: ${sites.length} sites created in ${createSeconds.toFixed(1)} s\n`);
  const siteKeys = sites.map((s) => s.rootKey);
  // NetBox's RQ worker delivers the creations' webhooks meanwhile: the passes start once it is idle.
  const drainedAt = Date.now();
  const backgroundAfterCreate = (await netboxBackgroundJobs()).queued;
  let queued = backgroundAfterCreate;
  while (queued > 0 && Date.now() - drainedAt < backgroundDrainMs) {
    await sleep(1000);
    queued = (await netboxBackgroundJobs()).queued;
  }
  const drained = queued === 0;
  const drainSeconds = (Date.now() - drainedAt) / 1000;
  process.stderr.write(
    `loop instant: NetBox background jobs ${backgroundAfterCreate}, ` +
      `${drained ? 'drained' : 'still queued'} after ${drainSeconds.toFixed(0)} s\n`,
  );
  const watched = await watch(siteKeys);
  const results: InstantResult[] = [];
  try {
    for (const [i, c] of instantConcurrencies.entries()) {
      const leaseContext = instantLeaseContext[Math.min(i, instantLeaseContext.length - 1)] !== false;
      results.push(await runInstantPass(c, leaseContext, siteKeys, watched.observer, watched.freezeView));
    }
  } finally {
    await watched.stop();
    const deletedAt = Date.now();
    await deleteSites(sites);
    process.stderr.write(
      `loop instant: sites deleted in ${((Date.now() - deletedAt) / 1000).toFixed(1)} s\n`,
    );
  }
  return {
    load,
    createSeconds,
    backgroundAfterCreate,
    drained,
    drainSeconds,
    frozen: watched.frozen,
    results,
  };
}
