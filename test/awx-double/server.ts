/**
 * The AWX double's HTTP face (node:http, no framework): the /api/v2 subset in openapi/awx.yaml with
 * AWX's status codes, auth (bearer token or Basic, 401 otherwise), paging ({count, next, previous,
 * results}) and the filters UNICOP uses; plus three double-only endpoints for tests and the demo:
 *   GET  /_double/jobs           every unified job with its status history (start/end times)
 *   GET  /_double/notifications  every notification delivery attempt
 *   POST /_double/faults         {lose_launch_answers: n, delay_launch_answer_ms: ms}: the next n
 *                                launches create their job and then drop the connection unanswered,
 *                                or answer only after the delay — a lost launch answer, for real.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DoubleConfig } from './config.js';
import {
  ApprovalNotPendingError,
  type ApprovalRecord,
  AwxEngine,
  type JobRecord,
  LaunchValidationError,
  NotCancelableError,
  type UnifiedJob,
  type WorkflowJobRecord,
} from './engine.js';
import {
  serializeApproval,
  serializeEvent,
  serializeJob,
  serializeWorkflowJob,
  serializeWorkflowNodes,
} from './serializers.js';

export interface AwxDoubleOptions {
  config: DoubleConfig;
  /** Where each job's private data directory (and ansible-runner's artifacts) goes. */
  stateDir: string;
  /** Directory holding ansible-runner (the stack's var/pyenv/bin). */
  ansibleBin: string;
  port?: number;
  host?: string;
  /** Milliseconds per unblocked status step (pending -> waiting -> running); 50 by default. */
  stepMs?: number;
  /** Jobs end successful at once without running a playbook (benchmarks). */
  instant?: boolean;
}

export interface AwxDouble {
  url: string;
  engine: AwxEngine;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(`HTTP ${status}`);
  }
}

const notFound = () => new HttpError(404, { detail: 'Not found.' });
const ansiEscape = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
  res.writeHead(status, { 'content-type': type, ...headers }).end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new HttpError(400, { detail: 'JSON parse error - request body is not a JSON object' });
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Who is calling, or a 401 as AWX answers it. */
function authenticate(req: IncomingMessage, config: DoubleConfig): string {
  const header = req.headers.authorization ?? '';
  const [scheme, value = ''] = header.split(' ', 2);
  if (scheme?.toLowerCase() === 'bearer' && config.auth.tokens.some((t) => sameSecret(t, value))) {
    return 'token-user';
  }
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (config.auth.users.some((u) => u.username === user && sameSecret(u.password, password))) return user;
  }
  throw new HttpError(401, {
    detail: header
      ? 'Authentication credentials were not valid.'
      : 'Authentication credentials were not provided.',
  });
}

/** AWX's list filters that UNICOP uses, then ordering and paging. */
function list<T extends UnifiedJob>(url: URL, items: T[], serialize: (item: T) => unknown) {
  const q = url.searchParams;
  let selected = items;
  const status = q.get('status');
  if (status) selected = selected.filter((j) => j.status === status);
  const statusIn = q.get('status__in');
  if (statusIn) selected = selected.filter((j) => statusIn.split(',').includes(j.status));
  const since = q.get('created__gte');
  if (since) selected = selected.filter((j) => Date.parse(j.created) >= Date.parse(since));
  const template = q.get('job_template') ?? q.get('workflow_job_template');
  if (template) {
    selected = selected.filter((j) => j.kind !== 'workflow_approval' && String(j.template.id) === template);
  }
  const order = q.get('order_by') ?? 'id';
  const desc = order.startsWith('-');
  const field = order.replace(/^-/, '') as 'id' | 'created';
  selected = [...selected].sort((a, b) => {
    const cmp = field === 'created' ? Date.parse(a.created) - Date.parse(b.created) : a.id - b.id;
    return desc ? -cmp : cmp;
  });
  return paginate(url, selected.map(serialize));
}

function paginate(url: URL, results: unknown[]) {
  // AWX's defaults: 25 per page, at most 200.
  const pageSize = Math.min(Math.max(Number(url.searchParams.get('page_size') ?? 25) || 25, 1), 200);
  const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1);
  const pages = Math.max(Math.ceil(results.length / pageSize), 1);
  if (page > pages) throw new HttpError(404, { detail: 'Invalid page.' });
  const link = (n: number) => {
    const next = new URL(url);
    next.searchParams.set('page', String(n));
    return `${next.pathname}${next.search}`;
  };
  return {
    count: results.length,
    next: page < pages ? link(page + 1) : null,
    previous: page > 1 ? link(page - 1) : null,
    results: results.slice((page - 1) * pageSize, page * pageSize),
  };
}

