/**
 * Where a process's CPU time went, from a V8 `.cpuprofile` (node --cpu-prof): self time summed by
 * package or project folder, and the heaviest functions. Used to profile the bridge under the
 * ingest load: BENCH_BRIDGE_NODE_ARGS="--cpu-prof --cpu-prof-dir=var/ingest/prof" npm run bench -- ingest,
 * then `npx tsx bench/ingest/profile-summary.ts var/ingest/prof/<file>.cpuprofile`.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function area(url: string, name: string): string {
  if (url === '')
    return name === '(garbage collector)' || name === '(program)' || name === '(idle)' ? name : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith('node:'))
    return url
      .replace(/^node:(internal\/)?/, 'node:')
      .split('/')
      .slice(0, 2)
      .join('/');
  const ours = /\/dist\/([^/]+\/(?:[^/]+\/)?)/.exec(url);
  return ours ? `unicop ${ours[1]}` : url;
}

const file = process.argv[2];
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]');
const top = Number(process.argv[3] ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
for (const [i, id] of profile.samples.entries()) {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const idle = [...selfUs]
  .filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)')
  .reduce((a, [, t]) => a + t, 0);
const busy = total - idle;
const sum = (key: (n: ProfileNode) => string) => {
  const m = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id) as ProfileNode;
    if (n.callFrame.functionName === '(idle)') continue;
    m.set(key(n), (m.get(key(n)) ?? 0) + us);
  }
  return [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
};
const pct = (us: number) => `${((100 * us) / busy).toFixed(1)}%`;
process.stdout.write(
  `busy ${(busy / 1e6).toFixed(1)} s of ${(total / 1e6).toFixed(1)} s profiled\n\nby area (self time, share of busy):\n`,
);
for (const [k, us] of sum((n) => area(n.callFrame.url, n.callFrame.functionName)))
  process.stdout.write(`  ${pct(us).padStart(6)}  ${k}\n`);
process.stdout.write('\nby function:\n');
for (const [k, us] of sum(
  (n) =>
    `${n.callFrame.functionName || '(anonymous)'} ${area(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`,
))
  process.stdout.write(`  ${pct(us).padStart(6)}  ${k}\n`);
