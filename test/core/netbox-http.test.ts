/**
 * The one NetBox HTTP client (core/netbox/http.ts) as a transport: connections are kept alive and
 * reused (a reused one NetBox had closed costs one resend, nothing more) from a bounded pool whose
 * idle connections the client closes first, a reset GET is sent once more, a request that gets no
 * answer ends at its timeout, and no failure carries the token —
 * neither in its message nor in its cause (what a logger would serialise). The plugin's own answers
 * (leases, runs, 409s) are tested against the real NetBox in test/workers/; here a plain node:http
 * server stands for a NetBox that accepts connections and answers slowly or not at all.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { configDefaults } from '../../core/config.js';
import { NetboxUnavailableError, PluginClient } from '../../core/plugin/client.js';

const token = 'nbt_secret-token-abcdef0123456789';
const servers: Server[] = [];

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** Everything a logger could print of an error: message, stack, own fields and its cause, deeply. */
function printed(error: unknown): string {
  const seen = new Set<unknown>();
  const walk = (value: unknown): unknown => {
    if (!value || typeof value !== 'object' || seen.has(value)) return value;
    seen.add(value);
    const out: Record<string, unknown> = {};
    for (const key of Object.getOwnPropertyNames(value))
      out[key] = walk((value as Record<string, unknown>)[key]);
    return out;
  };
  return JSON.stringify(walk(error));
}

