/**
 * A seeded slice of the bridge fuzz suite (test/fuzz/run.ts; the full run is `npm run bench -- fuzz`):
 * a few thousand mutated NetBox deliveries sent to the compiled bridge (`npm run build`) on the real
 * Kafka, and a few hundred to a bridge whose Kafka is down. The seed is printed; a failure is
 * reproduced with `UNICOP_FUZZ_SEED=<seed> npx vitest run test/fuzz/fuzz.test.ts` (UNICOP_FUZZ_CASES
 * changes the number of cases, UNICOP_FUZZ_UNICOP_JS the build under test).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configDefaults } from '../../core/config.js';
import { type FuzzReport, fuzzDir, fuzzSeed, runFuzz } from './run.js';

const seed = fuzzSeed();
const cases = Number(process.env.UNICOP_FUZZ_CASES ?? 3000);
const dir = fuzzDir(`test-${process.pid}`);
let report: FuzzReport;

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort());

describe(`bridge fuzz slice (UNICOP_FUZZ_SEED=${seed}, ${cases} cases)`, () => {
  beforeAll(async () => {
    process.stdout.write(`fuzz slice: UNICOP_FUZZ_SEED=${seed}, ${cases} cases\n`);
    // UNICOP_FUZZ_UNICOP_JS: another build of the executable (the commit before a fix, to see it fail).
    const unicopJs = process.env.UNICOP_FUZZ_UNICOP_JS || undefined;
    report = await runFuzz({
      seed,
      cases,
      connections: 16,
      kafkaDownCases: 300,
      dir,
      ...(unicopJs ? { unicopJs } : {}),
    });
    process.stdout.write(
      `fuzz slice: ${Math.round(report.durationMs / 1000)} s, ${report.casesPerSecond.toFixed(0)} cases/s, ` +
        `answers ${JSON.stringify(sorted(report.byAnswer))}, RSS ${report.rss.startMiB.toFixed(0)}/` +
        `${report.rss.peakMiB.toFixed(0)}/${report.rss.endMiB.toFixed(0)} MiB, audited ${report.auditedRefusals}, ` +
        `summarised ${report.summarisedRefusals} in ${report.summaries}\n`,
    );
  });
  afterAll(() => {
    // The logs are kept when something failed (the report names the cases).
    if (report && report.mismatchCount === 0 && report.errorLines.length === 0)
      rmSync(dir, { recursive: true, force: true });
  });

  it('answers every case as its mutation says (status and reason; a replay with the original change id)', () => {
    expect(report.mismatches).toEqual([]);
    expect(report.mismatchCount).toBe(0);
    // The slice covers the accepted, duplicate and refused classes.
    for (const answer of ['202 accepted', '200 duplicate', '401 invalid_signature', '422 invalid_body'])
      expect(report.byAnswer.get(answer) ?? 0).toBeGreaterThan(0);
  });

  it('never crashes: no unplanned exit, no error line or uncaught exception in its log, no 5xx but 503 for Kafka', () => {
    expect(report.unplannedExits).toBe(0);
    expect(report.errorLines).toEqual([]);
    expect(report.serverErrors).toBe(0);
  });

  it("counts every refusal by reason (the bridge's own counters equal the cases')", () => {
    expect(sorted(report.refusalsCounted)).toEqual(sorted(report.refusalsExpected));
  });

  it("audits each refusal or counts it in its peer's summary, within the peer's budget", () => {
    const refusals = sum(report.refusalsCounted);
    expect(report.auditedRefusals + report.summarisedRefusals).toBe(refusals);
    expect(report.summarisedRefusals).toBe(report.suppressedMetric);
    const minutes = report.durationMs / 60_000;
    const budget =
      configDefaults.UNICOP_REFUSAL_AUDIT_BURST +
      Math.ceil(minutes * configDefaults.UNICOP_REFUSAL_AUDIT_PER_MINUTE);
    expect(report.auditedRefusals).toBeLessThanOrEqual(budget);
    if (refusals > budget) expect(report.summaries).toBeGreaterThan(0);
  });

  it('every change answered 202 is on unicop.changes', () => {
    expect(report.accepted).toBeGreaterThan(0);
    expect(report.missingOnKafka).toBe(0);
  });

  it('keeps neither the webhook secret nor anything from the bodies in its log', () => {
    expect(report.secretInLog).toBe(false);
    expect(report.canaryInLog).toBe(false);
  });

  it('stays within its memory: RSS after the slice no more than 128 MiB above where it started', () => {
    expect(report.rss.endMiB).toBeLessThan(report.rss.startMiB + 128);
  });

  it('with Kafka down, answers 503 where it would accept and refuses the rest as before, without crashing', () => {
    expect(report.kafkaDown?.mismatches).toEqual([]);
    expect(report.kafkaDown?.mismatchCount).toBe(0);
    expect(report.kafkaDown?.byAnswer.get('503 event_log_unavailable') ?? 0).toBeGreaterThan(0);
  });
});
