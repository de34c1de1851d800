/**
 * The event catalogue: every event UNICOP writes to Kafka, as a CloudEvents 1.0 structured-mode
 * JSON message (`specversion, id, source, type, subject, time, datacontenttype, dataschema, data`).
 * One zod schema per event type, versioned in the type name (`io.unicop.<name>.v<N>`); a breaking
 * change is a new version, never an edit. `scripts/export-event-schemas.ts` writes them as JSON
 * Schema to docs/events/, and a test keeps those files in step with this module.
 */
import { z } from 'zod';
import { uuidv7Pattern } from '../ids.js';
import { terminalRunStates } from '../runs/state-machine.js';

export const topics = {
  changes: 'unicop.changes',
  intents: 'unicop.intents',
  outcomes: 'unicop.outcomes',
  audit: 'unicop.audit',
  awxEvents: 'unicop.awx-events',
  control: 'unicop.control',
  deadLetter: 'unicop.dead-letter',
} as const;

export const rootKeySchema = z.string().regex(/^[a-z][a-z0-9-]*\/\d+$/, 'expected "<root-kind>/<anchor-id>"');
const isoTime = z.iso.datetime({ offset: true });
const nullableString = z.string().nullable();

export const changeData = z.object({
  changeId: z.string().regex(uuidv7Pattern),
  event: z.enum(['created', 'updated', 'deleted']),
  objectType: z.string().min(1),
  objectId: z.number().int().positive(),
  occurredAt: isoTime,
  requestId: nullableString,
  actor: nullableString,
  lastUpdated: nullableString,
  data: z.record(z.string(), z.unknown()),
  prechange: z.record(z.string(), z.unknown()).nullable(),
  postchange: z.record(z.string(), z.unknown()).nullable(),
});

export const intentCause = z.object({
  // `drift_check`: the drift scheduler's check-mode run; `drift`: the apply run a check run that found
  // drift publishes under drift_mode remediate (docs/decisions/0054).
  kind: z.enum(['change', 'sweep', 'manual', 'retry', 'resume', 'drift_check', 'drift']),
  changeId: z.string().nullable(),
  requestId: nullableString,
  event: z.enum(['created', 'updated', 'deleted']).nullable(),
  objectType: nullableString,
  objectId: z.number().int().nullable(),
  actor: nullableString,
  at: isoTime,
  // Retries only (additive in v1): which run failed, the attempt this intent starts (2, 3, …) and
  // the earliest time it may start (the backoff).
  retryOf: z.string().optional(),
  attempt: z.number().int().min(1).optional(),
  notBefore: isoTime.optional(),
  // Sweeper only (additive in v1): the root's last run was open when the intent was emitted, so its
  // job finishes or adopts that run and goes ahead of fresh intents (workers/reconcile-queue.ts).
  openRun: z.boolean().optional(),
  // Remediation only (additive in v1): the check run that found the drift this apply run reverts.
  driftOf: z.string().optional(),
});

export const intentData = z.object({
  intentId: z.string().regex(uuidv7Pattern),
  rootKey: rootKeySchema,
  cause: intentCause,
});

// The run states are declared once, with their transitions, in core/runs/state-machine.ts.
export { runStates, terminalRunStates } from '../runs/state-machine.js';
/**
 * Why a run failed. Each class is produced by one code path of the reconciler and shown by a test
 * (test/workers/failure-classes.test.ts and test/workers/reconciler.test.ts). NetBox being down is
 * not a class: no run can be recorded then, so the job pauses instead (docs/runbooks/netbox-unavailable.md).
 */
export const failureClasses = [
  'executor_unavailable',
  'template_misconfigured',
  'job_failed',
  'job_error',
  'canceled',
  'timed_out',
  'denied',
  'lease_lost',
  // Check-mode runs (docs/decisions/0054): the target differs from the snapshot (state `drifted`), or
  // the job said nothing about it (no `unicop_summary` in its artifacts: `failed`, never succeeded).
  'drift',
  'drift_unknown',
  // The validation gate (docs/decisions/0060): the snapshot broke its kind's schema; nothing launched.
  'invalid_snapshot',
  // Fail-safe trigger (d) (docs/decisions/0067): the root's hash moved between lease and launch with no
  // change through NetBox; automation frozen globally, nothing launched.
  'netbox_inconsistent',
  // Post-run verification (docs/decisions/0066): the apply job succeeded, its verify job did not pass.
  'verify_failed',
] as const;

