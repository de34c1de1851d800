/**
 * What a fuzz run reads off the compiled bridge it spawned, shared by run.ts (NetBox's webhook) and
 * endpoint-run.ts (AWX's webhook and the admin API): its refusal counters from /metrics, its RSS
 * from /proc, the error lines and any secret or canary in its log — and the run's own secrets, peer
 * address and tallies.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Answer } from './send.js';

/** A fresh secret for one run (webhook secret, admin token). */
export const secretOf = () => `fuzz-${randomBytes(24).toString('hex')}`;

/** A loopback address of the run's own (all of 127/8 is loopback on Linux): the bridge's peer. */
export function peerAddress(): string {
  const b = randomBytes(3);
  return `127.${((b[0] ?? 0) % 250) + 3}.${b[1] ?? 0}.${((b[2] ?? 0) % 254) + 1}`;
}

/** The bridge's unicop_* counters and gauges from its /metrics, by name and labels. */
export async function bridgeCounters(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(unicop_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m) values.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return values;
}

/** The webhook refusals of one source the bridge counted between two readings, by reason. */
export function refusalsOf(
  source: 'netbox' | 'awx',
  before: Map<string, number>,
  after: Map<string, number>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of after) {
    const m = /^unicop_webhooks_rejected_total\{source="([^"]+)",reason="([^"]+)"\}$/.exec(key);
    if (m?.[1] !== source) continue;
    const delta = value - (before.get(key) ?? 0);
    if (delta > 0) out.set(m[2] as string, delta);
  }
  return out;
}

export const tally = (m: Map<string, number>, key: string, n = 1) => m.set(key, (m.get(key) ?? 0) + n);

export const answerText = (a: Answer | 'closed') =>
  a === 'closed' ? 'connection closed' : `${a.status} ${a.reason ?? '-'}`;

/** A process's resident memory in MiB (0 once it is gone). */
export function memoryMiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** The bridge's log: its first 20 error lines, and whether any of the secrets or the canary is in it. */
export function logVerdict(file: string, secrets: readonly string[], canary: string) {
  const text = readFileSync(file, 'utf8');
  const errorLines = text
    .split('\n')
    .filter((l) => /"level":(50|60)|"level":"(error|fatal)"|uncaught|unhandled|RangeError|TypeError/i.test(l))
    .slice(0, 20);
  return {
    errorLines,
    secretInLog: secrets.some((s) => text.includes(s)),
    canaryInLog: text.includes(canary),
  };
}
