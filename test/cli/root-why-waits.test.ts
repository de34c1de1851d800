/**
 * "Why does it wait", held for real (issue #16 items 1 and 5): the pipeline runs up to the reconcile
 * queue — NetBox's event rule → signed webhook → a real bridge → unicop.changes → resolver →
 * unicop.intents → dispatcher → BullMQ — with no reconcile worker, so a real NetBox edit of a site
 * stops in the queue, behind two jobs queued before it. The compiled `unicop root why` (--json and
 * human) and the bridge's admin API `GET /status?root=` both name the reconcile queue, the job and the
 * 2 jobs ahead of it. Then a worker starts: the edit is reconciled by the stack's real AWX, and both
 * say reconciled, no hold.
 *
 * The queue has the production name (`unicop-reconcile`, what the CLI and the bridge read) in a Redis
 * database of this test's own (11), so the stack's queue and other tests' queues are never touched.
 */

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { FreezeView } from '../../core/control/freeze-view.js';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { reconcileQueueName } from '../../core/queues.js';
import type { PipelineStatus } from '../../core/status/why-it-waits.js';
import { startDispatcher } from '../../workers/dispatcher/dispatcher.js';
import {
  type ReconcileJobData,
  reconcileJobName,
  reconcileJobOptions,
} from '../../workers/reconcile-queue.js';
import { startReconcileWorker } from '../../workers/reconciler/worker.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { positionGroupAtEnd, type TailedMessage, TopicTail, waitForEditIntent } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { OpenApiDocument } from '../support/openapi.js';
import { hookNetboxTo, OwnIntents, startTestResolver } from '../support/pipeline.js';
import { type BackHalf, createSite, reconcileJob, startBackHalf } from '../support/reconciler.js';
import { redisDatabaseUrl, stack, testRedisDatabases, uniqueName } from '../support/stack.js';
import { assertBuilt, runUnicop } from './run-unicop.js';

// Caps, not budgets: NetBox's one rqworker sends the webhook after every job queued before it (637
// queued, the oldest 294 s, on the loaded stack); a real AWX job starts a container.
const changeCapMs = 1_200_000;
const outcomeCapMs = 420_000;
const reconciledCapMs = 300_000;
// A Redis database of this test's own (UNICOP_TEST_WAITS_DB, 11 by default).
const redisUrl = redisDatabaseUrl(
  Number(process.env.UNICOP_TEST_WAITS_DB ?? testRedisDatabases.rootWhyWaits),
);
const spec = new OpenApiDocument(join(repoRoot, 'openapi', 'bridge.yaml'));
const adminToken = randomBytes(16).toString('hex');

type Data = Record<string, unknown>;
const dataOf = (m: TailedMessage) => m.value.data as Data;
type Why = { rootKey: string; runId: string | null; waits: PipelineStatus['change'] & {} };

