/**
 * The dispatcher: consumes `unicop.intents` (group `unicop-dispatcher`) and turns each intent into a
 * job on the reconcile queue (its contract — name, job data, id rule, deduplication per root — is
 * workers/reconcile-queue.ts): at most one active and one waiting job per root, the rest coalesced
 * into them (guarantee 3). Reconciliation is level-based, so a coalesced intent loses nothing: the
 * run re-reads the newest snapshot. A replayed intent adds nothing. While automation is frozen globally the
 * intent is held (audited, not queued); a per-root freeze is enforced where the lease is taken.
 * Offsets are committed only after the jobs and audit events are stored (the consumer port). The
 * dispatcher consumes nothing before the freeze view has replayed `unicop.control`, so a restart
 * during a global freeze queues nothing.
 */
import { trace } from '@opentelemetry/api';
import type { Queue } from 'bullmq';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { FreezeView } from '../../core/control/freeze-view.js';
import {
  type BatchHandler,
  KafkaEventStream,
  type KafkaEventStreamOptions,
  type LogRecord,
} from '../../core/event-log/consumer.js';
import { consumerGroups } from '../../core/event-log/groups.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import { type AuditAction, rootAuditMessage } from '../../core/events/audit.js';
import { type CloudEvent, type EventData, parseEvent, topics } from '../../core/events/catalogue.js';
import { contextFrom, inSpan, SpanKind, traceCarrier, tracer } from '../../core/tracing.js';
import {
  priorityOf,
  type ReconcileJobData,
  raisedPriority,
  reconcileJobName,
  reconcileJobOptions,
  reconcilePriority,
} from '../reconcile-queue.js';

export const dispatcherSource = 'unicop/dispatcher';

export interface DispatcherDeps {
  queue: Queue<ReconcileJobData>;
  freezeView: FreezeView;
  eventLog: EventLog;
}

export interface StartDispatcherOptions {
  kafka: Kafka;
  log: Logger;
  /** The consumer group on unicop.intents; tests use one of their own. */
  groupId?: string;
  onFatal?: (error: Error) => void;
  /** How the consumer recovers (consumerRecovery(config)); configDefaults' when not given. */
  retry?: Pick<KafkaEventStreamOptions, 'initialBackoffMs' | 'maxBackoffMs' | 'sessionTimeoutMs'>;
  /** Wraps the batch handler (workers/metrics.ts measureBatches: the stage's RED metrics). */
  wrapBatches?: (handler: BatchHandler) => BatchHandler;
}

/**
 * Consumes unicop.intents into the queue, once the freeze view has replayed unicop.control (until
 * then nothing is read, so nothing is queued past a global freeze). Resolves when consuming.
 */
export async function startDispatcher(
  deps: DispatcherDeps,
  options: StartDispatcherOptions,
): Promise<{ stop(): Promise<void> }> {
  await deps.freezeView.replayed();
  const intents = new KafkaEventStream(
    options.kafka,
    {
      topic: topics.intents,
      groupId: options.groupId ?? consumerGroups.dispatcher,
      ...options.retry,
      ...(options.onFatal ? { onFatal: options.onFatal } : {}),
    },
    options.log,
  );
  const handle: BatchHandler = (records) => dispatchIntents(records, deps);
  await intents.start(options.wrapBatches ? options.wrapBatches(handle) : handle);
  return { stop: () => intents.stop() };
}

function audit(
  action: AuditAction,
  rootKey: string,
  outcome: 'ok' | 'ignored' | 'rejected',
  reason: string | null,
  correlation: Record<string, string | null>,
): EventLogMessage {
  return rootAuditMessage(
    dispatcherSource,
    'unicop-dispatcher',
    rootKey,
    action,
    outcome,
    reason,
    correlation,
  );
}

/**
 * Handles one batch of records from unicop.intents (one partition, in log order). Each root's
 * intents are queued in their log order; different roots are queued concurrently.
 */
