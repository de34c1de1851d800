/**
 * One request to the admin API of a bridge under test, as a client sends it (JSON, a bearer token
 * or none), its answer checked against openapi/bridge.yaml for the operation `specPath` names.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { OpenApiDocument } from './openapi.js';

const spec = new OpenApiDocument(join(repoRoot, 'openapi', 'bridge.yaml'));

export async function adminCall(
  bridge: { url: string },
  method: string,
  path: string,
  specPath: string,
  token: string | null,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${bridge.url}${path}`, {
    method,
    headers: {
      'Content-Type': 'application/json',
      ...(token !== null ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  expect(spec.check(method, specPath, res.status, res.headers.get('content-type'), json)).toEqual([]);
  return { status: res.status, body: json };
}
