/**
 * `unicop root why <key>`: the cause chain of a root's latest run, each link read where it is already
 * kept (docs/decisions/0039) — the run from the NetBox plugin (its intent and change ids, lease token,
 * AWX job, outcome class and runbook link); the NetBox change (actor, request id, object) from
 * unicop.changes; the intent from unicop.intents; queued or coalesced from the dispatcher's audit on
 * unicop.audit; the outcome from unicop.outcomes; the AWX job's status from AWX when a token is
 * configured. Nothing is stored anew. A link the log no longer holds (older than --window before the
 * run, or retention) is shown as not found, never guessed. Then where the root's newest change is
 * now (`waits`, core/status: the same reading as `unicop status --root`): reconciled, or held — its
 * job n-th in the reconcile queue, its lease, its AWX job pending, an approval, a consumer group's
 * lag, NetBox's background queue. A root without runs yet gets only that.
 */

import { AwxClient, awxClientOptions } from '../../awx/client.js';
import type { UnicopConfig } from '../../config.js';
import { topics } from '../../events/catalogue.js';
import {
  NetboxUnavailableError,
  PluginClient,
  type PluginRun,
  pluginClientOptions,
} from '../../plugin/client.js';
import type { RootChange } from '../../status/root-change.js';
import { statusSources } from '../../status/sources.js';
import { describeRootChange, whyItWaits } from '../../status/why-it-waits.js';
import { cliKafka, readLog } from './event-reader.js';
import { type ShownEvent, shownEvent } from './events.js';
import { CommandFailedError, type Output } from './output.js';

/** The cause chain of one run, link by link (the JSON of `--json`). */
export interface CauseChain {
  rootKey: string;
  runId: string;
  /** The NetBox change the run came from (unicop.changes), or what the run recorded of it. */
  change: {
    changeId: string | null;
    actor: string | null;
    requestId: string | null;
    event: string | null;
    object: { type: string; id: number } | null;
    occurredAt: string | null;
    onLog: boolean;
  } | null;
  intent: { intentId: string; cause: string; at: string | null; onLog: boolean } | null;
  /** What the dispatcher did with the intent, and how many later intents it coalesced into its job. */
  queue: {
    action: 'queued' | 'coalesced' | 'held' | null;
    jobId: string | null;
    coalesced: number;
    coalescedChangeIds: string[];
  };
  lease: { fencingToken: number; holder: string | null };
  /** `status` is AWX's word on the job now; null when no AWX token is configured or AWX did not answer. */
  awx: {
    kind: string;
    jobId: number;
    url: string | null;
    status: string | null;
    /** Why AWX was asked and gave no status (e.g. its certificate not trusted: UNICOP_AWX_CA_FILE). */
    statusError?: string;
  } | null;
  outcome: {
    state: string;
    failureClass: string | null;
    summary: string | null;
    started: string;
    finished: string | null;
    onLog: boolean;
  };
  runbook: string | null;
}

type Data = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const correlationOf = (e: ShownEvent): Data => ((e.data?.correlation ?? {}) as Data) ?? {};

