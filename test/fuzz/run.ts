/**
 * One fuzz run against the compiled bridge (dist/, `npm run build`), spawned as the fault suite
 * spawns it (test/faults/suite/processes.ts) on the stack's real Kafka and Redis: the cases of
 * cases.ts sent over `connections` connections from one loopback address of the run's own, every
 * answer checked against the case's expectation, then
 *
 * - crashes: the process exited unasked, or its log has an error line or an uncaught exception;
 * - 5xx: any but 503 `event_log_unavailable` (Kafka slow or down: re-sent, as NetBox would);
 * - refusals by reason: the bridge's own counters (/metrics, before and after) against the cases';
 *   its refusal audit events for this peer plus its suppression summaries against the same total;
 * - durability: every change id answered 202 is on unicop.changes;
 * - memory: the bridge's RSS sampled every second (start, peak, end);
 * - secrets: neither the webhook secret nor the bodies' canary is in its log.
 *
 * `kafkaDownCases` adds a phase against a second bridge whose Kafka is unreachable: a delivery that
 * would be accepted is answered 503 there, every refusal is the same as with Kafka.
 * Used by test/fuzz/fuzz.test.ts (a seeded slice) and bench/fuzz.ts (the full run).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Kafka as KafkaClient, logLevel } from 'kafkajs';
import { configDefaults, readStackEnv, repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { freePort, UnicopProcess } from '../faults/suite/processes.js';
import { topicMarks as marks, readBetween } from '../support/kafka.js';
import { stack } from '../support/stack.js';
import {
  answerText,
  bridgeCounters,
  logVerdict,
  memoryMiB,
  peerAddress,
  refusalsOf,
  secretOf,
  tally,
} from './bridge-readings.js';
import { buildCase, type CaseSpec, type FuzzCase, type FuzzSettings, specsOf } from './cases.js';
import { type Answer, fuzzAgent, NoAnswerError, StaleConnectionError, send } from './send.js';

export interface FuzzOptions {
  seed: number;
  cases: number;
  connections: number;
  /** Cases sent to a bridge whose Kafka is down (0: no such phase). */
  kafkaDownCases?: number;
  /** Where the bridges' logs go. */
  dir: string;
  /** Another build of the executable (default: dist/bin/unicop.js of this tree). */
  unicopJs?: string;
  /** Called every `every` cases with the number done. */
  progress?: (done: number) => void;
}

export interface Mismatch {
  index: number;
  mutation: string;
  expected: string;
  got: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  durationMs: number;
  casesPerSecond: number;
  /** Requests sent, re-sends after a 503 included. */
  requests: number;
  loadBefore: number[];
  loadAfter: number[];
  byMutation: Map<string, number>;
  msByMutation: Map<string, number>;
  byAnswer: Map<string, number>;
  mismatches: Mismatch[];
  mismatchCount: number;
  /** 5xx answers other than 503 event_log_unavailable. */
  serverErrors: number;
  staleResends: number;
  /** 503 event_log_unavailable answers (Kafka slow) re-sent. */
  kafka503: number;
  /** Refusals the cases expected the bridge to count, by reason (503 re-sends included). */
  refusalsExpected: Map<string, number>;
  /** What the bridge counted (unicop_webhooks_rejected_total{source="netbox"} delta), by reason. */
  refusalsCounted: Map<string, number>;
  auditedRefusals: number;
  summarisedRefusals: number;
  summaries: number;
  suppressedMetric: number;
  accepted: number;
  duplicates: number;
  missingOnKafka: number;
  /** The bridge's RSS: after start-up, the peak, after the last case, and at 25/50/75 % of the run. */
  rss: { startMiB: number; peakMiB: number; endMiB: number; quartilesMiB: number[] };
  unplannedExits: number;
  errorLines: string[];
  secretInLog: boolean;
  canaryInLog: boolean;
  kafkaDown?: { cases: number; byAnswer: Map<string, number>; mismatches: Mismatch[]; mismatchCount: number };
}

function bridgeProcess(
  dir: string,
  name: string,
  env: Record<string, string>,
  unicopJs?: string,
): UnicopProcess {
  if (unicopJs) process.env.UNICOP_FAULT_UNICOP_JS = unicopJs;
  return new UnicopProcess(name, 'bridge', env, join(dir, `${name}.log`));
}

