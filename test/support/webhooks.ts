/** NetBox webhook bodies as NetBox 4.4–4.7 send them, and signing them as NetBox does. */
import { createHmac, randomUUID } from 'node:crypto';

let nextId = Math.floor(Math.random() * 1e6) + 1e6;

/** A 4.7-style body (object_type, request {id, user, method, path}). */
export function netbox47Body(overrides: Record<string, unknown> = {}) {
  const id = nextId++;
  const now = new Date().toISOString();
  const site = { id, name: `site-${id}`, slug: `site-${id}`, last_updated: now };
  return {
    event: 'updated',
    timestamp: now,
    object_type: 'dcim.site',
    data: site,
    snapshots: { prechange: { ...site, description: '' }, postchange: { ...site, description: 'x' } },
    request: { id: randomUUID(), user: 'alice', method: 'PATCH', path: `/api/dcim/sites/${id}/` },
    ...overrides,
  };
}

/** A 4.4-style body (model, username, request_id; creation so prechange is null). */
export function netbox44Body() {
  const id = nextId++;
  const now = new Date().toISOString();
  const site = { id, name: `site-${id}`, slug: `site-${id}`, last_updated: now };
  return {
    event: 'created',
    timestamp: now,
    model: 'dcim.site',
    username: 'bob',
    request_id: randomUUID(),
    data: site,
    snapshots: { prechange: null, postchange: site },
  };
}

export function sign(raw: string, secret: string): string {
  return createHmac('sha512', secret).update(raw).digest('hex');
}

export async function postWebhook(
  url: string,
  body: unknown,
  secret: string | null,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(`${url}/webhooks/netbox`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(secret === null ? {} : { 'X-Hook-Signature': sign(raw, secret) }),
      ...headers,
    },
    body: raw,
  });
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    headers: response.headers,
  };
}
