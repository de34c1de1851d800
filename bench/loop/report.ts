/**
 * The reconcile loop's section of docs/benchmarks.md, written from the scenarios', the
 * coalescing runs' and the warm-up's results, with the instant subsection at its end.
 */
import { cpus, totalmem } from 'node:os';
import { countsText, percentile, section, table } from '../support.js';
import type { CoalescingResult } from './coalescing.js';
import { describe, type Scenario, type ScenarioResult } from './scenarios.js';
import {
  burstSize,
  command,
  fastPoll,
  productionPoll,
  rootCount,
  sequentialCount,
  title,
} from './settings.js';

/** What the loop bench measured, besides the instant passes. */
export interface LoopRun {
  /** The untimed warm-up: its outcomes, and intents or reconciler actions not from the bench. */
  warm: { text: string; foreign: number };
  results: ScenarioResult[];
  coalescing: CoalescingResult[];
  /** Automation was frozen globally on unicop.control. */
  frozen: boolean;
  /** The instant subsection, already written. */
  instant: string;
}

const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

export function loopSection(run: LoopRun): string {
  const { warm, results, coalescing, frozen, instant } = run;
  const segment = (r: ScenarioResult, i: number) => median(r.segments.map((s) => s[i] as number));
  const awxRunning = (r: ScenarioResult) => r.segments.map((s) => s[3] as number).sort((a, b) => a - b);
  const notable = results.filter((r) => r.notable.size > 0);
  const foreign = results.reduce((n, r) => n + r.foreignIntents + r.foreignActions, 0);
  const foreignElsewhere = coalescing.reduce((n, c) => n + c.foreign, warm.foreign);
  const reading = readingOf(results);

  return section([
    title,
    '',
    `Run ${new Date().toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ` +
      `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}: \`${command()}\``,
    '(also part of `npm run bench`), against the local stack (NetBox with the plugin, Kafka, Redis)',
    'and the AWX double, started in the bench process (`startBackHalf({ awx: "double" })`), whose site template (`unicop-site`)',
    'runs `awx-playbooks/site.yml` with the real ansible-runner. Everything shares the two cores.',
    '',
    `- ${rootCount} new sites, each reconciled once untimed (${warm.text}), then reused by every`,
    '  scenario: one `manual` intent per root (manual, so every run launches even at the same hash)',
    `  appended to unicop.intents — all at once ("burst"), or one root after another, the next after`,
    `  the previous outcome ("one at a time", ${sequentialCount} roots). A dispatcher on a fresh consumer group`,
    "  positioned at the end queues them on a fresh BullMQ queue (only the bench's roots: other suites",
    '  share the topic); one reconcile worker with concurrency C runs them with the production',
    '  options (lease TTL 60 s, retries). Each scenario has its own double (a fresh job list).',
    "- Latency: from the append of a root's intent to the arrival of its outcome on unicop.outcomes",
    '  at a consumer in the bench; in a burst it is mostly time spent waiting behind the other roots.',
    '  Runs/min: roots ÷ (first append → last outcome). Not timed: creating the sites, starting the',
    '  double, the dispatcher and the worker.',
    '- No bridge sits in front of the double, so no AWX notifications: the reconciler polls the job,',
    `  ${fastPoll.minMs} ms doubling to ${fastPoll.maxMs} ms (about a notification's wake-up), except the "polling 1→15 s"`,
    '  row: the production poll settings, what a run costs when its notifications are lost.',
    '- Memory, sampled every 200 ms during each scenario: RSS and V8 heap of the bench process',
    '  (double, dispatcher, worker, observer) and the summed RSS of its child processes',
    '  (ansible-runner, ansible-playbook and its workers).',
    frozen
      ? '- **Automation was frozen globally on unicop.control during this run: intents were held.**'
      : '',
    '',
    table(
      [
        'scenario',
        'C',
        'AWX site template',
        'roots',
        'seconds',
        'runs/min',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'max ms',
        'outcomes',
        'RSS MiB',
        'heap MiB',
        'ansible MiB',
      ],
      results.map((r) => [
        r.scenario.label,
        r.scenario.concurrency,
        r.scenario.simultaneous ? 'allow_simultaneous' : 'one job at a time',
        r.roots,
        r.seconds,
        (r.roots - r.missing) / (r.seconds / 60),
        percentile(r.latenciesMs, 50),
        percentile(r.latenciesMs, 95),
        percentile(r.latenciesMs, 99),
        percentile(r.latenciesMs, 100),
        `${countsText(r.states)}${r.missing ? `, missing ${r.missing}` : ''}`,
        r.memory.rssMiB,
        r.memory.heapMiB,
        r.memory.childrenMiB,
      ]),
    ),
    '',
    ...reading,
    "Where the time goes, per run (medians in ms; the AWX times are the double's own job record):",
    '"before the run" = dispatch, waiting in the queue, lease, snapshot; "launch" = run record and the',
    'AWX launch call; "AWX pending" = waiting for the template (one job of it at a time) and the',
    'double\'s start step; "ansible-runner" = AWX started → finished; "→ outcome" = the poll noticing',
    'the end, run + journal written to NetBox, outcome appended and consumed. CPU seconds over the',
    'scenario (two cores: at most 2 × its seconds): the bench process with its ansible-runner children,',
    "and the rest of the machine: the stack's NetBox, PostgreSQL, Kafka, Redis, and anything else.",
    '',
    table(
      [
        'scenario',
        'C',
        'before the run',
        'launch',
        'AWX pending',
        'ansible-runner p50',
        'ansible-runner p95',
        '→ outcome',
        'AWX launches',
        'CPU s bench',
        'CPU s rest',
      ],
      results.map((r) => [
        r.scenario.label,
        r.scenario.concurrency,
        segment(r, 0),
        segment(r, 1),
        segment(r, 2),
        percentile(awxRunning(r), 50),
        percentile(awxRunning(r), 95),
        segment(r, 4),
        r.awxLaunches,
        r.cpu.bench,
        r.cpu.rest,
      ]),
    ),
    '',
    `Coalescing: ${burstSize} intents for one new site appended in one burst, worker C=4. "queued" and`,
    '"coalesced" are the dispatcher\'s audit events for them; "in sync" is the first time the plugin',
    'reports the root `in_sync`; "quiet" is when every intent was dispatched and the queue holds no job.',
    '',
    table(
      ['cause', 'intents', 'queued', 'coalesced', 'AWX launches', 'outcomes', 'in sync ms', 'quiet ms'],
      coalescing.map((c) => [
        c.kind,
        c.intents,
        c.queued,
        c.coalesced,
        c.launches,
        countsText(c.states),
        c.inSyncMs,
        c.quietMs,
      ]),
    ),
    '',
    "Audit actions for the bench's roots, per scenario:",
    '',
    ...results.map((r) => `- ${describe(r.scenario)}: ${countsText(r.auditActions)}`),
    '',
    notable.length
      ? `Worker and reconciler log lines at warn or above, and delayed jobs:\n\n${notable
          .map((r) => `- ${describe(r.scenario)}: ${countsText(r.notable)}`)
          .join('\n')}`
      : 'No worker or reconciler log line at warn or above, and no delayed job.',
    '',
    foreign + foreignElsewhere > 0
      ? `**Another process worked on the bench's roots during the run** (${foreign + foreignElsewhere} ` +
        "intents or reconciler actions not from the bench, e.g. a sweeper or a test's workers): the figures " +
        'are disturbed.'
      : "No other process appended intents for the bench's roots or reconciled them during the run.",
    '',
    instant,
  ]);
}

