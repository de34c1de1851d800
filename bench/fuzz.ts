/**
 * `npm run bench -- fuzz`: the bridge fuzz suite's full run (test/fuzz/run.ts) — BENCH_FUZZ_CASES
 * (default 100,000) mutated NetBox deliveries to the compiled bridge on the stack's Kafka over
 * BENCH_FUZZ_CONNECTIONS (default 16) connections, then 2,000 to a bridge whose Kafka is down. The
 * seed is UNICOP_FUZZ_SEED or a fresh one, printed and written into the section. It measures and
 * reports (throughput, answers, refusals by reason against the bridge's own counters, audit events
 * against summaries, durability, RSS, crashes); the goals in latest.json say whether each check held.
 */
import { rmSync } from 'node:fs';
import { configDefaults } from '../core/config.js';
import { type FuzzReport, fuzzDir, fuzzSeed, runFuzz } from '../test/fuzz/run.js';
import { commit, machine, type ScenarioResult } from './scenario-result.js';
import { countsText, section, table } from './support.js';

const title = '## Bridge fuzz: hostile webhooks against the compiled bridge';

const sorted = (m: Map<string, number>) => [...m].sort(([a], [b]) => a.localeCompare(b));
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const load = (l: number[]) => l.map((v) => v.toFixed(1)).join(' / ');

function familyOf(mutation: string): string {
  return mutation.split(':')[0] as string;
}