export async function startAwxDouble(options: AwxDoubleOptions): Promise<AwxDouble> {
  const { config } = options;
  let publicUrl = '';
  const engine = new AwxEngine({
    config,
    stateDir: options.stateDir,
    ansibleBin: options.ansibleBin,
    publicUrl: () => publicUrl,
    ...(options.stepMs === undefined ? {} : { stepMs: options.stepMs }),
    ...(options.instant ? { instant: true } : {}),
  });
  const faults = { loseLaunchAnswers: 0, delayLaunchAnswerMs: 0 };
  const eventIds = new Map<string, number>();
  let nextEventId = 1;

  const find = <K extends UnifiedJob['kind']>(id: string | undefined, kind: K) => {
    const job = engine.jobs.get(Number(id));
    if (!job || job.kind !== kind) throw notFound();
    return job as Extract<UnifiedJob, { kind: K }>;
  };
  const all = <K extends UnifiedJob['kind']>(kind: K) =>
    [...engine.jobs.values()].filter((j): j is Extract<UnifiedJob, { kind: K }> => j.kind === kind);

  /** Answers a launch, unless a fault says to lose or delay the answer. */
  const answerLaunch = (req: IncomingMessage, res: ServerResponse, body: unknown, location: string) => {
    if (faults.loseLaunchAnswers > 0) {
      faults.loseLaunchAnswers--;
      req.socket.destroy();
      return;
    }
    const delay = faults.delayLaunchAnswerMs;
    faults.delayLaunchAnswerMs = 0;
    setTimeout(() => {
      if (!res.destroyed) send(res, 201, body, { location });
    }, delay);
  };

  const routes: [
    string,
    RegExp,
    (
      m: RegExpMatchArray,
      req: IncomingMessage,
      res: ServerResponse,
      url: URL,
      user: string,
    ) => Promise<void> | void,
  ][] = [
    [
      'POST',
      /^\/api\/v2\/job_templates\/(\d+)\/launch\/$/,
      async (m, req, res, _url, user) => {
        const template = config.job_templates.find((t) => String(t.id) === m[1]);
        if (!template) throw notFound();
        const { job, ignoredFields } = engine.launchJobTemplate(template, await readJson(req), user);
        const body = { job: job.id, ignored_fields: ignoredFields, ...serializeJob(job) };
        answerLaunch(req, res, body, `/api/v2/jobs/${job.id}/`);
      },
    ],
    [
      'POST',
      /^\/api\/v2\/workflow_job_templates\/(\d+)\/launch\/$/,
      async (m, req, res, _url, user) => {
        const template = config.workflow_job_templates.find((t) => String(t.id) === m[1]);
        if (!template) throw notFound();
        const { workflowJob, ignoredFields } = engine.launchWorkflowJobTemplate(
          template,
          await readJson(req),
          user,
        );
        const body = {
          workflow_job: workflowJob.id,
          ignored_fields: ignoredFields,
          ...serializeWorkflowJob(workflowJob),
        };
        answerLaunch(req, res, body, `/api/v2/workflow_jobs/${workflowJob.id}/`);
      },
    ],
    [
      'GET',
      /^\/api\/v2\/jobs\/$/,
      (_m, _req, res, url) => send(res, 200, list(url, all('job'), serializeJob)),
    ],
    ['GET', /^\/api\/v2\/jobs\/(\d+)\/$/, (m, _req, res) => send(res, 200, serializeJob(find(m[1], 'job')))],
    [
      'GET',
      /^\/api\/v2\/jobs\/(\d+)\/cancel\/$/,
      (m, _req, res) => {
        send(res, 200, { can_cancel: engine.canCancel(find(m[1], 'job')) });
      },
    ],
    ['POST', /^\/api\/v2\/jobs\/(\d+)\/cancel\/$/, (m, _req, res) => cancel(res, find(m[1], 'job'))],
    [
      'GET',
      /^\/api\/v2\/jobs\/(\d+)\/stdout\/$/,
      async (m, _req, res, url) => {
        const job = find(m[1], 'job');
        const raw = (await job.run?.stdout()) ?? '';
        const format = url.searchParams.get('format') ?? 'json';
        const text = format.startsWith('ansi') ? raw : raw.replace(ansiEscape, '');
        if (format === 'json') {
          const lines = text ? text.split('\n').length - (text.endsWith('\n') ? 1 : 0) : 0;
          send(res, 200, { range: { start: 0, end: lines, absolute_end: lines }, content: text });
        } else if (['txt', 'ansi', 'txt_download', 'ansi_download'].includes(format)) {
          send(res, 200, text);
        } else {
          throw new HttpError(404, { detail: `Not found: format ${format} is not offered by the double.` });
        }
      },
    ],
    [
      'GET',
      /^\/api\/v2\/jobs\/(\d+)\/job_events\/$/,
      async (m, _req, res, url) => {
        const job = find(m[1], 'job');
        const events = (await job.run?.events()) ?? [];
        const serialized = events.map((e) => {
          const key = `${job.id}:${e.uuid}`;
          if (!eventIds.has(key)) eventIds.set(key, nextEventId++);
          return serializeEvent(job.id, e, eventIds.get(key) as number);
        });
        if (url.searchParams.get('order_by') === '-counter') serialized.reverse();
        send(res, 200, paginate(url, serialized));
      },
    ],
    [
      'GET',
      /^\/api\/v2\/workflow_jobs\/$/,
      (_m, _req, res, url) => {
        send(res, 200, list(url, all('workflow_job'), serializeWorkflowJob));
      },
    ],
    [
      'GET',
      /^\/api\/v2\/workflow_jobs\/(\d+)\/$/,
      (m, _req, res) => {
        send(res, 200, serializeWorkflowJob(find(m[1], 'workflow_job')));
      },
    ],
    [
      'GET',
      /^\/api\/v2\/workflow_jobs\/(\d+)\/cancel\/$/,
      (m, _req, res) => {
        send(res, 200, { can_cancel: engine.canCancel(find(m[1], 'workflow_job')) });
      },
    ],
    [
      'POST',
      /^\/api\/v2\/workflow_jobs\/(\d+)\/cancel\/$/,
      (m, _req, res) => cancel(res, find(m[1], 'workflow_job')),
    ],
    [
      'GET',
      /^\/api\/v2\/workflow_jobs\/(\d+)\/workflow_nodes\/$/,
      (m, _req, res, url) => {
        send(res, 200, paginate(url, serializeWorkflowNodes(find(m[1], 'workflow_job'), engine)));
      },
    ],
    [
      'GET',
      /^\/api\/v2\/workflow_approvals\/$/,
      (_m, _req, res, url) => {
        send(
          res,
          200,
          list(url, all('workflow_approval'), (a) => serializeApproval(a, engine)),
        );
      },
    ],
    [
      'GET',
      /^\/api\/v2\/workflow_approvals\/(\d+)\/$/,
      (m, _req, res) => {
        send(res, 200, serializeApproval(find(m[1], 'workflow_approval'), engine));
      },
    ],
    [
      'POST',
      /^\/api\/v2\/workflow_approvals\/(\d+)\/(approve|deny)\/$/,
      (m, _req, res) => {
        const approval: ApprovalRecord = find(m[1], 'workflow_approval');
        try {
          engine.decide(approval, m[2] === 'approve' ? 'approve' : 'deny');
        } catch (err) {
          if (err instanceof ApprovalNotPendingError) {
            throw new HttpError(400, { error: 'This workflow step has already been approved or denied.' });
          }
          throw err;
        }
        send(res, 204);
      },
    ],
  ];

  const cancel = (res: ServerResponse, job: JobRecord | WorkflowJobRecord) => {
    try {
      engine.cancel(job);
    } catch (err) {
      if (err instanceof NotCancelableError)
        throw new HttpError(405, { detail: 'Method "POST" not allowed.' });
      throw err;
    }
    send(res, 202);
  };

  const doubleRoutes = (req: IncomingMessage, res: ServerResponse, url: URL): boolean => {
    if (req.method === 'GET' && url.pathname === '/_double/jobs') {
      const records = [...engine.jobs.values()].map((j) => ({
        id: j.id,
        type: j.kind,
        name: j.name,
        template: j.kind === 'workflow_approval' ? null : j.template.id,
        workflow_job: j.kind === 'workflow_job' ? null : j.workflowJobId,
        root:
          j.kind === 'workflow_approval' ? null : ((j.extraVars.unicop as { root?: string })?.root ?? null),
        run_id:
          j.kind === 'workflow_approval'
            ? null
            : ((j.extraVars.unicop as { run_id?: string })?.run_id ?? null),
        job_type: j.kind === 'job' ? j.jobType : null,
        status: j.status,
        created: j.created,
        started: j.started,
        finished: j.finished,
        status_history: j.statusHistory,
      }));
      send(res, 200, records);
      return true;
    }
    if (req.method === 'GET' && url.pathname === '/_double/notifications') {
      send(res, 200, engine.notifier.deliveries);
      return true;
    }
    return false;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://double.invalid');
    try {
      if (doubleRoutes(req, res, url)) return;
      if (req.method === 'POST' && url.pathname === '/_double/faults') {
        const body = await readJson(req);
        faults.loseLaunchAnswers = Number(body.lose_launch_answers ?? 0);
        faults.delayLaunchAnswerMs = Number(body.delay_launch_answer_ms ?? 0);
        send(res, 204);
        return;
      }
      if (url.pathname === '/api/v2/ping/') {
        send(res, 200, { ha: false, version: 'awx-double', active_node: 'localhost', instances: [] });
        return;
      }
      const matching = routes.filter(([, pattern]) => pattern.test(url.pathname));
      if (matching.length === 0) throw notFound();
      const user = authenticate(req, config);
      const route = matching.find(([method]) => method === req.method);
      if (!route) throw new HttpError(405, { detail: `Method "${req.method}" not allowed.` });
      const [, pattern, handler] = route;
      await handler(url.pathname.match(pattern) as RegExpMatchArray, req, res, url, user);
    } catch (err) {
      if (res.headersSent || res.destroyed) return;
      if (err instanceof HttpError) send(res, err.status, err.body);
      else if (err instanceof LaunchValidationError) send(res, 400, { extra_vars: [err.message] });
      else send(res, 500, { detail: 'A server error has occurred.' });
    }
  };

  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const address = server.address() as AddressInfo;
  publicUrl = `http://${options.host ?? '127.0.0.1'}:${address.port}`;
  return {
    url: publicUrl,
    engine,
    close: async () => {
      await engine.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
