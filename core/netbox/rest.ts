/**
 * A small client of NetBox's own REST API (`/api/...`), for what UNICOP's tools and tests do there:
 * the demo's objects and event rule, test fixtures, benchmark data. The workers talk to NetBox only
 * through the plugin API (core/plugin/client.ts). Both go through the one NetBox HTTP client
 * (core/netbox/http.ts: axios, keep-alive, timeouts, Bearer token); the token is sent, never logged
 * or put in an error.
 *
 * What is called is listed in openapi/netbox.yaml (the NetBox subset, `netboxSubset` in
 * scripts/export-openapi.ts) and openapi/plugin.yaml. `NetboxApi.call()` is typed by their
 * generated operations (paths, parameters, bodies, answers); the short form
 * `nb('PATCH', '/api/dcim/sites/3/', {...})` takes a concrete path and the answer type the caller
 * names, for fixtures and bulk requests (lists of objects) that the typed form does not describe.
 */
import type { paths as netboxPaths } from '../../openapi/generated/netbox.js';
import type { paths as pluginPaths } from '../../openapi/generated/plugin.js';
import { type HttpMethod, type NetboxAnswer, NetboxHttp, type TokenSource } from './http.js';

export { NetboxUnavailableError } from './http.js';

export class NetboxRequestError extends Error {
  override readonly name = 'NetboxRequestError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`NetBox ${method} ${path} -> ${status}: ${body.slice(0, 500)}`);
  }
}

/** The paths UNICOP calls in NetBox: the core API subset and the plugin's API. */
export type NetboxPaths = netboxPaths & pluginPaths;

export type NetboxMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export type NetboxRest = <T = Record<string, unknown>>(
  method: NetboxMethod,
  path: string,
  body?: unknown,
) => Promise<T>;

function refusal(answer: NetboxAnswer, method: HttpMethod, url: string): NetboxRequestError {
  const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? '');
  return new NetboxRequestError(method.toUpperCase(), url, answer.status, text);
}

/** NetBox's REST API typed by the generated operations: `call('get', '/api/dcim/sites/{id}/', {path: {id}})`. */
export class NetboxApi extends NetboxHttp<NetboxPaths> {
  /** `token`: a value, or a function giving the current one (a `vault:` token kept current). */
  constructor(baseUrl: string, token: TokenSource, timeoutMs = 30_000, ca?: string) {
    super({ baseUrl, token, timeoutMs, ...(ca === undefined ? {} : { ca }) }, refusal);
  }
}

/**
 * The short form, bound to one NetBox: `nb('PATCH', '/api/dcim/sites/3/', {...})` → the parsed
 * answer (`{}` for an empty one), typed as the caller says: for tools and tests only; the workers
 * use the typed plugin client.
 */
export function netboxRest(baseUrl: string, token: TokenSource, timeoutMs = 30_000, ca?: string): NetboxRest {
  const api = new NetboxApi(baseUrl, token, timeoutMs, ca);
  return async <T>(method: NetboxMethod, path: string, body?: unknown): Promise<T> => {
    const verb = method.toLowerCase() as HttpMethod;
    const answer = await api.send(verb, path, undefined, body);
    if (answer.status < 200 || answer.status > 299) throw refusal(answer, verb, path);
    return (answer.body ?? {}) as T;
  };
}
