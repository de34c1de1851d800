/**
 * One fuzz run of the bridge's AWX notification webhook and admin API (endpoint-cases.ts) against
 * the compiled bridge (dist/), spawned as run.ts spawns it, on the stack's Kafka and Redis, with the
 * AWX secret and a break-glass admin token of its own. Every answer is checked against its case;
 * then: crashes (an unplanned exit; an error line or uncaught exception in its log), 5xx (any but
 * 503 `event_log_unavailable`, re-sent as AWX would, and `identity_provider_unavailable`), the AWX
 * refusals the bridge counted by reason against the cases', this peer's `awx_notification.rejected`
 * events plus its suppression summaries against the same total (within the budget), every AWX
 * notification answered 202 read back from unicop.awx-events, RSS each second, and neither secret
 * nor the bodies' canary in its log. Used by test/fuzz/endpoints.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
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
import type { FuzzCase } from './cases.js';
import { buildEndpointCase, type EndpointSettings, endpointSpecsOf } from './endpoint-cases.js';
import { type Answer, fuzzAgent, NoAnswerError, StaleConnectionError, send } from './send.js';

export interface EndpointReport {
  seed: number;
  cases: number;
  durationMs: number;
  byMutation: Map<string, number>;
  byAnswer: Map<string, number>;
  mismatches: { index: number; mutation: string; expected: string; got: string }[];
  mismatchCount: number;
  serverErrors: number;
  /** 503s re-sent (Kafka slow) or counted (the identity provider's keys not fetched). */
  allowed503: number;
  awxRefusalsExpected: Map<string, number>;
  awxRefusalsCounted: Map<string, number>;
  auditedRefusals: number;
  summarisedRefusals: number;
  awxAccepted: number;
  missingOnKafka: number;
  rss: { startMiB: number; peakMiB: number; endMiB: number };
  unplannedExits: number;
  errorLines: string[];
  secretInLog: boolean;
  canaryInLog: boolean;
}

/** The AWX job or workflow job id a notification case carries (its event's key), if any. */
function notifiedId(c: FuzzCase): number | undefined {
  const text = c.body.toString('utf8');
  const id = /"id":(\d+)/.exec(text)?.[1] ?? /jobs\/workflow\/(\d+)"?\}?$/.exec(text)?.[1];
  return id === undefined ? undefined : Number(id);
}

