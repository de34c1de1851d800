/**
 * The loop bench's settings, read once: its knobs (BENCH_LOOP_* environment variables, defaults
 * below), the poll settings it runs the reconciler with, its titles in docs/benchmarks.md and the
 * command line that reproduces a run.
 */

/** R: new sites reconciled by every throughput and latency scenario. */
export const rootCount = Number(process.env.BENCH_LOOP_ROOTS ?? 20);
/** K: intents for one root appended in one burst, for coalescing. */
export const burstSize = Number(process.env.BENCH_LOOP_BURST ?? 50);
/** Roots of the "one at a time" scenarios (the first ones of the R). */
export const sequentialCount = Math.min(5, rootCount);
/** How long one run may take before the bench stops waiting for its outcome. */
export const perRunTimeoutMs = 120_000;

export const fastPoll = { minMs: 100, maxMs: 500 };
export const productionPoll = { minMs: 1000, maxMs: 15000 }; // UNICOP_POLL_MIN_MS / UNICOP_POLL_MAX_MS defaults

// ---- UNICOP's own overhead: the AWX double ending every job at once ---------------------------

export const instantRootCount = Number(process.env.BENCH_LOOP_INSTANT_ROOTS ?? 1000);
/** Worker concurrencies tried, one pass over every root each. */
export const instantConcurrencies = (process.env.BENCH_LOOP_INSTANT_C ?? '4,8').split(',').map(Number);
/**
 * Per pass, in BENCH_LOOP_INSTANT_C's order: whether the reconciler asks for the lease with its context
 * (1, the default: one request where there were four, docs/decisions/0045) or without (0: the lease,
 * then the open runs, the snapshot and the root read separately) — to compare both in one run. The
 * last value holds for the passes after it.
 */
export const instantLeaseContext = (process.env.BENCH_LOOP_LEASE_CONTEXT ?? '1')
  .split(',')
  .map((v) => v !== '0');
/** A pass that has not received every outcome by then is reported as it stands. */
export const instantPassMs = Number(process.env.BENCH_LOOP_INSTANT_PASS_SECONDS ?? 60) * 1000;
/** How long to wait for NetBox's background queues to empty after the sites are created. */
export const backgroundDrainMs = 300_000;

// ---- where the report goes -------------------------------------------------------------------

export const title = '## Reconcile loop: intents → dispatcher → BullMQ → reconciler → AWX double → outcomes';
export const instantTitle = '### AWX double completing at once (UNICOP overhead only)';

/** The command that reproduces this run: the knobs that were set, then the bench. */
function commandLine(knobs: string[], bench: string): string {
  const set = knobs.filter((name) => process.env[name]);
  return [...set.map((name) => `${name}=${process.env[name]}`), bench].join(' ');
}

export function command(): string {
  return commandLine(['BENCH_LOOP_ROOTS', 'BENCH_LOOP_BURST'], 'npx tsx bench/loop.ts');
}

export function instantCommand(): string {
  return commandLine(
    [
      'BENCH_LOOP_INSTANT_ROOTS',
      'BENCH_LOOP_INSTANT_C',
      'BENCH_LOOP_LEASE_CONTEXT',
      'BENCH_LOOP_INSTANT_PASS_SECONDS',
      'BENCH_LOOP_ACCESS_LOG',
      'BENCH_LOOP_SITE_BATCH',
    ],
    'BENCH_LOOP_ONLY=instant npx tsx bench/loop.ts',
  );
}
