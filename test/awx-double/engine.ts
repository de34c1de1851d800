/**
 * The AWX double's task engine: unified jobs (jobs, workflow jobs, workflow approvals) share one id
 * sequence as in AWX; each job moves new -> pending -> waiting -> running -> successful | failed |
 * error | canceled; a job of a template with allow_simultaneous=false stays pending while another
 * job of that template is waiting or running; workflow jobs run their nodes along success/failure/
 * always edges; approvals wait for approve/deny or their timeout. Every status change is recorded
 * with its time (the /_double/jobs record tests use to prove runs never overlapped).
 *
 * Jobs are kept across restarts, as AWX keeps them in PostgreSQL (issue #14, observation 12): every
 * change is written to `<stateDir>/jobs.json` (whole file, temporary file + rename, batched per
 * tick) and a double started on the same state directory reloads it. A job that was running
 * follows its ansible-runner, which outlives the double: still running, it is followed to its end;
 * ended, the job takes the outcome the runner wrote; gone without one, the job is failed as AWX's
 * start-up reaping fails it. Pending and waiting jobs are scheduled again, running workflows go on,
 * a pending approval keeps its deadline.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type {
  DoubleConfig,
  JobTemplateConfig,
  NotificationTemplates,
  WorkflowJobTemplateConfig,
  WorkflowNodeConfig,
} from './config.js';
import { Notifier } from './notifier.js';
import { AnsibleRun } from './runner.js';

export type UnifiedStatus =
  | 'new'
  | 'pending'
  | 'waiting'
  | 'running'
  | 'successful'
  | 'failed'
  | 'error'
  | 'canceled';

const activeStatuses: readonly UnifiedStatus[] = ['new', 'pending', 'waiting', 'running'];
export const isActive = (s: UnifiedStatus) => activeStatuses.includes(s);

interface UnifiedRecord {
  id: number;
  name: string;
  status: UnifiedStatus;
  statusHistory: { status: UnifiedStatus; at: string }[];
  created: string;
  started: string | null;
  finished: string | null;
  jobExplanation: string;
  createdBy: string;
}

export interface JobRecord extends UnifiedRecord {
  kind: 'job';
  template: JobTemplateConfig;
  jobType: 'run' | 'check';
  limit: string;
  extraVars: Record<string, unknown>;
  launchType: 'manual' | 'workflow';
  workflowJobId: number | null;
  run: AnsibleRun | undefined;
  artifacts: Record<string, unknown>;
  hosts: Record<string, Record<string, number | boolean>>;
}

export interface WorkflowNodeRecord {
  id: number;
  identifier: string;
  config: WorkflowNodeConfig;
  unifiedJobId: number | null;
  doNotRun: boolean;
  done: boolean;
}

export interface WorkflowJobRecord extends UnifiedRecord {
  kind: 'workflow_job';
  template: WorkflowJobTemplateConfig;
  extraVars: Record<string, unknown>;
  nodes: WorkflowNodeRecord[];
}

export interface ApprovalRecord extends UnifiedRecord {
  kind: 'workflow_approval';
  description: string;
  timeout: number;
  timedOut: boolean;
  expires: string | null;
  workflowJobId: number;
  timer: NodeJS.Timeout | undefined;
}

export type UnifiedJob = JobRecord | WorkflowJobRecord | ApprovalRecord;

export interface LaunchInput {
  extra_vars?: unknown;
  job_type?: unknown;
  limit?: unknown;
  [field: string]: unknown;
}

export class LaunchValidationError extends Error {
  override readonly name = 'LaunchValidationError';
}

export class NotCancelableError extends Error {
  override readonly name = 'NotCancelableError';
}

export class ApprovalNotPendingError extends Error {
  override readonly name = 'ApprovalNotPendingError';
}

export interface EngineOptions {
  config: DoubleConfig;
  stateDir: string;
  ansibleBin: string;
  /** Base URL the double is reachable at, for `url` fields and notification bodies. */
  publicUrl: () => string;
  /** Milliseconds each of pending -> waiting -> running takes when nothing blocks it. */
  stepMs?: number;
  /** Jobs end successful at once, without running their playbook: for measuring the caller alone. */
  instant?: boolean;
}

