/**
 * The one HTTP client UNICOP uses for NetBox — its core REST API (core/netbox/rest.ts) and the
 * `unicop` plugin API (core/plugin/client.ts): axios, one instance per base URL, a keep-alive
 * agent, a timeout per request, the Bearer token header (decision 0012).
 *
 * The token is read for every request (a value, or a function giving the current one: a `vault:`
 * token replaced in Vault is used from its next re-read on, without a restart). An answer 401 or
 * 403 is offered to `onUnauthorized` (the process's Vault secrets read the token again at once):
 * when it reports a new value, the request is sent once more with it — NetBox refused it at the
 * door, so nothing was applied (decision 0056).
 *
 * Connections: one keep-alive pool per process, bounded (`UNICOP_NETBOX_MAX_SOCKETS`), whose idle
 * connections we close ourselves after `UNICOP_NETBOX_IDLE_SOCKET_MS` — below gunicorn's `keepalive`
 * (2 s, NetBox's contrib/gunicorn.py leaves gunicorn's default), so that a pooled connection is
 * almost never reused just as NetBox closes it (issue #14, observation 7). Node's http.Agent
 * `timeout` is that idle timeout: it is set on a socket when it goes back to the pool, the request's
 * own timeout while it is in use.
 *
 * Connection resets, retried once before they count (a resend with a refreshed token is a send of
 * its own, with its own retry): a request sent on a kept-alive connection NetBox had closed while
 * idle (any method: NetBox read nothing); and an idempotent request reset or hung up on in flight
 * (ECONNRESET, EPIPE, "socket hang up"): GET, and the writes whose repeat changes nothing — the
 * caller says so (`idempotent`), as the plugin client does for its fenced run writes without a
 * journal entry, lease renewals and `resolve/` (a read).
 * The limit of the first rule: "closed while idle" is told only by the connection having been reused
 * and reset (ECONNRESET) with no answer (`closedWhileIdle`). A request NetBox did read on a reused
 * connection and then lost it under (a gunicorn worker killed or timed out mid-request) ends the same
 * way, and is sent again whatever its method: a run create or a lease may then meet its own first
 * effect (duplicate run_id, lease busy) and fail where it had succeeded. The transport cannot tell
 * the two apart; test/core/netbox-http.test.ts holds only the idle close.
 *
 * The transport classifies only what it can know: NetBox unreachable, the connection reset, the
 * request timing out or NetBox's certificate not trusted (its cause a TlsVerificationError: the
 * handshake failed, nothing was sent; UNICOP_NETBOX_CA_FILE, decision 0056) is
 * `NetboxUnavailableError` (retriable). Every HTTP answer, 5xx included, is
 * returned to the caller with its status, which maps it to its own error classes. The token is sent,
 * never logged or put in an error: the axios error (whose config carries the headers) is never kept
 * as a cause, only its code and message.
 *
 * Requests are typed by the operation objects openapi-typescript generates (openapi/generated/):
 * `request(method, '/api/…/{id}/', {path, query, body})` accepts only the paths, methods, parameters
 * and bodies the committed OpenAPI document declares, and answers with the declared response body.
 */
import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosInstance, isAxiosError } from 'axios';
import { configDefaults } from '../config.js';
import { sendWithFreshToken } from '../secrets/token-resend.js';
import { TlsVerificationError, tlsVerificationCode } from '../tls/ca-bundle.js';
import { inClientSpan, tracer } from '../tracing.js';

const netboxTracer = tracer('netbox');