/** Two sentences computed from the results: UNICOP's share of a run, and concurrency against AWX's. */
function readingOf(results: ScenarioResult[]): string[] {
  const find = (mode: Scenario['mode'], c: number, simultaneous: boolean, poll = fastPoll) =>
    results.find(
      (r) =>
        r.scenario.mode === mode &&
        r.scenario.concurrency === c &&
        r.scenario.simultaneous === simultaneous &&
        r.scenario.poll === poll,
    );
  const alone = find('sequential', 1, false);
  const polled = find('sequential', 1, false, productionPoll);
  const c1 = find('burst', 1, false);
  const c4 = find('burst', 4, false);
  if (!alone || !polled || !c1 || !c4) return [];
  const e2e = median(alone.latenciesMs);
  const ansible = median(alone.segments.map((s) => s[3] as number));
  const rate = (r: ScenarioResult) => ((r.roots - r.missing) / (r.seconds / 60)).toFixed(1);
  return [
    `Reading: one root at a time, a run takes ${e2e.toFixed(0)} ms from intent to outcome (p50), of which`,
    `ansible-runner ${ansible.toFixed(0)} ms: UNICOP's share is about ${(e2e - ansible).toFixed(0)} ms; with the production poll`,
    `settings and no notifications it is ${(median(polled.latenciesMs) - median(polled.segments.map((s) => s[3] as number))).toFixed(0)} ms.`,
    `With the site template running one job at a time (AWX's default), C=4 gives ${rate(c4)} runs/min`,
    `against ${rate(c1)} at C=1: the extra runs hold their root's lease while they wait in AWX`,
    `(median ${median(c4.segments.map((s) => s[2] as number)).toFixed(0)} ms pending), and that wait counts against their run timeout.`,
    '',
  ];
}
