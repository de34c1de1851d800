/** Counts and times the HTTP requests the bench process makes during a pass, by service and path. */
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';

/**
 * Counts and times every HTTP request this process makes while installed (the reconciler's calls to
 * NetBox and to the double, and the bench's own), by method and path with ids replaced by `:id`.
 * Both HTTP stacks are seen: `fetch` (the AWX client, openapi-fetch) by wrapping it, and
 * `node:http` (axios: the NetBox and plugin clients) through Node's `http.client.*` diagnostics
 * channels — the request's start to its response.
 */
export class HttpTally {
  readonly calls = new Map<string, { count: number; totalMs: number; maxMs: number }>();
  private original: typeof fetch | undefined;
  private readonly started = new WeakMap<ClientRequest, number>();
  private readonly onStart = (message: unknown) => {
    const { request } = message as { request: ClientRequest };
    this.started.set(request, performance.now());
  };
  private readonly onFinish = (message: unknown) => {
    const { request } = message as { request: ClientRequest; response: IncomingMessage };
    const at = this.started.get(request);
    if (at === undefined) return;
    this.started.delete(request);
    const url = `${request.protocol}//${String(request.getHeader('host') ?? request.host)}${request.path}`;
    this.record(`${request.method} ${this.label(url)}`, performance.now() - at);
  };

  constructor(private readonly services: { name: string; url: string }[]) {}

  install(): void {
    diagnostics.subscribe('http.client.request.start', this.onStart);
    diagnostics.subscribe('http.client.response.finish', this.onFinish);
    const original = globalThis.fetch;
    this.original = original;
    globalThis.fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      const started = performance.now();
      try {
        return await original(input, init);
      } finally {
        this.record(`${method} ${this.label(url)}`, performance.now() - started);
      }
    };
  }

  uninstall(): void {
    diagnostics.unsubscribe('http.client.request.start', this.onStart);
    diagnostics.unsubscribe('http.client.response.finish', this.onFinish);
    if (this.original) globalThis.fetch = this.original;
  }

  private label(url: string): string {
    const service = this.services.find((s) => url.startsWith(s.url));
    const path = new URL(url).pathname
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, ':id')
      .replace(/\/\d+(?=\/|$)/g, '/:id');
    return `${service?.name ?? 'other'} ${path}`;
  }

  private record(key: string, ms: number): void {
    const entry = this.calls.get(key) ?? { count: 0, totalMs: 0, maxMs: 0 };
    entry.count += 1;
    entry.totalMs += ms;
    entry.maxMs = Math.max(entry.maxMs, ms);
    this.calls.set(key, entry);
  }
}
