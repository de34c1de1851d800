/**
 * Per-root policy overrides on the real stack (decision 0062): NetBox with the plugin, Kafka, the
 * stack's real AWX running the real site playbook. The override is the site's JSON custom field
 * `unicop_policy`, set through NetBox's REST API as a person would (the field is made by the plugin's
 * command `unicop_policy_field`, which unicop_bootstrap also runs).
 *
 * - a site (the kind says drift_mode detect) whose override says remediate: its drifted check run is
 *   followed by an apply intent (cause drift), which the kind's policy alone never gives;
 * - a site whose override cannot be run (drift_mode "sometimes"): the root serves no policy and an
 *   error naming the key, and its run is refused — `failed` / `template_misconfigured`, the summary
 *   naming the key, on unicop.outcomes, no AWX job — never run under the kind's policy;
 * - tighten-only (decision 0068): a tenant (its kind requires approval) whose override turns approval off
 *   is refused the same way, naming the key (an override's schema naming its source: gate.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import {
  type BackHalf,
  createSite,
  createTenant,
  reconcileJob,
  startBackHalf,
} from '../support/reconciler.js';

describe('per-root policy overrides: the anchor custom field unicop_policy', () => {
  let back: BackHalf;
  let tail: TopicTail;
  const of = (key: string, topic: string) => (m: TailedMessage) => m.key === key && m.topic === topic;

  beforeAll(async () => {
    // The plugin's command makes the custom field (idempotent: "unchanged" once made).
    const said = execFileSync(
      join(repoRoot, 'scripts', 'stack.d', 'netbox.sh'),
      ['exec', 'netbox', 'unicop_policy_field'],
      { encoding: 'utf8' },
    );
    expect(said).toMatch(/custom field unicop_policy: (created|updated|unchanged)/);
    back = await startBackHalf();
    tail = await TopicTail.start([topics.outcomes, topics.intents]);
  }, 180_000);
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  async function siteWithOverride(value: unknown) {
    const site = await createSite();
    await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { custom_fields: { unicop_policy: value } });
    return { ...site, root: await back.plugin.findRoot(site.rootKey) };
  }

  /** Reconciles the root once: its newest run, which must have ended before AWX, and its outcome event. */
  async function refusedBeforeAwx(rootKey: string) {
    await back.reconciler().reconcile(reconcileJob(rootKey));
    const [run] = await back.plugin.listRuns(rootKey);
    expect(run?.awx_job_id).toBeNull();
    const [outcome] = await tail.waitFor(
      (m) => of(rootKey, topics.outcomes)(m) && (m.value.data as { runId: string }).runId === run?.run_id,
      1,
      60_000,
    );
    expect(await back.awx.jobsOf(rootKey)).toHaveLength(0);
    return { run, outcome: outcome?.value.data };
  }

  it('an override drift_mode remediate on a site (its kind says detect): the drifted check is followed by an apply intent', async () => {
    const site = await siteWithOverride({ drift_mode: 'remediate' });
    expect(site.root?.policy).toMatchObject({ drift_mode: 'remediate' });
    expect(site.root?.policy_error).toBeNull();

    await back.reconciler().reconcile(reconcileJob(site.rootKey));
    const file = join(back.targetDir, site.rootKey.replace('/', '-'), 'inventory.json');
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.replace('"devices"', '"devices_edited_by_hand"'));

    await back.reconciler().reconcile(reconcileJob(site.rootKey, 'drift_check'));
    const [check] = await back.plugin.listRuns(site.rootKey);
    expect(check).toMatchObject({ state: 'drifted', outcome_class: 'drift' });
    const [intent] = await tail.waitFor(
      (m) => {
        if (!of(site.rootKey, topics.intents)(m)) return false;
        const cause = (m.value.data as EventData<'intent'>).cause;
        return cause.kind === 'drift' && cause.driftOf === check?.run_id;
      },
      1,
      60_000,
    );
    expect(intent?.value.source).toBe('unicop/reconciler');
  }, 600_000);

  it('an override that cannot be run: no policy served, the error names the key, the run is refused before AWX', async () => {
    const site = await siteWithOverride({ drift_mode: 'sometimes' });
    expect(site.root?.policy).toBeNull();
    expect(site.root?.policy_error).toContain(`${site.rootKey} unicop_policy.drift_mode must be one of`);

    await back.reconciler().reconcile(reconcileJob(site.rootKey));
    const [run] = await back.plugin.listRuns(site.rootKey);
    expect(run).toMatchObject({ state: 'failed', outcome_class: 'template_misconfigured' });
    expect(run?.summary).toContain('unicop_policy.drift_mode must be one of');
    expect(run?.awx_job_id).toBeNull();
    const [outcome] = await tail.waitFor(
      (m) =>
        of(site.rootKey, topics.outcomes)(m) && (m.value.data as { runId: string }).runId === run?.run_id,
      1,
      60_000,
    );
    expect(outcome?.value.data).toMatchObject({ state: 'failed', failureClass: 'template_misconfigured' });
    expect(await back.awx.jobsOf(site.rootKey)).toHaveLength(0);
  }, 600_000);

  it('an override that loosens its kind (approval off where the kind requires it) is refused, naming the key', async () => {
    const tenant = await createTenant();
    await netbox('PATCH', `/api/tenancy/tenants/${tenant.id}/`, {
      custom_fields: { unicop_policy: { approval_required: false } },
    });
    const root = await back.plugin.findRoot(tenant.rootKey);
    expect(root?.policy).toBeNull();
    expect(root?.policy_error).toContain(`${tenant.rootKey} unicop_policy.approval_required cannot be false`);

    const { run, outcome } = await refusedBeforeAwx(tenant.rootKey);
    expect(run).toMatchObject({ state: 'failed', outcome_class: 'template_misconfigured' });
    expect(run?.summary).toContain('unicop_policy.approval_required cannot be false');
    expect(outcome).toMatchObject({ state: 'failed', failureClass: 'template_misconfigured' });
  }, 600_000);
});
