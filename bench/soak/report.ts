/**
 * The soak's figures (index.ts runs it): recovery times p50/p99 per fault kind (back, new edit
 * reconciled, open runs ended), the targets, the invariants; written as the "## Fault soak"
 * section of docs/benchmarks.md (every other section kept) and the `soak` entry of
 * bench/results/latest.json (the other entries kept).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../core/config.js';
import type { FaultRunReport, Recovery } from '../../test/faults/suite/run.js';
import type { FaultKind } from '../../test/faults/suite/schedule.js';
import { commit, type Goal, goal, machine, type ScenarioResult } from '../scenario-result.js';

export const soakHeading = '## Fault soak: seeded kill -9 and restarts under NetBox edits';

/** The value at quantile q (nearest rank) of the numbers, null when there are none. */
export function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

type Measure = 'backMs' | 'editReconciledMs' | 'openRunsEndedMs';
const measures: Measure[] = ['backMs', 'editReconciledMs', 'openRunsEndedMs'];

export interface KindFigures {
  kind: FaultKind;
  faults: number;
  /** Recoveries not seen within the cap (null measures). */
  unrecovered: number;
  p50: Record<Measure, number | null>;
  p99: Record<Measure, number | null>;
}

export function figuresByKind(recoveries: Recovery[]): KindFigures[] {
  const kinds = [...new Set(recoveries.map((r) => r.kind))];
  return kinds.map((kind) => {
    const of = recoveries.filter((r) => r.kind === kind);
    const values = (m: Measure) => of.map((r) => r[m]).filter((v): v is number => v !== null);
    const at = (q: number) =>
      Object.fromEntries(measures.map((m) => [m, quantile(values(m), q)])) as Record<Measure, number | null>;
    return {
      kind,
      faults: of.length,
      unrecovered: of.filter((r) => r.editReconciledMs === null || r.openRunsEndedMs === null).length,
      p50: at(0.5),
      p99: at(0.99),
    };
  });
}

const seconds = (ms: number | null) =>
  ms === null ? '—' : Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : 'not recovered within the cap';

/** p99 over every fault, a fault not recovered from counting as infinitely slow. */
function overallP99(recoveries: Recovery[], m: Measure): number | null {
  return quantile(
    recoveries.map((r) => r[m] ?? Number.POSITIVE_INFINITY),
    0.99,
  );
}

export function soakSection(report: FaultRunReport, leaseTtlSeconds: number, kinds: KindFigures[]): string {
  const all = report.recoveries;
  const p99 = (m: Measure) => overallP99(all, m);
  const lines = [
    soakHeading,
    '',
    `Run ${new Date().toISOString()}, seed ${report.seed} (\`UNICOP_FAULT_SEED=${report.seed} npm run soak\` repeats the schedule), commit ${commit()}.`,
    `${report.edits} NetBox edits (${report.editRetries} retried while NetBox was away) across ${report.roots} roots, ${all.length} faults in ${Math.round(report.seconds / 60)} min; lease TTL ${leaseTtlSeconds} s; quiet ${seconds(report.quietMs)} after the last edit.`,
    'Each fault: kill -9, a seeded downtime, the restart; "back" is restart → the service answers, the other',
    'two are counted from then: a new edit of a probe root reconciled, every run open at the kill ended.',
    '',
    '| fault | injected | back p50 / p99 | new edit reconciled p50 / p99 | open runs ended p50 / p99 | not recovered |',
    '| --- | ---: | --- | --- | --- | ---: |',
    ...kinds.map(
      (k) =>
        `| ${k.kind} | ${k.faults} | ${seconds(k.p50.backMs)} / ${seconds(k.p99.backMs)} | ${seconds(k.p50.editReconciledMs)} / ${seconds(k.p99.editReconciledMs)} | ${seconds(k.p50.openRunsEndedMs)} / ${seconds(k.p99.openRunsEndedMs)} | ${k.unrecovered} |`,
    ),
    '',
    `Targets (issue #14 item 2, p99 over all faults): new edit reconciled ≤ 10 s — ${seconds(p99('editReconciledMs'))}; open runs ended ≤ TTL + 10 s = ${leaseTtlSeconds + 10} s — ${seconds(p99('openRunsEndedMs'))}.`,
    '',
    `NetBox edit acknowledged → its change on unicop.changes (observation 5): p50 ${seconds(quantile(report.check.changeLatencyMs, 0.5))}, p95 ${seconds(quantile(report.check.changeLatencyMs, 0.95))}, p99 ${seconds(quantile(report.check.changeLatencyMs, 0.99))} over ${report.check.changeLatencyMs.length} edits; ${report.check.editsWithoutChange} edits never delivered (their roots converged by the sweeper or a later edit).`,
    `Processes' logs: ${report.check.unstructuredLines} unstructured lines (observation 9), ${report.check.connectionResets} lines with ECONNRESET (observation 7); failed runs by class: ${JSON.stringify(report.check.failedByClass)}; exits nobody asked for (restarted as a supervisor would): ${JSON.stringify(report.unplannedExits)}.`,
    '',
    'Invariants after quiet:',
    '',
    ...report.check.invariants.map(
      (i) => `- ${i.held ? 'held' : '**broken**'}: ${i.name} — ${i.detail.slice(0, 3).join('; ')}`,
    ),
  ];
  return lines.join('\n');
}

