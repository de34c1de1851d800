/**
 * How the double's records look on the wire: the fields of AWX's JobSerializer,
 * WorkflowJobSerializer, WorkflowJobNodeSerializer, WorkflowApprovalSerializer and
 * JobEventSerializer that UNICOP reads (openapi/awx.yaml), with AWX's names and types.
 */
import type { ApprovalRecord, AwxEngine, JobRecord, UnifiedJob, WorkflowJobRecord } from './engine.js';
import type { RunnerEvent } from './runner.js';

const elapsed = (job: UnifiedJob) =>
  job.started && job.finished ? (Date.parse(job.finished) - Date.parse(job.started)) / 1000 : 0;

// AWX's UnifiedJob.save: failed = status in ('failed', 'error', 'canceled').
const failed = (job: UnifiedJob) => ['failed', 'error', 'canceled'].includes(job.status);

export function serializeJob(job: JobRecord) {
  return {
    id: job.id,
    type: 'job' as const,
    url: `/api/v2/jobs/${job.id}/`,
    related: {
      stdout: `/api/v2/jobs/${job.id}/stdout/`,
      job_events: `/api/v2/jobs/${job.id}/job_events/`,
      cancel: `/api/v2/jobs/${job.id}/cancel/`,
    },
    summary_fields: {
      job_template: { id: job.template.id, name: job.template.name },
      unified_job_template: { id: job.template.id, name: job.template.name, unified_job_type: 'job' },
      source_workflow_job: job.workflowJobId === null ? undefined : { id: job.workflowJobId },
    },
    name: job.name,
    launch_type: job.launchType,
    status: job.status,
    failed: failed(job),
    created: job.created,
    modified: job.statusHistory.at(-1)?.at ?? job.created,
    started: job.started,
    finished: job.finished,
    elapsed: elapsed(job),
    job_explanation: job.jobExplanation,
    job_type: job.jobType,
    playbook: job.template.playbook,
    limit: job.limit,
    extra_vars: JSON.stringify(job.extraVars),
    job_template: job.template.id,
    unified_job_template: job.template.id,
    allow_simultaneous: job.template.allow_simultaneous,
    artifacts: job.artifacts,
  };
}

export function serializeWorkflowJob(wf: WorkflowJobRecord) {
  return {
    id: wf.id,
    type: 'workflow_job' as const,
    url: `/api/v2/workflow_jobs/${wf.id}/`,
    related: {
      workflow_nodes: `/api/v2/workflow_jobs/${wf.id}/workflow_nodes/`,
      cancel: `/api/v2/workflow_jobs/${wf.id}/cancel/`,
    },
    summary_fields: { workflow_job_template: { id: wf.template.id, name: wf.template.name } },
    name: wf.name,
    launch_type: 'manual',
    status: wf.status,
    failed: failed(wf),
    created: wf.created,
    modified: wf.statusHistory.at(-1)?.at ?? wf.created,
    started: wf.started,
    finished: wf.finished,
    elapsed: elapsed(wf),
    job_explanation: wf.jobExplanation,
    extra_vars: JSON.stringify(wf.extraVars),
    workflow_job_template: wf.template.id,
    unified_job_template: wf.template.id,
    allow_simultaneous: wf.template.allow_simultaneous,
  };
}

export function serializeApproval(approval: ApprovalRecord, engine: AwxEngine) {
  const wf = engine.jobs.get(approval.workflowJobId);
  return {
    id: approval.id,
    type: 'workflow_approval' as const,
    url: `/api/v2/workflow_approvals/${approval.id}/`,
    summary_fields: {
      source_workflow_job: wf ? { id: wf.id, name: wf.name, status: wf.status } : undefined,
    },
    name: approval.name,
    description: approval.description,
    status: approval.status,
    failed: failed(approval),
    created: approval.created,
    started: approval.started,
    finished: approval.finished,
    elapsed: elapsed(approval),
    job_explanation: approval.jobExplanation,
    timed_out: approval.timedOut,
    // AWX's WorkflowApprovalSerializer: no `timeout`/`expires`; the expiration only while pending.
    approval_expiration: approval.status === 'pending' ? approval.expires : null,
    can_approve_or_deny: approval.status === 'pending',
  };
}

export function serializeWorkflowNodes(wf: WorkflowJobRecord, engine: AwxEngine) {
  const idOf = new Map(wf.nodes.map((n) => [n.identifier, n.id]));
  return wf.nodes.map((node, index) => {
    const job = node.unifiedJobId ? engine.jobs.get(node.unifiedJobId) : undefined;
    const template = unifiedJobTemplateOf(wf, node, index, engine);
    return {
      id: node.id,
      type: 'workflow_job_node' as const,
      url: `/api/v2/workflow_job_nodes/${node.id}/`,
      workflow_job: wf.id,
      identifier: node.identifier,
      unified_job_template: template.id,
      job: job?.id ?? null,
      do_not_run: node.doNotRun,
      success_nodes: node.config.success_nodes.map((i) => idOf.get(i)),
      failure_nodes: node.config.failure_nodes.map((i) => idOf.get(i)),
      always_nodes: node.config.always_nodes.map((i) => idOf.get(i)),
      summary_fields: {
        unified_job_template: template,
        job: job
          ? { id: job.id, name: job.name, status: job.status, type: job.kind, failed: failed(job) }
          : undefined,
      },
    };
  });
}

/**
 * A node's unified job template as AWX shows it: a job template, or for an approval node the
 * approval template AWX makes for it (a unified job template of its own, with its own id; the
 * double numbers it 100000 + workflow template id x 100 + node position).
 */
function unifiedJobTemplateOf(
  wf: WorkflowJobRecord,
  node: WorkflowJobRecord['nodes'][number],
  index: number,
  engine: AwxEngine,
) {
  const approval = node.config.approval;
  if (approval) {
    return {
      id: 100_000 + wf.template.id * 100 + index,
      name: approval.name,
      description: approval.description,
      unified_job_type: 'workflow_approval',
      timeout: approval.timeout,
    };
  }
  const id = node.config.job_template ?? null;
  const template = engine.config.job_templates.find((t) => t.id === id);
  return { id, name: template?.name ?? '', description: '', unified_job_type: 'job' };
}

const eventStatus = (event: string) => ({
  failed: ['runner_on_failed', 'runner_on_unreachable', 'runner_item_on_failed'].includes(event),
});

export function serializeEvent(jobId: number, event: RunnerEvent, id: number) {
  const data = event.event_data ?? {};
  const res = (data.res as { changed?: boolean } | undefined) ?? {};
  return {
    id,
    type: 'job_event' as const,
    job: jobId,
    event: event.event,
    counter: event.counter,
    uuid: event.uuid,
    parent_uuid: event.parent_uuid ?? '',
    created: event.created ?? null,
    failed: eventStatus(event.event).failed,
    changed: res.changed === true,
    host_name: (data.host as string | undefined) ?? '',
    playbook: (data.playbook as string | undefined) ?? '',
    play: (data.play as string | undefined) ?? '',
    task: (data.task as string | undefined) ?? '',
    role: (data.role as string | undefined) ?? '',
    stdout: event.stdout,
    start_line: event.start_line,
    end_line: event.end_line,
    event_data: data,
  };
}
