/**
 * The back half of UNICOP for tests: an AWX (the stack's real AWX 24.6.1 by default, or the AWX
 * double for faults — test/support/awx.ts), the directory its playbooks write, and reconcilers
 * wired to the real NetBox plugin, Kafka and that AWX. Each reconciler gets its own holder name;
 * a test can move its clock. The double, when used, has the template ids the stack's NetBox gives
 * its root kinds, so one NetBox serves both.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from 'pino';
import { AwxClient } from '../../core/awx/index.js';
import { FreezeView } from '../../core/control/freeze-view.js';
import { type BatchHandler, KafkaEventStream, type LogRecord } from '../../core/event-log/consumer.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { uuidv7 } from '../../core/ids.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient, type PluginRoot } from '../../core/plugin/client.js';
import { dispatchIntents, startDispatcher } from '../../workers/dispatcher/dispatcher.js';
import type { WorkerMetrics } from '../../workers/metrics.js';
import type { ReconcileJobData } from '../../workers/reconcile-queue.js';
import { type JobWakeups, pollingOnly } from '../../workers/reconciler/awx-notifications.js';
import type { ReconcilerOptions } from '../../workers/reconciler/ports.js';
import { createReconciler, type Reconciler } from '../../workers/reconciler/reconcile.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { playbookProject } from '../awx/support.js';
import {
  type AwxKind,
  type AwxUnderTest,
  asAwxUnderTest,
  catalogueTemplates,
  defaultAwxKind,
  kindTemplateIds,
  startTestDouble,
  takeRealAwx,
} from './awx.js';
import { positionGroupAtEnd } from './kafka.js';

export { eventually } from '../awx/support.js';

import { netbox } from './netbox.js';
import { stack, stackFact, uniqueName } from './stack.js';

export interface TemplateTweaks {
  /** Which AWX: real (the default, or UNICOP_TEST_AWX) or the double (faults, benchmarks). */
  awx?: AwxKind;
  /** The site template drops launch variables: AWX's ignored_fields. */
  siteIgnoresVariables?: boolean;
  /** Double only: milliseconds per job step pending → waiting → running (slows every job). */
  stepMs?: number;
  /** Double only (implies it): every job ends successful at once, without ansible-runner (benchmarks). */
  instant?: boolean;
  approvalTimeoutSeconds?: number;
  /**
   * Double only: AWX's allow_simultaneous on every template, so AWX itself would run two jobs of a
   * root at once. Real AWX's catalogue templates have it on already (core/awx/bootstrap.ts).
   */
  simultaneous?: boolean;
}

/** The double's catalogue: the real catalogue's names, playbooks and prompts, at NetBox's ids. */
export function stackTemplates(targetDir: string, tweaks: TemplateTweaks = {}) {
  const ids = kindTemplateIds();
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
      job(ids.prefix, catalogueTemplates.prefix, 'prefix.yml'),
      job(ids.site, catalogueTemplates.site, 'site.yml', !tweaks.siteIgnoresVariables),
    ],
    workflow_job_templates: [
      {
        id: ids.approval,
        name: catalogueTemplates.approval,
        ask_variables_on_launch: true,
        allow_simultaneous: tweaks.simultaneous === true,
        nodes: [
          {
            identifier: 'approval',
            approval: { name: 'Approve site change', timeout: tweaks.approvalTimeoutSeconds ?? 0 },
            success_nodes: ['apply'],
          },
          { identifier: 'apply', job_template: ids.site },
        ],
      },
    ],
  };
}

