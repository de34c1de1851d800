/**
 * Benchmark (`npm run bench -- coalesce`): a storm of intents over a few roots, against the real
 * stack. N intents (default 10,000) for R new NetBox sites (default 100) are appended to
 * unicop.intents as fast as the producer takes them, root after root in turn (intent i is for root
 * i mod R), while the sites are edited E times (default 4, one bulk PATCH of every site each, at
 * evenly spaced points of the stream: the last edit is the root's final state). One dispatcher and
 * one reconcile worker (concurrency C, the production default 4) run in the bench process
 * (bench/loop/pipeline.ts) on an AWX double that ends every job at once: the shortest job is the
 * worst case for coalescing (a root's job ends sooner, so more of the storm finds no job to
 * coalesce into), and no ansible-runner competes for the shared cores.
 *
 * Measured: AWX launches (the double's job list), jobs run and outcomes by state, every root's
 * final state once the queue is quiet (the plugin's last reconciled hash equals its current hash,
 * not stale), intents appended and dispatched per second, intent → outcome latency (from the
 * intent's append, acknowledged by Kafka, to the first outcome of its root from a job taken after
 * it), peak RSS and heap of the bench process (dispatcher, worker, double, observer) and CPU
 * seconds by process group. Goal (#15): ≤ 2 launches per root (200 for 100 roots), every root at
 * its final hash. The sites are deleted afterwards.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import type { PluginRoot } from '../core/plugin/client.js';
import { watch } from './loop/observer.js';
import { type CauseKind, doubleOf, intentMessage, startLoop, stopLoop } from './loop/pipeline.js';
import { fastPoll } from './loop/settings.js';
import { CpuByProcess, cpuGroupNames, MemorySampler } from './loop/usage.js';
import { commit, goal, machine, type ScenarioResult } from './scenario-result.js';
import { countBy, countsText, percentile, section, sleep, stackNetbox, table, until } from './support.js';

const intentCount = Number(process.env.BENCH_COALESCE_INTENTS ?? 10_000);
const rootCount = Number(process.env.BENCH_COALESCE_ROOTS ?? 100);
/** Bulk edits of every site during the stream; 0 leaves the sites as created. */
const editCount = Number(process.env.BENCH_COALESCE_EDITS ?? 4);
/** The reconcile worker's concurrency: UNICOP_RECONCILE_CONCURRENCY's default (core/config.ts). */
const concurrency = Number(process.env.BENCH_COALESCE_C ?? 4);
/** `change` as the resolver emits them; `manual` forces a run even at a reconciled hash. */
const causeKind = (process.env.BENCH_COALESCE_CAUSE ?? 'change') as CauseKind;
/** Caps, never budgets: how long to wait for the storm to be dispatched and the queue to be quiet. */
const quietCapMs = 900_000;
/** How long to wait for NetBox's background queue (webhooks of the creation) before starting. */
const drainCapMs = 120_000;

const title = '## Coalescing: a storm of intents over a few roots';

/** NetBox's REST API with a longer timeout than the tests': a bulk PATCH on a loaded NetBox. */
const nb = stackNetbox(180_000);

/** The plugin's view of each root: last reconciled and current hash, stale or not. */
async function rootStates(keys: string[]): Promise<Map<string, PluginRoot>> {
  const found = new Map<string, PluginRoot>();
  for (const key of keys) {
    const page = await nb()<{ results: PluginRoot[] }>(
      'GET',
      `/api/plugins/unicop/roots/?key=${encodeURIComponent(key)}`,
    );
    const root = page.results.find((r) => r.key === key);
    if (root) found.set(key, root);
  }
  return found;
}

/**
 * New sites named `<prefix>-<uuid>-<i>`, in bulk requests of 100 one at a time, with the long timeout
 * (a loaded NetBox); the plugin makes a root `site/<id>` for each.
 */
export async function makeSites(prefix: string, count: number): Promise<{ id: number; rootKey: string }[]> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  const made: { id: number; rootKey: string }[] = [];
  for (let from = 0; from < count; from += 100) {
    const bodies = Array.from({ length: Math.min(100, count - from) }, (_, i) => ({
      name: `${name}-${from + i}`,
      slug: `${name}-${from + i}`,
      status: 'active',
    }));
    const created = await nb()<{ id: number }[]>('POST', '/api/dcim/sites/', bodies);
    made.push(...created.map((s) => ({ id: s.id, rootKey: `site/${s.id}` })));
  }
  return made;
}