/** The chain from the run record and the log's events around it (pure: tested without services). */
export function causeChain(rootKey: string, run: PluginRun, events: ShownEvent[]): CauseChain {
  const audits = events.filter((e) => e.type === 'audit' && e.key === rootKey);
  const runAudits = audits.filter((e) => correlationOf(e).runId === run.run_id);
  const outcome = events.find((e) => e.type === 'outcome' && e.data?.runId === run.run_id);
  // The run's own record first; a run written by a plugin without the chain fields names its intent
  // in its audit events and its outcome.
  const intentId =
    str(run.intent_id) ??
    runAudits.map((e) => str(correlationOf(e).intentId)).find(Boolean) ??
    str(outcome?.data?.intentId);
  const intent = intentId
    ? events.find((e) => e.type === 'intent' && e.data?.intentId === intentId)
    : undefined;
  const cause = (intent?.data?.cause ?? {}) as Data;
  const changeId = str(run.change_ids?.[0]) ?? str(cause.changeId);
  const change = changeId
    ? events.find((e) => e.type === 'change' && e.data?.changeId === changeId)
    : undefined;
  const c = change?.data ?? {};
  const objectType = str(c.objectType) ?? str(run.cause_object_type) ?? str(cause.objectType);
  const objectId = (c.objectId ?? run.cause_object_id ?? cause.objectId ?? null) as number | null;
  const dispatched = audits.find(
    (e) =>
      correlationOf(e).intentId === intentId &&
      ['intent.queued', 'intent.coalesced', 'intent.held'].includes(String(e.data?.action)),
  );
  const coalescedInto = audits.filter(
    (e) =>
      e.data?.action === 'intent.coalesced' &&
      intentId !== null &&
      correlationOf(e).jobId === intentId &&
      correlationOf(e).intentId !== intentId,
  );
  const leased = runAudits.find((e) => str(e.data?.actor));
  return {
    rootKey,
    runId: run.run_id,
    change:
      changeId || objectType
        ? {
            changeId,
            actor: str(c.actor) ?? str(run.actor) ?? str(cause.actor),
            requestId: str(c.requestId) ?? str(run.request_ids?.[0]) ?? str(cause.requestId),
            event: str(c.event) ?? str(run.cause_event) ?? str(cause.event),
            object: objectType && objectId !== null ? { type: objectType, id: objectId } : null,
            occurredAt: str(c.occurredAt),
            onLog: change !== undefined,
          }
        : null,
    intent: intentId
      ? { intentId, cause: str(cause.kind) ?? run.cause, at: str(cause.at), onLog: intent !== undefined }
      : null,
    queue: {
      action: dispatched ? (String(dispatched.data?.action).slice('intent.'.length) as 'queued') : null,
      jobId: dispatched ? str(correlationOf(dispatched).jobId) : null,
      coalesced: coalescedInto.length,
      coalescedChangeIds: coalescedInto.map((e) => str(correlationOf(e).changeId)).filter((v) => v !== null),
    },
    lease: { fencingToken: run.fencing_token, holder: leased ? str(leased.data?.actor) : null },
    awx: run.awx_job_id
      ? {
          kind: run.awx_job_type === 'workflow' ? 'workflow_job' : 'job',
          jobId: run.awx_job_id,
          url: str(run.awx_job_url),
          status: null,
        }
      : null,
    outcome: {
      state: str(outcome?.data?.state) ?? run.state,
      failureClass: str(outcome?.data?.failureClass) ?? str(run.outcome_class),
      summary: str(outcome?.data?.summary) ?? str(run.summary),
      started: run.started,
      finished: run.finished,
      onLog: outcome !== undefined,
    },
    runbook: str(run.runbook),
  };
}

const orNone = (v: string | number | null | undefined) => (v === null || v === undefined ? '—' : String(v));

/** What `root why` prints: the latest run's chain (null before the first run) and where the root's newest change is. */
export type RootWhy = (CauseChain | { rootKey: string; runId: null }) & { waits: RootChange };

export function describeRootWhy(why: RootWhy): string {
  const head = 'outcome' in why ? describeChain(why) : `root ${why.rootKey}: no runs yet, so no cause chain`;
  return `${head}\n  now            ${describeRootChange(why.waits)}`;
}

