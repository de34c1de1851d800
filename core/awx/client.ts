/**
 * The typed AWX client UNICOP uses: openapi-fetch over the types generated from openapi/awx.yaml,
 * bearer-token auth, one timeout per request, every failure turned into a named AwxError.
 *
 * Launches are not idempotent in AWX, so a launch is never retried blindly. Every launch carries
 * the run id in `extra_vars.unicop.run_id`, and:
 *   1. before launching, the client looks for a job of that template already carrying the run id
 *      (a retry after a crash or a lost answer adopts that job instead of starting a second one);
 *   2. when the launch request was sent but its answer was lost (timeout, reset connection, 5xx),
 *      the client looks the run id up again, a few times, and returns the job it finds;
 *   3. if it still finds none it throws AwxLaunchUnconfirmedError (retriable): the caller tries again
 *      later through this same launch, which starts again at step 1.
 * A connection that was refused never reached AWX, so that is a plain AwxUnavailableError.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from '../../openapi/generated/awx.js';
import { type Clock, systemClock } from '../clock.js';
import { configDefaults, type UnicopConfig } from '../config.js';
import type { CredentialRefresh } from '../secrets/runtime-config.js';
import { sendWithFreshToken } from '../secrets/token-resend.js';
import { caBundleOf, TlsVerificationError, tlsVerificationCode } from '../tls/ca-bundle.js';
import { type FetchLike, fetchTrusting } from '../tls/trusted-fetch.js';
import { inClientSpan, tracer } from '../tracing.js';
import {
  AwxApprovalNotPendingError,
  AwxAuthError,
  type AwxError,
  AwxLaunchUnconfirmedError,
  AwxNotFoundError,
  AwxPromptsIgnoredError,
  AwxProtocolError,
  AwxRequestError,
  AwxUnavailableError,
} from './errors.js';

const awxTracer = tracer('awx');

type Schemas = components['schemas'];
export type AwxJob = Schemas['Job'];
export type AwxWorkflowJob = Schemas['WorkflowJob'];
export type AwxWorkflowJobNode = Schemas['WorkflowJobNode'];
export type AwxWorkflowApproval = Schemas['WorkflowApproval'];
export type AwxJobEvent = Schemas['JobEvent'];
export type AwxJobStatus = Schemas['UnifiedJobStatus'];
export interface AwxPage<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

/** Statuses after which a job never changes again. */
export const terminalStatuses: readonly AwxJobStatus[] = ['successful', 'failed', 'error', 'canceled'];

/** The `unicop` extra vars every reconciler playbook reads (awx-playbooks/README.md). */
export interface UnicopVars {
  root: string;
  snapshot: unknown;
  hash: string;
  fencing_token: number;
  run_id: string;
  /**
   * `verify`: the run's post-run verification job (docs/decisions/0066), launched after its apply job
   * succeeded with the same run id. Part of the launch's identity: a look-up for one phase never
   * finds the other's job. Absent: the run's own (apply or check) job.
   */
  phase?: 'verify';
}

export interface LaunchRequest {
  unicop: UnicopVars;
  /** Further extra_vars next to `unicop`. */
  extraVars?: Record<string, unknown>;
  /** `check` runs the playbook in check mode (drift detection); AWX's default is `run`. */
  jobType?: 'run' | 'check';
  /** AWX's `job_tags` (only the tasks with these tags run); needs the template's ask_tags_on_launch. */
  jobTags?: string;
  /** Look for an earlier launch of this run id from this time on; default: lookbackMs ago. */
  since?: Date;
}

export interface Launched<T> {
  job: T;
  /** True when the job already existed (an earlier attempt launched it) and was adopted. */
  adopted: boolean;
}

