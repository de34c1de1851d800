/**
 * Benchmark: sustained signed NetBox webhooks into the bridge, each answered only after Kafka
 * acknowledged it with acks=all (group commit). The bridge runs as its own process (as deployed),
 * against the stack's real Kafka and Redis; 1, 8 and 64 concurrent senders each post distinct
 * deliveries for a fixed duration. Reports throughput, latency percentiles and the bridge's RSS.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { readStackEnv, repoRoot } from '../core/config.js';
import { memoryOf, percentile, table, waitForHttp } from './support.js';

const secret = `bench-${randomUUID()}`;
const port = 18181;
const durationMs = Number(process.env.BENCH_SECONDS ?? 10) * 1000;

function delivery(n: number): string {
  const now = new Date().toISOString();
  const data = { id: 5_000_000 + n, name: `bench-${n}`, slug: `bench-${n}`, last_updated: now };
  return JSON.stringify({
    event: 'updated',
    timestamp: now,
    object_type: 'dcim.site',
    data,
    snapshots: { prechange: data, postchange: data },
    request: { id: randomUUID(), user: 'bench', method: 'PATCH', path: `/api/dcim/sites/${data.id}/` },
  });
}

async function sender(
  url: string,
  until: number,
  counter: { n: number },
  latencies: number[],
  errors: { n: number },
) {
  while (Date.now() < until) {
    const raw = delivery(counter.n++);
    const signature = createHmac('sha512', secret).update(raw).digest('hex');
    const t = performance.now();
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Hook-Signature': signature },
      body: raw,
    });
    await res.arrayBuffer();
    if (res.status === 202) latencies.push(performance.now() - t);
    else errors.n++;
  }
}

export async function benchBridgeIngress(): Promise<string> {
  const stackEnv = readStackEnv();
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'bridge', 'main.ts')], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...stackEnv,
      UNICOP_WEBHOOK_SECRETS: secret,
      UNICOP_BRIDGE_PORT: String(port),
      UNICOP_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${base}/healthz`);
    const rows: (string | number)[][] = [];
    for (const concurrency of [1, 8, 64]) {
      const latencies: number[] = [];
      const counter = { n: concurrency * 10_000_000 };
      const errors = { n: 0 };
      const started = performance.now();
      const until = Date.now() + durationMs;
      await Promise.all(
        Array.from({ length: concurrency }, () =>
          sender(`${base}/webhooks/netbox`, until, counter, latencies, errors),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      latencies.sort((a, b) => a - b);
      const mem = memoryOf(child.pid as number);
      rows.push([
        concurrency,
        latencies.length,
        latencies.length / seconds,
        percentile(latencies, 50),
        percentile(latencies, 99),
        errors.n,
        mem.rssMiB,
        mem.peakMiB,
      ]);
      process.stderr.write(
        `bridge ingress, ${concurrency} senders: ${(latencies.length / seconds).toFixed(0)}/s\n`,
      );
    }
    return [
      '## Bridge ingress: signed webhooks into Kafka (acks=all)',
      '',
      `Each sender posts distinct signed NetBox 4.7 deliveries back to back for ${durationMs / 1000} s;`,
      'a request counts when it was answered 202, i.e. after Kafka acknowledged its change.',
      '',
      table(
        [
          'senders',
          'accepted',
          'webhooks/s',
          'p50 ms',
          'p99 ms',
          'errors',
          'bridge RSS MiB',
          'bridge peak MiB',
        ],
        rows,
      ),
    ].join('\n');
  } finally {
    child.kill('SIGTERM');
  }
}
