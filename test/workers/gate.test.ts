/**
 * The validation gate before launch on the real stack (docs/decisions/0060): NetBox with the plugin and
 * the stack's `rir` kind (anchor ipam.rir, members its aggregates, policy `schema`: every member's
 * description in lower case — scripts/stack.d/netbox.sh), Kafka, and the stack's real AWX 24.6.1
 * running the real site playbook.
 *
 * - an RIR whose aggregate is described against the schema: the run ends `failed`, outcome class
 *   `invalid_snapshot`, the failing path in its summary and in the root's journal, `run.failed` audited
 *   with the class, no retry, and AWX holds no job of the root;
 * - the same kind with a snapshot the schema accepts: the run launches and succeeds (the gate lets it by).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import type { PluginRun } from '../../core/plugin/client.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import {
  type BackHalf,
  createAnchor,
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
    back = await startBackHalf();
    tail = await TopicTail.start([topics.outcomes, topics.audit]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  /** An RIR root of the stack's `rir` kind with one aggregate (its own ULA /48) described `description`. */
  async function rirWith(description: string) {
    const name = uniqueName('rir');
    const rir = await createAnchor('/api/ipam/rirs/', 'rir', { name, slug: name.toLowerCase() });
    expect(rir.root.policy).toMatchObject({ schema: { type: 'object' } });
    const hex = () => Math.floor(Math.random() * 0x10000).toString(16);
    const prefix = `fd${Math.floor(Math.random() * 256)
      .toString(16)
      .padStart(2, '0')}:${hex()}:${hex()}::/48`;
    await netbox('POST', '/api/ipam/aggregates/', { prefix, rir: rir.id, description });
    return rir;
  }

  it('a snapshot the kind schema refuses: failed / invalid_snapshot naming the path, journaled and audited, no AWX job', async () => {
    const rir = await rirWith('Not Lower Case');

    expect(await back.reconciler().reconcile(reconcileJob(rir.rootKey))).toEqual({ kind: 'done' });

    const [run] = await runsOf(rir.rootKey);
    expect(run).toMatchObject({ state: 'failed', outcome_class: 'invalid_snapshot', awx_job_id: null });
    expect(run?.summary).toContain("snapshot refused by root kind rir's schema, nothing launched");
    expect(run?.summary).toContain('/members/0/description must match pattern');
    const journal = await journalOf('ipam.rir', rir.id);
    expect(journal[0]?.kind.value).toBe('danger');
    expect(journal[0]?.comments).toContain('/members/0/description');

    const [audited] = await tail.waitFor(
      (m) => of(rir.rootKey, topics.audit)(m) && (m.value.data as { action: string }).action === 'run.failed',
    );
    expect(audited?.value.data).toMatchObject({
      outcome: 'failed',
      correlation: { runId: run?.run_id, failureClass: 'invalid_snapshot' },
    });
    expect((audited?.value.data as { reason?: string } | undefined)?.reason).toContain(
      '/members/0/description',
    );
    const [outcome] = await tail.waitFor(of(rir.rootKey, topics.outcomes));
    expect(outcome?.value.data).toMatchObject({ state: 'failed', failureClass: 'invalid_snapshot' });
    // Terminal: no retry run, and AWX never saw the root.
    expect(await runsOf(rir.rootKey)).toHaveLength(1);
    expect(await back.awx.jobsOf(rir.rootKey)).toEqual([]);
  }, 600_000);

  it('a snapshot the kind schema accepts: the run launches and succeeds', async () => {
    const rir = await rirWith('lower case description');

    await back.reconciler().reconcile(reconcileJob(rir.rootKey));

    const [run] = await runsOf(rir.rootKey);
    expect(run).toMatchObject({ state: 'succeeded', outcome_class: '' });
    expect(await back.awx.jobsOf(rir.rootKey)).toHaveLength(1);
  }, 600_000);
});