export async function dispatchIntents(records: LogRecord[], deps: DispatcherDeps): Promise<void> {
  const audits: EventLogMessage[] = [];
  const byRoot = new Map<string, { intent: CloudEvent<'intent'>; record: LogRecord }[]>();
  for (const record of records) {
    const intent = parseEvent('intent', record.value);
    if (!intent) {
      const where = `${record.topic}/${record.partition}@${record.offset}`;
      audits.push(
        audit('intent.invalid', record.key ?? where, 'rejected', 'not a valid io.unicop.intent.v1', {}),
      );
      continue;
    }
    byRoot.set(intent.data.rootKey, [...(byRoot.get(intent.data.rootKey) ?? []), { intent, record }]);
  }
  await Promise.all(
    [...byRoot.values()].map(async (intents) => {
      for (const { intent, record } of intents) audits.push(await dispatchTraced(intent.data, record, deps));
    }),
  );
  await deps.eventLog.append(audits);
}

const dispatcherTracer = tracer('dispatcher');

/** One intent in a span of the trace its record carries; the job carries the span on. */
function dispatchTraced(
  intent: EventData<'intent'>,
  record: LogRecord,
  deps: DispatcherDeps,
): Promise<EventLogMessage> {
  const attributes = {
    'messaging.system': 'kafka',
    'messaging.destination.name': record.topic,
    'unicop.root_key': intent.rootKey,
    'unicop.intent_id': intent.intentId,
  };
  return inSpan(
    dispatcherTracer,
    `${record.topic} process`,
    { kind: SpanKind.CONSUMER, parent: contextFrom(record.headers), attributes },
    () => dispatchOne(intent, deps),
  );
}

/**
 * An intent coalesced into a root's job that is still waiting lends it its priority when that is
 * earlier: an edit coalesced into a sweep's job is not left behind the rest of the sweep
 * (workers/reconcile-queue.ts). An active job needs nothing: BullMQ queues the intent as the root's
 * next job with the intent's own options. The job may have ended meanwhile; then there is nothing to raise.
 */
async function raiseCoalescedInto(
  queue: Queue<ReconcileJobData>,
  jobId: string,
  cause: ReconcileJobData['cause'],
): Promise<void> {
  // The two last priorities raise nothing: a coalesced sweep intent (most of a sweep) or drift check
  // costs no reads. A drift check is last: it never raises. A sweep intent coalesced into a waiting
  // drift check's job leaves it there, behind the sweep — it runs the apply run the sweep found.
  if (priorityOf(cause) >= reconcilePriority.sweep) return;
  const waiting = await queue.getJob(jobId);
  if (!waiting) return;
  const priority = raisedPriority(waiting.priority, cause);
  if (priority === null) return;
  const state = await waiting.getState();
  if (state === 'prioritized' || state === 'waiting' || state === 'delayed') {
    await waiting.changePriority({ priority });
  }
}

/**
 * Adds an intent's job to the reconcile queue (workers/reconcile-queue.ts): queued under the intent's
 * id, or coalesced into the root's job already there — which it raises to its own priority if that
 * is earlier.
 */
export async function queueIntent(
  queue: Queue<ReconcileJobData>,
  data: ReconcileJobData,
): Promise<{ queued: boolean; jobId: string | null }> {
  const job = await queue.add(reconcileJobName, data, reconcileJobOptions(data));
  const queued = job.id === data.intentId;
  if (!queued && job.id) await raiseCoalescedInto(queue, job.id, data.cause);
  return { queued, jobId: job.id ?? null };
}

async function dispatchOne(intent: EventData<'intent'>, deps: DispatcherDeps): Promise<EventLogMessage> {
  const { rootKey, intentId, cause } = intent;
  const correlation = { intentId, changeId: cause.changeId };
  const freeze = deps.freezeView.globalState();
  if (freeze?.frozen) {
    return audit(
      'intent.held',
      rootKey,
      'ignored',
      `automation frozen globally: ${freeze.reason}`,
      correlation,
    );
  }
  const { traceparent } = traceCarrier();
  const data: ReconcileJobData = { rootKey, intentId, cause, ...(traceparent ? { traceparent } : {}) };
  const { queued, jobId } = await queueIntent(deps.queue, data);
  trace.getActiveSpan()?.setAttribute('unicop.dispatch', queued ? 'queued' : 'coalesced');
  return audit(queued ? 'intent.queued' : 'intent.coalesced', rootKey, queued ? 'ok' : 'ignored', null, {
    ...correlation,
    jobId,
  });
}
