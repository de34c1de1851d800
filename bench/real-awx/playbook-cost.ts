/**
 * What one reconciler job costs inside real AWX (decision 0058): `unicop-site` for a site of five
 * devices and `unicop-prefix` for a prefix of five named addresses, launched through AWX's API with
 * a UNICOP run's extra vars for roots of the bench's own (`<kind>/bench-real-awx-pb-…`), first one
 * at a time, then N at once. Per job: launch → finished, the playbook (first → last job event), the
 * job container's CPU seconds, AWX's daemons' CPU seconds (÷ the pass's jobs), and how many module
 * tasks ran at the target (from the job's events: every task result whose action is not one of the
 * controller-side actions — each of those started a Python process in the container).
 *
 * `npx tsx bench/real-awx/playbook-cost.ts` prints the table alone (no docs written); the
 * `real-awx` scenario includes it (bench/real-awx.ts).
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { percentile, table } from '../support.js';
import { type AwxStack, awxRequest, awxStack, type JobSpec, launchAndTime, runVars } from './awx-alone.js';
import { AwxCpu } from './awx-cpu.js';

/** Jobs launched one after another, then all at once, per playbook. */
const singleCount = Number(process.env.BENCH_REAL_AWX_PLAYBOOK_SINGLE ?? 3);
const burstCount = Number(process.env.BENCH_REAL_AWX_PLAYBOOK_BURST ?? 4);
/** Devices of the site, named addresses of the prefix. */
const size = Number(process.env.BENCH_REAL_AWX_PLAYBOOK_SIZE ?? 5);

export function siteWithDevices(awx: AwxStack, devices: number): JobSpec {
  return {
    templateId: awx.siteTemplateId,
    kind: 'site',
    extraVars: (rootKey, targetDir) =>
      runVars(rootKey, targetDir, {
        root: { kind: 'site', key: rootKey, anchor: { id: 1, name: rootKey, slug: 'bench' } },
        members: Array.from({ length: devices }, (_, i) => ({
          object_type: 'dcim.device',
          id: i + 1,
          name: `sw${i + 1}`,
          role: { id: 1, slug: 'access-switch', name: 'Access switch' },
          status: { value: 'active', label: 'Active' },
          platform: { id: 1, slug: 'eos', name: 'EOS' },
          device_type: { id: 1, slug: 'dcs-7050', model: 'DCS-7050' },
          primary_ip4: { id: i + 1, address: `10.0.0.${i + 1}/24` },
          serial: `SN${i + 1}`,
        })),
      }),
  };
}

export function prefixWithAddresses(awx: AwxStack, addresses: number): JobSpec {
  if (awx.prefixTemplateId === undefined) throw new Error('no unicop-prefix template in var/stack.env');
  return {
    templateId: awx.prefixTemplateId,
    kind: 'prefix',
    extraVars: (rootKey, targetDir) =>
      runVars(rootKey, targetDir, {
        root: {
          kind: 'prefix',
          key: rootKey,
          anchor: { id: 1, prefix: '10.20.30.0/24', dns_zone: 'bench.example' },
        },
        members: Array.from({ length: addresses }, (_, i) => ({
          object_type: 'ipam.ipaddress',
          id: i + 1,
          address: `10.20.30.${i + 1}/24`,
          dns_name: `host${i + 1}.bench.example`,
        })),
      }),
  };
}

/** Actions Ansible runs inside ansible-playbook itself: no module process at the target. */
const controllerActions = new Set([
  'set_fact',
  'assert',
  'set_stats',
  'debug',
  'meta',
  'fail',
  'import_tasks',
  'include_tasks',
  'include_vars',
]);

interface JobEvent {
  event: string;
  event_data?: { task_uuid?: string; resolved_action?: string; task_action?: string };
}

/**
 * Module tasks that ran at the target in one job, and the job's event count. A looped task counts
 * once per item (its per-item events); any other task once per result.
 */
export async function moduleTasks(
  awx: AwxStack,
  jobId: number,
): Promise<{ modules: number; events: number }> {
  const page = await awxRequest<{ count: number; results: JobEvent[] }>(
    awx,
    'GET',
    `/api/v2/jobs/${jobId}/job_events/?page_size=200`,
  );
  const results = new Map<string, { items: number; results: number }>();
  for (const e of page.results) {
    const action = (e.event_data?.resolved_action ?? e.event_data?.task_action ?? '').split('.').pop() ?? '';
    if (!action || controllerActions.has(action)) continue;
    const item = e.event === 'runner_item_on_ok' || e.event === 'runner_item_on_failed';
    const result = e.event === 'runner_on_ok' || e.event === 'runner_on_failed';
    if (!item && !result) continue;
    const task = e.event_data?.task_uuid ?? '';
    const seen = results.get(task) ?? { items: 0, results: 0 };
    if (item) seen.items += 1;
    else seen.results += 1;
    results.set(task, seen);
  }
  let modules = 0;
  for (const { items, results: r } of results.values()) modules += items > 0 ? items : r;
  return { modules, events: page.count };
}