async function waitFor(probe: () => boolean, what: string, capMs = 180_000): Promise<void> {
  const deadline = Date.now() + capMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${capMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The cases of a run, built in order (replays need the deliveries before them). */
function* caseStream(seed: number, count: number, settings: FuzzSettings): Generator<FuzzCase> {
  const originals: FuzzCase[] = [];
  for (let from = 0; from < count; from += 1000) {
    const specs: CaseSpec[] = specsOf(seed, from, Math.min(1000, count - from));
    for (const [i, spec] of specs.entries()) {
      const c = buildCase(from + i, spec, settings, originals);
      if (c.expected.status === 202 && c.replayOf === undefined) {
        originals.push(c);
        if (originals.length > 500) originals.shift();
      }
      yield c;
    }
  }
}

/** Whether an answer is what the case expected (a closed connection only where Node closes it). */
function matches(c: FuzzCase, a: Answer | 'closed'): boolean {
  if (a === 'closed')
    return c.expected.reason === null && (c.expected.status === 431 || c.expected.status === 400);
  return a.status === c.expected.status && (c.expected.reason === null || a.reason === c.expected.reason);
}

interface Phase {
  byAnswer: Map<string, number>;
  byMutation: Map<string, number>;
  /** Requests re-sent because their kept-alive connection had been closed (they never reached the bridge). */
  staleResends: number;
  /** Time from sending to the answer, summed per mutation (re-sends included). */
  msByMutation: Map<string, number>;
  mismatches: Mismatch[];
  mismatchCount: number;
  requests: number;
  serverErrors: number;
  kafka503: number;
  refusalsExpected: Map<string, number>;
  acceptedIds: Set<string>;
  duplicates: number;
}

async function sendCases(
  url: string,
  peer: string,
  cases: Iterable<FuzzCase>,
  connections: number,
  expect: (c: FuzzCase) => FuzzCase,
  retry503: boolean,
  progress?: (done: number) => void,
): Promise<Phase> {
  const phase: Phase = {
    byAnswer: new Map(),
    byMutation: new Map(),
    msByMutation: new Map(),
    staleResends: 0,
    mismatches: [],
    mismatchCount: 0,
    requests: 0,
    serverErrors: 0,
    kafka503: 0,
    refusalsExpected: new Map(),
    acceptedIds: new Set(),
    duplicates: 0,
  };
  const agent = fuzzAgent(peer, connections);
  const iterator = cases[Symbol.iterator]();
  const finished = new Map<number, Promise<void>>();
  const changeIdOf = new Map<number, string>();
  let done = 0;
  const one = async (original: FuzzCase): Promise<void> => {
    const c = expect(original);
    if (c.replayOf !== undefined) await finished.get(c.replayOf);
    const began = performance.now();
    let answer: Answer | 'closed';
    for (let attempt = 1; ; attempt++) {
      phase.requests++;
      try {
        answer = await send(url, agent, c);
      } catch (error) {
        if (error instanceof StaleConnectionError && attempt < 5) {
          phase.staleResends++;
          continue;
        }
        if (!(error instanceof NoAnswerError || error instanceof StaleConnectionError)) throw error;
        answer = 'closed';
      }
      if (answer === 'closed' || answer.status < 500) break;
      if (answer.status === 503 && answer.reason === 'event_log_unavailable') {
        // Counted by the bridge like any refusal, whether or not the case is re-sent.
        tally(phase.refusalsExpected, 'event_log_unavailable');
        if (!retry503 || c.expected.status === 503) break;
        phase.kafka503++;
        if (attempt >= 30) break;
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      // Any other 503 is checked against the case (delivery_in_flight); every other 5xx is an error.
      if (answer.status !== 503) phase.serverErrors++;
      break;
    }
    tally(phase.byMutation, c.mutation);
    tally(phase.msByMutation, c.mutation, performance.now() - began);
    tally(phase.byAnswer, answerText(answer));
    if (c.expected.counted && c.expected.reason !== 'event_log_unavailable')
      tally(phase.refusalsExpected, c.expected.reason ?? '?');
    if (answer !== 'closed' && answer.status === 202 && answer.changeId) {
      phase.acceptedIds.add(answer.changeId);
      changeIdOf.set(c.index, answer.changeId);
    }
    let ok = matches(c, answer);
    if (ok && c.replayOf !== undefined && c.expected.status === 200 && answer !== 'closed') {
      phase.duplicates++;
      ok = answer.changeId === changeIdOf.get(c.replayOf);
    }
    if (!ok) {
      phase.mismatchCount++;
      if (phase.mismatches.length < 50) {
        phase.mismatches.push({
          index: c.index,
          mutation: c.mutation,
          expected: `${c.expected.status} ${c.expected.reason ?? '-'}`,
          got: `${answerText(answer)}${c.replayOf !== undefined ? ` (replay of ${c.replayOf})` : ''}`,
        });
      }
    }
    done++;
    if (progress && done % 5000 === 0) progress(done);
  };
  const worker = async () => {
    for (;;) {
      const next = iterator.next();
      if (next.done) return;
      const c = next.value;
      const p = one(c);
      finished.set(
        c.index,
        p.catch(() => undefined),
      );
      // Replays look back at most 500 deliveries; older entries are long finished.
      finished.delete(c.index - 5000);
      changeIdOf.delete(c.index - 5000);
      await p;
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  agent.destroy();
  return phase;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  mkdirSync(options.dir, { recursive: true });
  const stackEnv = readStackEnv();
  const secret = secretOf();
  const settings: FuzzSettings = {
    secret,
    otherSecret: secretOf(),
    maxBytes: configDefaults.UNICOP_WEBHOOK_MAX_BYTES,
    ownUsername: configDefaults.UNICOP_NETBOX_USERNAME,
    nonce: randomBytes(8).toString('hex'),
    canary: `canary-${randomBytes(12).toString('hex')}`,
    epochMs: Date.now(),
  };
  const port = await freePort();
  const env = {
    UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
    UNICOP_REDIS_URL: stack.redisUrl(),
    UNICOP_NETBOX_URL: stackEnv.UNICOP_NETBOX_URL ?? configDefaults.UNICOP_NETBOX_URL,
    UNICOP_WEBHOOK_SECRETS: secret,
    UNICOP_LOG_LEVEL: 'info',
    // The deliveries are unique to the run: an hour of memory is enough, and the keys go sooner.
    UNICOP_DEDUPE_WINDOW_SECONDS: '3600',
    UNICOP_BRIDGE_HOST: '127.0.0.1',
    UNICOP_BRIDGE_PORT: String(port),
  };
  const url = `http://127.0.0.1:${port}`;
  const kafka = new KafkaClient({
    clientId: 'unicop-fuzz',
    brokers: stack.kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const changesFrom = await marks(kafka, topics.changes);
  const auditFrom = await marks(kafka, topics.audit);

  const bridge = bridgeProcess(options.dir, 'bridge', env, options.unicopJs);
  bridge.start();
  let unplannedExits = 0;
  const samples: number[] = [];
  let sampler: NodeJS.Timeout | undefined;
  let phase: Phase;
  let before: Map<string, number>;
  let after: Map<string, number>;
  const peer = peerAddress();
  const loadBefore = loadavg();
  const started = Date.now();
  try {
    await waitFor(() => bridge.said('the bridge is ready'), 'the fuzz bridge connecting to Kafka');
    before = await bridgeCounters(url);
    samples.push(memoryMiB(bridge.pid));
    sampler = setInterval(() => samples.push(memoryMiB(bridge.pid)), 1000);
    phase = await sendCases(
      url,
      peer,
      caseStream(options.seed, options.cases, settings),
      options.connections,
      (c) => c,
      true,
      options.progress,
    );
    clearInterval(sampler);
    samples.push(memoryMiB(bridge.pid));
    after = await bridgeCounters(url);
  } finally {
    clearInterval(sampler);
    unplannedExits = bridge.unplannedExits;
    await bridge.close();
  }
  const durationMs = Date.now() - started;
  const loadAfter = loadavg();

  // What reached Kafka: every 202'd change, and this peer's refusal audit events and summaries.
  const changesTo = await marks(kafka, topics.changes);
  const auditTo = await marks(kafka, topics.audit);
  const seen = new Set<string>();
  await readBetween(kafka, topics.changes, changesFrom, changesTo, (value) => {
    const id = /"id":"([^"]+)"/.exec(value)?.[1];
    if (id && phase.acceptedIds.has(id)) seen.add(id);
  });
  let auditedRefusals = 0;
  let summarisedRefusals = 0;
  let summaries = 0;
  await readBetween(kafka, topics.audit, auditFrom, auditTo, (value) => {
    if (!value.includes(peer)) return;
    const data = (
      JSON.parse(value) as { data: { action: string; subjectId: string; metadata: Record<string, unknown> } }
    ).data;
    if (data.action === 'webhook.rejected' && data.metadata.peer === peer) auditedRefusals++;
    if (data.action === 'webhook.refusals_suppressed' && data.subjectId === peer) {
      summaries++;
      summarisedRefusals += Number(data.metadata.suppressed);
    }
  });

  let kafkaDown: FuzzReport['kafkaDown'];
  if (options.kafkaDownCases) kafkaDown = await runKafkaDown(options, env, settings);

  const log = logVerdict(bridge.logFile, [secret], settings.canary);
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  return {
    seed: options.seed,
    cases: options.cases,
    durationMs,
    casesPerSecond: options.cases / (durationMs / 1000),
    requests: phase.requests,
    loadBefore,
    loadAfter,
    byMutation: phase.byMutation,
    msByMutation: phase.msByMutation,
    byAnswer: phase.byAnswer,
    mismatches: phase.mismatches,
    mismatchCount: phase.mismatchCount,
    serverErrors: phase.serverErrors,
    kafka503: phase.kafka503,
    staleResends: phase.staleResends,
    refusalsExpected: phase.refusalsExpected,
    refusalsCounted: refusalsOf('netbox', before, after),
    auditedRefusals,
    summarisedRefusals,
    summaries,
    suppressedMetric: delta('unicop_refusal_audits_suppressed_total'),
    accepted: phase.acceptedIds.size,
    duplicates: phase.duplicates,
    missingOnKafka: phase.acceptedIds.size - seen.size,
    rss: {
      startMiB: samples[0] ?? 0,
      peakMiB: Math.max(...samples),
      endMiB: samples.at(-1) ?? 0,
      quartilesMiB: [0.25, 0.5, 0.75].map((q) => samples[Math.floor(q * (samples.length - 1))] ?? 0),
    },
    unplannedExits,
    ...log,
    ...(kafkaDown ? { kafkaDown } : {}),
  };
}

/** A bridge whose Kafka does not answer: what would be accepted is 503, every refusal as before. */
async function runKafkaDown(
  options: FuzzOptions,
  env: Record<string, string>,
  settings: FuzzSettings,
): Promise<NonNullable<FuzzReport['kafkaDown']>> {
  const port = await freePort();
  const closedPort = await freePort();
  const bridge = bridgeProcess(
    options.dir,
    'bridge-kafka-down',
    { ...env, UNICOP_KAFKA_BROKERS: `127.0.0.1:${closedPort}`, UNICOP_BRIDGE_PORT: String(port) },
    options.unicopJs,
  );
  bridge.start();
  try {
    await waitFor(() => bridge.said('bridge listening'), 'the Kafka-down bridge listening');
    const down = (c: FuzzCase): FuzzCase => {
      // Echoes are answered before the append; everything that reaches it is refused.
      const reachesAppend =
        c.expected.status === 202 || (c.expected.status === 200 && c.replayOf !== undefined);
      if (!reachesAppend) return c;
      // Two replays of one delivery may be in flight at once: the second is told so (also a 503).
      const reason = c.replayOf === undefined ? 'event_log_unavailable' : null;
      return { ...c, expected: { status: 503, reason, counted: true } };
    };
    const phase = await sendCases(
      `http://127.0.0.1:${port}`,
      peerAddress(),
      caseStream(options.seed + 1, options.kafkaDownCases ?? 0, {
        ...settings,
        nonce: `${settings.nonce}-down`,
      }),
      options.connections,
      down,
      false,
    );
    return {
      cases: options.kafkaDownCases ?? 0,
      byAnswer: phase.byAnswer,
      mismatches: phase.mismatches,
      mismatchCount: phase.mismatchCount + phase.serverErrors + bridge.unplannedExits,
    };
  } finally {
    await bridge.close();
  }
}

/** The run's seed: UNICOP_FUZZ_SEED when set (to reproduce a failure), a fresh one otherwise. */
export function fuzzSeed(): number {
  const given = process.env.UNICOP_FUZZ_SEED;
  if (given !== undefined && given !== '') return Number(given) | 0;
  return randomBytes(4).readInt32LE(0);
}

export const fuzzDir = (name: string) => join(repoRoot, 'var', 'fuzz', name);
