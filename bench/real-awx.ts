/**
 * Benchmark (`npm run bench -- real-awx`): how much of real AWX's capacity UNICOP leaves unused
 * (issue #15, "Against real AWX"), and where a trivial job's time goes inside AWX (decision 0052).
 * The job is the stack's `unicop-site` template (awx-playbooks/site.yml) on an empty site: what
 * UNICOP launches for a site root without devices. Passes, one after another in one run:
 *
 *   1. AWX alone, one job at a time (BENCH_REAL_AWX_SINGLE, default 3): each job's phases from
 *      AWX's records (bench/real-awx/awx-alone.ts).
 *   2. AWX alone, N jobs launched at once (BENCH_REAL_AWX_RUNS, default 12) through AWX's API.
 *   3. UNICOP: the same N as runs of N new sites through the compiled workers and bridge
 *      (bench/real-awx/unicop-pass.ts), reconcile concurrency C (BENCH_REAL_AWX_C, default 4 =
 *      UNICOP_RECONCILE_CONCURRENCY's default).
 *   4. AWX alone, N jobs with at most C unfinished at once: AWX's rate at UNICOP's concurrency.
 *   5. What one reconciler job costs: `site.yml` for five devices and `prefix.yml` for five
 *      addresses, one at a time and four at once (bench/real-awx/playbook-cost.ts, decision 0058).
 *
 * Launch → successful for AWX alone is from the launch request to the job's `finished`; for UNICOP
 * from the intents' append to each outcome on unicop.outcomes. Rates are N over the pass's wall
 * time (first launch or append → last finish or outcome). CPU per job by part of AWX, the job
 * containers and UNICOP's processes (bench/real-awx/awx-cpu.ts). Needs `scripts/stack up` with
 * real AWX and `npm run build`.
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { awxStack, launchAndTime, phaseNames, phasesOf, type TimedJob } from './real-awx/awx-alone.js';
import { AwxCpu, awxCpuGroups } from './real-awx/awx-cpu.js';
import { costColumns, costTable, mean, otherJobsColumn, playbookCost } from './real-awx/playbook-cost.js';
import { runUnicopPass, type UnicopPass } from './real-awx/unicop-pass.js';
import { commit, machine, type ScenarioResult } from './scenario-result.js';
import { percentile, section, table } from './support.js';

const runCount = Number(process.env.BENCH_REAL_AWX_RUNS ?? 12);
const singleCount = Number(process.env.BENCH_REAL_AWX_SINGLE ?? 3);
/** UNICOP_RECONCILE_CONCURRENCY's default (core/config.ts). */
const concurrency = Number(process.env.BENCH_REAL_AWX_C ?? 4);
/** A cap, never a budget: a pass that has not ended by then is reported as such. */
const capMs = 900_000;

const title = '## Real AWX: a trivial job through AWX alone and through UNICOP';

/**
 * The same measurement of the playbooks before decision 0058 (one module task per file, the fence
 * in six tasks), kept for comparison: those playbooks are gone, so no later run can repeat it.
 */
const playbookCostBefore = [
  'Before decision 0058 (`npx tsx bench/real-awx/playbook-cost.ts` at 25467c5, 2026-12-02 13:39–13:47 UTC; the',
  "AWX daemons' column includes other clients' work on the shared AWX):",
  '',
  table(
    costColumns.filter((column) => column !== otherJobsColumn),
    [
      [
        'site.yml, 5 devices',
        'one at a time (3)',
        '3/3',
        '16.4',
        '11.7',
        '9.11',
        '4.22',
        '11',
        '59',
        '3.1 4.4 7.3 → 4.2 4.5 7.1',
      ],
      [
        'site.yml, 5 devices',
        '4 at once',
        '4/4',
        '203.7',
        '181.5',
        '12.96',
        '15.82',
        '11',
        '59',
        '4.2 4.5 7.1 → 19.1 12.3 9.7',
      ],
      [
        'prefix.yml, 5 addresses',
        'one at a time (3)',
        '3/3',
        '32.5',
        '24.1',
        '6.18',
        '8.35',
        '6',
        '57',
        '19.1 12.3 9.7 → 13.6 12.4 10.1',
      ],
      [
        'prefix.yml, 5 addresses',
        '4 at once',
        '4/4',
        '99.3',
        '75.3',
        '6.64',
        '7.54',
        '6',
        '57',
        '13.6 12.4 10.1 → 16.1 13.9 10.9',
      ],
    ],
  ),
];