export interface CostPass {
  playbook: string;
  pass: string;
  ok: number;
  jobs: number;
  wallMs: number;
  /** Launch → finished, per job. */
  latencies: number[];
  /** First → last job event, per job. */
  playbookMs: number[];
  containerCpu: number[];
  /** AWX's daemons over the pass ÷ its jobs (other clients' work on the shared AWX included). */
  awxCpuPerJob: number;
  modules: number[];
  events: number[];
  /** Job containers of other clients that ran during the pass (the shared AWX). */
  foreignJobs: number;
  load: string;
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

async function costPass(
  awx: AwxStack,
  playbook: string,
  spec: JobSpec,
  count: number,
  inFlight: number,
): Promise<CostPass> {
  const loadBefore = load();
  const cpu = new AwxCpu();
  cpu.start();
  const { jobs, wallMs } = await launchAndTime(awx, `pb-${Date.now()}`, count, inFlight, 900_000, spec);
  const used = cpu.stop();
  const counted = await Promise.all(jobs.map((j) => moduleTasks(awx, j.id)));
  const pass: CostPass = {
    playbook,
    pass: inFlight === 1 ? `one at a time (${count})` : `${count} at once`,
    ok: jobs.filter((j) => j.status === 'successful').length,
    jobs: jobs.length,
    wallMs,
    latencies: jobs.map((j) => j.finished - j.sentAt),
    playbookMs: jobs.map((j) => j.events.last - j.events.first),
    containerCpu: jobs.map((j) => used.containers.get(j.id) ?? Number.NaN),
    awxCpuPerJob: [...used.groups.values()].reduce((a, b) => a + b, 0) / Math.max(1, jobs.length),
    modules: counted.map((c) => c.modules),
    events: counted.map((c) => c.events),
    foreignJobs: [...used.containers.keys()].filter((id) => !jobs.some((j) => j.id === id)).length,
    load: `${loadBefore} → ${load()}`,
  };
  process.stderr.write(
    `real-awx: ${playbook}, ${pass.pass}: ${pass.ok}/${pass.jobs} in ${(wallMs / 1000).toFixed(1)} s\n`,
  );
  return pass;
}

/** site.yml and prefix.yml, each one at a time and then N at once. */
export async function playbookCost(awx: AwxStack = awxStack()): Promise<CostPass[]> {
  const passes: CostPass[] = [];
  for (const [playbook, spec] of [
    [`site.yml, ${size} devices`, siteWithDevices(awx, size)],
    [`prefix.yml, ${size} addresses`, prefixWithAddresses(awx, size)],
  ] as const) {
    passes.push(await costPass(awx, playbook, spec, singleCount, 1));
    passes.push(await costPass(awx, playbook, spec, burstCount, burstCount));
  }
  return passes;
}

const median = (values: number[]) => {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  return finite.length ? percentile(finite, 50) : Number.NaN;
};
export const mean = (values: number[]) => {
  const finite = values.filter(Number.isFinite);
  return finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : Number.NaN;
};
const sec = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : '—');

/** The cost table's columns; the record of the passes before decision 0058 has all but `otherJobsColumn`. */
export const otherJobsColumn = "other clients' jobs meanwhile";
export const costColumns = [
  'playbook',
  'pass',
  'successful',
  'launch → finished p50 s',
  'playbook p50 s',
  'container CPU s per job',
  'AWX daemons CPU s per job',
  'module tasks per job',
  'job events per job',
  otherJobsColumn,
  'load',
];

export function costTable(passes: CostPass[]): string {
  return table(
    costColumns,
    passes.map((p) => [
      p.playbook,
      p.pass,
      `${p.ok}/${p.jobs}`,
      sec(median(p.latencies)),
      sec(median(p.playbookMs)),
      mean(p.containerCpu).toFixed(2),
      p.awxCpuPerJob.toFixed(2),
      String(median(p.modules)),
      String(median(p.events)),
      String(p.foreignJobs),
      p.load,
    ]),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const passes = await playbookCost();
  process.stdout.write(`${costTable(passes)}\n`);
  process.exit(0);
}
