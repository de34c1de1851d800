/**
 * The ingest load: distinct NetBox 4.7 webhook bodies (a site updated, with pre- and post-change
 * snapshots shaped like NetBox's), each signed as NetBox signs it: `X-Hook-Signature` is the hex
 * HMAC-SHA512 of the raw body.
 */
import { createHmac, randomUUID } from 'node:crypto';

export interface SignedDelivery {
  body: string;
  signature: string;
}

function site(id: number, now: string, description: string) {
  return {
    id,
    url: `http://netbox.example/api/dcim/sites/${id}/`,
    display: `bench-${id}`,
    name: `bench-${id}`,
    slug: `bench-${id}`,
    status: { value: 'active', label: 'Active' },
    region: null,
    group: null,
    tenant: null,
    facility: '',
    time_zone: null,
    description,
    physical_address: '',
    shipping_address: '',
    latitude: null,
    longitude: null,
    comments: '',
    tags: [],
    custom_fields: {},
    created: '2026-01-01T00:00:00.000000Z',
    last_updated: now,
  };
}

/** The n-th delivery: object id and request id differ per delivery, so none is a duplicate. */
export function signedDelivery(n: number, secret: string): SignedDelivery {
  const now = new Date().toISOString();
  const id = 5_000_000 + n;
  const body = JSON.stringify({
    event: 'updated',
    timestamp: now,
    object_type: 'dcim.site',
    data: site(id, now, 'after'),
    snapshots: { prechange: site(id, now, 'before'), postchange: site(id, now, 'after') },
    request: { id: randomUUID(), user: 'bench', method: 'PATCH', path: `/api/dcim/sites/${id}/` },
  });
  return { body, signature: createHmac('sha512', secret).update(body).digest('hex') };
}