export class NetboxUnavailableError extends Error {
  override readonly name = 'NetboxUnavailableError';
  readonly retriable = true as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A token, or where to read the current one (a vault: reference's value, kept current). */
export type TokenSource = string | (() => string);

export interface NetboxHttpOptions {
  baseUrl: string;
  token: TokenSource;
  /**
   * Called when NetBox answers 401 or 403: true when the token has a new value since (read again
   * from Vault), and the request is then sent once more. Unset: the answer is the caller's.
   */
  onUnauthorized?: () => Promise<boolean>;
  /** Whole-request timeout (UNICOP_NETBOX_TIMEOUT_MS); a slow listing takes a few seconds. */
  timeoutMs?: number;
  /** Connections to NetBox open at once, at most (UNICOP_NETBOX_MAX_SOCKETS); more requests wait. */
  maxSockets?: number;
  /** An idle kept-alive connection is closed after this (UNICOP_NETBOX_IDLE_SOCKET_MS). */
  idleSocketMs?: number;
  /**
   * PEM CA bundle trusted for an https NetBox instead of the system's CAs (UNICOP_NETBOX_CA_FILE,
   * core/tls/ca-bundle.ts); unset: the system's. Verification is never switched off.
   */
  ca?: string;
}

/** An HTTP answer: the status and the parsed JSON body (null when empty, the text when not JSON). */
export interface NetboxAnswer {
  status: number;
  body: unknown;
}

// ---- types derived from the generated OpenAPI operations ----------------------------------------

type JsonContent<R> = R extends { content: { 'application/json': infer B } } ? B : undefined;
type SuccessStatus = 200 | 201 | 202 | 204;
/** The body of an operation's successful answer(s). */
export type SuccessBody<Op> = Op extends { responses: infer R }
  ? { [S in keyof R]: S extends SuccessStatus ? JsonContent<R[S]> : never }[keyof R]
  : never;
/** The JSON request body an operation takes (never when it takes none). */
export type RequestBody<Op> = Op extends { requestBody?: infer B }
  ? B extends { content: { 'application/json': infer J } }
    ? J
    : never
  : never;
type Params<Op, In extends 'path' | 'query'> = Op extends { parameters: infer P }
  ? P extends { [K in In]?: infer X }
    ? X
    : never
  : never;
/** The methods a path item declares (openapi-typescript writes `never` for undeclared ones). */
export type MethodsOf<Item> = {
  [M in HttpMethod]: M extends keyof Item ? ([Item[M]] extends [never] ? never : M) : never;
}[HttpMethod];
type Op<Paths, P extends keyof Paths, M extends HttpMethod> = M extends keyof Paths[P] ? Paths[P][M] : never;

type Init<O> = ([Params<O, 'path'>] extends [never | undefined]
  ? { path?: undefined }
  : { path: Params<O, 'path'> }) & {
  query?: Params<O, 'query'> | URLSearchParams;
  /** Whether sending it twice changes nothing (retried once on a reset in flight); GET always is. */
  idempotent?: boolean;
} & ([RequestBody<O>] extends [never] ? { body?: undefined } : { body: RequestBody<O> });

// ---- the transport -------------------------------------------------------------------------------

/**
 * The bounded pool of one process, per (max sockets, idle timeout, CA bundle): all NetBox clients
 * share it.
 */
interface Pool {
  maxSockets: number;
  idleSocketMs: number;
  ca: string | undefined;
}
const poolKey = (pool: Pool) => `${pool.maxSockets}/${pool.idleSocketMs}/${pool.ca ?? 'system'}`;
const agents = new Map<string, { http: http.Agent; https: https.Agent }>();
const instances = new Map<string, AxiosInstance>();

function agentsFor(pool: Pool): { http: http.Agent; https: https.Agent } {
  const key = poolKey(pool);
  let pair = agents.get(key);
  if (!pair) {
    const options = {
      keepAlive: true,
      maxSockets: pool.maxSockets,
      maxFreeSockets: pool.maxSockets,
      timeout: pool.idleSocketMs,
    };
    // `ca` replaces the system's CAs for this pool's TLS connections (Node's tls.createSecureContext).
    const trust = pool.ca === undefined ? {} : { ca: pool.ca };
    pair = { http: new http.Agent(options), https: new https.Agent({ ...options, ...trust }) };
    agents.set(key, pair);
  }
  return pair;
}

function instanceFor(baseUrl: string, timeoutMs: number, pool: Pool): AxiosInstance {
  const key = `${baseUrl}\u0000${timeoutMs}\u0000${poolKey(pool)}`;
  let instance = instances.get(key);
  if (!instance) {
    const agent = agentsFor(pool);
    instance = axios.create({
      baseURL: baseUrl,
      timeout: timeoutMs,
      httpAgent: agent.http,
      httpsAgent: agent.https,
      // The Authorization header is set per request (sendOnce): the token may change.
      headers: { Accept: 'application/json' },
      // Every status is an answer; the callers map statuses to their error classes.
      validateStatus: () => true,
      // Bodies are parsed below: a non-JSON body (a proxy's HTML 502 page) must not throw.
      responseType: 'text',
      transformResponse: (data: unknown) => data,
      maxRedirects: 0,
      // Repeated query parameters as Django reads them: state=a&state=b (axios would write state[]=a).
      paramsSerializer: { indexes: null },
    });
    instances.set(key, instance);
  }
  return instance;
}

function parseBody(text: unknown): unknown {
  if (typeof text !== 'string' || text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 300);
  }
}

/** Why a request got no answer, without anything from its config (which holds the token). */
function transportFailure(error: unknown): { message: string; cause: Error } {
  const tls = tlsVerificationCode(error);
  if (tls !== undefined) {
    const cause = new TlsVerificationError('NetBox', tls, 'UNICOP_NETBOX_CA_FILE');
    return { message: cause.message, cause };
  }
  if (isAxiosError(error)) {
    const timedOut =
      error.code === 'ECONNABORTED' || error.code === 'ETIMEDOUT' || error.name === 'CanceledError';
    const cause = Object.assign(new Error(error.message), { code: error.code });
    return { message: timedOut ? 'timed out' : `connection failed (${error.code ?? 'no code'})`, cause };
  }
  return { message: 'connection failed', cause: new Error(String((error as Error)?.message ?? error)) };
}

/**
 * Whether the request went out on a kept-alive connection that NetBox had already closed while it
 * sat idle (gunicorn closes idle connections after its `keepalive` seconds, and a worker reaching
 * `max_requests` closes its own): the reset comes before NetBox read anything, so sending it once
 * more on a new connection cannot apply it twice. Node documents this retry (`request.reusedSocket`).
 */
function closedWhileIdle(error: unknown): boolean {
  if (!isAxiosError(error) || error.response !== undefined || error.code !== 'ECONNRESET') return false;
  return (error.request as { reusedSocket?: boolean } | undefined)?.reusedSocket === true;
}

/**
 * Whether the connection broke under the request with no answer: reset, written to after NetBox
 * closed it (EPIPE), or closed before an answer ("socket hang up", which Node codes ECONNRESET).
 * NetBox may have applied the request, so only an idempotent one is sent again.
 */
function resetInFlight(error: unknown): boolean {
  if (!isAxiosError(error) || error.response !== undefined) return false;
  return error.code === 'ECONNRESET' || error.code === 'EPIPE' || /socket hang up/i.test(error.message);
}

/** Maps an HTTP answer that is not a 2xx to the caller's error (never carrying the token). */
export type RefusalMapper = (answer: NetboxAnswer, method: HttpMethod, url: string) => Error;

export class NetboxHttp<Paths> {
  private readonly api: AxiosInstance;
  private readonly timeoutMs: number;
  private readonly token: () => string;
  private readonly onUnauthorized: (() => Promise<boolean>) | undefined;

