/**
 * The validation gate before launch on the real stack (docs/decisions/0060): NetBox with the plugin and
 * the stack's `tunnel-group` kind (anchor vpn.tunnelgroup, members its tunnels, policy `schema`: every
 * member's name in lower case — scripts/stack.d/netbox.sh), Kafka, and the stack's real AWX 24.6.1
 * running the real site playbook.
 *
 * - a tunnel group whose tunnel is named against the schema: the run ends `failed`, outcome class
 *   `invalid_snapshot`, the failing path in its summary and in the root's journal, `run.failed` audited
 *   with the class, no retry, and AWX holds no job of the root;
 * - the same kind with a snapshot the schema accepts: the run launches and succeeds (the gate lets it by);
 * - a per-root override (decision 0062: the anchor's custom field `unicop_policy`) giving a `site` root a
 *   schema its kind does not have — at least one member — refuses that root's snapshot the same way.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import type { PluginRun } from '../../core/plugin/client.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import {
  type BackHalf,
  createAnchor,
  createSite,
  journalOf,
  reconcileJob,
  startBackHalf,
} from '../support/reconciler.js';
import { uniqueName } from '../support/stack.js';

describe('validation gate: the kind schema checked before launch', () => {
  let back: BackHalf;
  let tail: TopicTail;
  const of = (key: string, topic: string) => (m: TailedMessage) => m.key === key && m.topic === topic;
  const runsOf = (rootKey: string): Promise<PluginRun[]> => back.plugin.listRuns(rootKey);

  beforeAll(async () => {
    // The override's custom field, made by the plugin's command (idempotent; unicop_bootstrap runs it too).
    execFileSync(join(repoRoot, 'scripts', 'stack.d', 'netbox.sh'), [
      'exec',
      'netbox',
      'unicop_policy_field',
    ]);
    back = await startBackHalf();
    tail = await TopicTail.start([topics.outcomes, topics.audit]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  /** A tunnel group root of the stack's `tunnel-group` kind with one tunnel named `tunnelName`. */
  async function tunnelGroupWith(tunnelName: string) {
    const name = uniqueName('tg');
    const group = await createAnchor('/api/vpn/tunnel-groups/', 'tunnel-group', {
      name,
      slug: name.toLowerCase(),
    });
    expect(group.root.policy).toMatchObject({ schema: { type: 'object' } });
    await netbox('POST', '/api/vpn/tunnels/', {
      name: tunnelName,
      status: 'active',
      group: group.id,
      encapsulation: 'ipsec-tunnel',
    });
    return group;
  }

  it('a snapshot the kind schema refuses: failed / invalid_snapshot naming the path, journaled and audited, no AWX job', async () => {
    const group = await tunnelGroupWith(`Not Lower Case ${uniqueName('t')}`);

    expect(await back.reconciler().reconcile(reconcileJob(group.rootKey))).toEqual({ kind: 'done' });

    const [run] = await runsOf(group.rootKey);
    expect(run).toMatchObject({ state: 'failed', outcome_class: 'invalid_snapshot', awx_job_id: null });
    expect(run?.summary).toContain("snapshot refused by root kind tunnel-group's schema, nothing launched");
    expect(run?.summary).toContain('/members/0/name must match pattern');
    // Paths and the schema's words, never the snapshot's values (a member field may hold a secret).
    expect(run?.summary).not.toContain('Not Lower Case');
    const journal = await journalOf('vpn.tunnelgroup', group.id);
    expect(journal[0]?.kind.value).toBe('danger');
    expect(journal[0]?.comments).toContain('/members/0/name');

    const [audited] = await tail.waitFor(
      (m) =>
        of(group.rootKey, topics.audit)(m) && (m.value.data as { action: string }).action === 'run.failed',
    );
    expect(audited?.value.data).toMatchObject({
      outcome: 'failed',
      correlation: { runId: run?.run_id, failureClass: 'invalid_snapshot' },
    });
    expect((audited?.value.data as { reason?: string } | undefined)?.reason).toContain('/members/0/name');
    expect(JSON.stringify(audited?.value)).not.toContain('Not Lower Case');
    const [outcome] = await tail.waitFor(of(group.rootKey, topics.outcomes));
    expect(outcome?.value.data).toMatchObject({ state: 'failed', failureClass: 'invalid_snapshot' });
    // Terminal: no retry run, and AWX never saw the root.
    expect(await runsOf(group.rootKey)).toHaveLength(1);
    expect(await back.awx.jobsOf(group.rootKey)).toEqual([]);
  }, 600_000);

  it('a snapshot the kind schema accepts: the run launches and succeeds', async () => {
    const group = await tunnelGroupWith(uniqueName('t').toLowerCase());

    await back.reconciler().reconcile(reconcileJob(group.rootKey));

    const [run] = await runsOf(group.rootKey);
    expect(run).toMatchObject({ state: 'succeeded', outcome_class: '' });
    expect(await back.awx.jobsOf(group.rootKey)).toHaveLength(1);
  }, 600_000);

  it('a per-root override gives a site root a schema: its snapshot (no members) is refused, no AWX job', async () => {
    const site = await createSite();
    const schema = { type: 'object', properties: { members: { type: 'array', minItems: 1 } } };
    await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { custom_fields: { unicop_policy: { schema } } });
    // The root says its schema is its override's (decision 0068), and so does the refusal (review B #10).
    expect((await back.plugin.findRoot(site.rootKey))?.policy).toMatchObject({
      schema,
      overridden: { schema: 'override' },
    });

    await back.reconciler().reconcile(reconcileJob(site.rootKey));

    const [run] = await runsOf(site.rootKey);
    expect(run).toMatchObject({ state: 'failed', outcome_class: 'invalid_snapshot', awx_job_id: null });
    expect(run?.summary).toContain(
      `snapshot refused by ${site.rootKey}'s unicop_policy override's schema, nothing launched: /members must NOT have fewer than 1 items`,
    );
    expect(await back.awx.jobsOf(site.rootKey)).toEqual([]);
  }, 600_000);
});