describe('core/netbox/http.ts: the NetBox transport', () => {
  it('reuses one kept-alive connection for consecutive requests and sends the Bearer token', async () => {
    let connections = 0;
    const seen: string[] = [];
    const { url, server } = await listen((req, res) => {
      seen.push(String(req.headers.authorization));
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ results: [], next_cursor: null }));
    });
    server.on('connection', () => connections++);
    const plugin = new PluginClient({ baseUrl: url, token, timeoutMs: 5_000 });
    for (let i = 0; i < 3; i++) await plugin.listRoots({ limit: 10 });
    expect(seen).toEqual([`Bearer ${token}`, `Bearer ${token}`, `Bearer ${token}`]);
    expect(connections).toBe(1);
  });

  it('a kept-alive connection NetBox closed while it sat idle: the request goes once more on a new connection and gets its answer', async () => {
    // The second request on the first connection meets a closed socket (as when gunicorn's keepalive
    // runs out or its worker restarts just as the client reuses the connection): no answer, a reset.
    let connections = 0;
    let requests = 0;
    const { url, server } = await listen((req, res) => {
      requests++;
      if (requests === 2) {
        req.socket.destroy();
        return;
      }
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ results: [], next_cursor: null }));
    });
    server.on('connection', () => connections++);
    const plugin = new PluginClient({ baseUrl: url, token, timeoutMs: 5_000 });
    await plugin.listRoots({ limit: 10 });
    await expect(plugin.listRoots({ limit: 10 })).resolves.toMatchObject({ results: [] });
    expect(requests).toBe(3);
    expect(connections).toBe(2);
  });

  it('a reset on a fresh connection: a non-idempotent request (taking a lease) is not sent again, NetboxUnavailableError after one try', async () => {
    let requests = 0;
    const { url } = await listen((req) => {
      requests++;
      req.socket.destroy();
    });
    const plugin = new PluginClient({ baseUrl: url, token, timeoutMs: 5_000 });
    const error = await plugin.acquireLease(1, 'holder', 30).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetboxUnavailableError);
    expect((error as Error).message).toMatch(/ECONNRESET/);
    expect(requests).toBe(1);
  });

  it('a reset on a fresh connection: a GET is sent once more, and a second reset is the error', async () => {
    let requests = 0;
    const { url } = await listen((req) => {
      requests++;
      req.socket.destroy();
    });
    const plugin = new PluginClient({ baseUrl: url, token, timeoutMs: 5_000 });
    const error = await plugin.listRoots({ limit: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetboxUnavailableError);
    expect(requests).toBe(2);
  });

  it('an idle connection is closed by the client after the idle timeout (default below gunicorn keepalive 2 s); a slower answer still arrives', async () => {
    expect(configDefaults.UNICOP_NETBOX_IDLE_SOCKET_MS).toBeLessThan(2_000);
    let connections = 0;
    const { url, server } = await listen((req, res) => {
      // The request asking for 1 root answers after 3 idle timeouts: the idle timeout is not the
      // request's (Node's Agent timeout applies to the pooled socket, the request's own while in use).
      const delay = /limit=1$/.test(req.url ?? '') ? 900 : 0;
      setTimeout(() => {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ results: [], next_cursor: null }));
      }, delay);
    });
    server.on('connection', () => connections++);
    const plugin = new PluginClient({ baseUrl: url, token, timeoutMs: 5_000, idleSocketMs: 300 });
    await expect(plugin.listRoots({ limit: 1 })).resolves.toMatchObject({ results: [] });
    await plugin.listRoots({ limit: 10 });
    expect(connections).toBe(1);
    // Idle past the client's timeout: the client closed that connection, the next request opens one.
    await new Promise((resolve) => setTimeout(resolve, 700));
    await plugin.listRoots({ limit: 10 });
    expect(connections).toBe(2);
  });

  it('at most maxSockets connections at once: more concurrent requests wait for a free one', async () => {
    let open = 0;
    let most = 0;
    const { url } = await listen((_req, res) => {
      open++;
      most = Math.max(most, open);
      setTimeout(() => {
        open--;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ results: [], next_cursor: null }));
      }, 100);
    });
    const plugin = new PluginClient({ baseUrl: url, token, timeoutMs: 5_000, maxSockets: 2 });
    await Promise.all(Array.from({ length: 6 }, () => plugin.listRoots({ limit: 10 })));
    expect(most).toBe(2);
  });

  it('a NetBox that takes the request and never answers: NetboxUnavailableError at the timeout, no token', async () => {
    const { url } = await listen(() => undefined);
    const plugin = new PluginClient({ baseUrl: url, token, timeoutMs: 300 });
    const started = Date.now();
    const error = await plugin.snapshot(1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetboxUnavailableError);
    expect((error as NetboxUnavailableError).retriable).toBe(true);
    expect((error as Error).message).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(printed(error)).not.toContain(token);
  });

  it('NetBox unreachable: NetboxUnavailableError naming the refusal, the token in neither message nor cause', async () => {
    const plugin = new PluginClient({ baseUrl: 'http://127.0.0.1:9', token, timeoutMs: 2_000 });
    const error = await plugin.acquireLease(1, 'holder', 30).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetboxUnavailableError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    expect((error as Error).cause).toBeDefined();
    expect(printed(error)).not.toContain(token);
  });

  it('NetBox answering 5xx: NetboxUnavailableError with the status; the answer body never holds the token', async () => {
    const { url } = await listen((_req, res) => {
      res.statusCode = 503;
      res.end('<html>Service Unavailable</html>');
    });
    const plugin = new PluginClient({ baseUrl: url, token, timeoutMs: 2_000 });
    const error = await plugin.updateRun('r1', { fencing_token: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetboxUnavailableError);
    expect((error as Error).message).toBe('NetBox answered 503 (PATCH runs/r1/)');
    expect(printed(error)).not.toContain(token);
  });

  it('a token refused and replaced: the resend with the new token still gets its own retry when NetBox had closed the kept-alive connection while idle', async () => {
    // The first send (a lease, not idempotent) is refused 401 for its old token; while the client
    // re-reads its token the connection sits idle in the pool and NetBox closes it (as gunicorn's
    // keepalive does). The resend goes out on it before the client has seen the close — NetBox read
    // none of it — and is sent once more on a new connection. The two retries are independent. (A
    // reset after NetBox read the request would not be resent: only idempotent requests are.)
    const renewed = 'nbt_renewed-token-0123456789abcdef';
    let current = token;
    const read: string[] = [];
    const sockets: Socket[] = [];
    const { url, server } = await listen((req, res) => {
      read.push(String(req.headers.authorization));
      res.setHeader('Content-Type', 'application/json');
      if (read.length === 1) {
        res.statusCode = 401;
        res.end(JSON.stringify({ detail: 'Invalid token' }));
        return;
      }
      res.end(JSON.stringify({ token: 7 }));
    });
    server.on('connection', (socket) => sockets.push(socket));
    let sent = 0;
    const countSend = () => sent++;
    subscribe('http.client.request.start', countSend);
    try {
      const plugin = new PluginClient({
        baseUrl: url,
        token: () => current,
        timeoutMs: 5_000,
        onUnauthorized: async () => {
          // The 401's connection is back in the pool, idle; NetBox closes it now, and the resend is
          // written at once, before the client's event loop sees the close.
          await new Promise((resolve) => setTimeout(resolve, 50));
          expect(sockets).toHaveLength(1);
          sockets[0]?.destroy();
          current = renewed;
          return true;
        },
      });
      await expect(plugin.acquireLease(1, 'holder', 30)).resolves.toMatchObject({ token: 7 });
    } finally {
      unsubscribe('http.client.request.start', countSend);
    }
    expect(sent).toBe(3); // old token, the resend on the closed connection, the resend on a new one
    expect(read).toEqual([`Bearer ${token}`, `Bearer ${renewed}`]); // NetBox read the lease twice, not three times
    expect(sockets).toHaveLength(2);
  });
});