  constructor(
    options: NetboxHttpOptions,
    private readonly refusal: RefusalMapper,
  ) {
    this.timeoutMs = options.timeoutMs ?? configDefaults.UNICOP_NETBOX_TIMEOUT_MS;
    const { token } = options;
    this.token = typeof token === 'function' ? token : () => token;
    this.onUnauthorized = options.onUnauthorized;
    this.api = instanceFor(options.baseUrl.replace(/\/+$/, ''), this.timeoutMs, {
      maxSockets: options.maxSockets ?? configDefaults.UNICOP_NETBOX_MAX_SOCKETS,
      idleSocketMs: options.idleSocketMs ?? configDefaults.UNICOP_NETBOX_IDLE_SOCKET_MS,
      ca: options.ca,
    });
  }

  /**
   * One request to an operation the OpenAPI document declares, its path parameters filled in: the
   * declared body of the 2xx answer, or the caller's error for any other status.
   */
  async call<P extends keyof Paths & string, M extends MethodsOf<Paths[P]>>(
    method: M,
    path: P,
    init: Init<Op<Paths, P, M>>,
  ): Promise<SuccessBody<Op<Paths, P, M>>> {
    const url = fillPath(path, init.path as Record<string, string | number> | undefined);
    const answer = await this.send(method, url, init.query, init.body, init.idempotent);
    if (answer.status < 200 || answer.status > 299) throw this.refusal(answer, method, url);
    // The one place a parsed body takes its declared type: the OpenAPI document is the contract,
    // kept equal to what NetBox serves by test/openapi/published.test.ts.
    return answer.body as SuccessBody<Op<Paths, P, M>>;
  }

  /**
   * A request to a concrete URL path (its query in `query` or already in the URL): `{status, body}`
   * for every HTTP status; NetboxUnavailableError when no answer came. `idempotent` defaults to the
   * method's own semantics (RFC 9110 §9.2.2: GET, PUT, DELETE).
   */
  async send(
    method: HttpMethod,
    url: string,
    query?: unknown,
    body?: unknown,
    idempotent = method === 'get' || method === 'put' || method === 'delete',
  ): Promise<NetboxAnswer> {
    // A child span of the change's trace when one is active (core/tracing.ts); the path, never the token.
    const verb = method.toUpperCase();
    const attributes = { 'http.request.method': verb, 'url.path': url.split('?')[0] as string };
    return inClientSpan(netboxTracer, `NetBox ${verb}`, attributes, async (span) => {
      // A token refused and replaced gets a send of its own, with its own connection-reset retry.
      const answer = await sendWithFreshToken(
        { token: this.token, onUnauthorized: this.onUnauthorized },
        (token) => this.sendOnce(method, url, query, body, idempotent, token),
      );
      span.setAttribute('http.response.status_code', answer.status);
      return answer;
    });
  }

  /** One send with this token; a connection reset before any answer retried once (see the header). */
  private async sendOnce(
    method: HttpMethod,
    url: string,
    query: unknown,
    body: unknown,
    idempotent: boolean,
    token: string,
  ): Promise<NetboxAnswer> {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.api.request<string>({
          method,
          url,
          ...(query === undefined ? {} : { params: query }),
          headers: {
            // No token (the bridge's readiness ping): no Authorization header at all.
            ...(token ? { Authorization: `Bearer ${token}` } : {}),
            ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          },
          ...(body === undefined ? {} : { data: body }),
          // The axios timeout bounds each wait on the socket; the signal bounds the whole request.
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        return { status: response.status, body: parseBody(response.data) };
      } catch (error) {
        if (attempt === 1 && (closedWhileIdle(error) || (idempotent && resetInFlight(error)))) continue;
        const failure = transportFailure(error);
        throw new NetboxUnavailableError(`NetBox ${failure.message} (${method.toUpperCase()} ${url})`, {
          cause: failure.cause,
        });
      }
    }
  }
}

function fillPath(template: string, params: Record<string, string | number> | undefined): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined) throw new Error(`path parameter ${name} missing for ${template}`);
    return encodeURIComponent(String(value));
  });
}