export interface BackHalf {
  awx: AwxUnderTest;
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
      /** AWX reached at another address (a gate in front of this AWX), with its token. */
      awxUrl?: string;
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
  const kind = tweaks.instant ? 'double' : (tweaks.awx ?? defaultAwxKind());
  // Real AWX's templates write where the stack told them (a path its job containers see); the
  // double's write to a directory of this test's own.
  const targetDir =
    kind === 'real' ? stackFact('UNICOP_AWX_TARGET_DIR') : await mkdtemp(join(tmpdir(), 'unicop-target-'));
  const awx =
    kind === 'real'
      ? await takeRealAwx({
          ...(tweaks.siteIgnoresVariables ? { siteIgnoresVariables: true } : {}),
          ...(tweaks.approvalTimeoutSeconds !== undefined
            ? { approvalTimeoutSeconds: tweaks.approvalTimeoutSeconds }
            : {}),
        })
      : asAwxUnderTest(
          await startTestDouble(stackTemplates(targetDir, tweaks), {
            stepMs: tweaks.stepMs ?? 20,
            ...(tweaks.instant ? { instant: true } : {}),
          }),
        );
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
      createReconciler({
        plugin: extra.plugin ?? plugin,
        awx: new AwxClient({
          baseUrl: extra.awxUrl ?? awx.url,
          token: awx.token,
          confirmDelayMs: 200,
          timeoutMs: 30_000,
        }),
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
      if (kind === 'double') await rm(targetDir, { recursive: true, force: true });
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

/** What a test does with a root's key as soon as NetBox made the object, before anything else. */
export interface AnchorOptions {
  /** Called before the root is looked up (a loop filtering by root learns it before the creation's intent can arrive). */
  created?: (rootKey: string) => void;
}

/** Creates a NetBox object and returns it with its root (the plugin creates roots for anchors). */
export async function createAnchor(
  path: string,
  kind: string,
  body: Record<string, unknown>,
  options: AnchorOptions = {},
): Promise<{ id: number; rootKey: string; root: PluginRoot }> {
  const created = await netbox<{ id: number }>('POST', path, body);
  const rootKey = `${kind}/${created.id}`;
  options.created?.(rootKey);
  const root = await testPlugin().findRoot(rootKey);
  if (!root) throw new Error(`the plugin made no root ${rootKey} for ${path}${created.id}`);
  return { id: created.id, rootKey, root };
}

export async function createSite(
  options: AnchorOptions = {},
): Promise<{ id: number; rootKey: string; root: PluginRoot }> {
  const name = uniqueName('site');
  return createAnchor(
    '/api/dcim/sites/',
    'site',
    { name, slug: name.toLowerCase(), status: 'active' },
    options,
  );
}

export async function createTenant(
  options: AnchorOptions = {},
): Promise<{ id: number; rootKey: string; root: PluginRoot }> {
  const name = uniqueName('tenant');
  return createAnchor('/api/tenancy/tenants/', 'tenant', { name, slug: name.toLowerCase() }, options);
}

/** Journal entries NetBox holds for an object. */
export async function journalOf(objectType: string, id: number) {
  const page = await netbox<{ results: { kind: { value: string }; comments: string }[] }>(
    'GET',
    `/api/extras/journal-entries/?assigned_object_type=${objectType}&assigned_object_id=${id}`,
  );
  return page.results;
}

/** A batch handler that sees only the records `wanted` accepts (and is not called without any). */
const onlyRecords =
  (wanted: (record: LogRecord) => boolean) =>
  (handler: BatchHandler): BatchHandler =>
  async (records) => {
    const kept = records.filter(wanted);
    if (kept.length > 0) await handler(kept);
  };

/**
 * The dispatcher (fresh consumer group at the end of unicop.intents) feeding a fresh queue, and a
 * reconcile worker on it: the rest of the loop after the resolver.
 */
export async function startDispatchAndReconcile(
  back: BackHalf,
  concurrency = 2,
  options: {
    fromKafka?: boolean;
    /**
     * Dispatches only the unicop.intents records this accepts: on a shared stack the topic carries
     * everyone's intents, which would otherwise take this worker's slots (and run its roots).
     */
    onlyIntents?: (record: LogRecord) => boolean;
    /** The reconciler's options over testReconcilerOptions (its holder name, retry delays, AWX's UI). */
    reconciler?: Partial<ReconcilerOptions>;
    /** The reconciler reaches AWX here (a gate in front of it) instead of at the back half's AWX. */
    awxUrl?: string;
  } = {},
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
      : await startDispatcher(deps, {
          kafka: back.kafka,
          log,
          groupId,
          ...(options.onlyIntents ? { wrapBatches: onlyRecords(options.onlyIntents) } : {}),
        });
  // The reconciler sees the same freeze view as the dispatcher, as in workers/main.ts: a job queued
  // just before a global freeze is held, not run under it.
  const worker = startReconcileWorker(
    back.reconciler(options.reconciler ?? {}, {
      freezeView,
      ...(options.awxUrl ? { awxUrl: options.awxUrl } : {}),
    }),
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
