/**
 * Benchmark: the reconcile loop end to end against the real stack. Intents for R site roots are
 * appended to unicop.intents; a dispatcher under a fresh consumer group (positioned at the end)
 * queues them on a fresh BullMQ queue; a reconcile worker with concurrency C takes the lease,
 * snapshots the root in NetBox, launches the AWX double's site template (`unicop-site`, site.yml), which
 * really runs ansible-runner, follows the job, writes the run and journal to NetBox and the outcome
 * to unicop.outcomes. Each root's latency is from appending its intent to receiving its outcome.
 * Also: K intents for one root in a burst → how many AWX launches, and how long until it is in sync.
 *
 * Then UNICOP's own overhead: the double ends every job at once (no ansible-runner), one intent
 * for each of BENCH_LOOP_INSTANT_ROOTS new sites (default 1000), one pass per worker concurrency in
 * BENCH_LOOP_INSTANT_C (default 4,8): runs/s, intent → AWX launch, AWX end → outcome in NetBox and on
 * unicop.outcomes, memory and CPU of the process hosting the worker.
 *
 * Alone: `npx tsx bench/loop.ts` (needs `scripts/stack up`) replaces this section of
 * docs/benchmarks.md. BENCH_LOOP_ROOTS (default 20) and BENCH_LOOP_BURST (default 50) set R and K.
 * `BENCH_LOOP_ONLY=instant npx tsx bench/loop.ts` runs and replaces only the instant subsection.
 *
 * Where what lives, under bench/loop/: settings.ts (the knobs), pipeline.ts (one dispatcher + queue
 * + worker on the AWX double), observer.ts (what the bench sees on Kafka), scenarios.ts and
 * coalescing.ts (the timed runs), instant.ts (the overhead passes), usage.ts (CPU and memory from
 * /proc), netbox.ts (sites and NetBox's background queues), http-tally.ts, report.ts and
 * instant-report.ts (the markdown), benchmarks-doc.ts (writing it into docs/benchmarks.md).
 */

import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createSite } from '../test/support/reconciler.js';
import { writeInstantSubsection, writeSection } from './loop/benchmarks-doc.js';
import { runCoalescing } from './loop/coalescing.js';
import { runInstantPasses } from './loop/instant.js';
import { instantSection } from './loop/instant-report.js';
import { deleteSites } from './loop/netbox.js';
import { watch } from './loop/observer.js';
import { loopSection } from './loop/report.js';
import { instantScenarioResult, writeLoopResult } from './loop/result.js';
import { runScenario, type ScenarioResult, scenarios, warmUp } from './loop/scenarios.js';
import { rootCount } from './loop/settings.js';

/** The subsection: R new sites, one pass per concurrency with the double ending jobs at once. */
export async function benchInstantLoop(): Promise<string> {
  const passes = await runInstantPasses();
  writeLoopResult(instantScenarioResult(passes.results));
  return instantSection(passes);
}

export async function benchReconcileLoop(): Promise<string> {
  const sites: { id: number; rootKey: string }[] = [];
  for (let i = 0; i < rootCount; i++) sites.push(await createSite());
  const siteKeys = sites.map((s) => s.rootKey);
  const { observer, freezeView, frozen, stop } = await watch(siteKeys);

  const warm = await warmUp(siteKeys, observer, freezeView);
  process.stderr.write(`loop warm-up: ${warm.text}, foreign ${warm.foreign}\n`);
  const results: ScenarioResult[] = [];
  for (const scenario of scenarios) results.push(await runScenario(scenario, siteKeys, observer, freezeView));
  const coalescing = [
    await runCoalescing('change', observer, freezeView),
    await runCoalescing('manual', observer, freezeView),
  ];
  if (process.env.BENCH_LOOP_DUMP) {
    const { audit, outcomes, foreignIntents } = observer;
    writeFileSync(process.env.BENCH_LOOP_DUMP, JSON.stringify({ audit, outcomes, foreignIntents }, null, 1));
  }
  await stop();
  await deleteSites(sites);
  const instant = await benchInstantLoop();
  return loopSection({ warm, results, coalescing, frozen, instant });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.env.BENCH_LOOP_ONLY === 'instant') {
    const subsection = await benchInstantLoop();
    writeInstantSubsection(subsection);
    process.stdout.write(`${subsection}\n\nwrote docs/benchmarks.md\n`);
  } else {
    const section = await benchReconcileLoop();
    writeSection(section);
    process.stdout.write(`${section}\n\nwrote docs/benchmarks.md\n`);
  }
  process.exit(0);
}
