/**
 * The machine-readable result of a benchmark scenario, as bench/run.ts writes it into
 * bench/results/latest.json (one entry per scenario, the last run of each): its figures, each goal
 * with its target, measured value and whether it was met, the machine and the commit measured.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { repoRoot } from '../core/config.js';

export interface Goal {
  target: string;
  value: number;
  met: boolean;
}

export interface ScenarioResult {
  scenario: string;
  at: string;
  machine: { cpus: number; model: string; memoryGiB: number; node: string; loadAverage: number[] };
  /** HEAD, with `-dirty` when the working tree had uncommitted changes. */
  commit: string;
  figures: Record<string, unknown>;
  goals: Record<string, Goal>;
}

export function machine(): ScenarioResult['machine'] {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'cpu',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function commit(): string {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty', '--abbrev=12'], {
      cwd: repoRoot,
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'unknown';
  }
}

/** A goal "value ≥ target" (or ≤ when `atMost`). */
export function goal(value: number, bound: number, atMost = false, unit = ''): Goal {
  return {
    target: `${atMost ? '≤' : '≥'} ${bound}${unit}`,
    value: Math.round(value * 1000) / 1000,
    met: atMost ? value <= bound : value >= bound,
  };
}