interface AlonePass {
  label: string;
  jobs: TimedJob[];
  wallMs: number;
  cpu: ReturnType<AwxCpu['stop']>;
  load: string;
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
const p = (values: number[], q: number) =>
  percentile(
    [...values].sort((a, b) => a - b),
    q,
  );
const s = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : '—');
const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

async function alonePass(label: string, tag: string, count: number, inFlight: number): Promise<AlonePass> {
  const awx = awxStack();
  const loadBefore = load();
  const cpu = new AwxCpu();
  cpu.start();
  const { jobs, wallMs } = await launchAndTime(awx, `${tag}-${Date.now()}`, count, inFlight, capMs);
  const used = cpu.stop();
  process.stderr.write(`real-awx: ${label}: ${jobs.length} jobs in ${s(wallMs)} s\n`);
  return { label, jobs, wallMs, cpu: used, load: `${loadBefore} → ${load()}` };
}

function aloneRow(pass: AlonePass): (string | number)[] {
  const latencies = pass.jobs.map((j) => j.finished - j.sentAt);
  const n = pass.jobs.length;
  const awxCpu = sum(pass.cpu.groups.values()) / n;
  const containers = pass.jobs.map((j) => pass.cpu.containers.get(j.id) ?? 0);
  const ok = pass.jobs.filter((j) => j.status === 'successful').length;
  return [
    pass.label,
    `${ok}/${n}`,
    s(pass.wallMs),
    ((n * 1000) / pass.wallMs).toFixed(3),
    `${s(p(latencies, 50))} / ${s(p(latencies, 95))} / ${s(p(latencies, 99))}`,
    `${awxCpu.toFixed(2)} + ${(sum(containers) / n).toFixed(2)}`,
    '—',
    pass.load,
  ];
}

function unicopRow(pass: UnicopPass, loadText: string): (string | number)[] {
  const n = pass.runs.length;
  const latencies = pass.runs.map((r) => r.latencyMs);
  const ok = pass.runs.filter((r) => r.state === 'succeeded').length;
  const jobIds = new Set(pass.runs.map((r) => r.awxJobId));
  const containers = sum([...pass.awxCpu.containers].filter(([id]) => jobIds.has(id)).map(([, sec]) => sec));
  return [
    `UNICOP, C=${concurrency} (compiled workers + bridge)`,
    `${ok}/${n + pass.missing}${pass.missing ? ` (${pass.missing} without outcome)` : ''}`,
    s(pass.wallMs),
    ((n * 1000) / pass.wallMs).toFixed(3),
    `${s(p(latencies, 50))} / ${s(p(latencies, 95))} / ${s(p(latencies, 99))}`,
    `${(sum(pass.awxCpu.groups.values()) / n).toFixed(2)} + ${(containers / Math.max(1, n)).toFixed(2)}`,
    `${((pass.unicopCpu.workers + pass.unicopCpu.bridge) / Math.max(1, n)).toFixed(2)}`,
    loadText,
  ];
}

/** Median of each phase over a pass's jobs, in seconds. */
function phaseColumn(pass: AlonePass): string[] {
  const phases = pass.jobs.map(phasesOf);
  return phaseNames.map((_, i) => {
    const values = phases.map((ph) => ph[i] as number).filter(Number.isFinite);
    return values.length ? (p(values, 50) / 1000).toFixed(2) : '—';
  });
}

