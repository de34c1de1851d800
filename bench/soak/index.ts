/**
 * `npm run soak`: the fault suite's long run (issue #14 item 6), its figures written to
 * docs/benchmarks.md and bench/results/latest.json (report.ts). Sizes from the environment
 * (test/faults/suite/options.ts): UNICOP_SOAK_EDITS (default 10,000), UNICOP_FAULT_SEED (printed
 * first; a fresh one otherwise), UNICOP_FAULT_KINDS, UNICOP_FAULT_ROOTS, … Exits 1 when an invariant broke.
 */
import { faultRunOptions } from '../../test/faults/suite/options.js';
import { runFaults } from '../../test/faults/suite/run.js';
import { figuresByKind, soakResult, soakSection, writeSoakResult, writeSoakSection } from './report.js';

async function main(): Promise<void> {
  const say = (line: string) => process.stdout.write(`[soak] ${line}\n`);
  const options = faultRunOptions(process.env, say, true);
  say(`seed ${options.seed}`);
  const report = await runFaults(options);
  const kinds = figuresByKind(report.recoveries);
  const section = soakSection(report, options.leaseTtlSeconds, kinds);
  writeSoakSection(section);
  writeSoakResult(soakResult(report, options.leaseTtlSeconds, kinds));
  process.stdout.write(`${section}\n\nwrote docs/benchmarks.md and bench/results/latest.json\n`);
  const broken = report.check.invariants.filter((i) => !i.held);
  if (broken.length > 0) {
    process.stderr.write(
      `seed ${report.seed}: ${broken.length} invariant(s) broken; logs in ${report.logDir}\n`,
    );
    process.exit(1);
  }
  process.exit(0);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').slice(-2).join('/'))) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
