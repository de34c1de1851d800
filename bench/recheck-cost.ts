/**
 * Benchmark: what fail-safe trigger (d) adds to each run (docs/decisions/0067) — one `GET
 * roots/{id}/hash/` just before the launch — against the real plugin. A site root with
 * BENCH_RECHECK_MEMBERS racks (default 50, each tagged) is made through NetBox's REST API; then
 * BENCH_RECHECK_CALLS (default 40) calls of the hash endpoint and as many of the snapshot endpoint (what
 * a run already reads with its lease) are timed in turn, one at a time. Prints the mean, p50 and p95 of
 * each, the answer sizes and the load average; deletes what it made.
 *
 *   npx tsx bench/recheck-cost.ts   (needs `scripts/stack up`)
 */
import { loadavg } from 'node:os';
import { readStackEnv } from '../core/config.js';
import { netboxRest } from '../core/netbox/rest.js';
import { PluginClient } from '../core/plugin/client.js';

const members = Number(process.env.BENCH_RECHECK_MEMBERS ?? 50);
const calls = Number(process.env.BENCH_RECHECK_CALLS ?? 40);
const env = readStackEnv();
const baseUrl = env.UNICOP_NETBOX_URL ?? '';
const token = env.UNICOP_NETBOX_TOKEN ?? '';
const nb = netboxRest(baseUrl, token);
const plugin = new PluginClient({ baseUrl, token, timeoutMs: 30_000 });

function figures(ms: number[]) {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return `mean ${mean.toFixed(1)} ms, p50 ${at(0.5).toFixed(1)} ms, p95 ${at(0.95).toFixed(1)} ms`;
}

async function timed(call: () => Promise<unknown>, n: number): Promise<{ ms: number[]; bytes: number }> {
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const answer = await call();
    ms.push(performance.now() - t);
    bytes = JSON.stringify(answer).length;
  }
  return { ms, bytes };
}

const stamp = `bench-recheck-${process.pid}-${Date.now().toString(36)}`;
const site = await nb<{ id: number }>('POST', '/api/dcim/sites/', {
  name: stamp,
  slug: stamp,
  status: 'active',
});
const tag = await nb<{ id: number }>('POST', '/api/extras/tags/', { name: stamp, slug: stamp });
try {
  await nb(
    'POST',
    '/api/dcim/racks/',
    Array.from({ length: members }, (_, i) => ({
      name: `${stamp}-${i}`,
      site: site.id,
      status: 'active',
      tags: [tag.id],
    })),
  );
  const root = await plugin.findRoot(`site/${site.id}`);
  if (!root) throw new Error(`no root site/${site.id}`);
  const load = loadavg().map((l) => l.toFixed(2));
  // Warm both paths once (connections, caches), then the two calls alternate (one
  // of each per round) so both see the same load.
  await plugin.currentHash(root.id);
  await plugin.snapshot(root.id);
  const hash = { ms: [] as number[], bytes: 0 };
  const snapshot = { ms: [] as number[], bytes: 0 };
  for (let i = 0; i < calls; i++) {
    const h = await timed(() => plugin.currentHash(root.id), 1);
    const s = await timed(() => plugin.snapshot(root.id), 1);
    hash.ms.push(...h.ms);
    hash.bytes = h.bytes;
    snapshot.ms.push(...s.ms);
    snapshot.bytes = s.bytes;
  }
  process.stdout.write(
    `root site/${site.id} with ${members} racks, ${calls} calls each, load average ${load.join(' ')}\n` +
      `  GET roots/{id}/hash/      ${figures(hash.ms)}, answer ${hash.bytes} bytes\n` +
      `  GET roots/{id}/snapshot/  ${figures(snapshot.ms)}, answer ${snapshot.bytes} bytes\n` +
      `load average after: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
  );
} finally {
  await nb('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  await nb('DELETE', `/api/extras/tags/${tag.id}/`).catch(() => undefined);
}