const now = () => new Date().toISOString();

/** Parses extra_vars as AWX accepts them: an object, or a JSON/YAML string. */
function parseVariables(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null || value === '') return {};
  const parsed = typeof value === 'string' ? parseYaml(value) : value;
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new LaunchValidationError('extra_vars must be a dictionary');
  }
  return parsed as Record<string, unknown>;
}

export class AwxEngine {
  private nextId = 1;
  private nextNodeId = 1;
  readonly jobs = new Map<number, UnifiedJob>();
  readonly notifier: Notifier;
  private readonly stepMs: number;
  private closed = false;

  constructor(private readonly options: EngineOptions) {
    this.stepMs = options.stepMs ?? 50;
    this.notifier = new Notifier();
    this.restore();
  }

  get config(): DoubleConfig {
    return this.options.config;
  }

  // ---- launch ------------------------------------------------------------------------------

  /** POST /job_templates/{id}/launch/: creates the job, returns it with AWX's ignored_fields. */
  launchJobTemplate(template: JobTemplateConfig, input: LaunchInput, user: string) {
    const ignored: Record<string, unknown> = {};
    let launchVars: Record<string, unknown> = {};
    if (input.extra_vars !== undefined) {
      if (template.ask_variables_on_launch) launchVars = parseVariables(input.extra_vars);
      else ignored.extra_vars = parseVariables(input.extra_vars);
    }
    let jobType = template.job_type;
    if (input.job_type !== undefined) {
      if (input.job_type !== 'run' && input.job_type !== 'check') {
        throw new LaunchValidationError('job_type must be run or check');
      }
      if (template.ask_job_type_on_launch) jobType = input.job_type;
      else ignored.job_type = input.job_type;
    }
    let limit = '';
    if (input.limit !== undefined) {
      if (template.ask_limit_on_launch) limit = String(input.limit);
      else ignored.limit = input.limit;
    }
    const job = this.createJob(
      template,
      { ...template.extra_vars, ...launchVars },
      jobType,
      limit,
      user,
      null,
    );
    this.signalStart(job);
    return { job, ignoredFields: ignored };
  }

  /** POST /workflow_job_templates/{id}/launch/. */
  launchWorkflowJobTemplate(template: WorkflowJobTemplateConfig, input: LaunchInput, user: string) {
    const ignored: Record<string, unknown> = {};
    let launchVars: Record<string, unknown> = {};
    if (input.extra_vars !== undefined) {
      if (template.ask_variables_on_launch) launchVars = parseVariables(input.extra_vars);
      else ignored.extra_vars = parseVariables(input.extra_vars);
    }
    const wf: WorkflowJobRecord = {
      ...this.newRecord(template.name, user),
      kind: 'workflow_job',
      template,
      extraVars: { ...template.extra_vars, ...launchVars },
      nodes: template.nodes.map((config) => ({
        id: this.nextNodeId++,
        identifier: config.identifier,
        config,
        unifiedJobId: null,
        doNotRun: false,
        done: false,
      })),
    };
    this.jobs.set(wf.id, wf);
    this.signalStart(wf);
    return { workflowJob: wf, ignoredFields: ignored };
  }

  private newRecord(name: string, user: string): UnifiedRecord {
    const at = now();
    return {
      id: this.nextId++,
      name,
      status: 'new',
      statusHistory: [{ status: 'new', at }],
      created: at,
      started: null,
      finished: null,
      jobExplanation: '',
      createdBy: user,
    };
  }

  private createJob(
    template: JobTemplateConfig,
    extraVars: Record<string, unknown>,
    jobType: 'run' | 'check',
    limit: string,
    user: string,
    workflowJobId: number | null,
  ): JobRecord {
    const job: JobRecord = {
      ...this.newRecord(template.name, user),
      kind: 'job',
      template,
      jobType,
      limit,
      extraVars,
      launchType: workflowJobId === null ? 'manual' : 'workflow',
      workflowJobId,
      run: undefined,
      artifacts: {},
      hosts: {},
    };
    this.jobs.set(job.id, job);
    return job;
  }

