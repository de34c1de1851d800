/**
 * Smoke: the stack's NetBox is real. A Site is created through REST with the v2 token and read
 * back; an edit triggers a real webhook (event rule + webhook made through REST, delivered by
 * NetBox's rqworker) whose X-Hook-Signature is the HMAC-SHA512 of the raw body.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { netbox } from '../support/netbox.js';
import { stack, uniqueName } from '../support/stack.js';

type Delivery = { headers: IncomingHttpHeaders; raw: Buffer };

/** An HTTP listener on 127.0.0.1 that records every request and answers 204. */
async function startListener() {
  const deliveries: Delivery[] = [];
  const waiters: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, raw: Buffer.concat(chunks) });
      res.writeHead(204).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const next = (match: (d: Delivery) => boolean, timeoutMs: number) =>
    new Promise<Delivery>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching webhook within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const check = () => {
        const found = deliveries.find(match);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else waiters.push(check);
      };
      check();
    });
  return { url: `http://127.0.0.1:${port}/hook`, next, close: () => server.close() };
}

function signatureValid(raw: Buffer, secret: string, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const expected = Buffer.from(createHmac('sha512', secret).update(raw).digest('hex'));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe('netbox', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
  });

  it('answers /api/status/ with NetBox 4.7 and the unicop plugin', async () => {
    const status = await netbox<{ 'netbox-version': string; plugins: Record<string, string> }>(
      'GET',
      '/api/status/',
    );
    expect(status['netbox-version']).toMatch(/^4\.7\./);
    expect(Object.keys(status.plugins)).toContain('unicop');
  });

  it('creates a Site with the v2 token and reads it back', async () => {
    expect(stack.netboxToken()).toMatch(/^nbt_/);
    const name = uniqueName('smoke-site');
    const created = await netbox<{ id: number }>('POST', '/api/dcim/sites/', { name, slug: name });
    cleanup.push(() => netbox('DELETE', `/api/dcim/sites/${created.id}/`));
    const read = await netbox<{ name: string; slug: string }>('GET', `/api/dcim/sites/${created.id}/`);
    expect(read).toMatchObject({ name, slug: name });
  });

  it('delivers a signed webhook for an edit, via an event rule made through REST', async () => {
    const listener = await startListener();
    cleanup.push(async () => listener.close());
    const secret = randomBytes(24).toString('hex');
    const tag = uniqueName('smoke-hook');
    const webhook = await netbox<{ id: number }>('POST', '/api/extras/webhooks/', {
      name: tag,
      payload_url: listener.url,
      http_method: 'POST',
      http_content_type: 'application/json',
      secret,
    });
    cleanup.push(() => netbox('DELETE', `/api/extras/webhooks/${webhook.id}/`));
    const rule = await netbox<{ id: number }>('POST', '/api/extras/event-rules/', {
      name: tag,
      object_types: ['dcim.site'],
      event_types: ['object_created', 'object_updated'],
      action_type: 'webhook',
      action_object_type: 'extras.webhook',
      action_object_id: webhook.id,
    });
    cleanup.push(() => netbox('DELETE', `/api/extras/event-rules/${rule.id}/`));

    const site = await netbox<{ id: number }>('POST', '/api/dcim/sites/', { name: tag, slug: tag });
    cleanup.push(() => netbox('DELETE', `/api/dcim/sites/${site.id}/`));
    await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description: 'edited by smoke test' });

    const delivery = await listener.next((d) => {
      const body = JSON.parse(d.raw.toString('utf8'));
      return body.event === 'updated' && body.data?.id === site.id;
    }, 120_000); // a cap: NetBox's RQ worker delivers when it gets to it on a loaded machine
    expect(signatureValid(delivery.raw, secret, delivery.headers['x-hook-signature'])).toBe(true);
    expect(signatureValid(delivery.raw, `${secret}x`, delivery.headers['x-hook-signature'])).toBe(false);
    const body = JSON.parse(delivery.raw.toString('utf8'));
    expect(body).toMatchObject({ event: 'updated', object_type: 'dcim.site' });
    expect(body.data.description).toBe('edited by smoke test');
    expect(body.snapshots.postchange.description).toBe('edited by smoke test');
    expect(body.request).toMatchObject({ method: 'PATCH' });
  });
});
