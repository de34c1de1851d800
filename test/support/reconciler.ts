/**
 * The back half of UNICOP for tests: the AWX double with the stack's templates (ids 7, 8 and 9,
 * as the stack's NetBox declares them for the prefix, site/location and tenant kinds), a target
 * directory, and reconcilers wired to the real NetBox plugin, Kafka and the double. Each reconciler
 * gets its own holder name; a test can move its clock.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from 'pino';
import { AwxClient } from '../../core/awx/index.js';
import { FreezeView } from '../../core/control/freeze-view.js';
import { KafkaEventStream, type LogRecord } from '../../core/event-log/consumer.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { uuidv7 } from '../../core/ids.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient, type PluginRoot } from '../../core/plugin/client.js';
import {
  dispatchIntents,
  type ReconcileJobData,
  startDispatcher,
} from '../../workers/dispatcher/dispatcher.js';
import type { WorkerMetrics } from '../../workers/metrics.js';
import { type JobWakeups, pollingOnly } from '../../workers/reconciler/awx-notifications.js';
import { Reconciler, type ReconcilerOptions } from '../../workers/reconciler/reconciler.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { playbookProject, startTestDouble, type TestDouble } from '../awx/support.js';
import { positionGroupAtEnd } from './kafka.js';

export { eventually } from '../awx/support.js';

import { netbox } from './netbox.js';
import { stack, uniqueName } from './stack.js';

export interface TemplateTweaks {
  /** Template 8 (site) drops launch variables: AWX's ignored_fields. */
  siteIgnoresVariables?: boolean;
  /** Milliseconds per job step pending → waiting → running in the double (slows every job). */
  stepMs?: number;
  /** The double ends every job successful at once, without ansible-runner (benchmarks). */
  instant?: boolean;
  approvalTimeoutSeconds?: number;
  /** AWX's allow_simultaneous on every template: AWX itself would then run two jobs of a root at once. */
  simultaneous?: boolean;
}

export function stackTemplates(targetDir: string, tweaks: TemplateTweaks = {}) {
  const job = (id: number, name: string, playbook: string, askVariables = true) => ({
    id,
    name,
    playbook,
    ask_variables_on_launch: askVariables,
    ask_job_type_on_launch: true,
    allow_simultaneous: tweaks.simultaneous === true,
    extra_vars: { unicop_target_dir: targetDir },
  });
  return {
    project_dir: playbookProject,
    job_templates: [
      job(7, 'unicop-prefix', 'prefix.yml'),
      job(8, 'unicop-site', 'site.yml', !tweaks.siteIgnoresVariables),
    ],
    workflow_job_templates: [
      {
        id: 9,
        name: 'unicop-with-approval',
        ask_variables_on_launch: true,
        allow_simultaneous: tweaks.simultaneous === true,
        nodes: [
          {
            identifier: 'approval',
            approval: { name: 'Approve change', timeout: tweaks.approvalTimeoutSeconds ?? 0 },
            success_nodes: ['apply'],
          },
          { identifier: 'apply', job_template: 8 },
        ],
      },
    ],
  };
}

export interface BackHalf {
  awx: TestDouble;
  targetDir: string;
  plugin: PluginClient;
  eventLog: KafkaEventLog;
  kafka: Kafka;
  reconciler(
    overrides?: Partial<ReconcilerOptions>,
    extra?: {
      now?: () => Date;
      wakeups?: JobWakeups;
      plugin?: PluginClient;
      metrics?: WorkerMetrics;
      freezeView?: FreezeView;
      log?: Logger;
    },
  ): Reconciler;
  stop(): Promise<void>;
}

export const testReconcilerOptions = (holder: string): ReconcilerOptions => ({
  holder,
  leaseTtlSeconds: 10,
  leaseBusyRetryMs: 1_000,
  retry: { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 5_000 },
  pollMinMs: 100,
  pollMaxMs: 500,
  awxUiUrl: 'https://awx.example.test',
  cancelGraceMs: 20_000,
});

export function testPlugin(): PluginClient {
  return new PluginClient({ baseUrl: stack.netboxUrl(), token: stack.netboxToken(), timeoutMs: 10_000 });
}

