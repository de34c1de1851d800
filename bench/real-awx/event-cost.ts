/**
 * AWX's own CPU per job event with its UI live updates on and off (decision 0063):
 * `npx tsx bench/real-awx/event-cost.ts`. With `UI_LIVE_UPDATES_ENABLED` on, AWX's callback receiver
 * publishes every job event it saves to the websocket channel layer (awx/main/models/events.py
 * emit_event_detail → consumers.emit_channel_notification, a new asyncio loop per event); the stack
 * runs no websocket server, so nobody receives them.
 *
 * Passes alternate the setting (BENCH_AWX_LIVE_PASSES, default on,off,on,off; it is left off, the
 * stack's value, at the end). Each pass launches BENCH_AWX_LIVE_JOBS (default 3) `unicop-site` jobs
 * for a site of five devices, one at a time, and reads AWX's daemons' CPU over the pass (awx-cpu.ts).
 * The shared AWX also runs other clients' jobs, so the CPU is divided by what AWX did in the pass:
 * the callback receiver's by the job events of every job that finished in it, the dispatcher's and
 * the API's by those jobs.
 */
import { loadavg } from 'node:os';
import { percentile, sleep, table } from '../support.js';
import { type AwxJobRow, awxRequest, awxStack, launchAndTime } from './awx-alone.js';
import { AwxCpu } from './awx-cpu.js';
import { siteWithDevices } from './playbook-cost.js';

const passes = (process.env.BENCH_AWX_LIVE_PASSES ?? 'on,off,on,off').split(',');
const jobsPerPass = Number(process.env.BENCH_AWX_LIVE_JOBS ?? 3);
const awx = awxStack();
const load = () =>
  loadavg()
    .map((n) => n.toFixed(1))
    .join(' ');

async function setLiveUpdates(on: boolean): Promise<void> {
  await awxRequest(awx, 'PATCH', '/api/v2/settings/ui/', { UI_LIVE_UPDATES_ENABLED: on });
  const now = await awxRequest<{ UI_LIVE_UPDATES_ENABLED: boolean }>(awx, 'GET', '/api/v2/settings/ui/');
  if (now.UI_LIVE_UPDATES_ENABLED !== on) throw new Error(`UI_LIVE_UPDATES_ENABLED stayed ${!on}`);
}

/** Every job AWX finished between the two times (any client's), with its job events. */
async function finishedBetween(from: Date, to: Date): Promise<{ jobs: number; events: number }> {
  const page = await awxRequest<{ results: AwxJobRow[] }>(
    awx,
    'GET',
    `/api/v2/jobs/?finished__gte=${from.toISOString()}&finished__lte=${to.toISOString()}&page_size=200`,
  );
  let events = 0;
  for (const job of page.results) {
    const counted = await awxRequest<{ count: number }>(
      awx,
      'GET',
      `/api/v2/jobs/${job.id}/job_events/?page_size=1`,
    );
    events += counted.count;
  }
  return { jobs: page.results.length, events };
}

const rows: (string | number)[][] = [];
try {
  for (const [i, pass] of passes.entries()) {
    await setLiveUpdates(pass === 'on');
    await sleep(5000); // AWX's settings cache
    const loadBefore = load();
    const cpu = new AwxCpu();
    const from = new Date();
    cpu.start();
    const { jobs } = await launchAndTime(awx, `live-${i}`, jobsPerPass, 1, 600_000, siteWithDevices(awx, 5));
    await sleep(3000); // the last events saved
    const { groups } = cpu.stop();
    const all = await finishedBetween(from, new Date());
    const ok = jobs.filter((j) => j.status === 'successful');
    const perJob = (g: string) => ((groups.get(g as never) ?? 0) / Math.max(1, all.jobs)).toFixed(2);
    rows.push([
      `${i + 1}: live updates ${pass}`,
      `${ok.length}/${jobs.length}`,
      (
        percentile(
          ok.map((j) => (j.finished - j.sentAt) / 1000).sort((a, b) => a - b),
          50,
        ) || 0
      ).toFixed(1),
      `${all.jobs} (${all.events} events)`,
      (((groups.get('callback receiver') ?? 0) / Math.max(1, all.events)) * 100).toFixed(2),
      perJob('dispatcher'),
      perJob('uwsgi (API)'),
      `${loadBefore} → ${load()}`,
    ]);
    process.stderr.write(`event-cost: ${rows.at(-1)?.join(' | ')}\n`);
  }
} finally {
  await setLiveUpdates(false);
}
process.stdout.write(
  `${table(
    [
      'pass',
      'bench jobs successful',
      'launch → finished p50 s',
      'jobs AWX finished in the pass (all clients)',
      'callback receiver CPU s per 100 events',
      'dispatcher CPU s per job',
      'API CPU s per job',
      'load',
    ],
    rows,
  )}\n`,
);
process.exit(0);
