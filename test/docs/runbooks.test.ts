/**
 * Every failure class the reconciler can end a run with (core/events/catalogue.ts `failureClasses`,
 * the classes of workers/reconciler/policy.ts) links to a runbook that exists: the map is declared once,
 * in the plugin (netbox-plugin/unicop/runbooks.py, FAILURE_CLASS_RUNBOOKS), which shows the link on
 * NetBox's pages and serves it as the run's `runbook` (read by `unicop root why`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { failureClasses } from '../../core/events/catalogue.js';
import { failureActions } from '../../workers/reconciler/policy.js';

/** The plugin's map, read from its one declaration (a dict of `'class': 'file.md'` lines). */
function declaredRunbooks(): Map<string, string> {
  const source = readFileSync(join(repoRoot, 'netbox-plugin', 'unicop', 'runbooks.py'), 'utf8');
  const body = /FAILURE_CLASS_RUNBOOKS = \{\n([\s\S]*?)\n\}/.exec(source)?.[1];
  if (!body) throw new Error('runbooks.py declares no FAILURE_CLASS_RUNBOOKS dict');
  const map = new Map<string, string>();
  for (const line of body.split('\n')) {
    const entry = /^ {4}'([a-z_]+)': '([a-z0-9-]+\.md)',$/.exec(line);
    if (!entry) throw new Error(`runbooks.py: not a 'class': 'file.md' entry: ${line}`);
    map.set(entry[1] as string, entry[2] as string);
  }
  return map;
}

describe('failure classes and their runbooks', () => {
  it('every failure class of the reconciler has a runbook entry, and only those', () => {
    const map = declaredRunbooks();
    expect(Object.keys(failureActions).sort()).toEqual([...failureClasses].sort());
    expect([...map.keys()].sort()).toEqual([...failureClasses].sort());
  });

  it("every runbook entry names a file of docs/runbooks/ that exists and is in the runbooks' index", () => {
    const index = readFileSync(join(repoRoot, 'docs', 'runbooks', 'README.md'), 'utf8');
    for (const [failureClass, file] of declaredRunbooks()) {
      expect(existsSync(join(repoRoot, 'docs', 'runbooks', file)), `${failureClass} → ${file}`).toBe(true);
      expect(index, `${file} listed in docs/runbooks/README.md`).toContain(`(${file})`);
    }
  });
});