export async function startBackHalf(tweaks: TemplateTweaks = {}): Promise<BackHalf> {
  const targetDir = await mkdtemp(join(tmpdir(), 'unicop-target-'));
  const awx = await startTestDouble(stackTemplates(targetDir, tweaks), {
    stepMs: tweaks.stepMs ?? 20,
    ...(tweaks.instant ? { instant: true } : {}),
  });
  const kafka = new Kafka({
    clientId: uniqueName('reconciler'),
    brokers: stack.kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const eventLog = new KafkaEventLog(kafka);
  const plugin = testPlugin();
  const log = createLogger('reconciler-test', process.env.UNICOP_TEST_LOG ?? 'silent');
  return {
    awx,
    targetDir,
    plugin,
    eventLog,
    kafka,
    reconciler: (overrides = {}, extra = {}) =>
      new Reconciler({
        plugin: extra.plugin ?? plugin,
        awx: new AwxClient({ baseUrl: awx.url, token: awx.token, confirmDelayMs: 200 }),
        eventLog,
        wakeups: extra.wakeups ?? pollingOnly,
        log: extra.log ?? log,
        options: { ...testReconcilerOptions(uniqueName('worker')), ...overrides },
        ...(extra.now ? { now: extra.now } : {}),
        ...(extra.metrics ? { metrics: extra.metrics } : {}),
        ...(extra.freezeView ? { freezeView: extra.freezeView } : {}),
      }),
    stop: async () => {
      await eventLog.close();
      await awx.stop();
      await rm(targetDir, { recursive: true, force: true });
    },
  };
}

/** A reconcile job as the dispatcher would queue it. */
export function reconcileJob(
  rootKey: string,
  kind: EventData<'intent'>['cause']['kind'] = 'change',
): ReconcileJobData {
  return {
    rootKey,
    intentId: uuidv7(),
    cause: {
      kind,
      changeId: null,
      requestId: null,
      event: null,
      objectType: null,
      objectId: null,
      actor: 'test',
      at: new Date().toISOString(),
    },
  };
}

/** Creates a NetBox object and returns it with its root (the plugin creates roots for anchors). */
export async function createAnchor(
  path: string,
  kind: string,
  body: Record<string, unknown>,
): Promise<{ id: number; rootKey: string; root: PluginRoot }> {
  const created = await netbox<{ id: number }>('POST', path, body);
  const rootKey = `${kind}/${created.id}`;
  const root = await testPlugin().findRoot(rootKey);
  if (!root) throw new Error(`the plugin made no root ${rootKey} for ${path}${created.id}`);
  return { id: created.id, rootKey, root };
}

export async function createSite(): Promise<{ id: number; rootKey: string; root: PluginRoot }> {
  const name = uniqueName('site');
  return createAnchor('/api/dcim/sites/', 'site', { name, slug: name.toLowerCase(), status: 'active' });
}

export async function createTenant(): Promise<{ id: number; rootKey: string; root: PluginRoot }> {
  const name = uniqueName('tenant');
  return createAnchor('/api/tenancy/tenants/', 'tenant', { name, slug: name.toLowerCase() });
}

/** Journal entries NetBox holds for an object. */
export async function journalOf(objectType: string, id: number) {
  const page = await netbox<{ results: { kind: { value: string }; comments: string }[] }>(
    'GET',
    `/api/extras/journal-entries/?assigned_object_type=${objectType}&assigned_object_id=${id}`,
  );
  return page.results;
}

/**
 * The dispatcher (fresh consumer group at the end of unicop.intents) feeding a fresh queue, and a
 * reconcile worker on it: the rest of the loop after the resolver.
 */
export async function startDispatchAndReconcile(
  back: BackHalf,
  concurrency = 2,
  options: { fromKafka?: boolean } = {},
) {
  const log = createLogger('loop-test', process.env.UNICOP_TEST_LOG ?? 'silent');
  const queueName = uniqueName('reconcile');
  const connection = { url: stack.redisUrl() };
  const queue = new Queue<ReconcileJobData>(queueName, { connection });
  const groupId = uniqueName('dispatcher');
  await positionGroupAtEnd(back.kafka, groupId, topics.intents);
  const freezeView = new FreezeView(
    new KafkaEventStream(back.kafka, { topic: topics.control, groupId: uniqueName('control') }, log),
  );
  await freezeView.start();
  const deps = { queue, freezeView, eventLog: back.eventLog };
  const dispatch = (records: LogRecord[]) => dispatchIntents(records, deps);
  const intents =
    options.fromKafka === false
      ? undefined
      : await startDispatcher(deps, { kafka: back.kafka, log, groupId });
  const worker = startReconcileWorker(
    back.reconciler(),
    { redisUrl: stack.redisUrl(), concurrency, queueName },
    log,
  );
  return {
    queue,
    /** Hands records to the dispatcher directly (with `fromKafka: false`, the only way in). */
    dispatch,
    stop: async () => {
      await worker.close();
      await intents?.stop();
      await freezeView.stop();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    },
  };
}