export async function benchFuzz(): Promise<{ section: string; result: ScenarioResult }> {
  const seed = fuzzSeed();
  const cases = Number(process.env.BENCH_FUZZ_CASES ?? 100_000);
  const connections = Number(process.env.BENCH_FUZZ_CONNECTIONS ?? 16);
  const kafkaDownCases = Number(process.env.BENCH_FUZZ_KAFKA_DOWN_CASES ?? 2000);
  const dir = fuzzDir(`bench-${Date.now()}`);
  process.stderr.write(`fuzz: UNICOP_FUZZ_SEED=${seed}, ${cases} cases, ${connections} connections\n`);
  const r = await runFuzz({
    seed,
    cases,
    connections,
    kafkaDownCases,
    dir,
    progress: (done) => process.stderr.write(`fuzz: ${done} cases\n`),
  });
  const refusals = sum(r.refusalsCounted);
  const minutes = r.durationMs / 60_000;
  const budget =
    configDefaults.UNICOP_REFUSAL_AUDIT_BURST +
    Math.ceil(minutes * configDefaults.UNICOP_REFUSAL_AUDIT_PER_MINUTE);
  const countsAgree =
    JSON.stringify(sorted(r.refusalsCounted)) === JSON.stringify(sorted(r.refusalsExpected));
  const goals: ScenarioResult['goals'] = {
    crashes: {
      target: '0',
      value: r.unplannedExits + r.errorLines.length,
      met: r.unplannedExits + r.errorLines.length === 0,
    },
    serverErrors: {
      target: '0 (5xx other than 503 for Kafka)',
      value: r.serverErrors,
      met: r.serverErrors === 0,
    },
    mismatches: {
      target: '0 answers other than expected',
      value: r.mismatchCount,
      met: r.mismatchCount === 0,
    },
    refusalsCounted: { target: 'bridge counters = cases, by reason', value: refusals, met: countsAgree },
    refusalsAudited: {
      target: `audited + summarised = refusals, audited <= ${budget}`,
      value: r.auditedRefusals,
      met: r.auditedRefusals + r.summarisedRefusals === refusals && r.auditedRefusals <= budget,
    },
    durability: {
      target: '0 accepted changes missing on unicop.changes',
      value: r.missingOnKafka,
      met: r.missingOnKafka === 0,
    },
    secrets: {
      target: 'no secret or body canary in the log',
      value: Number(r.secretInLog || r.canaryInLog),
      met: !r.secretInLog && !r.canaryInLog,
    },
    kafkaDown: {
      target: '0 answers other than expected with Kafka down',
      value: r.kafkaDown?.mismatchCount ?? 0,
      met: (r.kafkaDown?.mismatchCount ?? 0) === 0,
    },
  };
  const lines = [
    title,
    '',
    `Run ${new Date().toISOString()}: \`npm run bench -- fuzz\` (bench/fuzz.ts → test/fuzz/run.ts), ` +
      `UNICOP_FUZZ_SEED=${seed}, ${cases.toLocaleString('en')} cases over ${connections} keep-alive connections ` +
      `from one loopback address, to the compiled bridge (\`node dist/bin/unicop.js bridge\`, log level info, ` +
      `default limits: ${configDefaults.UNICOP_WEBHOOK_MAX_BYTES} bytes, refusal budget ` +
      `${configDefaults.UNICOP_REFUSAL_AUDIT_BURST} + ${configDefaults.UNICOP_REFUSAL_AUDIT_PER_MINUTE}/min per peer) ` +
      `on the stack's Kafka and Redis, shared with other sessions' tests: load average ${load(r.loadBefore)} before, ` +
      `${load(r.loadAfter)} after (1/5/15 min). Cases and expectations: test/fuzz/cases.ts; the seed reproduces them.`,
    '',
    `**${(r.durationMs / 1000).toFixed(0)} s, ${r.casesPerSecond.toFixed(0)} cases/s** (${r.requests.toLocaleString('en')} requests, ` +
      `${r.kafka503} re-sent after 503 \`event_log_unavailable\`, ${r.staleResends} after reusing a kept-alive ` +
      `connection the bridge had closed). ` +
      `Crashes ${r.unplannedExits} (unplanned exits), error lines in the log ${r.errorLines.length}, ` +
      `5xx other than 503 for Kafka ${r.serverErrors}, answers other than expected ${r.mismatchCount}. ` +
      `Bridge RSS ${r.rss.startMiB.toFixed(0)} MiB at the start, ${r.rss.peakMiB.toFixed(0)} MiB peak, ` +
      `${r.rss.endMiB.toFixed(0)} MiB at the end; ${r.rss.quartilesMiB.map((m) => m.toFixed(0)).join(', ')} MiB at ` +
      `25, 50 and 75 % of the run (sampled every second). Secret in the log: ${r.secretInLog ? 'yes' : 'no'}; ` +
      `bodies' canary in the log: ${r.canaryInLog ? 'yes' : 'no'}.`,
    '',
    `Durability: ${r.accepted.toLocaleString('en')} new deliveries answered 202, ` +
      `${(r.accepted - r.missingOnKafka).toLocaleString('en')} of them read back from unicop.changes ` +
      `(missing ${r.missingOnKafka}); ${r.duplicates.toLocaleString('en')} replays answered 200 duplicate with the original change id.`,
    '',
    '### Answers',
    '',
    table(
      ['answer', 'cases'],
      sorted(r.byAnswer).map(([k, n]) => [k, n]),
    ),
    '',
    '### Refusals by reason: what the cases expected, what the bridge counted',
    '',
    table(
      ['reason', 'expected', 'unicop_webhooks_rejected_total'],
      [...new Set([...r.refusalsExpected.keys(), ...r.refusalsCounted.keys()])]
        .sort()
        .map((k) => [k, r.refusalsExpected.get(k) ?? 0, r.refusalsCounted.get(k) ?? 0]),
    ),
    '',
    `Refusal audit events of the run's peer: ${r.auditedRefusals} \`webhook.rejected\` written (budget over the run: ` +
      `${budget}), ${r.summarisedRefusals.toLocaleString('en')} refusals in ${r.summaries} \`webhook.refusals_suppressed\` ` +
      `summaries (\`unicop_refusal_audits_suppressed_total\` ${r.suppressedMetric.toLocaleString('en')}); ` +
      `together ${(r.auditedRefusals + r.summarisedRefusals).toLocaleString('en')} of ${refusals.toLocaleString('en')} refusals.`,
    '',
    '### Cases by mutation family (mean time to the answer)',
    '',
    table(
      ['family', 'cases', 'mean ms'],
      [...groupFamilies(r)].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, v.n, v.ms / v.n]),
    ),
    '',
    ...(r.kafkaDown
      ? [
          `Kafka down (a second bridge whose broker address has nothing listening): ${r.kafkaDown.cases} cases, ` +
            `answers ${countsText(new Map(sorted(r.kafkaDown.byAnswer)))}; other than expected: ${r.kafkaDown.mismatchCount}.`,
          '',
        ]
      : []),
    ...(r.mismatches.length > 0
      ? [
          '### Answers other than expected (first 50)',
          '',
          table(
            ['case', 'mutation', 'expected', 'got'],
            r.mismatches.map((m) => [m.index, m.mutation, m.expected, m.got]),
          ),
          '',
        ]
      : []),
    ...(r.errorLines.length > 0
      ? ['Error lines:', '', ...r.errorLines.map((l) => `    ${l.slice(0, 300)}`), '']
      : []),
  ];
  if (Object.values(goals).every((g) => g.met)) rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`fuzz: logs kept in ${dir}\n`);
  return {
    section: section(lines),
    result: {
      scenario: 'fuzz',
      at: new Date().toISOString(),
      machine: machine(),
      commit: commit(),
      figures: {
        seed,
        cases,
        connections,
        durationS: Math.round(r.durationMs / 1000),
        casesPerSecond: Math.round(r.casesPerSecond),
        rssMiB: {
          start: Math.round(r.rss.startMiB),
          peak: Math.round(r.rss.peakMiB),
          end: Math.round(r.rss.endMiB),
          quartiles: r.rss.quartilesMiB.map(Math.round),
        },
        answers: Object.fromEntries(sorted(r.byAnswer)),
        refusalsCounted: Object.fromEntries(sorted(r.refusalsCounted)),
        auditedRefusals: r.auditedRefusals,
        summarisedRefusals: r.summarisedRefusals,
        accepted: r.accepted,
        loadBefore: r.loadBefore,
        loadAfter: r.loadAfter,
      },
      goals,
    },
  };
}

function groupFamilies(r: FuzzReport): Map<string, { n: number; ms: number }> {
  const out = new Map<string, { n: number; ms: number }>();
  for (const [mutation, n] of r.byMutation) {
    const family = familyOf(mutation);
    const entry = out.get(family) ?? { n: 0, ms: 0 };
    entry.n += n;
    entry.ms += r.msByMutation.get(mutation) ?? 0;
    out.set(family, entry);
  }
  return out;
}