export function describeChain(chain: CauseChain): string {
  const { change, intent, queue, awx, outcome } = chain;
  const lines = [`root ${chain.rootKey}: why run ${chain.runId}`];
  lines.push(
    change
      ? `  NetBox change  ${orNone(change.event)} ${change.object ? `${change.object.type}:${change.object.id}` : '—'} by ${orNone(change.actor)}, request ${orNone(change.requestId)}${change.occurredAt ? ` at ${change.occurredAt}` : ''}`
      : `  NetBox change  none (cause ${intent?.cause ?? 'unknown'})`,
    `  change id      ${orNone(change?.changeId)}${change && !change.onLog ? ' (not found on unicop.changes)' : ''}`,
    `  intent         ${intent ? `${intent.intentId} (cause ${intent.cause})${intent.onLog ? '' : ' (not found on unicop.intents)'}` : '—'}`,
    `  queue          ${queue.action ?? 'not found on unicop.audit'}${queue.jobId ? ` as job ${queue.jobId}` : ''}${queue.coalesced ? `; ${queue.coalesced} later intent(s) coalesced into it` : ''}`,
    `  lease token    ${chain.lease.fencingToken}${chain.lease.holder ? ` (${chain.lease.holder})` : ''}`,
    `  AWX job        ${awx ? `${awx.kind} ${awx.jobId}, ${awx.status ? `AWX says ${awx.status}` : awx.statusError ? `status not read: ${awx.statusError}` : 'status not asked of AWX'}${awx.url ? `, ${awx.url}` : ''}` : 'none launched'}`,
    `  outcome        ${outcome.state}${outcome.failureClass ? ` (${outcome.failureClass})` : ''}${outcome.finished ? ` at ${outcome.finished}` : ''}${outcome.summary ? ` — ${outcome.summary.split('\n')[0]}` : ''}`,
    `  runbook        ${chain.runbook ?? (outcome.failureClass ? 'none linked' : '— (no failure class)')}`,
  );
  return lines.join('\n');
}

export interface RootWhyOptions {
  config: UnicopConfig;
  out: Output;
  rootKey: string;
  /** How far before the run's start the log is read for its change and intent. */
  windowMs: number;
}

export async function showRootWhy(options: RootWhyOptions): Promise<number> {
  const { config, out, rootKey } = options;
  if (!config.UNICOP_NETBOX_TOKEN) {
    throw new CommandFailedError('root why reads the NetBox plugin: set UNICOP_NETBOX_TOKEN (a reference)');
  }
  const plugin = new PluginClient(pluginClientOptions(config));
  let run: PluginRun | undefined;
  try {
    if (!(await plugin.findRoot(rootKey))) {
      throw new CommandFailedError(`NetBox has no root ${rootKey}`, { rootKey });
    }
    [run] = await plugin.listRuns(rootKey);
  } catch (error) {
    if (error instanceof NetboxUnavailableError) {
      throw new CommandFailedError(`NetBox at ${config.UNICOP_NETBOX_URL} is unavailable: ${error.message}`);
    }
    throw error;
  }
  const brokers = config.UNICOP_KAFKA_BROKERS;
  const kafka = cliKafka(brokers);
  const sources = statusSources(config, kafka);
  const waits = whyItWaits(sources, { rootKey })
    .then((status) => status.change as RootChange)
    .finally(() => sources.close());
  waits.catch(() => undefined); // awaited below; not an unhandled rejection while the log is read
  if (!run) {
    const why: RootWhy = { rootKey, runId: null, waits: await waits };
    out.result(why, describeRootWhy(why));
    return 0;
  }
  let events: ShownEvent[] = [];
  await readLog(kafka, brokers, {
    topics: [topics.changes, topics.intents, topics.audit, topics.outcomes],
    from: { since: new Date(Date.parse(run.started) - options.windowMs) },
    onProgress: (read, total) => out.progress(`reading the event log: ${read} of ${total} records`),
    onBacklog: (records) => {
      out.progressDone();
      events = records.map(shownEvent);
    },
  });
  const chain = causeChain(rootKey, run, events);
  if (chain.awx && config.UNICOP_AWX_TOKEN) chain.awx = await withAwxStatus(config, chain.awx);
  const why: RootWhy = { ...chain, waits: await waits };
  out.result(why, describeRootWhy(why));
  return 0;
}

/** The job's status as AWX reports it now; left unknown when AWX does not answer. */
async function withAwxStatus(
  config: UnicopConfig,
  awx: NonNullable<CauseChain['awx']>,
): Promise<NonNullable<CauseChain['awx']>> {
  // The workers' options: UNICOP_AWX_CA_FILE's bundle for an https AWX (decision 0056).
  const client = new AwxClient(awxClientOptions(config));
  try {
    const job =
      awx.kind === 'workflow_job' ? await client.getWorkflowJob(awx.jobId) : await client.getJob(awx.jobId);
    return { ...awx, status: job.status };
  } catch (error) {
    // The client's errors carry no token (core/awx/client.ts); a TLS refusal names the setting.
    return { ...awx, statusError: (error as Error).message };
  }
}
