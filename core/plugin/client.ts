/**
 * Client of the `unicop` NetBox plugin API (docs/plugin-api.md). Failures are classified once:
 * NetBox unreachable, timing out or answering 5xx is `NetboxUnavailableError` (retriable: the
 * caller pauses and retries); a 4xx is `PluginRequestError` (our request was wrong: not retried).
 * The token is sent, never logged or put in an error message.
 */
import type { runStates } from '../events/catalogue.js';

export interface ChangeRef {
  object_type: string;
  object_id: number;
  event: 'created' | 'updated' | 'deleted';
  data: Record<string, unknown> | null;
  prechange: Record<string, unknown> | null;
  postchange: Record<string, unknown> | null;
}

/** A root as the plugin lists it (docs/plugin-api.md); fields beyond these are passed through. */
export interface PluginRoot {
  id: number;
  key: string;
  kind: string;
  frozen: boolean;
  frozen_reason?: string | null;
  status?: string;
  current_hash?: string | null;
  last_reconciled_hash?: string | null;
  [field: string]: unknown;
}

export class NetboxUnavailableError extends Error {
  override readonly name = 'NetboxUnavailableError';
  readonly retriable = true as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class PluginRequestError extends Error {
  override readonly name: string = 'PluginRequestError';
  readonly retriable = false;
  constructor(
    readonly status: number,
    readonly path: string,
    body: unknown,
  ) {
    super(`plugin API ${path} answered ${status}: ${JSON.stringify(body).slice(0, 300)}`);
    this.body = typeof body === 'string' ? body.slice(0, 300) : body;
  }
  readonly body: unknown;
}

/**
 * A 409 from the plugin: a live lease of another holder, a frozen root, or a write refused by the
 * fence (a token lower — or higher — than the highest issued). Carries the plugin's body fields.
 */
export class PluginConflictError extends PluginRequestError {
  override readonly name: string = 'PluginConflictError';
  readonly detail: string;
  readonly holder: string | null;
  readonly expiresAt: string | null;
  readonly frozen: boolean;
  constructor(path: string, body: unknown) {
    super(409, path, body);
    const fields = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    this.detail = typeof fields.detail === 'string' ? fields.detail : 'conflict';
    this.holder = typeof fields.holder === 'string' && fields.holder ? fields.holder : null;
    this.expiresAt = typeof fields.expires_at === 'string' ? fields.expires_at : null;
    this.frozen = fields.frozen === true;
  }
}

/** A root's lease as the plugin issued it. */
export interface RootLease {
  token: number;
  holder: string;
  expires_at: string;
}

export interface RootSnapshot {
  root: string;
  hash: string;
  snapshot: unknown;
}

export type RunState = (typeof runStates)[number];

/** A run record as the plugin stores it (docs/plugin-api.md, Runs). */
export interface PluginRun {
  run_id: string;
  root: unknown;
  snapshot_hash: string;
  fencing_token: number;
  cause: string;
  state: RunState;
  awx_job_type: '' | 'job' | 'workflow';
  awx_job_id: number | null;
  awx_job_url: string;
  started: string;
  finished: string | null;
  outcome_class: string;
  summary: string;
}

export interface RunLogLine {
  ts: string;
  level: 'debug' | 'info' | 'warning' | 'error';
  message: string;
  meta?: Record<string, unknown>;
}

/** The fields a run write may carry; every write carries the fencing token. */
export interface RunWrite {
  fencing_token: number;
  state?: RunState;
  snapshot_hash?: string;
  awx_job_type?: 'job' | 'workflow';
  awx_job_id?: number;
  awx_job_url?: string;
  outcome_class?: string;
  summary?: string;
  log_lines?: RunLogLine[];
  /** A journal entry on the root's anchor object, written in the same fenced transaction. */
  journal?: { kind: 'info' | 'success' | 'warning' | 'danger'; comments: string };
}

export interface PluginClientOptions {
  baseUrl: string;
  token: string;
  timeoutMs?: number;
}

export class PluginClient {
  private readonly timeoutMs: number;
  constructor(private readonly options: PluginClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Root keys touched by each change, in the order given (at most 500 per call). */
  async resolve(changes: ChangeRef[]): Promise<string[][]> {
    const out: string[][] = [];
    for (let i = 0; i < changes.length; i += 500) {
      const body = await this.request<{ results: { root_keys: string[] }[] }>('POST', 'resolve/', {
        changes: changes.slice(i, i + 500),
      });
      out.push(...body.results.map((r) => r.root_keys));
    }
    return out;
  }

  /** The root with this key, or null when NetBox has none. */
  async findRoot(key: string): Promise<PluginRoot | null> {
    const page = await this.request<{ results: PluginRoot[] }>(
      'GET',
      `roots/?key=${encodeURIComponent(key)}`,
    );
    return page.results.find((r) => r.key === key) ?? null;
  }

  async setFrozen(rootId: number, frozen: boolean, reason: string): Promise<PluginRoot> {
    return this.request<PluginRoot>('POST', `roots/${rootId}/${frozen ? 'freeze' : 'unfreeze'}/`, { reason });
  }

  /** One page of the bulk listing (keyset-paginated by id). */
  async listRoots(
    options: { cursor?: string | null; limit?: number; kind?: string } = {},
  ): Promise<{ results: PluginRoot[]; next_cursor: string | null }> {
    const query = new URLSearchParams({ limit: String(options.limit ?? 500) });
    if (options.cursor) query.set('cursor', options.cursor);
    if (options.kind) query.set('kind', options.kind);
    return this.request('GET', `roots/?${query}`);
  }

  /** Every root, page by page. */
  async *allRoots(pageSize = 500): AsyncGenerator<PluginRoot> {
    let cursor: string | null = null;
    do {
      const page = await this.listRoots({ cursor, limit: pageSize });
      yield* page.results;
      cursor = page.next_cursor;
    } while (cursor);
  }

  snapshot(rootId: number): Promise<RootSnapshot> {
    return this.request('GET', `roots/${rootId}/snapshot/`);
  }

  /** Takes the root's lease; a PluginConflictError while another holder's lease is live or the root is frozen. */
  acquireLease(rootId: number, holder: string, ttlSeconds: number): Promise<RootLease> {
    return this.request('POST', `roots/${rootId}/lease/`, { holder, ttl_seconds: ttlSeconds });
  }

  renewLease(rootId: number, token: number, ttlSeconds: number): Promise<RootLease> {
    return this.request('POST', `roots/${rootId}/lease/renew/`, { token, ttl_seconds: ttlSeconds });
  }

  async releaseLease(rootId: number, token: number): Promise<void> {
    await this.request('POST', `roots/${rootId}/lease/release/`, { token });
  }

  createRun(
    run: RunWrite & { run_id: string; root: string; snapshot_hash: string; cause: string },
  ): Promise<PluginRun> {
    return this.request('POST', 'runs/', run);
  }

  /** A fenced write to a run; PluginConflictError when the fence refuses it. */
  updateRun(runId: string, write: RunWrite): Promise<PluginRun> {
    return this.request('PATCH', `runs/${encodeURIComponent(runId)}/`, write);
  }

  /** The runs of one root, newest first, optionally only those in the given states. */
  async listRuns(rootKey: string, states: readonly RunState[] = []): Promise<PluginRun[]> {
    const query = new URLSearchParams({ root: rootKey, limit: '50' });
    for (const state of states) query.append('state', state);
    const page = await this.request<{ results: PluginRun[] }>('GET', `runs/?${query}`);
    return page.results;
  }

  async request<T>(method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown): Promise<T> {
    const url = `${this.options.baseUrl}/api/plugins/unicop/${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          Authorization: `Bearer ${this.options.token}`,
          Accept: 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new NetboxUnavailableError(`NetBox unreachable (${method} ${path})`, { cause: error });
    }
    const text = await response.text();
    const parsed: unknown = text ? safeJson(text) : null;
    if (response.status >= 500) {
      throw new NetboxUnavailableError(`NetBox answered ${response.status} (${method} ${path})`);
    }
    if (response.status === 409) throw new PluginConflictError(path, parsed);
    if (!response.ok) throw new PluginRequestError(response.status, path, parsed);
    return parsed as T;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 300);
  }
}
