/**
 * A minimal NetBox REST caller for tests (the product's typed client arrives with openapi/netbox.yaml).
 * Errors carry status and body but never the token.
 */
import { stack } from './stack.js';

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

export async function netbox<T = Record<string, unknown>>(
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  const response = await fetch(`${stack.netboxUrl()}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${stack.netboxToken()}`,
      Accept: 'application/json',
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new NetboxRequestError(method, path, response.status, text);
  return (text ? JSON.parse(text) : {}) as T;
}
