/**
 * Drift runs on the real stack (docs/decisions/0054): NetBox with the plugin, Kafka, the stack's real
 * AWX 24.6.1 running the real site playbook, whose jobs write to the stack's shared target directory
 * (the test reads and edits the files there, as a person at the target would). The reconciler is
 * driven with the job a drift check or a remediation intent puts in the queue.
 *
 * - a `site` root (drift_mode detect, the default): a manual change at the target → the check run
 *   (AWX job_type check) ends `drifted` naming the file, the root shows `drifted` in NetBox, an
 *   outcome on `unicop.outcomes`, a warning journal entry, the file unchanged, the reconciled hash
 *   kept, no remediation;
 * - a `region` root (the stack's kind with drift_mode remediate): the check run that finds the drift
 *   publishes an apply intent (cause drift, driftOf the check run); its apply run restores the file
 *   and the root is in sync;
 * - an in-sync root: the check run ends `succeeded` / `in_sync` and launches nothing else.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventData, topics } from '../../core/events/catalogue.js';
import type { PluginRun } from '../../core/plugin/client.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import {
  type BackHalf,
  createAnchor,
  createSite,
  journalOf,
  reconcileJob,
  startBackHalf,
} from '../support/reconciler.js';
import { uniqueName } from '../support/stack.js';

describe('drift: check runs against the real site playbook', () => {
  let back: BackHalf;
  let tail: TopicTail;
  const of = (key: string, topic: string) => (m: TailedMessage) => m.key === key && m.topic === topic;

  beforeAll(async () => {
    back = await startBackHalf();
    tail = await TopicTail.start([topics.outcomes, topics.intents]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  const runsOf = (rootKey: string): Promise<PluginRun[]> => back.plugin.listRuns(rootKey);
  const modeOf = (run: PluginRun | undefined) => (run as { mode?: string } | undefined)?.mode;
  const indexFile = (rootKey: string) => join(back.targetDir, rootKey.replace('/', '-'), 'inventory.json');

  /** A root applied once (its files at the target), then `inventory.json` edited at the target by hand. */
  async function appliedThenEdited(rootKey: string): Promise<{ original: string; edited: string }> {
    await back.reconciler().reconcile(reconcileJob(rootKey));
    expect((await runsOf(rootKey))[0]).toMatchObject({ state: 'succeeded' });
    const file = indexFile(rootKey);
    const original = await readFile(file, 'utf8');
    const edited = original.replace('"devices"', '"devices_edited_by_hand"');
    expect(edited).not.toBe(original);
    await writeFile(file, edited);
    return { original, edited };
  }

  it('a manual change at a site root target: the check run ends drifted naming the file, NetBox shows drifted, an outcome on Kafka, the file unchanged', async () => {
    const site = await createSite();
    const { edited } = await appliedThenEdited(site.rootKey);
    const reconciled = (await back.plugin.findRoot(site.rootKey))?.last_reconciled_hash;

    const result = await back.reconciler().reconcile(reconcileJob(site.rootKey, 'drift_check'));
    expect(result).toEqual({ kind: 'done' });

    const [check] = await runsOf(site.rootKey);
    expect(check).toMatchObject({ state: 'drifted', outcome_class: 'drift', cause: 'drift_check' });
    expect(modeOf(check)).toBe('check');
    expect(check?.summary).toContain('inventory.json');
    const job = await back.awx.client.getJob(check?.awx_job_id as number);
    expect(job.job_type).toBe('check');

    // Nothing applied: the hand edit is still there, the reconciled hash is where it was.
    expect(await readFile(indexFile(site.rootKey), 'utf8')).toBe(edited);
    const root = await back.plugin.findRoot(site.rootKey);
    expect(root?.status).toBe('drifted');
    expect(root?.last_reconciled_hash).toBe(reconciled);
    expect((root as { last_drift_check?: string | null } | null)?.last_drift_check).toBeTruthy();

    const journal = await journalOf('dcim.site', site.id);
    expect(journal[0]?.kind.value).toBe('warning');
    expect(journal[0]?.comments).toContain('inventory.json');

    const [outcome] = await tail.waitFor(
      (m) =>
        of(site.rootKey, topics.outcomes)(m) && (m.value.data as { runId: string }).runId === check?.run_id,
    );
    expect(outcome?.value.data).toMatchObject({
      state: 'drifted',
      failureClass: 'drift',
      mode: 'check',
      changedFiles: ['inventory.json'],
    });
    // drift_mode detect: no apply run follows.
    const intents = tail.messages.filter(
      (m) => of(site.rootKey, topics.intents)(m) && m.value.source === 'unicop/reconciler',
    );
    expect(intents).toEqual([]);
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(2);
  }, 600_000);

  it('drift_mode remediate: the drifted check run is followed by an apply run (cause drift) that restores the file; the root is in sync', async () => {
    const name = uniqueName('region');
    const region = await createAnchor('/api/dcim/regions/', 'region', { name, slug: name.toLowerCase() });
    expect(region.root.policy).toMatchObject({ drift_mode: 'remediate' });
    const { original } = await appliedThenEdited(region.rootKey);

    await back.reconciler().reconcile(reconcileJob(region.rootKey, 'drift_check'));
    const [check] = await runsOf(region.rootKey);
    expect(check).toMatchObject({ state: 'drifted', outcome_class: 'drift' });

    // The remediation intent, as the dispatcher would queue it.
    const [intent] = await tail.waitFor((m) => {
      if (!of(region.rootKey, topics.intents)(m)) return false;
      const cause = (m.value.data as EventData<'intent'>).cause;
      return cause.kind === 'drift' && cause.driftOf === check?.run_id;
    });
    const data = intent?.value.data as EventData<'intent'>;
    await back
      .reconciler()
      .reconcile({ rootKey: region.rootKey, intentId: data.intentId, cause: data.cause });

    const [apply, drifted] = await runsOf(region.rootKey);
    expect(drifted?.run_id).toBe(check?.run_id);
    expect(apply).toMatchObject({ state: 'succeeded', cause: 'drift', intent_id: data.intentId });
    expect(modeOf(apply)).toBe('apply');
    expect(await readFile(indexFile(region.rootKey), 'utf8')).toBe(original);
    expect((await back.plugin.findRoot(region.rootKey))?.status).toBe('in_sync');
  }, 600_000);

  it('an in-sync root: the check run ends succeeded / in_sync and launches nothing else', async () => {
    const site = await createSite();
    await back.reconciler().reconcile(reconcileJob(site.rootKey));
    const before = await readFile(indexFile(site.rootKey), 'utf8');

    await back.reconciler().reconcile(reconcileJob(site.rootKey, 'drift_check'));
    const runs = await runsOf(site.rootKey);
    expect(runs.map((r) => [r.state, modeOf(r), r.outcome_class])).toEqual([
      ['succeeded', 'check', 'in_sync'],
      ['succeeded', 'apply', ''],
    ]);
    const [outcome] = await tail.waitFor(
      (m) =>
        of(site.rootKey, topics.outcomes)(m) && (m.value.data as { runId: string }).runId === runs[0]?.run_id,
    );
    expect(outcome?.value.data).toMatchObject({ state: 'succeeded', failureClass: null, mode: 'check' });
    expect(outcome?.value.data).not.toHaveProperty('changedFiles');
    expect((await back.plugin.findRoot(site.rootKey))?.status).toBe('in_sync');
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(2);
    expect(
      tail.messages.filter(
        (m) => of(site.rootKey, topics.intents)(m) && m.value.source === 'unicop/reconciler',
      ),
    ).toEqual([]);
    expect(await readFile(indexFile(site.rootKey), 'utf8')).toBe(before);
  }, 600_000);
});
