/**
 * Audit events (`unicop.audit`, keyed by the subject — a root key for everything about a root, so
 * a root's timeline is one partition, in order). One builder for every component.
 */
import type { EventLogMessage } from '../event-log/port.js';
import { uuidv7 } from '../ids.js';
import { cloudEvent, type EventData, eventTypes } from './catalogue.js';

/**
 * Every audit action, with what it records: the vocabulary of a root's timeline. A test checks that
 * the code writes no action missing here; `npm run events:export` renders the table in docs/events.md.
 */
export const auditActions = {
  'change.received': 'bridge: a signed NetBox webhook was accepted',
  'change.published': 'bridge: the change is durable on unicop.changes (acks=all); NetBox got its 2xx',
  'change.duplicate': 'bridge: the same delivery was seen before; nothing new published',
  'change.echo_suppressed': "bridge: the change was UNICOP's own write to NetBox",
  'change.ignored': 'resolver: the change touches no root',
  'change.invalid':
    'resolver: a record on unicop.changes that is not a valid change event; set aside on unicop.dead-letter',
  'change.refused':
    'resolver: the plugin refused the change (HTTP 4xx); set aside on unicop.dead-letter with the reason',
  'webhook.rejected': 'bridge: a NetBox webhook refused (signature, size, body), with the reason',
  'awx_notification.rejected': 'bridge: an AWX notification refused (credentials, body)',
  'webhook.refusals_suppressed':
    'bridge: refusals from one peer over its budget, counted instead of audited one by one (count by reason)',
  'intent.published': 'resolver: an intent for the root is on unicop.intents',
  'intent.invalid': 'dispatcher: a record on unicop.intents that is not a valid intent',
  'intent.queued': 'dispatcher: a reconcile job was added for the root',
  'intent.coalesced': 'dispatcher: the root already has a waiting job; this intent joined it',
  'intent.held': 'dispatcher: automation is frozen globally; the intent waits for resume',
  'intent.manual': 'admin API: an operator asked for a reconcile',
  'intent.rollout_held':
    "resolver: the root's intent is held in a rollout wave not opened yet (decision 0061); the rollout id and wave in the correlation",
  'intent.released':
    "rollout worker or admin API: the root's wave opened; an intent with its held intent's cause is on unicop.intents (decision 0061)",
  'rollout.gate_refused':
    "resolver: the plugin refused the rollout gate for the root's request (HTTP 4xx, e.g. the token lacks unicop.change_rollout); its intent went out ungated, the refusal in the reason (decision 0061)",
  'rollout.outcome_refused':
    "rollout worker: the plugin refused a run's end (HTTP 4xx); skipped, not counted in a rollout wave, the refusal in the reason (decision 0061)",
  'rollout.resumed':
    'admin API: a person resumed a rollout (a halted one opens its next wave), with the reason; outcome rejected when the plugin refused it (no such rollout, not live), the refusal in the reason',
  'rollout.aborted':
    'admin API: a person aborted a rollout; its held roots never launch for it, with the reason; outcome rejected when the plugin refused it (no such rollout, not live), the refusal in the reason',
  'intent.swept': 'sweeper: the root needs work no webhook announced (hash differs, or an orphaned run)',
  'intent.parked':
    'reconciler: the root is frozen, or held in a rollout wave not opened yet (decision 0061); nothing runs until it is unfrozen or its wave opens',
  'intent.dropped': 'reconciler: the root no longer exists in NetBox',
  'automation.frozen':
    'admin API: automation frozen (globally or for one root), with the reason; or the fail-safe (actor unicop, globally, the reason naming its trigger and figures: decision 0055)',
  'automation.resumed': 'admin API: automation resumed, with the reason',
  'sweep.requested': "admin API: an operator asked for a sweep; the workers' sweeper takes it within seconds",
  'admin.break_glass_used':
    'admin API or POST /sweep: a request was let in by the shared break-glass token, not a person (decision 0051); the route in the metadata',
  'job.paused':
    'reconcile worker: a retriable error (NetBox, Kafka or an AWX launch answer away) paused the job; it comes back after the delay',
  'job.failed':
    'reconcile worker: the job failed on an error that is not retriable (a programming error); not retried',
  'lease.acquired': 'reconciler: the root lease was taken; correlation carries the fencing token',
  'lease.released': 'reconciler: the lease was given back after the run',
  'lease.freed':
    "sweeper: a live lease whose root has no job in the queue (Redis lost it) was released with its token; the next holder's token fences the old one",
  'run.window_wait': 'reconciler: outside the change window; the run waits as queued until it opens',
  'run.leased': 'reconciler: a run record exists for this snapshot hash and token',
  'run.launched': 'reconciler: AWX accepted the launch; the job id is recorded before waiting',
  'run.adopted':
    "reconciler: an open run is followed to its end instead of launching again (a dead worker's, or one taken up after waiting for approval)",
  'run.resumed':
    "reconciler: a dead worker's run that never reached AWX is resumed under the new lease (same run id, new fencing token), not failed",
  'run.running': 'reconciler: AWX reports the job running',
  'approval.requested':
    'reconciler: the workflow waits on an approval node, or the blast-radius gate holds the run before launch (correlation.approvalKind gate, decision 0065); run awaiting_approval, the job gives its worker and the lease back meanwhile',
  'approval.given': 'reconciler: the approval passed; the workflow goes on',
  'approval.approved':
    "admin API: a person (actor) approved the run's AWX approval with UNICOP's token, or its blast-radius hold (approvalKind gate, 0065); the run's journal names them (decision 0057)",
  'approval.denied':
    "admin API: a person (actor) denied the run's AWX approval with UNICOP's token, or its blast-radius hold (approvalKind gate, 0065); the run's journal names them (decision 0057)",
  'run.cancel_requested': 'reconciler: run timeout reached; AWX was asked to cancel the job',
  'run.succeeded': 'reconciler: terminal — AWX job successful',
  'run.drifted':
    'reconciler: terminal — a check-mode run found the target differing from the snapshot (changed files in the summary; decision 0054)',
  'run.failed':
    'reconciler: terminal — with a failure class (job_failed, job_error, executor_unavailable, …)',
  'run.canceled': 'reconciler: terminal — the AWX job was canceled outside UNICOP',
  'run.timed_out': 'reconciler: terminal — run timeout or an expired approval',
  'run.denied': 'reconciler: terminal — an approver denied the change',
  'run.skipped': 'reconciler: terminal — the snapshot hash was already reconciled',
  'run.fenced': 'reconciler: a write was refused by the fence (lease lost); this worker stopped',
  'run.retry_scheduled':
    'reconciler: the failure class retries; a retry intent with its backoff was published',
  'intent.drift_check':
    'drift scheduler: an in-sync root with drift_mode detect or remediate is due for a check run; a drift_check intent was published (decision 0054)',
  'run.verify_launched':
    "reconciler: the apply job succeeded and the root's policy asks for verification; the verify job's id is recorded before waiting (decision 0066)",
  'run.remediation_scheduled':
    'reconciler: a drifted run of a root with drift_mode remediate; an apply intent (cause drift) was published (decision 0054)',
  'run.retries_exhausted': 'reconciler: the last attempt failed; the failure is terminal',
} as const;

export type AuditAction = keyof typeof auditActions;

/** An audit event's data as a component writes it: the action from the vocabulary above. */
export type AuditData = Omit<EventData<'audit'>, 'action'> & { action: AuditAction };

/**
 * The one audit builder: every component's audit events (bridge, resolver, dispatcher, reconciler,
 * sweeper, admin API) come from here, subject `<subjectType>/<subjectId>`, keyed by `key`.
 */
export function auditMessage(source: string, data: AuditData, key: string): EventLogMessage {
  const event = cloudEvent('audit', {
    id: uuidv7(),
    source,
    subject: `${data.subjectType}/${data.subjectId}`,
    data,
  });
  return { topic: eventTypes.audit.topic, key, value: JSON.stringify(event) };
}

/** An audit event about a root (subject `root/<key>`, keyed by the root key: its timeline). */
export function rootAuditMessage(
  source: string,
  actor: string,
  rootKey: string,
  action: AuditAction,
  outcome: EventData<'audit'>['outcome'],
  reason: string | null,
  correlation: EventData<'audit'>['correlation'],
): EventLogMessage {
  return auditMessage(
    source,
    { action, actor, subjectType: 'root', subjectId: rootKey, outcome, reason, correlation, metadata: {} },
    rootKey,
  );
}