  // ---- status progression ------------------------------------------------------------------

  private setStatus(job: UnifiedJob, status: UnifiedStatus): void {
    job.status = status;
    job.statusHistory.push({ status, at: now() });
    this.persistSoon();
  }

  /** new -> pending, then let the scheduler decide when it may go on. */
  private signalStart(job: JobRecord | WorkflowJobRecord): void {
    this.setStatus(job, 'pending');
    setImmediate(() => this.schedule());
  }

  private blocked(job: JobRecord | WorkflowJobRecord): boolean {
    if (job.template.allow_simultaneous) return false;
    for (const other of this.jobs.values()) {
      if (other === job || other.kind !== job.kind || other.template.id !== job.template.id) continue;
      if (other.status === 'waiting' || other.status === 'running') return true;
    }
    return false;
  }

  /** Moves every pending job that may start to waiting, oldest first (AWX's task manager). */
  private schedule(): void {
    if (this.closed) return;
    const pending = [...this.jobs.values()]
      .filter(
        (j): j is JobRecord | WorkflowJobRecord => j.kind !== 'workflow_approval' && j.status === 'pending',
      )
      .sort((a, b) => a.id - b.id);
    for (const job of pending) {
      if (this.blocked(job)) continue;
      this.setStatus(job, 'waiting');
      setTimeout(() => void this.begin(job), this.stepMs);
    }
  }

  private async begin(job: JobRecord | WorkflowJobRecord): Promise<void> {
    if (job.status !== 'waiting' || this.closed) return;
    this.setStatus(job, 'running');
    job.started = now();
    this.notify(job, 'started');
    if (job.kind === 'workflow_job') {
      this.advanceWorkflow(job);
      return;
    }
    if (this.options.instant) {
      this.finish(job, 'successful');
      return;
    }
    const run = this.runOf(job);
    job.run = run;
    await run.start();
    this.persistSoon(); // the runner's pid, for a double restarted while it runs
    await this.follow(job, run);
  }

  private async follow(job: JobRecord, run: AnsibleRun): Promise<void> {
    const { outcome, explanation } = await run.done;
    await this.collectStats(job);
    this.finish(job, outcome, explanation);
  }

  private runOf(job: JobRecord): AnsibleRun {
    return new AnsibleRun({
      ansibleBin: this.options.ansibleBin,
      dir: join(this.options.stateDir, 'jobs', String(job.id)),
      projectDir: this.options.config.project_dir,
      playbook: job.template.playbook,
      extraVars: job.extraVars,
      check: job.jobType === 'check',
      limit: job.limit,
    });
  }

  // ---- persistence -------------------------------------------------------------------------

  private get stateFile(): string {
    return join(this.options.stateDir, 'jobs.json');
  }

  private persistPending = false;

  /** Writes the jobs once this tick's changes are made (one write per tick, however many changes). */
  private persistSoon(): void {
    if (this.persistPending) return;
    this.persistPending = true;
    setImmediate(() => this.persist());
  }