export async function runEndpointFuzz(options: {
  seed: number;
  cases: number;
  connections: number;
  dir: string;
  /** Another build of the executable (default: dist/bin/unicop.js of this tree). */
  unicopJs?: string;
}): Promise<EndpointReport> {
  if (options.unicopJs) process.env.UNICOP_FAULT_UNICOP_JS = options.unicopJs;
  mkdirSync(options.dir, { recursive: true });
  const settings: EndpointSettings = {
    awxSecret: secretOf(),
    otherSecret: secretOf(),
    adminToken: secretOf(),
    maxBytes: 64 * 1024,
    adminBodyLimit: configDefaults.UNICOP_ADMIN_BODY_LIMIT_BYTES,
    canary: `canary-${randomBytes(12).toString('hex')}`,
  };
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const stackEnv = readStackEnv();
  const bridge = new UnicopProcess(
    'bridge',
    'bridge',
    {
      UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
      UNICOP_REDIS_URL: stack.redisUrl(),
      UNICOP_NETBOX_URL: stackEnv.UNICOP_NETBOX_URL ?? configDefaults.UNICOP_NETBOX_URL,
      UNICOP_AWX_WEBHOOK_SECRET: settings.awxSecret,
      // The bridge needs NetBox's too; no case here sends to /webhooks/netbox.
      UNICOP_WEBHOOK_SECRETS: secretOf(),
      UNICOP_WEBHOOK_MAX_BYTES: String(settings.maxBytes),
      UNICOP_ADMIN_TOKEN: settings.adminToken,
      UNICOP_ADMIN_BREAK_GLASS: 'true',
      UNICOP_LOG_LEVEL: 'info',
      // Where the stack's facts are, for a build outside this tree's dist/ too.
      UNICOP_VAR: process.env.UNICOP_VAR ?? join(repoRoot, 'var'),
      UNICOP_BRIDGE_HOST: '127.0.0.1',
      UNICOP_BRIDGE_PORT: String(port),
    },
    join(options.dir, 'bridge.log'),
  );
  const kafka = new KafkaClient({
    clientId: 'unicop-fuzz-endpoints',
    brokers: stack.kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const eventsFrom = await marks(kafka, topics.awxEvents);
  const auditFrom = await marks(kafka, topics.audit);
  const peer = peerAddress();
  const report = {
    byMutation: new Map<string, number>(),
    byAnswer: new Map<string, number>(),
    mismatches: [] as EndpointReport['mismatches'],
    mismatchCount: 0,
    serverErrors: 0,
    allowed503: 0,
    awxRefusalsExpected: new Map<string, number>(),
  };
  const acceptedIds = new Set<number>();
  const samples: number[] = [];
  let sampler: NodeJS.Timeout | undefined;
  let before = new Map<string, number>();
  let after = new Map<string, number>();
  let unplannedExits = 0;
  let started = Date.now();
  bridge.start();
  try {
    const deadline = Date.now() + 180_000;
    while (!bridge.said('the bridge is ready')) {
      if (Date.now() > deadline || bridge.unplannedExits > 0)
        throw new Error(`the fuzz bridge did not get ready (see ${bridge.logFile})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The cases' time (and the refusal-audit budget it sets) starts when the bridge is ready.
    started = Date.now();
    before = await bridgeCounters(url);
    samples.push(memoryMiB(bridge.pid));
    sampler = setInterval(() => samples.push(memoryMiB(bridge.pid)), 1000);
    const specs = endpointSpecsOf(options.seed, 0, options.cases);
    const agent = fuzzAgent(peer, options.connections);
    let next = 0;
    const one = async (c: FuzzCase) => {
      let answer: Answer | 'closed' = 'closed';
      for (let attempt = 1; attempt <= 30; attempt++) {
        try {
          answer = await send(url, agent, c);
        } catch (error) {
          if (error instanceof StaleConnectionError && attempt < 5) continue;
          if (!(error instanceof NoAnswerError || error instanceof StaleConnectionError)) throw error;
          answer = 'closed';
          break;
        }
        if (answer.status !== 503) break;
        if (answer.reason === 'event_log_unavailable') {
          report.allowed503++;
          if (c.mutation.startsWith('awx:')) tally(report.awxRefusalsExpected, 'event_log_unavailable');
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        if (answer.reason === 'identity_provider_unavailable') report.allowed503++;
        break;
      }
      if (answer !== 'closed' && answer.status >= 500 && answer.status !== 503) report.serverErrors++;
      tally(report.byMutation, c.mutation);
      tally(report.byAnswer, `${c.mutation.split(':')[0]} ${answerText(answer)}`);
      if (c.mutation.startsWith('awx:') && c.expected.counted)
        tally(report.awxRefusalsExpected, c.expected.reason ?? '?');
      const idpDown =
        answer !== 'closed' && answer.reason === 'identity_provider_unavailable' && c.expected.status === 401;
      const ok =
        idpDown ||
        (answer !== 'closed' &&
          answer.status === c.expected.status &&
          (c.expected.reason === null || answer.reason === c.expected.reason));
      if (ok && c.mutation.startsWith('awx:') && c.expected.status === 202) {
        const id = notifiedId(c);
        if (id !== undefined) acceptedIds.add(id);
      }
      if (!ok) {
        report.mismatchCount++;
        if (report.mismatches.length < 50)
          report.mismatches.push({
            index: c.index,
            mutation: c.mutation,
            expected: `${c.expected.status} ${c.expected.reason ?? '-'}`,
            got: answerText(answer),
          });
      }
    };
    await Promise.all(
      Array.from({ length: options.connections }, async () => {
        for (let i = next++; i < specs.length; i = next++) {
          await one(buildEndpointCase(i, specs[i] as (typeof specs)[number], settings));
        }
      }),
    );
    agent.destroy();
    clearInterval(sampler);
    samples.push(memoryMiB(bridge.pid));
    after = await bridgeCounters(url);
  } finally {
    clearInterval(sampler);
    unplannedExits = bridge.unplannedExits;
    await bridge.close();
  }
  const durationMs = Date.now() - started;

  const seen = new Set<number>();
  await readBetween(kafka, topics.awxEvents, eventsFrom, await marks(kafka, topics.awxEvents), (value) => {
    const data = (JSON.parse(value) as { data?: { awxJobId?: number; workflowJobId?: number } }).data;
    const id = data?.awxJobId ?? data?.workflowJobId;
    if (id !== undefined && acceptedIds.has(id)) seen.add(id);
  });
  let auditedRefusals = 0;
  let summarisedRefusals = 0;
  await readBetween(kafka, topics.audit, auditFrom, await marks(kafka, topics.audit), (value) => {
    if (!value.includes(peer)) return;
    const data = (
      JSON.parse(value) as { data: { action: string; subjectId: string; metadata: Record<string, unknown> } }
    ).data;
    if (data.action === 'awx_notification.rejected' && data.metadata.peer === peer) auditedRefusals++;
    if (data.action === 'webhook.refusals_suppressed' && data.subjectId === peer) {
      const byReason = (data.metadata.byAction ?? data.metadata.byReason ?? {}) as Record<string, number>;
      const awxOnly = Object.entries(byReason).filter(([k]) => k.startsWith('awx_notification.rejected'));
      summarisedRefusals +=
        awxOnly.length > 0
          ? awxOnly.reduce((n, [, v]) => n + Number(v), 0)
          : Number(data.metadata.suppressed);
    }
  });

  return {
    seed: options.seed,
    cases: options.cases,
    durationMs,
    ...report,
    awxRefusalsCounted: refusalsOf('awx', before, after),
    auditedRefusals,
    summarisedRefusals,
    awxAccepted: acceptedIds.size,
    missingOnKafka: acceptedIds.size - seen.size,
    rss: { startMiB: samples[0] ?? 0, peakMiB: Math.max(0, ...samples), endMiB: samples.at(-1) ?? 0 },
    unplannedExits,
    ...logVerdict(bridge.logFile, [settings.awxSecret, settings.adminToken], settings.canary),
  };
}
