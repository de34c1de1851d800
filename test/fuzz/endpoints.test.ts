/**
 * A seeded fuzz slice of the bridge's AWX notification webhook and admin API (endpoint-cases.ts,
 * endpoint-run.ts) against the compiled bridge (`npm run build`) on the real Kafka and Redis. The
 * seed is printed; `UNICOP_FUZZ_SEED=<seed> npx vitest run test/fuzz/endpoints.test.ts` repeats a
 * failure (UNICOP_FUZZ_ENDPOINT_CASES changes the number of cases, UNICOP_FUZZ_UNICOP_JS the build
 * under test).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configDefaults } from '../../core/config.js';
import { type EndpointReport, runEndpointFuzz } from './endpoint-run.js';
import { fuzzDir, fuzzSeed } from './run.js';

const seed = fuzzSeed();
const cases = Number(process.env.UNICOP_FUZZ_ENDPOINT_CASES ?? 3000);
const dir = fuzzDir(`endpoints-${process.pid}`);
let report: EndpointReport;

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort());

describe(`AWX webhook and admin API fuzz slice (UNICOP_FUZZ_SEED=${seed}, ${cases} cases)`, () => {
  beforeAll(async () => {
    // UNICOP_FUZZ_UNICOP_JS: another build of the executable (the commit before a fix, to see it fail).
    const unicopJs = process.env.UNICOP_FUZZ_UNICOP_JS || undefined;
    report = await runEndpointFuzz({ seed, cases, connections: 8, dir, ...(unicopJs ? { unicopJs } : {}) });
    process.stdout.write(
      `endpoint fuzz: seed ${seed}, ${cases} cases in ${Math.round(report.durationMs / 1000)} s, answers ` +
        `${JSON.stringify(sorted(report.byAnswer))}, RSS ${report.rss.startMiB.toFixed(0)}/` +
        `${report.rss.peakMiB.toFixed(0)}/${report.rss.endMiB.toFixed(0)} MiB, 503s ${report.allowed503}\n`,
    );
  });
  afterAll(() => {
    if (report && report.mismatchCount === 0 && report.errorLines.length === 0)
      rmSync(dir, { recursive: true, force: true });
  });

  it('answers every case as its mutation says (status and reason)', () => {
    expect(report.mismatches).toEqual([]);
    expect(report.mismatchCount).toBe(0);
    for (const answer of [
      'awx 202 accepted',
      'awx 401 invalid_credentials',
      'awx 422 invalid_body',
      'admin 401 token_missing',
      'admin 422 invalid_body',
    ])
      expect(report.byAnswer.get(answer) ?? 0).toBeGreaterThan(0);
  });

  it('never crashes: no unplanned exit, no error line or uncaught exception in its log, no 5xx but 503', () => {
    expect(report.unplannedExits).toBe(0);
    expect(report.errorLines).toEqual([]);
    expect(report.serverErrors).toBe(0);
  });

  it("counts every AWX refusal by reason (the bridge's own counters equal the cases')", () => {
    expect(sorted(report.awxRefusalsCounted)).toEqual(sorted(report.awxRefusalsExpected));
  });

  it("audits each AWX refusal or counts it in its peer's summary, within the peer's budget", () => {
    const refusals = sum(report.awxRefusalsCounted);
    expect(report.auditedRefusals + report.summarisedRefusals).toBe(refusals);
    const budget =
      configDefaults.UNICOP_REFUSAL_AUDIT_BURST +
      Math.ceil((report.durationMs / 60_000) * configDefaults.UNICOP_REFUSAL_AUDIT_PER_MINUTE);
    expect(report.auditedRefusals).toBeLessThanOrEqual(budget);
  });

  it('every AWX notification answered 202 is on unicop.awx-events', () => {
    expect(report.awxAccepted).toBeGreaterThan(0);
    expect(report.missingOnKafka).toBe(0);
  });

  it('keeps neither secret nor anything from the bodies in its log, and its memory', () => {
    expect(report.secretInLog).toBe(false);
    expect(report.canaryInLog).toBe(false);
    expect(report.rss.endMiB).toBeLessThan(report.rss.startMiB + 128);
  });
});