export function soakResult(
  report: FaultRunReport,
  leaseTtlSeconds: number,
  kinds: KindFigures[],
): ScenarioResult {
  const all = report.recoveries;
  const p99 = (m: Measure) => overallP99(all, m) ?? Number.POSITIVE_INFINITY;
  const goals: Record<string, Goal> = {
    editReconciledP99Seconds: goal(p99('editReconciledMs') / 1000, 10, true, ' s'),
    openRunsEndedP99Seconds: goal(p99('openRunsEndedMs') / 1000, leaseTtlSeconds + 10, true, ' s'),
    invariantsBroken: goal(report.check.invariants.filter((i) => !i.held).length, 0, true),
  };
  return {
    scenario: 'soak',
    at: new Date().toISOString(),
    machine: machine(),
    commit: commit(),
    figures: {
      seed: report.seed,
      edits: report.edits,
      editRetries: report.editRetries,
      seconds: report.seconds,
      quietMs: report.quietMs,
      leaseTtlSeconds,
      faults: all.length,
      byKind: kinds,
      recoveries: all,
      invariants: report.check.invariants,
      failedByClass: report.check.failedByClass,
      changeLatencyMs: {
        p50: quantile(report.check.changeLatencyMs, 0.5),
        p95: quantile(report.check.changeLatencyMs, 0.95),
        p99: quantile(report.check.changeLatencyMs, 0.99),
        edits: report.check.changeLatencyMs.length,
      },
      editsWithoutChange: report.check.editsWithoutChange,
      unstructuredLines: report.check.unstructuredLines,
      connectionResets: report.check.connectionResets,
      unplannedExits: report.unplannedExits,
    },
    goals,
  };
}

/** Replaces (or appends) the soak's section of docs/benchmarks.md, keeping every other section. */
export function writeSoakSection(section: string): void {
  const file = join(repoRoot, 'docs', 'benchmarks.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const [head = '', ...sections] = text.split(/\n(?=## )/);
  const kept = sections.filter((s) => s.split('\n')[0] !== soakHeading).map((s) => s.trimEnd());
  writeFileSync(file, `${[head.trimEnd(), ...kept, section].join('\n\n')}\n`);
}

export function writeSoakResult(result: ScenarioResult): void {
  const latest = join(repoRoot, 'bench', 'results', 'latest.json');
  const previous = existsSync(latest)
    ? (JSON.parse(readFileSync(latest, 'utf8')) as Record<string, unknown>)
    : {};
  previous[result.scenario] = result;
  writeFileSync(latest, `${JSON.stringify(previous, null, 2)}\n`);
}
