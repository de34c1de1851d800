/**
 * The fault run's options from the environment, one place for the bounded suite (npm test) and the
 * soak (npm run soak). Every default has its reason beside it.
 */

import type { FaultRunOptions } from './run.js';
import { type FaultKind, faultKinds, seedFrom } from './schedule.js';

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be a whole number, not ${JSON.stringify(raw)}`);
  return value;
}

function kinds(env: NodeJS.ProcessEnv): FaultKind[] {
  const raw = env.UNICOP_FAULT_KINDS;
  if (!raw) return [...faultKinds];
  const wanted = raw
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  const unknown = wanted.filter((k) => !(faultKinds as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new Error(`UNICOP_FAULT_KINDS: unknown ${unknown.join(', ')}; known: ${faultKinds.join(', ')}`);
  }
  return wanted as FaultKind[];
}

/** The bounded suite's seed unless UNICOP_FAULT_SEED says otherwise (issue 14, item 6). */
export const defaultSeed = 1406;

export function faultRunOptions(
  env: NodeJS.ProcessEnv,
  say: (line: string) => void,
  soak = false,
): FaultRunOptions {
  const chosen = kinds(env);
  return {
    seed: seedFrom(env.UNICOP_FAULT_SEED, soak ? Math.floor(Math.random() * 2 ** 32) : defaultSeed),
    kinds: chosen,
    // Bounded: each kind once. Soak: faults go on until the edits are made.
    faults: int(env, 'UNICOP_FAULT_COUNT', chosen.length),
    ...(soak ? { edits: int(env, 'UNICOP_SOAK_EDITS', 10_000) } : {}),
    // The issue asks for at least 50 roots.
    roots: int(env, 'UNICOP_FAULT_ROOTS', 50),
    // Several workers processes: a killed one's runs are adopted by the others.
    workers: int(env, 'UNICOP_FAULT_WORKERS', 3),
    // Two runs per process, six at once: the stack's one AWX on two cores runs six jobs in parallel
    // at a few seconds each; at twelve (the default 4 × 3) each job took minutes (first full run,
    // 2026-12-02), and every recovery measured AWX's queue, not UNICOP.
    concurrency: int(env, 'UNICOP_FAULT_CONCURRENCY', 2),
    // Two editors, as in the manual runs.
    editors: int(env, 'UNICOP_FAULT_EDITORS', 2),
    // ~0.2 edits/s in all, below what the stack's one AWX on two cores completes (a job takes 5–6 s
    // alone, longer side by side): above it every root always has a job waiting and a new edit
    // queues behind all of them, so "a new edit reconciled" would measure the backlog. At ~1 edit/s
    // (until 2026-12-02) the probe edit was not reconciled within 300 s after any fault.
    editPauseMs: [
      int(env, 'UNICOP_FAULT_EDIT_PAUSE_MIN_MS', 6000),
      int(env, 'UNICOP_FAULT_EDIT_PAUSE_MAX_MS', 14_000),
    ],
    // At most one root waiting per reconcile slot: the editors pause above it (a closed loop, so a
    // loaded machine's slower AWX jobs slow the edits instead of growing a queue the probe waits in;
    // session 9's run beside other work: AWX jobs of 70 s, the probe 4 min behind the backlog).
    maxBacklog: int(
      env,
      'UNICOP_FAULT_MAX_BACKLOG',
      int(env, 'UNICOP_FAULT_WORKERS', 3) * int(env, 'UNICOP_FAULT_CONCURRENCY', 2),
    ),
    // Some editing between faults, so each fault hits runs in every phase.
    gapMs: [int(env, 'UNICOP_FAULT_GAP_MIN_MS', 3000), int(env, 'UNICOP_FAULT_GAP_MAX_MS', 10_000)],
    // Down long enough for edits, deliveries and lease renewals to hit the hole.
    downMs: [int(env, 'UNICOP_FAULT_DOWN_MIN_MS', 2000), int(env, 'UNICOP_FAULT_DOWN_MAX_MS', 8000)],
    // Shorter than the 60 s default, so a suite with seven faults stays within minutes.
    leaseTtlSeconds: int(env, 'UNICOP_FAULT_LEASE_TTL_SECONDS', 20),
    // Apart from the stack's NetBox (2, 3) and the tests' default (0).
    redisDb: int(env, 'UNICOP_FAULT_REDIS_DB', 6),
    capMs: {
      // `awx.sh up` checks its provisioning steps before it starts the daemons.
      back: int(env, 'UNICOP_FAULT_BACK_CAP_MS', 300_000),
      recovery: int(env, 'UNICOP_FAULT_RECOVERY_CAP_MS', 300_000),
      quiet: int(env, 'UNICOP_FAULT_QUIET_CAP_MS', 900_000),
    },
    say,
  };
}
