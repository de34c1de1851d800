/** Counts and times the HTTP requests the bench process makes during a pass, by service and path. */

/**
 * Counts and times every HTTP request this process makes while installed (the reconciler's calls to
 * NetBox and to the double, and the bench's own), by method and path with ids replaced by `:id`.
 */
export class HttpTally {
  readonly calls = new Map<string, { count: number; totalMs: number; maxMs: number }>();
  private original: typeof fetch | undefined;

  constructor(private readonly services: { name: string; url: string }[]) {}

  install(): void {
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
