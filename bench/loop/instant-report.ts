/** The instant subsection of docs/benchmarks.md, written from the passes' results. */
import { countsText, percentile, section, table } from '../support.js';
import { type InstantMeasure, type InstantResult, type InstantRun, instantMeasures } from './instant.js';
import { siteBatch, siteRequestsInParallel } from './netbox.js';
import { fastPoll, instantCommand, instantPassMs, instantRootCount, instantTitle } from './settings.js';
import { cpuGroupNames } from './usage.js';

/** A pass's C, and whether its lease was asked for without its context (docs/decisions/0045). */
function passLabel(r: InstantResult): string {
  return r.leaseContext ? String(r.concurrency) : `${r.concurrency} (lease without context)`;
}

export function instantSection(run: InstantRun): string {
  const { load, createSeconds, backgroundAfterCreate, drained, drainSeconds, results } = run;
  const p = (values: number[], q: number) => percentile(values, q);
  const notable = results.filter((r) => r.notable.size > 0);
  const foreign = results.reduce((n, r) => n + r.foreign, 0);
  return section([
    instantTitle,
    '',
    `Run ${new Date().toISOString()}: \`${instantCommand()}\`. The double ends every job`,
    '`successful` the moment it starts (`startBackHalf({instant: true, simultaneous: true})`: no',
    'ansible-runner, the site template (`unicop-site`) with allow_simultaneous, its pending → waiting → running steps 20 ms',
    "each), so what is left is UNICOP's own work and the stack's: dispatch, BullMQ, lease, snapshot,",
    'run records, the launch and poll calls, the outcome write and the events.',
    '',
    `How it was run: ${instantRootCount} new sites created in bulk (${siteBatch} per POST to /api/dcim/sites/,`,
    `${siteRequestsInParallel} POSTs at a time, ${createSeconds.toFixed(0)} s; the plugin makes a root \`site/<id>\` for each;`,
    "deleted the same way afterwards). Each site created queues three jobs on NetBox's RQ worker:",
    "the webhook of the stack's event rule `unicop-bridge` and",
    `search-index updates for the site and its root. ${backgroundAfterCreate} were still queued when the creation ended;`,
    `the passes began once NetBox's background queues were ${drained ? 'empty' : '**still not empty**'} (${drainSeconds.toFixed(0)} s later), so they do not`,
    'compete with them (the deletions queue more after the bench). For each worker concurrency C in',
    'turn: a fresh double, a dispatcher on a fresh consumer group and a reconcile worker on a fresh',
    'BullMQ queue, all in the bench process, with the production options (lease TTL 60 s, retries)',
    `and polling ${fastPoll.minMs} ms doubling to ${fastPoll.maxMs} ms; then one \`manual\` intent per root (manual: every run`,
    'launches, whatever the hash), all appended to unicop.intents in one go. That is a burst: most of',
    'the launch latency is waiting in the queue behind the other roots, hence its split below. A pass',
    `ends at its last outcome or after ${instantPassMs / 1000} s, whichever comes first; a pass cut short reports the runs`,
    'that finished, i.e. the first ones in the queue, so its queue waits are the shorter ones. Runs/s:',
    'outcomes ÷ (first append → last outcome received by a consumer in the bench). Per run:',
    '"appended" is when Kafka acknowledged the append; the AWX launch and end are the double\'s job',
    'record (`created`, `finished`, matched by run id); "taken from the queue" is the BullMQ job\'s',
    '`processedOn`; "reconciler has seen it" is the outcome\'s `finishedAt`; "run finished in NetBox"',
    "is the plugin's run record `finished` (NetBox's clock when the terminal state is written; same",
    "machine); the outcome is its arrival at the bench's consumer on unicop.outcomes. Memory is the",
    "bench process's, which hosts the worker **and** the double, the dispatcher and the observing",
    'consumer, so it is an upper bound for a worker; "before" is its RSS just before the intents were',
    "appended, sampled every 200 ms after. Event-loop delay is that process's (perf_hooks).",
    `Load average (1, 5, 15 min) when the bench began: ${load}.`,
    run.frozen
      ? '**Automation was frozen globally on unicop.control during this run: intents were held.**'
      : '',
    '',
    table(
      [
        'C',
        'roots',
        'outcomes',
        'seconds',
        'runs/s',
        'AWX launches',
        'RSS MiB before → peak',
        'heap MiB peak',
        'event-loop delay p99 / max ms',
        'NetBox background jobs: waiting at start → end; queued per run',
      ],
      results.map((r) => [
        passLabel(r),
        r.roots,
        r.cutShort
          ? `${countsText(r.states)} (cut short at ${instantPassMs / 1000} s; all ${r.roots} at this rate: ` +
            `≈ ${((r.roots * r.seconds) / Math.max(1, r.outcomes)).toFixed(0)} s)`
          : countsText(r.states),
        r.seconds,
        r.outcomes / r.seconds,
        `${r.awxLaunches}${r.rootsLaunchedTwice ? ` (${r.rootsLaunchedTwice} roots twice)` : ''}`,
        `${r.baseline.rssMiB.toFixed(0)} → ${r.memory.rssMiB.toFixed(0)}`,
        r.memory.heapMiB,
        `${r.loopDelay.p99.toFixed(0)} / ${r.loopDelay.max.toFixed(0)}`,
        `${r.backgroundJobs.start} → ${r.backgroundJobs.end}; ${(r.backgroundJobs.added / Math.max(1, r.outcomes)).toFixed(1)}`,
      ]),
    ),
    '',
    "CPU seconds during each pass by process, machine-wide: this stack's services (NetBox = its",
    'gunicorn workers and RQ worker), the bench process (it hosts the worker, the double, the',
    'dispatcher and the observer), "other" (anything else, another clone\'s stack included), and',
    '"unattributed": processes that lived under a second between readings (NetBox\'s RQ worker forks',
    "one per background job) and the kernel. Two cores give at most 2 × the pass's seconds:",
    '',
    table(
      ['C', 'seconds', ...cpuGroupNames, 'CPU s per run, all'],
      results.map((r) => [
        passLabel(r),
        r.seconds,
        ...cpuGroupNames.map((g) => r.cpuGroups.get(g) ?? 0),
        [...r.cpuGroups.values()].reduce((a, b) => a + b, 0) / Math.max(1, r.outcomes),
      ]),
    ),
    '',
    'Per run, ms:',
    '',
    table(
      ['C', 'measure', 'p50', 'p95', 'p99', 'max'],
      results.flatMap((r) =>
        instantMeasures.map(([label, key]) => [
          passLabel(r),
          label,
          p(r.measures[key], 50),
          p(r.measures[key], 95),
          p(r.measures[key], 99),
          p(r.measures[key], 100),
        ]),
      ),
    ),
    '',
    "HTTP requests made by the bench process during each pass (the reconcilers' calls to NetBox and",
    'to the double; ids in paths shown as `:id`), by total time spent waiting on them:',
    '',
    table(
      ['C', 'request', 'calls', 'per run', 'mean ms', 'max ms', 'total s'],
      results.flatMap((r) =>
        [...r.http]
          .sort(([, a], [, b]) => b.totalMs - a.totalMs)
          .map(([request, t]) => [
            passLabel(r),
            `\`${request}\``,
            t.count,
            t.count / Math.max(1, r.outcomes),
            t.totalMs / t.count,
            t.maxMs,
            t.totalMs / 1000,
          ]),
      ),
    ),
    '',
    ...whereTimeGoes(results),
    ...instantReading(results),
    'Audit actions for the roots, per pass:',
    '',
    ...results.map((r) => `- C=${passLabel(r)}: ${countsText(r.auditActions)}`),
    '',
    notable.length
      ? `Worker and reconciler log lines at warn or above, and delayed jobs:\n\n${notable
          .map((r) => `- C=${passLabel(r)}: ${countsText(r.notable)}`)
          .join('\n')}`
      : 'No worker or reconciler log line at warn or above, and no delayed job.',
    '',
    foreign > 0
      ? `**Another process worked on these roots during the run** (${foreign} intents or reconciler ` +
        'actions not from the bench): the figures are disturbed.'
      : 'No other process appended intents for these roots or reconciled them during the run.',
  ]);
}