export const outcomeData = z.object({
  runId: z.string().min(1),
  rootKey: rootKeySchema,
  state: z.enum(terminalRunStates),
  failureClass: z.enum(failureClasses).nullable(),
  snapshotHash: z.string().regex(/^[0-9a-f]{64}$/),
  fencingToken: z.number().int().nonnegative(),
  intentId: z.string().nullable(),
  awxJobId: z.number().int().nullable(),
  awxJobUrl: z.string().nullable(),
  summary: z.string(),
  startedAt: isoTime,
  finishedAt: isoTime,
  // Additive in v1 (docs/decisions/0054): `check` for a drift check run (absent: apply), and the files
  // its playbook found differing at the target (drifted runs only).
  mode: z.enum(['apply', 'check']).optional(),
  changedFiles: z.array(z.string()).optional(),
  // Additive in v1 (docs/decisions/0061): true when a retry of this failed attempt is scheduled (its
  // intent appended with this outcome), so the root's change has not ended; absent otherwise.
  retryScheduled: z.boolean().optional(),
  // Additive in v1 (docs/decisions/0066): the run's verify job, launched after its apply job succeeded
  // (the root's policy `verify`); absent when none was launched.
  verifyJobId: z.number().int().optional(),
});

export const auditData = z.object({
  action: z.string().regex(/^[a-z_.]+$/),
  actor: z.string().min(1),
  subjectType: z.string().min(1),
  subjectId: z.string().min(1),
  outcome: z.enum(['ok', 'rejected', 'ignored', 'failed']),
  reason: z.string().nullable(),
  correlation: z.record(z.string(), z.union([z.string(), z.number(), z.null()])),
  metadata: z.record(z.string(), z.unknown()),
});

export const awxJobStatusData = z.object({
  awxJobId: z.number().int().positive(),
  kind: z.enum(['job', 'workflow_job']),
  status: z.string().min(1),
  name: nullableString,
  url: nullableString,
  started: nullableString,
  finished: nullableString,
  receivedAt: isoTime,
});

/**
 * AWX notified that a workflow's approval node needs review or was decided (its `approvals`
 * notification). Like awx-job-status, only a signal: AWX's approval API stays the truth.
 */
export const awxApprovalStatuses = ['pending', 'approved', 'denied', 'timed_out'] as const;
export const awxApprovalData = z.object({
  workflowJobId: z.number().int().positive(),
  approvalName: z.string().min(1),
  status: z.enum(awxApprovalStatuses),
  /** The workflow job's address as AWX gave it (its UI: TOWER_URL_BASE/#/jobs/workflow/ID). */
  workflowUrl: z.string().min(1),
  /** AWX's text, as sent. */
  message: z.string(),
  receivedAt: isoTime,
});

/** A human override of automation: freeze or resume, globally or for one root, with a reason. */
export const freezeData = z.object({
  scope: z.enum(['global', 'root']),
  rootKey: rootKeySchema.nullable(),
  frozen: z.boolean(),
  reason: z.string().min(1),
  actor: z.string().min(1),
  at: isoTime,
});

/**
 * A record a consumer could not handle and will never be able to (a poison message): kept here with
 * the reason instead of stopping its partition. The original record stays on its topic (until its
 * retention ends); this event says where it is and carries its value (cut at `maxDeadLetterValue`
 * characters) so it can be inspected and, once the cause is fixed, published again.
 */
export const maxDeadLetterValue = 100_000;
export const deadLetterData = z.object({
  /** Which consumer gave up on it. */
  consumer: z.string().min(1),
  /** `invalid`: not the event the topic holds; `refused`: the plugin refused it (HTTP 4xx). */
  kind: z.enum(['invalid', 'refused']),
  reason: z.string().min(1),
  /** The HTTP status of the refusal; null for an invalid record. */
  status: z.number().int().nullable(),
  topic: z.string().min(1),
  partition: z.number().int().nonnegative(),
  offset: z.string().regex(/^\d+$/),
  key: nullableString,
  /** The CloudEvents id of the record, when it was a valid event. */
  eventId: nullableString,
  value: z.string(),
  valueTruncated: z.boolean(),
  at: isoTime,
});

/**
 * A gradual rollout's step (docs/decisions/0061): one NetBox request touched more roots than
 * UNICOP_ROLLOUT_MIN_ROOTS, so its intents go in waves. `opened` (wave 1 queued, the rest held),
 * `wave_started` (the previous wave's failure share was at most the threshold), `halted` (above it: the
 * held roots wait for a person), `resumed`, `aborted` (the held roots never launch), `done`. On
 * unicop.control, keyed by the rollout id (the request id).
 */
