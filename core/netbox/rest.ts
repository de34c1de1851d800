/**
 * A small client of NetBox's own REST API (`/api/...`), for what UNICOP's tools and tests do there:
 * the demo's objects and event rule, test fixtures, benchmark data. The workers talk to NetBox only
 * through the plugin API (core/plugin/client.ts). The token is sent, never logged or put in an error.
 */
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

export type NetboxMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export type NetboxRest = <T = Record<string, unknown>>(
  method: NetboxMethod,
  path: string,
  body?: unknown,
) => Promise<T>;

/** A caller bound to one NetBox: `nb('PATCH', '/api/dcim/sites/3/', {...})` → the parsed answer. */
export function netboxRest(baseUrl: string, token: string, timeoutMs = 30_000): NetboxRest {
  return async <T>(method: NetboxMethod, path: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${baseUrl.replace(/\/+$/, '')}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: 'application/json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (!response.ok) throw new NetboxRequestError(method, path, response.status, text);
    return (text ? JSON.parse(text) : {}) as T;
  };
}
