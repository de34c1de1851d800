/**
 * Side by side, one run write two ways (docs/decisions/0064): `PATCH runs/{run_id}/` (NetBox's model
 * serializer, an ObjectChange, the whole run in the answer) and the lean `POST runs/{run_id}/write/`.
 * One new site's root is leased and one run created; then blocks of BENCH_RUN_WRITE_BLOCK writes of
 * each kind alternate, BENCH_RUN_WRITE_ROUNDS times (so a machine getting busier or quieter weighs on
 * both alike). Each write keeps the run's state and carries a five-line log, as a reconciler's
 * `launched` write does. Per kind: the client's latency (p50, p95) and the CPU seconds of NetBox's
 * processes and PostgreSQL during its blocks, per write — machine-wide, so other clients of the stack
 * count too: state the load average beside the figures.
 *
 *   npx tsx bench/loop/run-write.ts
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import {
  PluginClient,
  PluginConflictError,
  type RunLogLine,
  type RunWrite,
} from '../../core/plugin/client.js';
import { createSite } from '../../test/support/reconciler.js';
import { stack } from '../../test/support/stack.js';
import { percentile, sleep } from '../support.js';
import { deleteSites } from './netbox.js';
import { CpuByProcess } from './usage.js';

const block = Number(process.env.BENCH_RUN_WRITE_BLOCK ?? 20);
const rounds = Number(process.env.BENCH_RUN_WRITE_ROUNDS ?? 5);

/** The root's lease, once a workers process reconciling the new site (if one runs) gave it back. */
async function leaseOf(plugin: PluginClient, rootId: number) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await plugin.acquireLease(rootId, 'bench-run-write', 600);
    } catch (error) {
      if (!(error instanceof PluginConflictError) || error.frozen || attempt >= 120) throw error;
      await sleep(1000);
    }
  }
}

type Kind = 'PATCH runs/:id/' | 'POST runs/:id/write/';

export async function benchRunWrite(): Promise<string> {
  // NetBox serves other clients of the stack too: a patient timeout, not testPlugin()'s 10 s.
  const plugin = new PluginClient({
    baseUrl: stack.netboxUrl(),
    token: stack.netboxToken(),
    timeoutMs: 60_000,
  });
  const site = await createSite();
  const root = await plugin.findRoot(site.rootKey);
  if (!root) throw new Error(`no root ${site.rootKey}`);
  const lease = await leaseOf(plugin, root.id);
  const runId = `bench-run-write-${Date.now()}`;
  const hash = 'a'.repeat(64);
  const lines: RunLogLine[] = Array.from({ length: 5 }, (_, i) => ({
    ts: new Date().toISOString(),
    level: 'info',
    message: `step ${i}: something the run did, as long as a usual line of its log`,
    meta: { fencing_token: lease.token, step: i },
  }));
  await plugin.createRun({
    run_id: runId,
    root: root.key,
    snapshot_hash: hash,
    fencing_token: lease.token,
    cause: 'manual',
    state: 'leased',
    log_lines: lines,
  });
  const write: RunWrite = {
    fencing_token: lease.token,
    state: 'leased',
    snapshot_hash: hash,
    log_lines: lines,
  };
  const send: Record<Kind, () => Promise<unknown>> = {
    'PATCH runs/:id/': () => plugin.updateRun(runId, write),
    'POST runs/:id/write/': () => plugin.writeRun(runId, write),
  };
  const ms: Record<Kind, number[]> = { 'PATCH runs/:id/': [], 'POST runs/:id/write/': [] };
  const cpu: Record<Kind, { netbox: number; pg: number }> = {
    'PATCH runs/:id/': { netbox: 0, pg: 0 },
    'POST runs/:id/write/': { netbox: 0, pg: 0 },
  };
  const loadBefore = loadavg();
  for (const kind of Object.keys(send) as Kind[]) await send[kind](); // warm both paths
  for (let r = 0; r < rounds; r++) {
    for (const kind of Object.keys(send) as Kind[]) {
      const usage = new CpuByProcess();
      usage.start();
      for (let i = 0; i < block; i++) {
        const start = performance.now();
        await send[kind]();
        ms[kind].push(performance.now() - start);
      }
      const groups = usage.stop();
      cpu[kind].netbox += groups.get('NetBox') ?? 0;
      cpu[kind].pg += groups.get('PostgreSQL') ?? 0;
    }
  }
  const loadAfter = loadavg();
  await plugin.releaseLease(root.id, lease.token);
  await deleteSites([site]);
  const rows = (Object.keys(send) as Kind[]).map((kind) => {
    const sorted = [...ms[kind]].sort((a, b) => a - b);
    const n = sorted.length;
    return `| \`${kind}\` | ${n} | ${percentile(sorted, 50).toFixed(1)} | ${percentile(sorted, 95).toFixed(1)} | ${((cpu[kind].netbox * 1000) / n).toFixed(1)} | ${((cpu[kind].pg * 1000) / n).toFixed(1)} |`;
  });
  const load = (l: number[]) => l.map((v) => v.toFixed(1)).join(' / ');
  return [
    `Run ${new Date().toISOString()}: \`npx tsx bench/loop/run-write.ts\`, ${rounds} rounds of ${block} writes of each kind, alternating; load average ${load(loadBefore)} before, ${load(loadAfter)} after.`,
    '',
    '| write | writes | p50 ms | p95 ms | NetBox CPU ms per write | PostgreSQL CPU ms per write |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${await benchRunWrite()}\n`);
  process.exit(0);
}
