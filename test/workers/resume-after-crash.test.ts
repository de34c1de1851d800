/**
 * A run a dead worker left before any AWX launch is resumed by the next holder, not failed (issue
 * #14 item 3, docs/decisions/0037), against NetBox with the plugin, Kafka and the stack's real AWX:
 * a worker process records its run `leased` through the real plugin and is killed (SIGKILL, by
 * itself, the moment the plugin has stored the run: test/workers/fixtures/die-after-run-record.ts)
 * before it launches anything; its 4 s lease is left to expire. The next holder then finishes that
 * same run — judged after the act from NetBox (the run, its token and log, the site's journal),
 * AWX's own job list and unicop.audit / unicop.outcomes: one run, `succeeded`, under the new
 * fencing token; exactly one AWX job, carrying that run id; no `failed` run, no danger journal
 * entry; its log and the audit trail say it was resumed, from whom, with which tokens.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { type BackHalf, createSite, journalOf, reconcileJob, startBackHalf } from '../support/reconciler.js';

describe('a run left before its launch by a dead worker', () => {
  let back: BackHalf;
  let tail: TopicTail;
  const of = (key: string, topic: string) => (m: TailedMessage) => m.key === key && m.topic === topic;

  beforeAll(async () => {
    back = await startBackHalf();
    tail = await TopicTail.start([topics.outcomes, topics.audit]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  it('is resumed by the next holder: same run id, new token, one AWX job, succeeded, nothing failed', async () => {
    const site = await createSite();
    // The worker kills itself (SIGKILL) once the plugin has stored its run as leased; node runs it
    // directly (the tsx CLI would put a second process between).
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'test', 'workers', 'fixtures', 'die-after-run-record.ts')],
      {
        env: {
          ...process.env,
          UNICOP_TEST_ROOT: site.rootKey,
          UNICOP_TEST_AWX_URL: back.awx.url,
          UNICOP_TEST_AWX_TOKEN: back.awx.token,
        },
        stdio: 'ignore',
      },
    );
    const signal = await new Promise<NodeJS.Signals | null>((r) =>
      child.once('exit', (_code, sig) => r(sig)),
    );
    expect(signal).toBe('SIGKILL');
    const [doomed] = await back.plugin.listRuns(site.rootKey);
    expect(doomed?.state).toBe('leased');
    const doomedHolder = `doomed-worker-${child.pid}`;
    const formerToken = doomed?.fencing_token as number;
    expect(await back.awx.jobsOf(site.rootKey)).toEqual([]); // it died before launching anything

    // The next worker waits out the dead worker's lease (4 s), then finds its run open.
    const reconciler = back.reconciler({ holder: 'next-holder' });
    for (;;) {
      const result = await reconciler.reconcile(reconcileJob(site.rootKey));
      if (result.kind === 'done') break;
      await new Promise((r) => setTimeout(r, Math.max(0, result.at.getTime() - Date.now())));
    }

    // NetBox: one run of the root, the dead worker's, succeeded under the new holder's token.
    const runs = await back.plugin.listRuns(site.rootKey);
    expect(runs.map((r) => [r.run_id, r.state, r.outcome_class])).toEqual([
      [doomed?.run_id, 'succeeded', ''],
    ]);
    const [run] = runs;
    const root = await back.plugin.findRoot(site.rootKey);
    const newToken = run?.fencing_token as number;
    expect(newToken).toBeGreaterThan(formerToken);
    expect(newToken).toBe((root?.lease as { highest_token?: number } | undefined)?.highest_token);
    // Its log names the resume: from whom, old → new token, as a warning.
    const lines = (run as unknown as { log_lines: { level: string; message: string }[] }).log_lines;
    const resumed = lines.filter((l) => l.message.startsWith('resumed from'));
    expect(resumed).toEqual([
      expect.objectContaining({
        level: 'warning',
        message: expect.stringContaining(
          `resumed from ${doomedHolder} (fencing token ${formerToken} → ${newToken})`,
        ),
      }),
    ]);
    // No danger journal entry on the site: nothing failed.
    const journal = await journalOf('dcim.site', site.id);
    expect(journal.filter((j) => j.kind.value === 'danger')).toEqual([]);
    expect(journal.length).toBeGreaterThan(0); // the success was journaled

    // AWX's own job list: exactly one job of the root, carrying the resumed run's id.
    const jobs = await back.awx.jobsOf(site.rootKey);
    expect(jobs.map((j) => j.run_id)).toEqual([doomed?.run_id]);
    expect(run?.awx_job_id).toBe(jobs[0]?.id);

    // unicop.outcomes: one outcome, succeeded; unicop.audit: run.resumed by the next holder, no failure.
    await tail.waitFor(of(site.rootKey, topics.outcomes));
    await tail.waitFor(
      (m) =>
        of(site.rootKey, topics.audit)(m) && (m.value.data as { action: string }).action === 'lease.released',
    );
    const outcomes = tail.messages.filter(of(site.rootKey, topics.outcomes));
    expect(outcomes.map((m) => m.value.data)).toEqual([
      expect.objectContaining({ runId: doomed?.run_id, state: 'succeeded', failureClass: null }),
    ]);
    const audit = tail.messages
      .filter(of(site.rootKey, topics.audit))
      .map((m) => m.value.data as { action: string; actor: string; correlation: Record<string, unknown> });
    expect(audit.filter((a) => a.action === 'run.resumed')).toEqual([
      expect.objectContaining({
        actor: 'next-holder',
        correlation: expect.objectContaining({
          runId: doomed?.run_id,
          fencingToken: newToken,
          formerFencingToken: formerToken,
          formerHolder: doomedHolder,
        }),
      }),
    ]);
    expect(audit.filter((a) => a.action === 'run.launched')).toHaveLength(1);
    expect(audit.filter((a) => a.action === 'run.failed' || a.action === 'run.fenced')).toEqual([]);
  }, 600_000);
});