export interface AwxClientOptions {
  /** AWX base URL, without /api/v2. */
  baseUrl: string;
  /**
   * OAuth2 bearer token, or where to read the current one (read for every request); kept private,
   * never logged or put in an error.
   */
  token: string | (() => string);
  /**
   * On a 401 or 403: whether the token has a new value since (read again from Vault); the request
   * is then sent once more with it — AWX refused it at the door, so nothing was applied.
   */
  onUnauthorized?: () => Promise<boolean>;
  /** Per-request timeout (UNICOP_AWX_TIMEOUT_MS). */
  timeoutMs?: number;
  /**
   * PEM CA bundle trusted for an https AWX instead of the system's CAs (UNICOP_AWX_CA_FILE,
   * core/tls/ca-bundle.ts); unset: the system's. Verification is never switched off.
   */
  ca?: string;
  /**
   * How far back a launch looks for an earlier job of the same run id when the caller gives no
   * `since`; 1 h. Not a setting: the reconciler always gives the run's start.
   */
  lookbackMs?: number;
  /** How a lost launch answer is confirmed: look-ups, and the pause between them. */
  confirmAttempts?: number;
  confirmDelayMs?: number;
  /** Where the client reads the time and waits; the system clock by default. */
  clock?: Clock;
}

/** The client's options from the configuration (core/config.ts documents each value). */
export function awxClientOptions(
  config: Pick<
    UnicopConfig,
    | 'UNICOP_AWX_URL'
    | 'UNICOP_AWX_TOKEN'
    | 'UNICOP_AWX_TIMEOUT_MS'
    | 'UNICOP_AWX_LAUNCH_CONFIRM_ATTEMPTS'
    | 'UNICOP_AWX_LAUNCH_CONFIRM_DELAY_MS'
    | 'UNICOP_AWX_CA_FILE'
  >,
  /** The process's vault: secrets: a refused token is read again at once (decision 0056). */
  secrets?: CredentialRefresh | null,
): AwxClientOptions {
  // Read here: a ConfigError naming UNICOP_AWX_CA_FILE when it is not a CA bundle.
  const ca = caBundleOf('UNICOP_AWX_CA_FILE', config.UNICOP_AWX_CA_FILE);
  return {
    baseUrl: config.UNICOP_AWX_URL,
    // Read for every request: a vault: token's new version is used without a restart.
    token: () => config.UNICOP_AWX_TOKEN ?? '',
    ...(secrets ? { onUnauthorized: () => secrets.refreshCredential('UNICOP_AWX_TOKEN') } : {}),
    timeoutMs: config.UNICOP_AWX_TIMEOUT_MS,
    confirmAttempts: config.UNICOP_AWX_LAUNCH_CONFIRM_ATTEMPTS,
    confirmDelayMs: config.UNICOP_AWX_LAUNCH_CONFIRM_DELAY_MS,
    ...(ca === undefined ? {} : { ca }),
  };
}

const notSentCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Whether a transport failure may have happened after AWX received the request. */
function mayHaveBeenReceived(err: unknown): boolean {
  // A certificate not trusted fails the handshake, before the request is written.
  if (tlsVerificationCode(err) !== undefined) return false;
  const cause = (err as { cause?: { code?: string; errors?: { code?: string }[] } })?.cause;
  const codes = [cause?.code, ...(cause?.errors ?? []).map((e) => e.code)].filter(Boolean) as string[];
  return !(codes.length > 0 && codes.every((c) => notSentCodes.has(c)));
}

/** AWX's certificate not trusted (the handshake failed): the error to report as the cause. */
function untrustedCertificate(err: unknown): TlsVerificationError | undefined {
  const code = tlsVerificationCode(err);
  return code === undefined ? undefined : new TlsVerificationError('AWX', code, 'UNICOP_AWX_CA_FILE');
}

function describeTransport(err: unknown): string {
  const tls = untrustedCertificate(err);
  if (tls) return tls.message;
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timed out';
  const code = (err as { cause?: { code?: string } })?.cause?.code;
  return code ? `connection failed (${code})` : 'connection failed';
}

export class AwxClient {
  readonly #api: Client<paths>;
  private readonly timeoutMs: number;
  private readonly lookbackMs: number;
  private readonly confirmAttempts: number;
  private readonly confirmDelayMs: number;
  private readonly clock: Clock;