/** Jobs waiting in NetBox's background queues (its RQ workers'), or NaN when NetBox did not answer. */
export async function queuedJobs(): Promise<number> {
  try {
    const page = await nb()<{ results: { jobs: number }[] }>('GET', '/api/core/background-queues/');
    return page.results.reduce((n, q) => n + q.jobs, 0);
  } catch {
    return Number.NaN;
  }
}

/** Deletes the bench's sites in bulk requests of 100, with the long timeout (a loaded NetBox). */
export async function removeSites(sites: { id: number }[]): Promise<void> {
  for (let from = 0; from < sites.length; from += 100) {
    const batch = sites.slice(from, from + 100).map((s) => ({ id: s.id }));
    await nb()('DELETE', '/api/dcim/sites/', batch).catch((error: unknown) =>
      process.stderr.write(`${batch.length} bench sites may be left in NetBox: ${String(error)}\n`),
    );
  }
}

const atFinalHash = (r: PluginRoot | undefined) =>
  r !== undefined && !r.hash_stale && r.last_reconciled_hash === r.current_hash;

export async function benchCoalesce(): Promise<{ section: string; result: ScenarioResult }> {
  const loadAtStart = loadavg().map((n) => n.toFixed(1));
  const sites = await makeSites('bench-coalesce', rootCount);
  const keys = sites.map((s) => s.rootKey);
  const drainStarted = Date.now();
  let background = await queuedJobs();
  while (!(background === 0) && Date.now() - drainStarted < drainCapMs) {
    await sleep(2000);
    background = await queuedJobs();
  }
  process.stderr.write(
    `coalesce: ${sites.length} sites; NetBox background jobs ${background} after ${((Date.now() - drainStarted) / 1000).toFixed(0)} s\n`,
  );
  const watched = await watch(keys);
  const { observer } = watched;
  const loop = await startLoop(
    { concurrency, simultaneous: false, instant: true, poll: fastPoll },
    observer,
    watched.freezeView,
  );
  let stopped = false;
  try {
    // Rounds of one intent per root; an edit of every site before rounds 0, R/E, 2R/E, …
    const rounds = Math.ceil(intentCount / rootCount);
    const editBefore = new Set(
      Array.from({ length: editCount }, (_, e) => Math.floor((e * rounds) / editCount)),
    );
    const intents = Array.from({ length: rounds }, (_, r) =>
      keys
        .slice(0, Math.min(rootCount, intentCount - r * rootCount))
        .map((key) => ({ key, ...intentMessage(observer, key, causeKind) })),
    );
    /** When each round was handed to the producer: a run taken after that read a snapshot as new. */
    const sentAt: number[] = new Array(rounds);
    const edits: { at: number; ms: number }[] = [];
    const memory = new MemorySampler(false);
    const cpu = new CpuByProcess();
    memory.start();
    cpu.start();
    const t0 = Date.now();
    let pending: Promise<void>[] = [];
    for (let r = 0; r < rounds; r++) {
      if (editBefore.has(r)) {
        // Every intent already handed to the producer is on the log before the sites change.
        await Promise.all(pending);
        pending = [];
        const at = Date.now();
        await nb()(
          'PATCH',
          '/api/dcim/sites/',
          sites.map((s) => ({
            id: s.id,
            description: `coalesce bench edit ${edits.length + 1} at ${new Date(at).toISOString()}`,
          })),
        );
        edits.push({ at, ms: Date.now() - at });
      }
      const round = intents[r] ?? [];
      sentAt[r] = Date.now();
      pending.push(loop.back.eventLog.append(round.map((i) => i.message)));
    }
    await Promise.all(pending);
    const appendedMs = Date.now() - t0;
    const editMs = edits.reduce((sum, e) => sum + e.ms, 0);
    const all = intents.flat();
    const ids = new Set(all.map((i) => i.intentId));
    const dispatchedAt = new Map<string, { action: string; at: number }>();
    const countDispatched = () => {
      for (const a of observer.audit) {
        const id = String(a.data.correlation.intentId ?? '');
        if (ids.has(id) && !dispatchedAt.has(id) && a.data.action.startsWith('intent.')) {
          dispatchedAt.set(id, { action: a.data.action, at: Date.now() });
        }
      }
      return dispatchedAt.size;
    };
    await until(() => countDispatched() === all.length, quietCapMs);
    const dispatchedMs = Math.max(...[...dispatchedAt.values()].map((d) => d.at)) - t0;
    const quiet = await until(async () => {
      const counts = await loop.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(counts).every((n) => n === 0);
    }, quietCapMs);
    const quietMs = Date.now() - t0;
    memory.stop();
    const cpuGroups = cpu.stop();
    // The plugin's background recompute (unicop_hashes) stores the edited sites' hashes; then compare.
    let states = await rootStates(keys);
    await until(async () => {
      states = await rootStates(keys);
      return [...states.values()].every((r) => !r.hash_stale);
    }, 300_000);
    const finalOk = keys.filter((k) => atFinalHash(states.get(k)));

    const launches = (await doubleOf(loop.back).doubleJobs()).filter(
      (j) => j.type === 'job' && j.root !== null && observer.roots.has(j.root),
    );
    const launchesPerRoot = countBy(launches, (j) => j.root ?? '');
    const taken = new Map<string, number>();
    for (const job of await loop.queue.getJobs(['completed', 'failed'])) {
      if (job?.id && job.processedOn) taken.set(job.id, job.processedOn);
    }
    const outcomes = observer.outcomes.filter((o) => observer.mine.has(o.data.intentId ?? ''));
    // Each root's outcomes in order, with when their job was taken (its snapshot read after that).
    const byRoot = new Map<string, { takenAt: number; receivedAt: number }[]>();
    for (const o of outcomes) {
      const list = byRoot.get(o.data.rootKey) ?? [];
      list.push({
        takenAt: taken.get(o.data.intentId ?? '') ?? Date.parse(o.data.startedAt),
        receivedAt: o.receivedAt,
      });
      byRoot.set(o.data.rootKey, list);
    }
    const latencies: number[] = [];
    let uncovered = 0;
    intents.forEach((round, r) => {
      for (const i of round) {
        const covering = (byRoot.get(i.key) ?? []).find((o) => o.takenAt >= (sentAt[r] ?? 0));
        if (covering) latencies.push(covering.receivedAt - (sentAt[r] ?? 0));
        else uncovered++;
      }
    });
    latencies.sort((a, b) => a - b);
    const notable = await stopLoop(loop, 500);
    stopped = true;
    const actions = countBy([...dispatchedAt.values()], (d) => d.action);
    const outcomeStates = countBy(outcomes, (o) => o.data.state);
    const maxPerRoot = Math.max(0, ...launchesPerRoot.values());
    const perRoot = countBy(
      [...keys.map((k) => String(launchesPerRoot.get(k) ?? 0))],
      (n) => `${n} launch(es)`,
    );
    const load = loadavg().map((n) => n.toFixed(1));
    const p = (q: number) => percentile(latencies, q);

    process.stderr.write(
      `coalesce: ${all.length} intents over ${keys.length} roots → ${launches.length} launches, ${outcomes.length} runs, ` +
        `${finalOk.length}/${keys.length} at final hash, quiet after ${(quietMs / 1000).toFixed(1)} s\n`,
    );

    const launchGoal = goal(launches.length, 2 * keys.length, true);
    const finalGoal = goal(finalOk.length, keys.length, false);
    const lines = [
      title,
      '',
      `Run ${new Date().toISOString()} at ${commit()} (\`npm run bench -- coalesce\`), load average`,
      `${loadAtStart.join(' ')} at the start and ${load.join(' ')} at the end. ${all.length} \`${causeKind}\` intents for`,
      `${keys.length} new sites appended to unicop.intents as fast as the producer takes them (round after round of one`,
      `intent per root, each round one append, up to the edits without waiting for acknowledgements), every site edited`,
      `${editCount} times in the stream (one bulk PATCH of all sites before rounds ${[...editBefore].join(', ')}: the last one is`,
      'the final state). One dispatcher and one reconcile worker (concurrency',
      `${concurrency}, production options, polling ${fastPoll.minMs}→${fastPoll.maxMs} ms) in the bench process, on the AWX double ending every`,
      'job at once: the shortest job is the worst case for coalescing (a job ends sooner, so more of',
      "the storm finds none to coalesce into), and no ansible-runner competes for the machine's two cores.",
      '',
      table(
        ['measure', 'value'],
        [
          [
            'intents appended (edits excluded)',
            `${all.length} in ${((appendedMs - editMs) / 1000).toFixed(1)} s (${((all.length * 1000) / Math.max(1, appendedMs - editMs)).toFixed(0)}/s)`,
          ],
          [
            'intents appended, edits included',
            `${all.length} in ${(appendedMs / 1000).toFixed(1)} s (${((all.length * 1000) / appendedMs).toFixed(0)}/s, edits included)`,
          ],
          [
            'bulk edits (PATCH of every site)',
            edits.map((e) => `${(e.ms / 1000).toFixed(1)} s`).join(', ') || '—',
          ],
          [
            'intents dispatched',
            `${dispatchedAt.size} in ${(dispatchedMs / 1000).toFixed(1)} s (${((dispatchedAt.size * 1000) / dispatchedMs).toFixed(0)}/s): ${countsText(actions)}`,
          ],
          ['jobs run (outcomes)', `${outcomes.length}: ${countsText(outcomeStates)}`],
          [
            '**AWX launches**',
            `**${launches.length}** (goal ≤ ${2 * keys.length}); per root: ${countsText(perRoot)}`,
          ],
          [
            'roots at their final hash after quiet',
            `**${finalOk.length} / ${keys.length}** (last reconciled = current, not stale)`,
          ],
          [
            'quiet (every intent dispatched, queue empty)',
            `${quiet ? '' : 'NOT, cap reached at '}${(quietMs / 1000).toFixed(1)} s after the first append`,
          ],
          [
            'intent → outcome p50 / p95 / p99 / max',
            `${p(50)} / ${p(95)} / ${p(99)} / ${latencies.at(-1) ?? Number.NaN} ms (${latencies.length} intents${uncovered ? `, ${uncovered} without a later run` : ''})`,
          ],
          ['bench process peak RSS / heap', `${memory.rssMiB.toFixed(0)} / ${memory.heapMiB.toFixed(0)} MiB`],
          [
            'CPU seconds, first append → quiet',
            cpuGroupNames.map((g) => `${g} ${(cpuGroups.get(g) ?? 0).toFixed(1)}`).join(', '),
          ],
          ['warnings, errors and delayed jobs', countsText(notable)],
          [
            'foreign intents; foreign reconciler actions',
            `${countsText(countBy(observer.foreignIntents, (f) => `${f.source} ${f.kind}`))}; ${countsText(countBy(observer.foreignReconcilerActions(), (a) => a.data.action))}`,
          ],
        ],
      ),
      '',
      'Intent → outcome: from the moment the append carrying the intent was handed to the producer to',
      "the first outcome of its root from a job the worker took after that (a run that read the root's",
      'snapshot later); with coalescing most intents share their run. "Foreign": intents not appended',
      "by the bench (the resolvers running on the shared stack turn the edits' webhooks into intents,",
      "which this dispatcher takes too: they are the edits' own) and reconciler actions by another",
      'holder (another loop on the stack reconciling these sites).',
    ];
    const result: ScenarioResult = {
      scenario: 'coalesce',
      at: new Date().toISOString(),
      machine: machine(),
      commit: commit(),
      figures: {
        intents: all.length,
        roots: keys.length,
        cause: causeKind,
        edits: editCount,
        concurrency,
        appendSeconds: appendedMs / 1000,
        editSeconds: edits.map((e) => e.ms / 1000),
        foreignIntents: observer.foreignIntents.length,
        foreignReconcilerActions: observer.foreignReconcilerActions().length,
        dispatchSeconds: dispatchedMs / 1000,
        dispatchedPerSecond: (dispatchedAt.size * 1000) / dispatchedMs,
        dispatch: Object.fromEntries(actions),
        jobsRun: outcomes.length,
        outcomes: Object.fromEntries(outcomeStates),
        launches: launches.length,
        maxLaunchesPerRoot: maxPerRoot,
        rootsAtFinalHash: finalOk.length,
        quietSeconds: quietMs / 1000,
        intentToOutcomeMs: { p50: p(50), p95: p(95), p99: p(99), max: latencies.at(-1) ?? null },
        peakRssMiB: Math.round(memory.rssMiB),
        peakHeapMiB: Math.round(memory.heapMiB),
        cpuSeconds: Object.fromEntries([...cpuGroups].map(([g, s]) => [g, Math.round(s * 10) / 10])),
        loadAverageAtStart: loadAtStart.map(Number),
      },
      goals: { launches: launchGoal, rootsAtFinalHash: finalGoal },
    };
    return { section: section(lines), result };
  } finally {
    if (!stopped) await loop.stop().catch(() => undefined);
    await watched.stop();
    await removeSites(sites);
  }
}
