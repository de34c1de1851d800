/**
 * `unicop root why` (compiled) against the real stack: a NetBox edit made through the pipeline (NetBox's
 * event rule → signed webhook → bridge → unicop.changes → resolver → unicop.intents → dispatcher →
 * BullMQ → reconciler → the stack's real AWX) is followed to its outcome; then each link the command
 * prints, in --json, is held against what actually happened: the change id, actor, request id and object
 * of the change on unicop.changes; the intent on unicop.intents that names that change; the dispatcher's
 * `intent.queued` for it; the run's lease token and outcome as unicop.outcomes has them; the AWX job and
 * its status as AWX itself reports them. The human form names the same ids.
 *
 * On a shared stack its bridge keeps its delivery memory in a Redis database of its own, and its
 * dispatcher takes only the intents of the changes that bridge accepted for the site (OwnIntents),
 * one per change: another test's loop does not run the site, and this one runs no other root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { type TailedMessage, TopicTail, waitForEditIntent } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { type FrontHalf, OwnIntents, startFrontHalf } from '../support/pipeline.js';
import {
  type BackHalf,
  createSite,
  startBackHalf,
  startDispatchAndReconcile,
} from '../support/reconciler.js';
import { redisDatabaseUrl, stack, testRedisDatabases } from '../support/stack.js';
import { assertBuilt, runUnicop } from './run-unicop.js';

// Caps, not budgets: a real AWX job starts a container; minutes on a loaded stack.
const outcomeCapMs = 420_000;

type Data = Record<string, unknown>;
const dataOf = (m: TailedMessage) => m.value.data as Data;

describe('unicop root why (compiled, real stack)', () => {
  let front: FrontHalf;
  let back: BackHalf;
  let loop: Awaited<ReturnType<typeof startDispatchAndReconcile>>;
  let tail: TopicTail;
  let own: OwnIntents;

  beforeAll(async () => {
    assertBuilt();
    back = await startBackHalf();
    front = await startFrontHalf(['dcim.site'], {
      UNICOP_REDIS_URL: redisDatabaseUrl(testRedisDatabases.rootWhy),
    });
    own = new OwnIntents(front.bridge);
    loop = await startDispatchAndReconcile(back, 2, { onlyIntents: own.accepts });
    tail = await TopicTail.start([topics.changes, topics.intents, topics.audit, topics.outcomes]);
  }, 180_000);
  afterAll(async () => {
    await tail?.stop();
    await loop?.stop();
    await front?.stop();
    await back?.stop();
  });

  it("prints the chain of a NetBox edit's run: change, intent, queue, lease token, AWX job, outcome", async () => {
    const site = await createSite({ created: (rootKey) => own.roots.add(rootKey) });
    const outcomesOf = (m: TailedMessage) => m.topic === topics.outcomes && m.key === site.rootKey;
    // The creation's run first, so that the edit's run is the root's latest.
    await tail.waitFor(outcomesOf, 1, outcomeCapMs);
    await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description: 'why was this reconciled?' });
    const { change, intent } = await waitForEditIntent(
      tail,
      { objectType: 'dcim.site', objectId: site.id, event: 'updated', rootKey: site.rootKey },
      outcomeCapMs,
      own,
    );
    const outcome = dataOf(
      (
        await tail.waitFor((m) => outcomesOf(m) && dataOf(m).intentId === intent.intentId, 1, outcomeCapMs)
      )[0] as TailedMessage,
    );
    expect(outcome.awxJobId).toEqual(expect.any(Number));
    const awxJob = await back.awx.client.getJob(outcome.awxJobId as number);

    const env = {
      UNICOP_VAR: '/nonexistent', // nothing from var/stack.env: only what is given here
      UNICOP_NETBOX_URL: stack.netboxUrl(),
      UNICOP_NETBOX_TOKEN: 'env:WHY_TEST_NETBOX_TOKEN',
      WHY_TEST_NETBOX_TOKEN: stack.netboxToken(),
      UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
      UNICOP_AWX_URL: back.awx.url,
      UNICOP_AWX_TOKEN: 'env:WHY_TEST_AWX_TOKEN',
      WHY_TEST_AWX_TOKEN: back.awx.token,
    };
    const ran = await runUnicop(['root', 'why', site.rootKey, '--json'], env);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const chain = JSON.parse(ran.stdout) as Data;
    expect(chain).toMatchObject({
      rootKey: site.rootKey,
      runId: outcome.runId,
      change: {
        changeId: change.changeId,
        actor: change.actor,
        requestId: change.requestId,
        event: 'updated',
        object: { type: 'dcim.site', id: site.id },
        occurredAt: change.occurredAt,
        onLog: true,
      },
      intent: { intentId: intent.intentId, cause: 'change', onLog: true },
      queue: { action: 'queued', jobId: intent.intentId },
      lease: { fencingToken: outcome.fencingToken },
      awx: { jobId: awxJob.id, status: awxJob.status, url: outcome.awxJobUrl },
      outcome: { state: outcome.state, failureClass: outcome.failureClass, onLog: true },
    });
    expect(change.actor).toEqual(expect.any(String));
    expect(change.requestId).toEqual(expect.any(String));

    const human = await runUnicop(['root', 'why', site.rootKey], env);
    expect(human.code).toBe(0);
    for (const text of [change.changeId, intent.intentId, `job ${awxJob.id}`, `AWX says ${awxJob.status}`]) {
      expect(human.stdout).toContain(String(text));
    }
  }, 1_200_000);
});
