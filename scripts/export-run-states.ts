/**
 * Writes what is derived from the run state machine (core/runs/state-machine.ts), `npm run
 * gen:run-states`:
 *   netbox-plugin/unicop/run_states.json  the document the plugin enforces (run_states.py), laid out
 *                                         as Biome formats JSON, so a second run changes no byte;
 *   docs/architecture.md                  the mermaid diagram and transition table between the
 *                                         `run-states:begin` / `run-states:end` markers.
 * With `--check` it writes nothing and exits 1 naming each file that differs (the static suite).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../core/config.js';
import {
  allowedNext,
  initialRunStates,
  type RunState,
  runStates,
  terminalRunStates,
  transitionEvent,
} from '../core/runs/state-machine.js';

export const runStatesJsonPath = join(repoRoot, 'netbox-plugin', 'unicop', 'run_states.json');
export const architecturePath = join(repoRoot, 'docs', 'architecture.md');
const source = 'core/runs/state-machine.ts';
const generator = 'npm run gen:run-states';
export const beginMarker = `<!-- run-states:begin (generated from ${source} by \`${generator}\`; do not edit) -->`;
export const endMarker = '<!-- run-states:end -->';

/** The plugin's document: `{states, initial, terminal, transitions: {from: [to, …]}}` plus a note. */
export function runStatesDocument() {
  return {
    $comment: `Generated from ${source} by \`${generator}\`; do not edit. Read by run_states.py.`,
    states: [...runStates],
    initial: [...initialRunStates],
    terminal: [...terminalRunStates],
    transitions: Object.fromEntries(runStates.map((s) => [s, [...allowedNext(s)]])),
  };
}

/** JSON as Biome lays it out (line width 110): objects open, an array on one line when it fits. */
export function runStatesJson(): string {
  const width = 110;
  const render = (value: unknown, indent: string, lead: string): string => {
    if (Array.isArray(value)) {
      const flat = `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
      if (indent.length + lead.length + flat.length + 1 <= width) return flat;
      const inner = `${indent}  `;
      return `[\n${value.map((v) => `${inner}${JSON.stringify(v)}`).join(',\n')}\n${indent}]`;
    }
    if (value && typeof value === 'object') {
      const inner = `${indent}  `;
      const entries = Object.entries(value).map(([k, v]) => {
        const key = `${JSON.stringify(k)}: `;
        return `${inner}${key}${render(v, inner, key)}`;
      });
      return `{\n${entries.join(',\n')}\n${indent}}`;
    }
    return JSON.stringify(value);
  };
  return `${render(runStatesDocument(), '', '')}\n`;
}

/** The diagram and the table of transitions with the audit action each emits (markdown). */
export function runStatesMarkdown(): string {
  const lines = ['```mermaid', 'stateDiagram-v2'];
  for (const s of initialRunStates) lines.push(`  [*] --> ${s}: ${transitionEvent(null, s)}`);
  for (const from of runStates) {
    for (const to of allowedNext(from)) lines.push(`  ${from} --> ${to}: ${transitionEvent(from, to)}`);
  }
  for (const s of terminalRunStates) lines.push(`  ${s} --> [*]`);
  lines.push('```', '');
  lines.push('| from | to (audit action emitted) |', '| --- | --- |');
  const row = (from: RunState | null, targets: readonly RunState[]) => {
    const ways = targets.map((to) => `\`${to}\` (\`${transitionEvent(from, to)}\`)`);
    return `| ${from === null ? '*created*' : `\`${from}\``} | ${ways.join(', ') || 'none: terminal'} |`;
  };
  lines.push(row(null, initialRunStates));
  for (const from of runStates) lines.push(row(from, allowedNext(from)));
  return lines.join('\n');
}

/** `doc` with the text between the markers replaced by `body`; throws when the markers are missing. */
export function withGeneratedSection(doc: string, body: string): string {
  const begin = doc.indexOf('<!-- run-states:begin');
  const end = doc.indexOf(endMarker);
  if (begin < 0 || end < begin) {
    throw new Error(
      `docs/architecture.md: the markers <!-- run-states:begin … --> and ${endMarker} are missing`,
    );
  }
  return `${doc.slice(0, begin)}${beginMarker}\n${body}\n${doc.slice(end)}`;
}

/** Each derived file with its content as the declaration makes it. */
export function derivedFiles(): { path: string; text: string }[] {
  return [
    { path: runStatesJsonPath, text: runStatesJson() },
    {
      path: architecturePath,
      text: withGeneratedSection(readFileSync(architecturePath, 'utf8'), runStatesMarkdown()),
    },
  ];
}

function main(check: boolean): number {
  let stale = 0;
  for (const { path, text } of derivedFiles()) {
    const name = path.slice(repoRoot.length + 1);
    if (readFileSync(path, 'utf8') === text) continue;
    if (check) {
      process.stdout.write(`${name} is not what ${source} makes: run ${generator}\n`);
      stale++;
    } else {
      writeFileSync(path, text);
      process.stdout.write(`wrote ${name}\n`);
    }
  }
  return stale ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.includes('--check'));
}
