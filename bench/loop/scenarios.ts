/**
 * The throughput and latency scenarios: one `manual` intent per root, all at once ("burst") or one
 * root after another, on a fresh loop each; per run, where the time went (the double's job record
 * times each AWX step), and per scenario memory, CPU, audit actions and notable log lines. Also the
 * untimed warm-up that reconciles every site once before them.
 */
import type { FreezeView } from '../../core/control/freeze-view.js';
import type { DoubleJobRecord } from '../../test/awx/support.js';
import { countBy, countsText, percentile, until } from '../support.js';
import type { LoopObserver } from './observer.js';
import { doubleOf, intentMessage, msOf, startLoop, stopLoop } from './pipeline.js';
import { fastPoll, perRunTimeoutMs, productionPoll, sequentialCount } from './settings.js';
import { cpuSeconds, MemorySampler } from './usage.js';

export interface Scenario {
  label: string;
  concurrency: number;
  /** AWX's allow_simultaneous on the templates; off by default in AWX and in startBackHalf(). */
  simultaneous: boolean;
  /** Following the AWX job: first poll interval, doubling up to the maximum (no notifications here). */
  poll: { minMs: number; maxMs: number };
  /** burst: every intent appended at once; sequential: the next only after the previous outcome. */
  mode: 'burst' | 'sequential';
}

export const scenarios: Scenario[] = [
  { label: 'one at a time', concurrency: 1, simultaneous: false, poll: fastPoll, mode: 'sequential' },
  {
    label: 'one at a time, polling 1→15 s',
    concurrency: 1,
    simultaneous: false,
    poll: productionPoll,
    mode: 'sequential',
  },
  { label: 'burst', concurrency: 1, simultaneous: false, poll: fastPoll, mode: 'burst' },
  { label: 'burst', concurrency: 4, simultaneous: false, poll: fastPoll, mode: 'burst' },
  { label: 'burst', concurrency: 2, simultaneous: true, poll: fastPoll, mode: 'burst' },
  { label: 'burst', concurrency: 4, simultaneous: true, poll: fastPoll, mode: 'burst' },
];

export interface ScenarioResult {
  scenario: Scenario;
  roots: number;
  seconds: number;
  latenciesMs: number[];
  states: Map<string, number>;
  missing: number;
  memory: MemorySampler;
  /** CPU seconds during the scenario: the bench process with its children, and the rest of the machine. */
  cpu: { bench: number; rest: number };
  /** Per run, ms: append → run started, → AWX job created, AWX pending, AWX running, → outcome. */
  segments: number[][];
  awxLaunches: number;
  auditActions: Map<string, number>;
  /** Warn/error log lines and delayed jobs, counted by message (and reason). */
  notable: Map<string, number>;
  foreignIntents: number;
  foreignActions: number;
}

export async function runScenario(
  scenario: Scenario,
  siteKeys: string[],
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<ScenarioResult> {
  const loop = await startLoop(scenario, observer, freezeView);
  const keys = scenario.mode === 'sequential' ? siteKeys.slice(0, sequentialCount) : siteKeys;
  const memory = new MemorySampler();
  const from = observer.mark();
  const appended = new Map<string, number>(); // intent id → when its append was called
  const outcomeOf = (intentId: string) => observer.outcomes.find((o) => o.data.intentId === intentId);
  memory.start();
  const cpuBefore = cpuSeconds();
  const t0 = Date.now();
  if (scenario.mode === 'burst') {
    const intents = keys.map((key) => intentMessage(observer, key, 'manual'));
    const at = Date.now();
    await loop.back.eventLog.append(intents.map((i) => i.message));
    for (const i of intents) appended.set(i.intentId, at);
    await until(
      () => [...appended.keys()].every((id) => outcomeOf(id)),
      perRunTimeoutMs * Math.ceil(keys.length / scenario.concurrency),
    );
  } else {
    for (const key of keys) {
      const intent = intentMessage(observer, key, 'manual');
      const at = Date.now();
      await loop.back.eventLog.append([intent.message]);
      appended.set(intent.intentId, at);
      await until(() => outcomeOf(intent.intentId) !== undefined, perRunTimeoutMs);
    }
  }
  memory.stop();
  const cpuAfter = cpuSeconds();
  const benchCpu = cpuAfter.bench - cpuBefore.bench;
  const cpu = { bench: benchCpu, rest: cpuAfter.machine - cpuBefore.machine - benchCpu };
  const seen = [...appended].flatMap(([id, at]) => {
    const outcome = outcomeOf(id);
    return outcome ? [{ at, outcome }] : [];
  });
  const seconds = (Math.max(t0, ...seen.map((s) => s.outcome.receivedAt)) - t0) / 1000;
  const jobs = new Map<number, DoubleJobRecord & { created?: string }>(
    (await doubleOf(loop.back).doubleJobs()).filter((j) => j.type === 'job').map((j) => [j.id, j]),
  );
  const segments = seen.map(({ at, outcome }) => {
    const job = jobs.get(outcome.data.awxJobId ?? -1);
    const runStarted = msOf(outcome.data.startedAt);
    return [
      runStarted - at,
      msOf(job?.created) - runStarted,
      msOf(job?.started) - msOf(job?.created),
      msOf(job?.finished) - msOf(job?.started),
      outcome.receivedAt - msOf(job?.finished),
    ];
  });
  const notable = await stopLoop(loop, 500);
  const result: ScenarioResult = {
    scenario,
    roots: keys.length,
    seconds,
    latenciesMs: seen.map((s) => s.outcome.receivedAt - s.at).sort((a, b) => a - b),
    states: countBy(seen, (s) => s.outcome.data.state),
    missing: appended.size - seen.length,
    memory,
    cpu,
    segments,
    awxLaunches: jobs.size,
    auditActions: countBy(observer.audit.slice(from.audit), (a) => a.data.action),
    notable,
    foreignIntents: observer.foreignIntents.length - from.foreign,
    foreignActions: observer.foreignReconcilerActions(from.audit).length,
  };
  process.stderr.write(
    `loop ${describe(scenario)}: ${result.roots} roots in ${seconds.toFixed(1)} s, ` +
      `p50 ${percentile(result.latenciesMs, 50).toFixed(0)} ms, missing ${result.missing}, ` +
      `foreign intents ${result.foreignIntents}, foreign reconciler actions ${result.foreignActions}\n`,
  );
  return result;
}

export function describe(s: Scenario): string {
  const template = s.simultaneous ? 'allow_simultaneous' : 'one job of the template at a time';
  return `${s.label}, C=${s.concurrency}, ${template}`;
}

/** Untimed: every site reconciled once, so each is in sync before the timed scenarios start. */
export async function warmUp(
  siteKeys: string[],
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<{ text: string; foreign: number }> {
  const loop = await startLoop({ concurrency: 4, simultaneous: true, poll: fastPoll }, observer, freezeView);
  const intents = siteKeys.map((key) => intentMessage(observer, key, 'change'));
  const from = observer.mark();
  const t0 = Date.now();
  await loop.back.eventLog.append(intents.map((i) => i.message));
  const ids = new Set(intents.map((i) => i.intentId));
  const done = () => observer.outcomes.filter((o) => ids.has(o.data.intentId ?? ''));
  await until(() => done().length >= ids.size, perRunTimeoutMs * Math.ceil(siteKeys.length / 4));
  await loop.stop();
  const seconds = ((Date.now() - t0) / 1000).toFixed(0);
  return {
    text: `${countsText(countBy(done(), (o) => o.data.state))} in ${seconds} s`,
    foreign: observer.foreignSince(from),
  };
}