/**
 * Where a run's time goes, per pass: each plugin call (per run; the client's wait and, with an access
 * log, NetBox's own time serving it), each kind of job NetBox's RQ worker ran for the pass, and the
 * CPU each process group spent per run.
 */
function whereTimeGoes(results: InstantResult[]): string[] {
  const rows: (string | number)[][] = [];
  for (const r of results) {
    const runs = Math.max(1, r.outcomes);
    const side = r.netboxSide;
    for (const [request, t] of [...r.http].sort(([, a], [, b]) => b.count - a.count)) {
      if (!request.includes(' NetBox /api/plugins/')) continue;
      const server = side.requests.get(request.replace(' NetBox ', ' '));
      rows.push([
        passLabel(r),
        `plugin call \`${request.replace(' NetBox /api/plugins/unicop/', ' ')}\``,
        t.count / runs,
        t.totalMs / t.count,
        server ? (server.totalMs / server.count).toFixed(1) : '–',
        server ? (t.count / runs) * (server.totalMs / server.count) : '–',
      ]);
    }
    for (const [kind, t] of [...side.rqJobs].sort(([, a], [, b]) => b.count - a.count)) {
      rows.push([
        passLabel(r),
        `RQ job: ${kind}`,
        t.count / runs,
        '–',
        (t.totalMs / t.count).toFixed(1),
        t.totalMs / runs,
      ]);
    }
    for (const group of cpuGroupNames) {
      rows.push([
        passLabel(r),
        `CPU: ${group}`,
        '–',
        '–',
        '–',
        (1000 * (r.cpuGroups.get(group) ?? 0)) / runs,
      ]);
    }
    const all = [...r.cpuGroups.values()].reduce((a, b) => a + b, 0);
    rows.push([passLabel(r), '**CPU: all**', '–', '–', '–', (1000 * all) / runs]);
  }
  const accessLog = results.some((r) => r.netboxSide.accessLog);
  return [
    "Where a run's time goes, per pass. Plugin calls: how many a run makes, the bench's wait for each",
    "(HttpTally) and NetBox's own time serving it — gunicorn's access log, `%(D)s`, from the request",
    "read to the answer written, so it includes waits for a row lock or a gunicorn thread's turn at",
    accessLog
      ? 'the GIL (the log is turned on only for the bench: bench/loop/netbox-side.ts says how).'
      : 'the GIL (**no access log this run**: bench/loop/netbox-side.ts says how to turn it on).',
    "RQ jobs: what NetBox's RQ worker ran during the pass (its log, `Successfully completed …`, read after",
    "the queues emptied), per run, with the job's own run time (the fork of a work horse and the",
    'bookkeeping around it are not in it: they are in the "unattributed" CPU). The stack\'s NetBox serves',
    "other clients too (other suites' workers, the RQ worker's other work): the server times are every",
    "client's calls to the same endpoint; search-index jobs of run records are only this pass's runs'; other",
    'jobs, and the CPU table, count everyone\'s. CPU: the table above, per run, in ms. "ms per run" is calls',
    'per run × server mean for a call, jobs per run × mean for a job.',
    '',
    table(['C', 'item', 'per run', 'client mean ms', 'NetBox mean ms', 'ms per run'], rows),
    '',
  ];
}

