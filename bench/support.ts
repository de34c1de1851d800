/** Shared helpers for the benchmarks: percentiles, process memory, markdown tables, waiting, counting. */
import { readFileSync } from 'node:fs';
import { sleep } from '../core/clock.js';
import { readStackEnv } from '../core/config.js';
import { netboxRest } from '../core/netbox/rest.js';

export function percentile(sortedMs: number[], p: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  const index = Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1);
  return sortedMs[Math.max(0, index)] as number;
}

/** Peak and current resident memory of a process, in MiB, from /proc. */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const fmt = (v: string | number) =>
    typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : v;
  return [
    `| ${headers.join(' | ')} |`,
    `| ${headers.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(fmt).join(' | ')} |`),
  ].join('\n');
}

export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export { sleep };

/** Polls `probe` every 50 ms until it holds (true) or `timeoutMs` has passed (false). */
export async function until(probe: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await sleep(50);
  }
  return false;
}

export function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** `a 2, b 1`, sorted by name; `—` when there is nothing. */
export function countsText(m: Map<string, number>): string {
  return (
    [...m]
      .sort()
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || '—'
  );
}

/** A section's lines joined, runs of blank lines collapsed to one. */
export function section(lines: string[]): string {
  return lines.filter((line, i, all) => !(line === '' && all[i - 1] === '')).join('\n');
}

/**
 * The stack's NetBox REST API (var/stack.env) with the bench's own timeout: bulk calls on a loaded
 * NetBox outlast the tests' 30 s. Made on first use (a bench module is imported by `npm run bench`
 * for every scenario, stack or not) and kept.
 */
export function stackNetbox(timeoutMs: number): () => ReturnType<typeof netboxRest> {
  let client: ReturnType<typeof netboxRest> | undefined;
  return () => {
    if (!client) {
      const env = readStackEnv();
      client = netboxRest(env.UNICOP_NETBOX_URL as string, env.UNICOP_NETBOX_TOKEN as string, timeoutMs);
    }
    return client;
  };
}