describe('why it waits, held in the reconcile queue (compiled CLI, real bridge, real stack)', () => {
  const log = createLogger('root-why-waits-test', process.env.UNICOP_TEST_LOG ?? 'silent');
  let back: BackHalf;
  let bridge: RunningBridge;
  let own: OwnIntents;
  let unhook: () => Promise<void>;
  let resolver: Awaited<ReturnType<typeof startTestResolver>>;
  let freezeView: FreezeView;
  let dispatcher: { stop(): Promise<void> };
  let queue: Queue<ReconcileJobData>;
  let worker: ReturnType<typeof startReconcileWorker> | undefined;
  let tail: TopicTail;

  beforeAll(async () => {
    assertBuilt();
    back = await startBackHalf();
    queue = new Queue<ReconcileJobData>(reconcileQueueName, { connection: { url: redisUrl } });
    await queue.obliterate({ force: true }); // this database is the test's own: nothing of another run
    const secret = randomBytes(24).toString('hex');
    bridge = await startBridge({
      UNICOP_WEBHOOK_SECRETS: secret,
      UNICOP_REDIS_URL: redisUrl,
      UNICOP_ADMIN_TOKEN: adminToken,
      UNICOP_ADMIN_BREAK_GLASS: 'true', // the CLI's break-glass path (decision 0051)
      UNICOP_NETBOX_TOKEN: stack.netboxToken(),
      UNICOP_AWX_URL: back.awx.url,
      UNICOP_AWX_TOKEN: back.awx.token,
    });
    own = new OwnIntents(bridge);
    unhook = await hookNetboxTo(bridge.url, secret, ['dcim.site']);
    resolver = await startTestResolver();
    freezeView = new FreezeView(
      new KafkaEventStream(back.kafka, { topic: topics.control, groupId: uniqueName('control') }, log),
    );
    await freezeView.start();
    const groupId = uniqueName('dispatcher');
    await positionGroupAtEnd(back.kafka, groupId, topics.intents);
    // Only this test's root, and only the intents of changes this bridge accepted for it (OwnIntents):
    // the topic is shared, and other tests' resolvers and bridges add intents for the same edit.
    dispatcher = await startDispatcher(
      { queue, freezeView, eventLog: back.eventLog },
      {
        kafka: back.kafka,
        log,
        groupId,
        wrapBatches: (handle) => (records) => handle(records.filter(own.accepts)),
      },
    );
    tail = await TopicTail.start([topics.changes, topics.intents, topics.audit, topics.outcomes]);
  }, 180_000);
  afterAll(async () => {
    await tail?.stop();
    await worker?.close();
    await dispatcher?.stop();
    await freezeView?.stop();
    await resolver?.stop();
    await unhook?.();
    await bridge?.close();
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    await back?.stop();
  });

  const cliEnv = () => ({
    UNICOP_VAR: '/nonexistent', // nothing from var/stack.env: only what is given here
    UNICOP_NETBOX_URL: stack.netboxUrl(),
    UNICOP_NETBOX_TOKEN: 'env:WAITS_TEST_NETBOX_TOKEN',
    WAITS_TEST_NETBOX_TOKEN: stack.netboxToken(),
    UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
    UNICOP_REDIS_URL: redisUrl,
    UNICOP_AWX_URL: back.awx.url,
    UNICOP_AWX_TOKEN: 'env:WAITS_TEST_AWX_TOKEN',
    WAITS_TEST_AWX_TOKEN: back.awx.token,
  });
  const rootWhy = async (rootKey: string) => {
    const json = await runUnicop(['root', 'why', rootKey, '--json'], cliEnv());
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const human = await runUnicop(['root', 'why', rootKey], cliEnv());
    expect(human.code).toBe(0);
    return { why: JSON.parse(json.stdout) as Why, human: human.stdout };
  };
  const adminStatus = async (rootKey: string) => {
    const res = await fetch(`${bridge.url}/status?root=${encodeURIComponent(rootKey)}`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    });
    const body = (await res.json()) as PipelineStatus;
    expect(res.status).toBe(200);
    expect(spec.check('GET', '/status', res.status, res.headers.get('content-type'), body)).toEqual([]);
    return body;
  };

  it('names the reconcile queue and the jobs ahead while no worker runs, then reconciled once one does', async () => {
    // Two jobs of other roots queued first: the site's job is third in BullMQ's order.
    const ahead = [reconcileJob('site/999999901'), reconcileJob('site/999999902')];
    for (const job of ahead) await queue.add(reconcileJobName, job, reconcileJobOptions(job));
    const site = await createSite({ created: (rootKey) => own.roots.add(rootKey) });
    const editedAt = Date.now();
    await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description: 'held in the queue' });
    const { intent } = await waitForEditIntent(
      tail,
      { objectType: 'dcim.site', objectId: site.id, event: 'updated', rootKey: site.rootKey },
      changeCapMs,
      own,
    );
    // The dispatcher's word that the edit's intent is in the queue (its own job, or coalesced into the
    // creation's, which waits there too).
    await tail.waitFor(
      (m) =>
        m.topic === topics.audit &&
        ['intent.queued', 'intent.coalesced'].includes(String(dataOf(m).action)) &&
        (dataOf(m).correlation as Data).intentId === intent.intentId,
      1,
      changeCapMs,
    );
    const jobId = await queue.getDeduplicationJobId(site.rootKey);
    expect(jobId).toEqual(expect.any(String));

    const held = await rootWhy(site.rootKey);
    expect(held.why.rootKey).toBe(site.rootKey);
    expect(held.why.waits).toMatchObject({
      rootKey: site.rootKey,
      reconciled: false,
      stage: 'reconcile-queue',
      reason: 'waiting-for-worker',
      figures: { job: { jobId, state: 'prioritized', ahead: 2 } },
    });
    expect(held.human).toContain(`held at reconcile-queue (waiting-for-worker): job ${jobId} waits`);
    expect(held.human).toContain('2 job(s) ahead of it');
    const heldStatus = await adminStatus(site.rootKey);
    expect(heldStatus.rootKey).toBe(site.rootKey);
    expect(heldStatus.change).toMatchObject({
      stage: 'reconcile-queue',
      reason: 'waiting-for-worker',
      figures: { job: { jobId, ahead: 2 } },
    });
    expect(heldStatus.stages.find((s) => s.stage === 'reconcile-queue')?.figures).toMatchObject({
      prioritized: 3,
      active: 0,
    });

    // The jobs ahead were never real roots: removed, and a worker starts on the queue.
    for (const job of ahead) await queue.remove(job.intentId);
    worker = startReconcileWorker(
      back.reconciler({}, { freezeView }),
      { redisUrl, concurrency: 1, queueName: reconcileQueueName },
      log,
    );
    const outcome = dataOf(
      (
        await tail.waitFor(
          (m) =>
            m.topic === topics.outcomes &&
            m.key === site.rootKey &&
            Date.parse(String(dataOf(m).startedAt)) >= editedAt,
          1,
          outcomeCapMs,
        )
      )[0] as TailedMessage,
    );
    expect(outcome.state).toBe('succeeded');
    await tail.waitFor(
      (m) =>
        m.topic === topics.audit &&
        m.key === site.rootKey &&
        dataOf(m).action === 'lease.released' &&
        (dataOf(m).correlation as Data).fencingToken === outcome.fencingToken,
      1,
      outcomeCapMs,
    );

    // Asked again until it says reconciled (a cap, not a budget): on the shared stack another test's
    // loop, taking every intent on unicop.intents, may run the site once more after this run.
    let done = await rootWhy(site.rootKey);
    for (const started = Date.now(); !done.why.waits.reconciled && Date.now() - started < reconciledCapMs; ) {
      await new Promise((r) => setTimeout(r, 5_000));
      done = await rootWhy(site.rootKey);
    }
    expect(done.why.runId).toEqual(expect.any(String));
    expect(done.why.waits).toMatchObject({ reconciled: true, stage: null, reason: 'reconciled' });
    expect(done.human).toMatch(/now +reconciled: the current snapshot hash/);
    const doneStatus = await adminStatus(site.rootKey);
    expect(doneStatus.change).toMatchObject({ reconciled: true, stage: null, reason: 'reconciled' });
  }, 2_400_000);

  it('GET /status: the admin token is required and a malformed root is refused, as documented', async () => {
    const anonymous = await fetch(`${bridge.url}/status`);
    expect(anonymous.status).toBe(401);
    expect(
      spec.check('GET', '/status', 401, anonymous.headers.get('content-type'), await anonymous.json()),
    ).toEqual([]);
    const bad = await fetch(`${bridge.url}/status?root=not-a-key`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    });
    expect(bad.status).toBe(422);
    expect(spec.check('GET', '/status', 422, bad.headers.get('content-type'), await bad.json())).toEqual([]);
    const all = await fetch(`${bridge.url}/status`, { headers: { Authorization: `Bearer ${adminToken}` } });
    const body = (await all.json()) as PipelineStatus;
    expect(all.status).toBe(200);
    expect(spec.check('GET', '/status', 200, all.headers.get('content-type'), body)).toEqual([]);
    expect(body).toMatchObject({ rootKey: null, change: null });
  }, 120_000);
});