/** A few sentences computed from the passes: where a run's cost goes, and what more concurrency did. */
function instantReading(results: InstantResult[]): string[] {
  const [first, ...others] = results;
  if (!first || first.outcomes === 0) return [];
  const perRun = (r: InstantResult, group: string) => (r.cpuGroups.get(group) ?? 0) / r.outcomes;
  const busy = (r: InstantResult) => [...r.cpuGroups.values()].reduce((a, b) => a + b, 0);
  const netboxCalls = (r: InstantResult) =>
    [...r.http]
      .filter(([request]) => request.includes(' NetBox /api/plugins/'))
      .reduce((n, [, t]) => n + t.count, 0) / r.outcomes;
  const awxLookups = (r: InstantResult) =>
    (r.http.get('GET AWX /api/v2/jobs/')?.count ?? 0) /
    Math.max(1, r.http.get('POST AWX /api/v2/job_templates/:id/launch/')?.count ?? 0);
  const median = (r: InstantResult, key: InstantMeasure) => percentile(r.measures[key], 50).toFixed(0);
  const rate = (r: InstantResult) => (r.outcomes / r.seconds).toFixed(1);
  return [
    `Reading: at C=${passLabel(first)}, ${rate(first)} runs/s with the two cores ${((100 * busy(first)) / (2 * first.seconds)).toFixed(0)}% busy.`,
    `A run costs ${(busy(first) / first.outcomes).toFixed(2)} CPU s on this machine: NetBox ${perRun(first, 'NetBox').toFixed(2)}, PostgreSQL`,
    `${perRun(first, 'PostgreSQL').toFixed(2)}, the bench process (worker, double, dispatcher, observer) ${perRun(first, 'bench process').toFixed(2)}, unattributed`,
    `${perRun(first, 'unattributed').toFixed(2)}. It makes ${netboxCalls(first).toFixed(1)} requests to the plugin's API (table above) and queues`,
    `${(first.backgroundJobs.added / first.outcomes).toFixed(1)} jobs on NetBox's RQ worker (by kind in the table above). Inside a run, job taken →`,
    `AWX launch takes ${median(first, 'takenToLaunch')} ms and AWX end → outcome on Kafka ${median(first, 'finishToOutcome')} ms (p50), nearly all of it waiting`,
    "for NetBox. Before each launch the AWX client lists the template's jobs created since the run",
    'started − 60 s, 200 a page, for one carrying the run id (a launch is never repeated): here',
    `${awxLookups(first).toFixed(2)} list requests per launch; the pages grow with the launches per minute.`,
    ...others.map(
      (r) =>
        `C=${passLabel(r)} gives ${rate(r)} runs/s, ${(busy(r) / Math.max(1, r.outcomes)).toFixed(2)} CPU s per run: job taken → AWX launch ` +
        `${median(r, 'takenToLaunch')} ms and AWX end → outcome ${median(r, 'finishToOutcome')} ms (p50).`,
    ),
    '',
  ];
}