  private persist(): void {
    this.persistPending = false;
    const jobs = [...this.jobs.values()].map((job) => {
      const { run, template, timer, nodes, ...fields } = job as unknown as Record<string, unknown> & {
        run?: AnsibleRun;
        template?: { id: number };
        timer?: unknown;
        nodes?: WorkflowNodeRecord[];
      };
      void timer; // a timer is restarted from `expires`, not stored
      return {
        ...fields,
        ...(template ? { templateId: template.id } : {}),
        ...(run?.pid ? { runnerPid: run.pid } : {}),
        ...(nodes
          ? { nodes: nodes.map(({ config, ...node }) => ({ ...node, identifier: config.identifier })) }
          : {}),
      };
    });
    const tmp = `${this.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ nextId: this.nextId, nextNodeId: this.nextNodeId, jobs }));
    renameSync(tmp, this.stateFile);
  }

  /** Reloads the jobs an earlier double process kept in this state directory, and takes them on. */
  private restore(): void {
    if (!existsSync(this.stateFile)) return;
    const saved = JSON.parse(readFileSync(this.stateFile, 'utf8')) as {
      nextId: number;
      nextNodeId: number;
      jobs: (Record<string, unknown> & { id: number; kind: UnifiedJob['kind']; templateId?: number })[];
    };
    this.nextId = saved.nextId;
    this.nextNodeId = saved.nextNodeId;
    const runners = new Map<number, number | undefined>();
    for (const { templateId, runnerPid, ...fields } of saved.jobs) {
      if (fields.kind === 'job') {
        const template = this.config.job_templates.find((t) => t.id === templateId);
        if (!template) continue;
        const job = { ...fields, template, run: undefined } as unknown as JobRecord;
        if (job.started) job.run = this.runOf(job);
        runners.set(job.id, runnerPid as number | undefined);
        this.jobs.set(job.id, job);
      } else if (fields.kind === 'workflow_job') {
        const template = this.config.workflow_job_templates.find((t) => t.id === templateId);
        if (!template) continue;
        const nodes = (fields.nodes as (Omit<WorkflowNodeRecord, 'config'> & { identifier: string })[]).map(
          (node) => ({ ...node, config: template.nodes.find((n) => n.identifier === node.identifier) }),
        ) as WorkflowNodeRecord[];
        this.jobs.set(fields.id, { ...fields, template, nodes } as unknown as WorkflowJobRecord);
      } else {
        this.jobs.set(fields.id, { ...fields, timer: undefined } as unknown as ApprovalRecord);
      }
    }
    for (const job of this.jobs.values()) {
      if (job.kind === 'job' && job.status === 'running' && job.run) {
        job.run.reattach(runners.get(job.id));
        void this.follow(job, job.run);
      } else if (job.kind === 'job' && job.status === 'running') {
        this.finish(
          job,
          'failed',
          'Task was marked as running at system start up. The system must have not shut down properly, so it has been marked as failed.',
        );
      } else if (job.kind !== 'workflow_approval' && job.status === 'waiting') {
        this.setStatus(job, 'pending');
      } else if (job.kind === 'workflow_approval' && job.status === 'pending' && job.expires) {
        const left = Math.max(0, Date.parse(job.expires) - Date.now());
        job.timer = setTimeout(() => this.expireApproval(job), left);
        job.timer.unref();
      }
    }
    for (const job of this.jobs.values()) if (job.kind === 'workflow_job') this.advanceWorkflow(job);
    setImmediate(() => this.schedule());
  }

  /** set_stats data and per-host counts from the playbook_on_stats event (AWX: artifacts, hosts). */
  private async collectStats(job: JobRecord): Promise<void> {
    const stats = (await job.run?.events())?.find((e) => e.event === 'playbook_on_stats')?.event_data;
    if (!stats) return;
    job.artifacts = (stats.artifact_data as Record<string, unknown> | undefined) ?? {};
    const counts = ['ok', 'changed', 'dark', 'failures', 'processed', 'skipped', 'rescued', 'ignored'];
    for (const key of counts) {
      for (const [host, n] of Object.entries((stats[key] as Record<string, number> | undefined) ?? {})) {
        job.hosts[host] ??= Object.fromEntries(counts.map((c) => [c, 0]));
        (job.hosts[host] as Record<string, number>)[key] = n;
      }
    }
    for (const host of Object.values(job.hosts)) {
      host.failed = Number(host.failures) > 0 || Number(host.dark) > 0;
    }
  }

  private finish(job: UnifiedJob, status: UnifiedStatus, explanation = ''): void {
    if (job.finished) return;
    if (job.status !== status) this.setStatus(job, status);
    job.finished = now();
    if (explanation && !job.jobExplanation) job.jobExplanation = explanation;
    if (job.kind !== 'workflow_approval') this.notify(job, status === 'successful' ? 'success' : 'error');
    const parentId = job.kind === 'workflow_job' ? null : job.workflowJobId;
    const parent = parentId === null ? undefined : this.jobs.get(parentId);
    if (parent?.kind === 'workflow_job') this.advanceWorkflow(parent);
    setImmediate(() => this.schedule());
  }

  // ---- workflows ---------------------------------------------------------------------------

  /**
   * Runs the workflow on: settles finished nodes, spawns the nodes a finished parent leads to (its
   * success or failure edges, and always edges), marks nodes no path leads to as do_not_run, and
   * ends the workflow when nothing is active or left to decide. The workflow fails when a node
   * failed and had no failure or always edge to handle it (AWX's rule).
   */
  private advanceWorkflow(wf: WorkflowJobRecord): void {
    if (wf.status !== 'running') return;
    const jobOf = (n: WorkflowNodeRecord) => (n.unifiedJobId ? this.jobs.get(n.unifiedJobId) : undefined);
    for (const node of wf.nodes) {
      const job = jobOf(node);
      if (job && !isActive(job.status)) node.done = true;
    }
    const leadsTo = (parent: WorkflowNodeRecord, child: WorkflowNodeRecord) => {
      const job = jobOf(parent);
      if (!parent.done || !job) return false;
      const { success_nodes, failure_nodes, always_nodes } = parent.config;
      const edges = [...(job.status === 'successful' ? success_nodes : failure_nodes), ...always_nodes];
      return edges.includes(child.identifier);
    };
    const parentsOf = (child: WorkflowNodeRecord) =>
      wf.nodes.filter((p) =>
        [...p.config.success_nodes, ...p.config.failure_nodes, ...p.config.always_nodes].includes(
          child.identifier,
        ),
      );
    let decided = true;
    while (decided) {
      decided = false;
      for (const node of wf.nodes) {
        if (node.unifiedJobId || node.doNotRun) continue;
        const parents = parentsOf(node);
        if (parents.length === 0 || parents.some((p) => leadsTo(p, node))) {
          this.spawnNode(wf, node);
          decided = true;
        } else if (parents.every((p) => p.done || p.doNotRun)) {
          node.doNotRun = true;
          decided = true;
        }
      }
    }
    const active = wf.nodes.some((n) => !n.done && n.unifiedJobId !== null);
    const undecided = wf.nodes.some((n) => n.unifiedJobId === null && !n.doNotRun);
    if (active || undecided) return;
    const unhandled = wf.nodes.some((n) => {
      const job = jobOf(n);
      const handled = n.config.failure_nodes.length > 0 || n.config.always_nodes.length > 0;
      return job !== undefined && job.status !== 'successful' && !handled;
    });
    this.finish(wf, unhandled ? 'failed' : 'successful');
  }

  private spawnNode(wf: WorkflowJobRecord, node: WorkflowNodeRecord): void {
    if (node.config.approval) {
      const approval = this.createApproval(wf, node.config.approval);
      node.unifiedJobId = approval.id;
      return;
    }
    const template = this.config.job_templates.find((t) => t.id === node.config.job_template);
    if (!template) throw new Error(`unknown job template ${node.config.job_template}`);
    // Workflow extra_vars reach every node's job, whatever the template prompts for (AWX).
    const job = this.createJob(
      template,
      { ...template.extra_vars, ...wf.extraVars },
      template.job_type,
      '',
      wf.createdBy,
      wf.id,
    );
    node.unifiedJobId = job.id;
    this.signalStart(job);
  }

  private createApproval(
    wf: WorkflowJobRecord,
    config: NonNullable<WorkflowNodeConfig['approval']>,
  ): ApprovalRecord {
    const record = this.newRecord(config.name, wf.createdBy);
    const approval: ApprovalRecord = {
      ...record,
      kind: 'workflow_approval',
      description: config.description,
      timeout: config.timeout,
      timedOut: false,
      expires: config.timeout
        ? new Date(Date.parse(record.created) + config.timeout * 1000).toISOString()
        : null,
      workflowJobId: wf.id,
      timer: undefined,
    };
    this.setStatus(approval, 'pending');
    approval.started = approval.created;
    if (config.timeout) {
      approval.timer = setTimeout(() => this.expireApproval(approval), config.timeout * 1000);
      approval.timer.unref();
    }
    this.jobs.set(approval.id, approval);
    return approval;
  }

  /** AWX's task manager: an expired approval becomes failed with timed_out=true. */
  private expireApproval(approval: ApprovalRecord): void {
    if (approval.status !== 'pending') return;
    approval.timedOut = true;
    this.finish(
      approval,
      'failed',
      `The approval node ${approval.name} (${approval.id}) has expired after ${approval.timeout} seconds.`,
    );
  }

  /** POST /workflow_approvals/{id}/approve/ or /deny/. */
  decide(approval: ApprovalRecord, decision: 'approve' | 'deny'): void {
    if (approval.status !== 'pending') throw new ApprovalNotPendingError();
    clearTimeout(approval.timer);
    this.finish(approval, decision === 'approve' ? 'successful' : 'failed');
  }

  // ---- cancel ------------------------------------------------------------------------------

  canCancel(job: UnifiedJob): boolean {
    return isActive(job.status);
  }

  /**
   * POST /jobs/{id}/cancel/ and /workflow_jobs/{id}/cancel/. A job that has not started ends as
   * canceled at once; a running one stays running until its playbook has stopped (AWX sets
   * cancel_flag and the status follows).
   */
  cancel(job: JobRecord | WorkflowJobRecord): void {
    if (!this.canCancel(job)) throw new NotCancelableError();
    if (job.kind === 'job') {
      if (job.status === 'running' && job.run) job.run.cancel();
      else this.finish(job, 'canceled', 'Job canceled by user request.');
      return;
    }
    this.setStatus(job, 'canceled');
    for (const node of job.nodes) {
      const child = node.unifiedJobId ? this.jobs.get(node.unifiedJobId) : undefined;
      if (child?.kind === 'job' && isActive(child.status)) this.cancel(child);
      if (child?.kind === 'workflow_approval' && child.status === 'pending') {
        clearTimeout(child.timer);
        this.finish(child, 'canceled');
      }
      if (!node.unifiedJobId) node.doNotRun = true;
    }
    this.finish(job, 'canceled', 'Workflow job canceled by user request.');
  }

  // ---- notifications -----------------------------------------------------------------------

  private notify(job: JobRecord | WorkflowJobRecord, trigger: keyof NotificationTemplates): void {
    const targets = job.template.notification_templates[trigger];
    if (targets.length === 0) return;
    const body = this.jobMetadata(job);
    for (const target of targets) this.notifier.send(job.id, trigger, target, body);
  }

  /** The `job_metadata` AWX renders as the default webhook notification body. */
  jobMetadata(job: JobRecord | WorkflowJobRecord): Record<string, unknown> {
    const base = {
      id: job.id,
      name: job.name,
      url: `${this.options.publicUrl()}/#/jobs/${job.kind === 'job' ? 'playbook' : 'workflow'}/${job.id}`,
      created_by: job.createdBy,
      started: job.started,
      finished: job.finished,
      status: job.status,
      traceback: '',
    };
    if (job.kind === 'workflow_job') return { ...base, extra_vars: JSON.stringify(job.extraVars) };
    return {
      ...base,
      inventory: 'localhost (AWX double)',
      project: 'awx-playbooks',
      playbook: job.template.playbook,
      credential: null,
      limit: job.limit,
      extra_vars: JSON.stringify(job.extraVars),
      hosts: job.hosts,
    };
  }

  // ---- shutdown ----------------------------------------------------------------------------

  /** Stops every running playbook and timer; the double is going away. */
  async close(): Promise<void> {
    this.closed = true;
    const runs: Promise<unknown>[] = [];
    for (const job of this.jobs.values()) {
      if (job.kind === 'workflow_approval') clearTimeout(job.timer);
      if (job.kind === 'job' && job.run && job.status === 'running') {
        job.run.cancel();
        runs.push(job.run.done);
      }
    }
    await Promise.all(runs);
    await this.notifier.idle();
    this.persist();
  }
}
