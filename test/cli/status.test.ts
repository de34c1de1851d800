/**
 * `unicop status` (the compiled executable) against the real stack: every stage a change passes is
 * read — NetBox's background queues, the resolver's and dispatcher's consumer lag, the reconcile
 * queue, the root, AWX's pending jobs — none reported unknown when its source is configured, and
 * with --root the root's stage says who holds its lease (taken here through the real plugin), then
 * clear once it is released; and where the root's newest change is: held by that lease (the root has
 * no job in the queue, no open run), not once it is released.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveSecret } from '../../core/config.js';
import { stageOrder } from '../../core/status/why-it-waits.js';
import { createSite, testPlugin } from '../support/reconciler.js';
import { stack, stackFact } from '../support/stack.js';
import { assertBuilt, runUnicop } from './run-unicop.js';

type Stage = { stage: string; state: string; summary: string; figures: Record<string, unknown> };

describe('unicop status', () => {
  beforeAll(() => assertBuilt());

  const env = () => ({
    UNICOP_VAR: '/nonexistent', // nothing from var/stack.env: only what is given here
    UNICOP_NETBOX_URL: stack.netboxUrl(),
    UNICOP_NETBOX_TOKEN: 'env:STATUS_TEST_NETBOX_TOKEN',
    STATUS_TEST_NETBOX_TOKEN: stack.netboxToken(),
    UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
    // A Redis database of the test's own (12): its reconcile queue is empty, so the root's change is
    // held by the lease alone, not by a job the stack's workers (when running) queued for the site.
    UNICOP_REDIS_URL: `${stack.redisUrl()}/12`,
    UNICOP_AWX_URL: stackFact('UNICOP_AWX_REAL_URL'),
    UNICOP_AWX_TOKEN: 'env:STATUS_TEST_AWX_TOKEN',
    STATUS_TEST_AWX_TOKEN: resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env) as string,
  });

  const statusOf = async (rootKey: string) => {
    const ran = await runUnicop(['status', '--root', rootKey, '--json'], env());
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    return JSON.parse(ran.stdout) as {
      rootKey: string;
      holding: Stage | null;
      change: { stage: string | null; reason: string; summary: string } | null;
      stages: Stage[];
    };
  };

  it("reads every stage, and names the root's lease holder while it holds the root", async () => {
    const site = await createSite();
    const plugin = testPlugin();
    const lease = await plugin.acquireLease(site.root.id, 'status-test-holder', 120);
    let held: Awaited<ReturnType<typeof statusOf>>;
    try {
      held = await statusOf(site.rootKey);
    } finally {
      await plugin.releaseLease(site.root.id, lease.token);
    }
    const released = await statusOf(site.rootKey);

    expect(held.rootKey).toBe(site.rootKey);
    expect(held.stages.map((s) => s.stage)).toEqual([...stageOrder]);
    expect(held.stages.filter((s) => s.state === 'unknown')).toEqual([]);
    const rootHeld = held.stages.find((s) => s.stage === 'root') as Stage;
    expect(rootHeld.state).toBe('holding');
    expect(rootHeld.summary).toContain('status-test-holder');
    expect(rootHeld.figures.lease).toMatchObject({
      live: true,
      holder: 'status-test-holder',
      token: lease.token,
    });
    for (const group of ['resolver', 'dispatcher']) {
      const stage = held.stages.find((s) => s.stage === group) as Stage;
      expect(JSON.stringify(stage.figures), `${group} figures`).toMatch(/lag/i);
    }

    expect(held.change).toMatchObject({ stage: 'root', reason: 'lease-held' });
    expect(held.change?.summary).toContain('lease held by status-test-holder');

    // Released: not held by this holder (another loop on the shared stack may lease the site meanwhile).
    expect(released.change?.summary).not.toContain('status-test-holder');
    const rootFree = released.stages.find((s) => s.stage === 'root') as Stage;
    expect(rootFree.state).toBe('clear');
    expect(rootFree.figures.lease).toMatchObject({ live: false });
  }, 300_000);
});
