/** Writes the loop bench's section, or only its instant subsection, into docs/benchmarks.md. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../core/config.js';
import { instantTitle, title } from './settings.js';

/** Replaces this section of docs/benchmarks.md (or adds it after the resolver's), keeping the rest. */
export function writeSection(section: string): void {
  const file = join(repoRoot, 'docs', 'benchmarks.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const parts = text.split(/\n(?=## )/).map((p) => p.trimEnd());
  const mine = parts.findIndex((p) => p.split('\n')[0] === title);
  if (mine > 0) parts[mine] = section;
  else {
    const resolver = parts.findIndex((p) => p.startsWith('## Resolver'));
    parts.splice(resolver > 0 ? resolver + 1 : parts.length, 0, section);
  }
  writeFileSync(file, `${parts.join('\n\n')}\n`);
}

/** Replaces only the instant subsection inside this section (added at its end if missing). */
export function writeInstantSubsection(subsection: string): void {
  const file = join(repoRoot, 'docs', 'benchmarks.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const section = text.split(/\n(?=## )/).find((p) => p.split('\n')[0] === title);
  if (!section) {
    writeSection([title, '', subsection].join('\n'));
    return;
  }
  const parts = section.trimEnd().split(/\n(?=### )/);
  const mine = parts.findIndex((p) => p.split('\n')[0] === instantTitle);
  if (mine > 0) parts[mine] = subsection;
  else parts.push(subsection);
  writeSection(parts.map((p) => p.trimEnd()).join('\n\n'));
}