export async function benchRealAwx(): Promise<{ section: string; result: ScenarioResult }> {
  const loadAtStart = load();
  const single = await alonePass(`AWX alone, one at a time (${singleCount} jobs)`, 'single', singleCount, 1);
  const burst = await alonePass(`AWX alone, ${runCount} launched at once`, 'burst', runCount, runCount);
  const unicopLoad = load();
  const unicop = await runUnicopPass(awxStack(), runCount, concurrency, capMs);
  const unicopLoadText = `${unicopLoad} → ${load()}`;
  process.stderr.write(`real-awx: UNICOP: ${unicop.runs.length} runs in ${s(unicop.wallMs)} s\n`);
  const paced = await alonePass(
    `AWX alone, ${runCount} with ≤ ${concurrency} in flight`,
    'paced',
    runCount,
    concurrency,
  );

  const costs = await playbookCost(awxStack());

  const rate = (n: number, ms: number) => (n * 1000) / ms;
  const unicopRate = rate(unicop.runs.length, unicop.wallMs);
  const pacedRate = rate(paced.jobs.length, paced.wallMs);
  const burstRate = rate(burst.jobs.length, burst.wallMs);
  const jobMs = unicop.runs.filter((r) => r.job).map((r) => (r.job?.finished ?? 0) - (r.job?.created ?? 0));
  const n = unicop.runs.length;
  // UNICOP's share of a run outside its AWX job: AWX's job finished → the outcome on Kafka (the
  // notification, the job read, the outcome written), and append → AWX created the job (queue wait
  // for one of C slots included).
  const afterJob = unicop.runs
    .filter((r) => r.job)
    .map((r) => r.appendedAt + r.latencyMs - (r.job?.finished ?? 0));
  const toLaunch = unicop.runs.filter((r) => r.job).map((r) => (r.job?.created ?? 0) - r.appendedAt);
  const foreignJobs = (pass: AlonePass) =>
    [...pass.cpu.containers.keys()].filter((id) => !pass.jobs.some((j) => j.id === id)).length;
  const unicopJobIds = new Set(unicop.runs.map((r) => r.awxJobId));
  const unicopForeignJobs = [...unicop.awxCpu.containers.keys()].filter((id) => !unicopJobIds.has(id)).length;
  const groupsPerJob = (pass: { cpu: ReturnType<AwxCpu['stop']> } | UnicopPass, count: number) => {
    const groups = 'cpu' in pass ? pass.cpu.groups : pass.awxCpu.groups;
    return awxCpuGroups
      .map((g) => `${g} ${((groups.get(g) ?? 0) / Math.max(1, count)).toFixed(2)}`)
      .join(', ');
  };

  const lines = [
    title,
    '',
    `Run ${new Date().toISOString()} at ${commit()} (\`npm run bench -- real-awx\`), load average ${loadAtStart} at the`,
    `start and ${load()} at the end (the stack and the load are shared: compare passes of one run, not runs).`,
    "The job: the stack's real AWX 24.6.1 running `unicop-site` (awx-playbooks/site.yml) for an empty site,",
    'in its podman execution environment: what UNICOP launches for a site root without devices.',
    `AWX alone: launches through AWX's API (\`POST /api/v2/job_templates/<id>/launch/\`), launch → the job's`,
    '`finished`. UNICOP: one `manual` intent per new site appended at once, the compiled workers process',
    `(reconcile concurrency ${concurrency}) and the compiled bridge ${unicop.bridgeNotified ? "on AWX's notification address" : "(AWX's notification address was taken: runs followed their jobs by polling)"};`,
    'intent appended → outcome on unicop.outcomes. Rate: jobs or runs over the pass (first launch → last end).',
    "The stack's AWX settings for a job's latency and their before/after: decision 0052.",
    '',
    table(
      [
        'pass',
        'successful',
        'wall s',
        'jobs/s',
        'latency p50 / p95 / p99 s',
        'CPU s per job: AWX + container',
        'UNICOP CPU s per run',
        'load',
      ],
      [aloneRow(single), aloneRow(burst), unicopRow(unicop, unicopLoadText), aloneRow(paced)],
    ),
    '',
    ...(unicop.otherTraffic.changes + unicop.otherTraffic.intents > 0
      ? [
          `**This UNICOP pass is void as a measure of UNICOP**: its workers also took ${unicop.otherTraffic.changes} change(s) and`,
          `${unicop.otherTraffic.intents} intent(s) of other sessions on the shared topics (below), so its rate is theirs too; the`,
          "ratios that follow are not UNICOP's (rerun on a quiet stack).",
          '',
        ]
      : []),
    `**UNICOP ÷ AWX alone at the same concurrency (≤ ${concurrency} in flight): ${(unicopRate / pacedRate).toFixed(2)}**; ÷ AWX alone`,
    `with all ${runCount} launched at once: ${(unicopRate / burstRate).toFixed(2)}. In UNICOP's runs the AWX job (created → finished)`,
    `took p50 ${s(p(jobMs, 50))} s; AWX's \`finished\` → the outcome on Kafka p50 ${s(p(afterJob, 50))} s / max ${s(Math.max(...afterJob))} s`,
    `(AWX's notification, the job read, the run written to NetBox); append → AWX created the job p50 ${s(p(toLaunch, 50))} s (the`,
    `wait for one of ${concurrency} slots included). During the pass the workers also took ${unicop.otherTraffic.changes} change(s) from`,
    `unicop.changes and ${unicop.otherTraffic.intents} intent(s) not the bench's (other sessions' work on the shared stack; ${unicop.foreignIntents} for the bench's roots).`,
    '',
    "CPU per job by part of AWX (seconds over the pass ÷ the pass's jobs; uwsgi includes the bench's own",
    "polling, once a second for all jobs of a pass; every part includes other clients' jobs and requests",
    "on the shared AWX, counted in the last column). The container column above is the pass's own jobs':",
    '',
    table(
      ['pass', 'AWX parts', "other clients' jobs AWX ran meanwhile"],
      [
        [single.label, groupsPerJob(single, single.jobs.length), String(foreignJobs(single))],
        [burst.label, groupsPerJob(burst, burst.jobs.length), String(foreignJobs(burst))],
        [`UNICOP, C=${concurrency}`, groupsPerJob(unicop, n), String(unicopForeignJobs)],
        [paced.label, groupsPerJob(paced, paced.jobs.length), String(foreignJobs(paced))],
      ],
    ),
    '',
    `UNICOP's processes over the pass: workers ${unicop.unicopCpu.workers.toFixed(1)} s, bridge ${unicop.unicopCpu.bridge.toFixed(1)} s; the stack's`,
    `services: ${[...unicop.stackCpu].map(([g, sec]) => `${g} ${sec.toFixed(1)}`).join(', ')} (NetBox serves other clients too).`,
    '',
    "Where one job's time goes inside AWX (median seconds per phase, from the job's record, its job events",
    "and AWX's `job_lifecycle` log; decision 0052):",
    '',
    table(
      ['phase', single.label, burst.label],
      phaseNames.map((name, i) => [name, phaseColumn(single)[i] as string, phaseColumn(burst)[i] as string]),
    ),
    '',
    "What one reconciler job costs with a few objects (decision 0058): each playbook's jobs one at a time, then",
    "all at once, for roots of the bench's own. Module tasks: task results at the target, from the job's events",
    '(each one a Python process in the job container); AWX daemons: their CPU over the pass ÷ its jobs.',
    '',
    costTable(costs),
    '',
    ...playbookCostBefore,
  ];
  const result: ScenarioResult = {
    scenario: 'real-awx',
    at: new Date().toISOString(),
    machine: machine(),
    commit: commit(),
    figures: {
      runs: runCount,
      concurrency,
      awxAloneSingleJobMs: {
        p50: p(
          single.jobs.map((j) => j.finished - j.sentAt),
          50,
        ),
      },
      awxAloneBurst: {
        jobsPerSecond: burstRate,
        p50Ms: p(
          burst.jobs.map((j) => j.finished - j.sentAt),
          50,
        ),
      },
      awxAlonePaced: {
        jobsPerSecond: pacedRate,
        p50Ms: p(
          paced.jobs.map((j) => j.finished - j.sentAt),
          50,
        ),
      },
      unicop: {
        runsPerSecond: unicopRate,
        intentToOutcomeMs: {
          p50: p(
            unicop.runs.map((r) => r.latencyMs),
            50,
          ),
          p95: p(
            unicop.runs.map((r) => r.latencyMs),
            95,
          ),
          p99: p(
            unicop.runs.map((r) => r.latencyMs),
            99,
          ),
        },
        awxJobP50Ms: p(jobMs, 50),
        awxFinishedToOutcomeP50Ms: p(afterJob, 50),
        appendToAwxCreatedP50Ms: p(toLaunch, 50),
        missing: unicop.missing,
        foreignIntents: unicop.foreignIntents,
        otherTraffic: unicop.otherTraffic,
      },
      playbookCost: costs.map((c) => ({
        playbook: c.playbook,
        pass: c.pass,
        successful: c.ok,
        jobs: c.jobs,
        launchToFinishedP50Ms: p(c.latencies, 50),
        containerCpuSecondsPerJob: mean(c.containerCpu),
        awxDaemonsCpuSecondsPerJob: c.awxCpuPerJob,
        moduleTasksPerJob: p(c.modules, 50),
      })),
      unicopShareOfAwxRateSameConcurrency: unicopRate / pacedRate,
      unicopShareOfAwxRateBurst: unicopRate / burstRate,
      loadAverageAtStart: loadAtStart.split(' ').map(Number),
    },
    goals: {},
  };
  return { section: section(lines), result };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { section: text } = await benchRealAwx();
  process.stdout.write(`${text}\n`);
  process.exit(0);
}
