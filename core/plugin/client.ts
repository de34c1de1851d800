/**
 * Client of the `unicop` NetBox plugin API (docs/plugin-api.md). Failures are classified once:
 * NetBox unreachable, timing out or answering 5xx is `NetboxUnavailableError` (retriable: the
 * caller pauses and retries); a 4xx is `PluginRequestError` (our request was wrong: not retried).
 * The token is sent, never logged or put in an error message.
 */
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
  override readonly name = 'PluginRequestError';
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