  constructor(options: AwxClientOptions) {
    this.timeoutMs = options.timeoutMs ?? configDefaults.UNICOP_AWX_TIMEOUT_MS;
    this.lookbackMs = options.lookbackMs ?? 3_600_000;
    this.confirmAttempts = options.confirmAttempts ?? configDefaults.UNICOP_AWX_LAUNCH_CONFIRM_ATTEMPTS;
    this.confirmDelayMs = options.confirmDelayMs ?? configDefaults.UNICOP_AWX_LAUNCH_CONFIRM_DELAY_MS;
    this.clock = options.clock ?? systemClock;
    const { token, onUnauthorized } = options;
    const currentToken = typeof token === 'function' ? token : () => token;
    // With a CA bundle, https requests go through node:https trusting it (core/tls/trusted-fetch.ts).
    const send: FetchLike = options.ca === undefined ? globalThis.fetch : fetchTrusting(options.ca);
    this.#api = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      fetch: (request) => {
        // Kept for a second try with a replaced token (the first send consumes the body).
        const again = onUnauthorized ? request.clone() : undefined;
        // A child span of the change's trace when one is active (core/tracing.ts); the path, never the token.
        const attributes = {
          'http.request.method': request.method,
          'url.path': new URL(request.url).pathname,
        };
        return inClientSpan(awxTracer, `AWX ${request.method}`, attributes, async (span) => {
          const response = await sendWithFreshToken(
            { token: currentToken, onUnauthorized },
            (token, resend) => {
              const sending = resend && again ? again : request;
              sending.headers.set('authorization', `Bearer ${token}`);
              return send(sending, { signal: AbortSignal.timeout(this.timeoutMs) });
            },
            async (refused) => {
              await refused.body?.cancel();
            },
          );
          span.setAttribute('http.response.status_code', response.status);
          return response;
        });
      },
    });
  }

  // ---- launch ------------------------------------------------------------------------------

  /** Launches a job template for one run, or adopts the job an earlier attempt of the run launched. */
  async launchJobTemplate(templateId: number, request: LaunchRequest): Promise<Launched<AwxJob>> {
    const runId = request.unicop.run_id;
    const since = request.since ?? new Date(this.clock.now().getTime() - this.lookbackMs);
    const lookup = () => this.findJobByRunId(templateId, runId, since, request.unicop.phase);
    const earlier = await lookup();
    if (earlier) return { job: earlier, adopted: true };
    const body = {
      extra_vars: { ...request.extraVars, unicop: request.unicop },
      ...(request.jobType ? { job_type: request.jobType } : {}),
      ...(request.jobTags ? { job_tags: request.jobTags } : {}),
    };
    const answer = await this.sendLaunch(templateId, runId, lookup, () =>
      this.#api.POST('/api/v2/job_templates/{id}/launch/', { params: { path: { id: templateId } }, body }),
    );
    if (answer.lost) return { job: answer.found, adopted: true };
    const { data } = answer;
    await this.refuseIgnoredPrompts(templateId, data.job, data.ignored_fields, request, () =>
      this.cancelJob(data.job),
    );
    const { job: _id, ignored_fields: _ignored, ...job } = data;
    return { job, adopted: false };
  }

  /** Launches a workflow job template for one run, or adopts the workflow job an earlier attempt launched. */
  async launchWorkflowJobTemplate(
    templateId: number,
    request: LaunchRequest,
  ): Promise<Launched<AwxWorkflowJob>> {
    const runId = request.unicop.run_id;
    const since = request.since ?? new Date(this.clock.now().getTime() - this.lookbackMs);
    const lookup = () => this.findWorkflowJobByRunId(templateId, runId, since);
    const earlier = await lookup();
    if (earlier) return { job: earlier, adopted: true };
    const body = { extra_vars: { ...request.extraVars, unicop: request.unicop } };
    const answer = await this.sendLaunch(templateId, runId, lookup, () =>
      this.#api.POST('/api/v2/workflow_job_templates/{id}/launch/', {
        params: { path: { id: templateId } },
        body,
      }),
    );
    if (answer.lost) return { job: answer.found, adopted: true };
    const { data } = answer;
    await this.refuseIgnoredPrompts(templateId, data.workflow_job, data.ignored_fields, request, () =>
      this.cancelWorkflowJob(data.workflow_job),
    );
    const { workflow_job: _id, ignored_fields: _ignored, ...job } = data;
    return { job, adopted: false };
  }

  /**
   * Sends one launch. A definite answer is returned (201) or thrown (4xx); a lost one (transport
   * failure after sending, or 5xx) is confirmed by looking the run id up.
   */
  private async sendLaunch<T, J>(
    templateId: number,
    runId: string,
    lookup: () => Promise<J | undefined>,
    post: () => Promise<{ data?: T; error?: unknown; response: Response }>,
  ): Promise<{ lost: false; data: T } | { lost: true; found: J }> {
    let lost: unknown;
    try {
      const { data, error, response } = await post();
      if (response.status < 500) {
        if (!response.ok || data === undefined) throw this.httpError('launch', response, error);
        return { lost: false, data };
      }
      lost = new AwxUnavailableError(`launch: AWX answered ${response.status}`, response.status);
    } catch (err) {
      if ((err as AwxError).retriable !== undefined) throw err;
      if (!mayHaveBeenReceived(err)) {
        throw new AwxUnavailableError(
          `launch of template ${templateId}: ${describeTransport(err)}`,
          undefined,
          { cause: untrustedCertificate(err) ?? err },
        );
      }
      lost = err;
    }
    for (let attempt = 1; attempt <= this.confirmAttempts; attempt++) {
      try {
        const job = await lookup();
        if (job) return { lost: true, found: job };
      } catch (err) {
        lost = err;
      }
      if (attempt < this.confirmAttempts) await this.clock.sleep(this.confirmDelayMs);
    }
    throw new AwxLaunchUnconfirmedError(templateId, runId, { cause: lost });
  }

  private async refuseIgnoredPrompts(
    templateId: number,
    jobId: number,
    ignored: Record<string, unknown>,
    request: LaunchRequest,
    cancel: () => Promise<boolean>,
  ): Promise<void> {
    const fields = [
      'extra_vars',
      ...(request.jobType ? ['job_type'] : []),
      // A verify job whose tags AWX dropped would run the whole playbook again: an apply, not a check.
      ...(request.jobTags ? ['job_tags'] : []),
    ].filter((f) => f in ignored);
    if (fields.length === 0) return;
    await cancel().catch(() => false);
    throw new AwxPromptsIgnoredError(templateId, jobId, fields);
  }

  /**
   * The job of this template whose extra_vars carry this run id (and this phase: none, the run's own
   * job; `verify`, its verification job), if AWX has one.
   */
  async findJobByRunId(
    templateId: number,
    runId: string,
    since: Date,
    phase?: UnicopVars['phase'],
  ): Promise<AwxJob | undefined> {
    const query = {
      job_template: templateId,
      created__gte: since.toISOString(),
      order_by: '-id',
      page_size: 200,
    };
    for (let page = 1; ; page++) {
      const result = await this.call('list jobs', () =>
        this.#api.GET('/api/v2/jobs/', { params: { query: { ...query, page } } }),
      );
      const match = result.results.find(
        (job) => runIdOf(job.extra_vars) === runId && phaseOf(job.extra_vars) === phase,
      );
      if (match || !result.next) return match;
    }
  }

  /** The workflow job of this template whose extra_vars carry this run id, if AWX has one. */
  async findWorkflowJobByRunId(
    templateId: number,
    runId: string,
    since: Date,
  ): Promise<AwxWorkflowJob | undefined> {
    const query = {
      workflow_job_template: templateId,
      created__gte: since.toISOString(),
      order_by: '-id',
      page_size: 200,
    };
    for (let page = 1; ; page++) {
      const result = await this.call('list workflow jobs', () =>
        this.#api.GET('/api/v2/workflow_jobs/', { params: { query: { ...query, page } } }),
      );
      const match = result.results.find((job) => runIdOf(job.extra_vars) === runId);
      if (match || !result.next) return match;
    }
  }

  // ---- following a job ---------------------------------------------------------------------

  getJob(id: number): Promise<AwxJob> {
    return this.call('get job', () => this.#api.GET('/api/v2/jobs/{id}/', { params: { path: { id } } }));
  }

  getWorkflowJob(id: number): Promise<AwxWorkflowJob> {
    return this.call('get workflow job', () =>
      this.#api.GET('/api/v2/workflow_jobs/{id}/', { params: { path: { id } } }),
    );
  }

  /** Every node of a workflow job (all pages). */
  async listWorkflowJobNodes(id: number): Promise<AwxWorkflowJobNode[]> {
    const nodes: AwxWorkflowJobNode[] = [];
    for (let page = 1; ; page++) {
      const result = await this.call('list workflow job nodes', () =>
        this.#api.GET('/api/v2/workflow_jobs/{id}/workflow_nodes/', {
          params: { path: { id }, query: { page, page_size: 200 } },
        }),
      );
      nodes.push(...result.results);
      if (!result.next) return nodes;
    }
  }

  /** Whether AWX would still accept a cancel for the job. */
  async canCancelJob(id: number): Promise<boolean> {
    const answer = await this.call('get job cancel', () =>
      this.#api.GET('/api/v2/jobs/{id}/cancel/', { params: { path: { id } } }),
    );
    return answer.can_cancel;
  }

  /** Asks AWX to cancel a job: true when accepted (202), false when the job had already ended (405). */
  cancelJob(id: number): Promise<boolean> {
    return this.cancel('cancel job', () =>
      this.#api.POST('/api/v2/jobs/{id}/cancel/', { params: { path: { id } } }),
    );
  }

  cancelWorkflowJob(id: number): Promise<boolean> {
    return this.cancel('cancel workflow job', () =>
      this.#api.POST('/api/v2/workflow_jobs/{id}/cancel/', { params: { path: { id } } }),
    );
  }

  private async cancel(
    operation: string,
    post: () => Promise<{ error?: unknown; response: Response }>,
  ): Promise<boolean> {
    const { error, response } = await this.transport(operation, post);
    if (response.status === 202) return true;
    if (response.status === 405) return false;
    throw this.httpError(operation, response, error);
  }

  /** The job's output as plain text (AWX strips the colour codes for format=txt). */
  async getJobStdout(id: number): Promise<string> {
    const { data, error, response } = await this.transport('get job stdout', () =>
      this.#api.GET('/api/v2/jobs/{id}/stdout/', {
        params: { path: { id }, query: { format: 'txt' } },
        parseAs: 'text',
      }),
    );
    if (!response.ok || typeof data !== 'string') throw this.httpError('get job stdout', response, error);
    return data;
  }

  /** One page of the job's events, in counter order. */
  listJobEvents(id: number, page = 1, pageSize = 200): Promise<AwxPage<AwxJobEvent>> {
    return this.call('list job events', () =>
      this.#api.GET('/api/v2/jobs/{id}/job_events/', {
        params: { path: { id }, query: { page, page_size: pageSize, order_by: 'counter' } },
      }),
    );
  }

  // ---- approvals ---------------------------------------------------------------------------

  /** Every approval still waiting for a decision (all pages). */
  async listPendingApprovals(): Promise<AwxWorkflowApproval[]> {
    const approvals: AwxWorkflowApproval[] = [];
    for (let page = 1; ; page++) {
      const result = await this.call('list workflow approvals', () =>
        this.#api.GET('/api/v2/workflow_approvals/', {
          params: { query: { status: 'pending', order_by: 'id', page, page_size: 200 } },
        }),
      );
      approvals.push(...result.results);
      if (!result.next) return approvals;
    }
  }

  /** The approvals a workflow job has reached so far (through its nodes), whatever their status. */
  async approvalsOfWorkflowJob(workflowJobId: number): Promise<AwxWorkflowApproval[]> {
    const nodes = await this.listWorkflowJobNodes(workflowJobId);
    const ids = nodes
      .filter((n) => n.summary_fields?.job?.type === 'workflow_approval' && typeof n.job === 'number')
      .map((n) => n.job as number);
    return Promise.all(ids.map((id) => this.getApproval(id)));
  }

  getApproval(id: number): Promise<AwxWorkflowApproval> {
    return this.call('get workflow approval', () =>
      this.#api.GET('/api/v2/workflow_approvals/{id}/', { params: { path: { id } } }),
    );
  }

  approve(id: number): Promise<void> {
    return this.decide('approve', () =>
      this.#api.POST('/api/v2/workflow_approvals/{id}/approve/', { params: { path: { id } } }),
    );
  }

  deny(id: number): Promise<void> {
    return this.decide('deny', () =>
      this.#api.POST('/api/v2/workflow_approvals/{id}/deny/', { params: { path: { id } } }),
    );
  }

  private async decide(
    operation: 'approve' | 'deny',
    post: () => Promise<{ error?: unknown; response: Response }>,
  ): Promise<void> {
    const { error, response } = await this.transport(operation, post);
    if (response.status === 204) return;
    if (response.status === 400) {
      throw new AwxApprovalNotPendingError(`${operation}: ${awxMessage(error)}`, 400);
    }
    throw this.httpError(operation, response, error);
  }

  // ---- plumbing ----------------------------------------------------------------------------

  /** Runs one request; a transport failure becomes AwxUnavailableError. */
  private async transport<R>(operation: string, request: () => Promise<R>): Promise<R> {
    try {
      return await request();
    } catch (err) {
      throw new AwxUnavailableError(`${operation}: ${describeTransport(err)}`, undefined, {
        cause: untrustedCertificate(err) ?? err,
      });
    }
  }

  /** Runs one request that must answer 2xx with a body. */
  private async call<T>(
    operation: string,
    request: () => Promise<{ data?: T; error?: unknown; response: Response }>,
  ) {
    const { data, error, response } = await this.transport(operation, request);
    if (!response.ok) throw this.httpError(operation, response, error);
    if (data === undefined)
      throw new AwxProtocolError(`${operation}: AWX answered without a body`, response.status);
    return data;
  }

  private httpError(operation: string, response: Response, error: unknown): AwxError {
    const message = `${operation}: AWX answered ${response.status}: ${awxMessage(error)}`;
    if (response.status === 401 || response.status === 403) return new AwxAuthError(message, response.status);
    if (response.status === 404) return new AwxNotFoundError(message, response.status);
    if (response.status >= 500) return new AwxUnavailableError(message, response.status);
    return new AwxRequestError(message, response.status);
  }
}

/** AWX's explanation from an error body: `detail` (DRF), `error` (AWX views) or field errors. */
function awxMessage(error: unknown): string {
  if (!error || typeof error !== 'object') return String(error ?? 'no details');
  const body = error as Record<string, unknown>;
  const text = body.detail ?? body.error ?? JSON.stringify(body);
  return String(text).slice(0, 300);
}

/** The launch's phase in a job's extra_vars (`verify`), undefined for a run's own job. */
function phaseOf(extraVars: string | undefined): UnicopVars['phase'] {
  try {
    const vars = JSON.parse(extraVars ?? '{}') as { unicop?: { phase?: unknown } };
    return vars.unicop?.phase === 'verify' ? 'verify' : undefined;
  } catch {
    return undefined;
  }
}

/** The run id in a job's extra_vars (AWX returns them as JSON text). */
function runIdOf(extraVars: string | undefined): string | undefined {
  if (!extraVars) return undefined;
  try {
    const vars = JSON.parse(extraVars) as { unicop?: { run_id?: unknown } };
    return typeof vars.unicop?.run_id === 'string' ? vars.unicop.run_id : undefined;
  } catch {
    return undefined;
  }
}