export const rolloutData = z.object({
  rolloutId: z.string().min(1),
  transition: z.enum(['opened', 'wave_started', 'halted', 'resumed', 'aborted', 'done']),
  state: z.enum(['open', 'halted', 'aborted', 'done']),
  /** The open wave, 1-based, and each wave's size in roots. */
  wave: z.number().int().positive(),
  waves: z.array(z.number().int().positive()),
  /** Roots per member state: held, released, succeeded, failed, aborted. */
  counts: z.record(z.string(), z.number().int().nonnegative()),
  /** The figures of a halt or a wave's end, or the person's reason. */
  reason: z.string().nullable(),
  /** Who decided: the resolver, the rollout worker, or the person (resume, abort). */
  actor: z.string().min(1),
  at: isoTime,
});

/** Every event type: its CloudEvents `type`, the topic it lives on, and its data schema. */
export const eventTypes = {
  change: { type: 'io.unicop.change.v1', topic: topics.changes, data: changeData },
  intent: { type: 'io.unicop.intent.v1', topic: topics.intents, data: intentData },
  outcome: { type: 'io.unicop.outcome.v1', topic: topics.outcomes, data: outcomeData },
  audit: { type: 'io.unicop.audit.v1', topic: topics.audit, data: auditData },
  awxJobStatus: { type: 'io.unicop.awx-job-status.v1', topic: topics.awxEvents, data: awxJobStatusData },
  awxApproval: { type: 'io.unicop.awx-approval.v1', topic: topics.awxEvents, data: awxApprovalData },
  freeze: { type: 'io.unicop.freeze.v1', topic: topics.control, data: freezeData },
  rollout: { type: 'io.unicop.rollout.v1', topic: topics.control, data: rolloutData },
  deadLetter: { type: 'io.unicop.dead-letter.v1', topic: topics.deadLetter, data: deadLetterData },
} as const;

export type EventName = keyof typeof eventTypes;
export type EventData<N extends EventName> = z.infer<(typeof eventTypes)[N]['data']>;

export const dataschemaBase = 'urn:unicop:schema:';

function buildEnvelopeSchema<N extends EventName>(name: N) {
  const { type, data } = eventTypes[name];
  return z.object({
    specversion: z.literal('1.0'),
    id: z.string().regex(uuidv7Pattern),
    source: z.string().min(1),
    type: z.literal(type),
    subject: z.string().min(1),
    time: isoTime,
    datacontenttype: z.literal('application/json'),
    dataschema: z.literal(`${dataschemaBase}${type}`),
    data,
  });
}

// Built once per event type: building a zod schema (and its first parse) costs far more than a
// parse with it — ~0.1–0.4 ms per event on the bridge's hot path before (docs/decisions/0035).
const envelopes = new Map<EventName, unknown>();

export function envelopeSchema<N extends EventName>(name: N): ReturnType<typeof buildEnvelopeSchema<N>> {
  let schema = envelopes.get(name);
  if (schema === undefined) {
    schema = buildEnvelopeSchema(name);
    envelopes.set(name, schema);
  }
  return schema as ReturnType<typeof buildEnvelopeSchema<N>>;
}

export interface CloudEvent<N extends EventName> {
  specversion: '1.0';
  id: string;
  source: string;
  type: (typeof eventTypes)[N]['type'];
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  dataschema: string;
  data: EventData<N>;
}

/** Builds a validated CloudEvent; throws if `data` does not match its schema (a programming error). */
export function cloudEvent<N extends EventName>(
  name: N,
  fields: { id: string; source: string; subject: string; time?: string; data: EventData<N> },
): CloudEvent<N> {
  const { type } = eventTypes[name];
  return envelopeSchema(name).parse({
    specversion: '1.0',
    id: fields.id,
    source: fields.source,
    type,
    subject: fields.subject,
    time: fields.time ?? new Date().toISOString(),
    datacontenttype: 'application/json',
    dataschema: `${dataschemaBase}${type}`,
    data: fields.data,
  }) as CloudEvent<N>;
}

/** Parses a message value as an event of type `name`; null when it is not JSON or not that event. */
export function parseEvent<N extends EventName>(name: N, value: string): CloudEvent<N> | null {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    return null;
  }
  const parsed = envelopeSchema(name).safeParse(json);
  return parsed.success ? (parsed.data as unknown as CloudEvent<N>) : null;
}
