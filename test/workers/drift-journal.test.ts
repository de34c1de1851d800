/**
 * A drifted run's journal entry (workers/reconciler/outcome.ts's journalText) names each differing
 * file once: the summary (policy.ts's checkRunEnd) names the first 20, the journal adds the next 50
 * and says how many there are in all — never the first 20 twice. Without services: the text only.
 */
import { describe, expect, it } from 'vitest';
import { journalText } from '../../workers/reconciler/outcome.js';
import { checkRunEnd } from '../../workers/reconciler/policy.js';
import { newRun } from '../../workers/reconciler/scope.js';
import { cause, t0 } from './decide-fixtures.js';

const job = { rootKey: 'site/7', intentId: 'intent-1', cause: cause('drift_check') };
const run = newRun(job, 'a'.repeat(64), t0, 'run-1', 'check');
const files = (n: number) =>
  Array.from({ length: n }, (_, i) => `/srv/site-7/file-${String(i).padStart(3, '0')}`);
const mentions = (text: string, file: string) => text.split(file).length - 1;

describe('drift journal', () => {
  it('names each differing file once when the summary shows them all', () => {
    const end = checkRunEnd({ drift: true, changedFiles: files(3) }, 'AWX job 5');
    const text = journalText(run, end);
    for (const file of files(3)) expect(mentions(text, file)).toBe(1);
    expect(text).not.toContain('Also differing');
  });

  it("adds the files past the summary's twenty, each once, up to fifty more", () => {
    const all = files(100);
    const end = checkRunEnd({ drift: true, changedFiles: all }, 'AWX job 5');
    const text = journalText(run, end);
    for (const file of all.slice(0, 70)) expect(mentions(text, file)).toBe(1);
    for (const file of all.slice(70)) expect(mentions(text, file)).toBe(0);
    expect(text).toContain('(100 in all)');
    expect(text).toContain('Also differing at the target: `/srv/site-7/file-020`');
  });
});
