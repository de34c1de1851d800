/**
 * Benchmark: the plugin calls the rollout adds to each run (docs/decisions/0069), against the real
 * plugin, no rollout live for the roots used. A stream of N run ends arriving at BENCH_ROLLOUT_RATE per
 * second (default 25, the loop goal) is handed to the rollout worker's `handleOutcomes` the way its
 * consumer does — everything that arrived while the previous batch was handled is the next batch — once
 * reporting every end (before 0069) and once through a `LiveRolloutView` (after). Then N single-root
 * requests' intents through the resolver's gate in batches of BENCH_ROLLOUT_GATE_BATCH (default 10),
 * once a call per request (before) and once a call per batch (after). Prints calls per run, the mean
 * call time and the load average; writes nothing.
 *
 *   npx tsx bench/rollout-calls.ts   (needs `scripts/stack up`; BENCH_ROLLOUT_RUNS, default 200)
 */
import { loadavg } from 'node:os';
import { readStackEnv } from '../core/config.js';
import type { LogRecord } from '../core/event-log/consumer.js';
import type { EventLog } from '../core/event-log/port.js';
import { intentMessage } from '../core/events/intent.js';
import { RolloutStore } from '../core/rollout/store.js';
import { outcomeRecord } from '../test/support/rollout-records.js';
import { gateIntents, handleOutcomes, LiveRolloutView } from '../workers/rollout/rollout.js';

const runs = Number(process.env.BENCH_ROLLOUT_RUNS ?? 200);
const rate = Number(process.env.BENCH_ROLLOUT_RATE ?? 25);
const gateBatch = Number(process.env.BENCH_ROLLOUT_GATE_BATCH ?? 10);
const env = readStackEnv();
const real = new RolloutStore({
  baseUrl: env.UNICOP_NETBOX_URL ?? '',
  token: env.UNICOP_NETBOX_TOKEN ?? '',
  timeoutMs: 30_000,
});
const tally = { calls: 0, ms: 0 };
async function timed<T>(call: () => Promise<T>): Promise<T> {
  const t = performance.now();
  try {
    return await call();
  } finally {
    tally.calls++;
    tally.ms += performance.now() - t;
  }
}
const store = {
  gate: (r: Parameters<RolloutStore['gate']>[0]) => timed(() => real.gate(r)),
  gateMany: (r: Parameters<RolloutStore['gateMany']>[0]) => timed(() => real.gateMany(r)),
  outcome: (e: Parameters<RolloutStore['outcome']>[0]) => timed(() => real.outcome(e)),
  live: () => timed(() => real.live()),
};
const eventLog: EventLog = { append: async () => {}, healthy: async () => true, close: async () => {} };
const base = 990_000_000 + Math.floor(Math.random() * 1_000_000);

function end(i: number): LogRecord {
  const at = new Date().toISOString();
  return outcomeRecord(`bench-${base}-${i}`, `site/${base + i}`, i, {
    startedAt: at,
    finishedAt: at,
    summary: 'bench',
  });
}

/** Ends arriving at `rate`/s, each batch what arrived while the last one was handled. */
async function outcomes(live?: LiveRolloutView) {
  Object.assign(tally, { calls: 0, ms: 0 });
  const start = performance.now();
  let next = 0;
  let batches = 0;
  while (next < runs) {
    const due = Math.min(runs, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    if (due <= next) {
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    const batch: LogRecord[] = [];
    for (; next < due; next++) batch.push(end(next));
    batches++;
    await handleOutcomes(batch, { store, eventLog, ...(live ? { live } : {}) });
  }
  return {
    calls: tally.calls,
    perRun: tally.calls / runs,
    meanMs: tally.ms / Math.max(1, tally.calls),
    batches,
  };
}

async function gates(many: boolean) {
  Object.assign(tally, { calls: 0, ms: 0 });
  const settings = { minRoots: 10, plan: '1,10%,rest', failureThreshold: 0.1 };
  const gateStore = many ? store : { gate: store.gate };
  for (let from = 0; from < runs; from += gateBatch) {
    const messages = [];
    for (let i = from; i < Math.min(runs, from + gateBatch); i++)
      messages.push(
        intentMessage('unicop/resolver', `site/${base + i}`, {
          kind: 'change',
          actor: 'bench',
          requestId: `bench-${base}-${many ? 'many' : 'one'}-${i}`,
          changeId: `c${i}`,
        }).message,
      );
    await gateIntents(messages, gateStore, settings);
  }
  return { calls: tally.calls, perRun: tally.calls / runs, meanMs: tally.ms / Math.max(1, tally.calls) };
}

const load = loadavg().map((n) => n.toFixed(2));
const results = {
  runs,
  rate,
  loadAverageAtStart: load,
  outcomesBefore: await outcomes(),
  outcomesAfter: await outcomes(new LiveRolloutView(store)),
  gateBefore: await gates(false),
  gateAfter: await gates(true),
  loadAverageAtEnd: loadavg().map((n) => n.toFixed(2)),
};
process.stdout.write(`${JSON.stringify(results, null, 1)}\n`);
