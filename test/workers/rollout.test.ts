/**
 * Gradual rollout on the real stack (docs/decisions/0061): real NetBox + plugin, Kafka, Redis, the
 * stack's real AWX 24.6.1 running the real site playbook, Keycloak for the operator's resume/abort
 * through a real bridge's admin API and the operator CLI (needs `npm run build`). One NetBox
 * request (a bulk PATCH of the test's own sites' descriptions) touches N site roots; a site whose description says `unicop:fail-apply` makes its apply run fail
 * (awx-playbooks/site.yml's test hook). The front of the loop is the real one: NetBox's webhook to a
 * bridge, `unicop.changes`, a resolver with the rollout gate, the dispatcher and a reconcile worker
 * (taking this test's roots only), and the rollout worker on `unicop.outcomes`.
 *
 * Settings: more than 3 roots → a rollout, waves "1,2,rest", threshold 0.4.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { intentMessage } from '../../core/events/intent.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient } from '../../core/plugin/client.js';
import { RolloutStore, type RolloutSummary } from '../../core/rollout/store.js';
import { startResolver } from '../../workers/resolver/resolver.js';
import { type RolloutSettings, startRolloutWorker } from '../../workers/rollout/rollout.js';
import { assertBuilt, runUnicop } from '../cli/run-unicop.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { positionGroupAtEnd, type TailedMessage, TopicTail } from '../support/kafka.js';
import { keycloak, keycloakUsers, userToken } from '../support/keycloak.js';
import { netbox } from '../support/netbox.js';
import { hookNetboxTo } from '../support/pipeline.js';
import {
  type BackHalf,
  createAnchor,
  eventually,
  startBackHalf,
  startDispatchAndReconcile,
} from '../support/reconciler.js';
import { signedInCliEnv } from '../support/signed-in-cli.js';
import { stack, uniqueName } from '../support/stack.js';

const settings: RolloutSettings = { minRoots: 3, plan: '1,2,rest', failureThreshold: 0.4 };

describe('gradual rollout: one NetBox request touching many site roots, the real site playbook', () => {
  const prefix = uniqueName('rollout').toLowerCase();
  const log = createLogger('rollout-test', process.env.UNICOP_TEST_LOG ?? 'silent');
  const mine = new Set<string>();
  let siteCount = 0;
  const store = new RolloutStore({
    baseUrl: stack.netboxUrl(),
    token: stack.netboxToken(),
    timeoutMs: 30_000,
  });
  let back: BackHalf;
  let bridge: RunningBridge;
  let tail: TopicTail;
  let eventLog: KafkaEventLog;
  const stops: (() => Promise<unknown>)[] = [];

  async function sites(n: number): Promise<{ id: number; rootKey: string }[]> {
    const made = [];
    for (let i = 0; i < n; i++) {
      const name = `${prefix}-${siteCount++}`;
      made.push(await createAnchor('/api/dcim/sites/', 'site', { name, slug: name, status: 'active' }));
    }
    // Roots go into waves in key order (same digit count here: numeric order).
    return made.sort((a, b) => (a.rootKey < b.rootKey ? -1 : 1));
  }

  /** One request: a bulk PATCH of the sites' descriptions (`fail` ones make their apply runs fail). */
  async function bulkEdit(all: { id: number }[], fail: Set<number>, tag: string): Promise<void> {
    await netbox(
      'PATCH',
      '/api/dcim/sites/',
      all.map((s) => ({
        id: s.id,
        description: fail.has(s.id) ? `unicop:fail-apply ${tag}` : `rollout ${tag}`,
      })),
    );
  }

  const rolloutOf = async (rootKey: string): Promise<RolloutSummary> => {
    const r = await eventually(
      async () => (await store.list({ root: rootKey }))[0],
      `a rollout holding ${rootKey}`,
      120_000,
    );
    openedIds.push(r.rollout_id);
    return r;
  };

  /**
   * The runs of a held root that the claim forbids before its wave opens, exactly (review-A #8, no time
   * grace): a run caused by the rollout's own request (its request id among the run's request ids) or
   * by one of the ungated intents this test appended for it; and the AWX jobs of such runs. A run of the
   * site's creation (another request) may run before or around the opening: not counted.
   */
  async function forbiddenRuns(rootKey: string, rolloutId: string, intentIds: Set<string>) {
    const runs = (await back.plugin.listRuns(rootKey)).filter(
      (r) => (r.request_ids ?? []).includes(rolloutId) || intentIds.has(r.intent_id ?? ''),
    );
    const ids = new Set(runs.map((r) => r.run_id));
    const jobs = (await back.awx.jobsOf(rootKey)).filter((j) => ids.has(j.run_id ?? ''));
    return { runs: runs.map((r) => r.run_id), jobs: jobs.map((j) => j.id) };
  }
  const openedIds: string[] = [];

  /** What became of an intent for a root: `parked: <reason>` (its `intent.parked` audit) or `ran: <run id>`. */
  async function fateOf(rootKey: string, intentId: string): Promise<string> {
    const deadline = Date.now() + 300_000;
    for (;;) {
      const parked = tail.messages.find(
        (m) =>
          m.topic === topics.audit &&
          (m.value.data as EventData<'audit'>).action === 'intent.parked' &&
          (m.value.data as EventData<'audit'>).correlation.intentId === intentId,
      );
      if (parked) return `parked: ${(parked.value.data as EventData<'audit'>).reason}`;
      const run = (await back.plugin.listRuns(rootKey)).find((r) => r.intent_id === intentId);
      if (run) return `ran: ${run.run_id}`;
      if (Date.now() > deadline) return 'neither parked nor run within 300 s';
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  const rolloutEvents = (id: string, transition: string) => (m: TailedMessage) =>
    m.topic === topics.control &&
    m.key === id &&
    (m.value.data as EventData<'rollout'>).transition === transition;

  async function admin(path: string, body: unknown, key = randomBytes(8).toString('hex')) {
    const token = await userToken(keycloakUsers.operator);
    const res = await fetch(`${bridge.url}${path}`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${token}`,
        'Idempotency-Key': key,
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  beforeAll(async () => {
    assertBuilt();
    back = await startBackHalf();
    tail = await TopicTail.start([topics.control, topics.intents, topics.audit]);
    const secret = randomBytes(24).toString('hex');
    bridge = await startBridge({
      ...keycloak.env(),
      UNICOP_NETBOX_TOKEN: stack.netboxToken(),
      UNICOP_WEBHOOK_SECRETS: secret,
    });
    stops.push(() => bridge.close());
    stops.push(await hookNetboxTo(bridge.url, secret, ['dcim.site'], prefix));
    const kafka = new Kafka({ clientId: prefix, brokers: stack.kafkaBrokers(), logLevel: logLevel.NOTHING });
    eventLog = new KafkaEventLog(kafka);
    stops.push(() => eventLog.close());
    const resolverGroup = uniqueName('rollout-resolver');
    await positionGroupAtEnd(kafka, resolverGroup, topics.changes);
    const resolver = await startResolver({
      changes: new KafkaEventStream(
        kafka,
        { topic: topics.changes, groupId: resolverGroup, initialBackoffMs: 200, maxBackoffMs: 2000 },
        log,
      ),
      eventLog,
      resolver: new PluginClient({
        baseUrl: stack.netboxUrl(),
        token: stack.netboxToken(),
        timeoutMs: 30_000,
      }),
      log,
      rollouts: { store, settings },
    });
    stops.push(() => resolver.stop());
    const outcomesGroup = uniqueName('rollout-worker');
    await positionGroupAtEnd(kafka, outcomesGroup, topics.outcomes);
    const worker = await startRolloutWorker({
      outcomes: new KafkaEventStream(
        kafka,
        { topic: topics.outcomes, groupId: outcomesGroup, initialBackoffMs: 200, maxBackoffMs: 2000 },
        log,
      ),
      store,
      eventLog,
      log,
    });
    stops.push(() => worker.stop());
    const loop = await startDispatchAndReconcile(back, 3, {
      onlyIntents: (r) => r.key !== null && mine.has(r.key),
    });
    stops.push(() => loop.stop());
  }, 300_000);

  afterAll(async () => {
    // A rollout this test left live (a failed assertion) holds its roots: end it.
    for (const id of openedIds)
      await store.decide(id, 'abort', 'rollout.test', 'test ended').catch(() => undefined);
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await tail?.stop();
    await back?.stop();
  });

  it('halts after the wave above the threshold: its held roots stay held (no AWX job), NetBox says held; resume runs them; done', async () => {
    const all = await sites(6);
    for (const s of all) mine.add(s.rootKey);
    const [first, failing, third, ...held] = all;
    await bulkEdit(all, new Set([failing?.id as number]), 'halt');

    const opened = await rolloutOf(first?.rootKey as string);
    expect(opened.waves).toEqual([1, 2, 3]);
    expect(opened.roots_total).toBe(6);
    await tail.waitFor(rolloutEvents(opened.rollout_id, 'opened'));
    const [halt] = await tail.waitFor(rolloutEvents(opened.rollout_id, 'halted'), 1, 900_000);
    expect((halt?.value.data as EventData<'rollout'> | undefined)?.reason).toContain('1 of 2 runs failed');

    const halted = (await store.get(opened.rollout_id)) as RolloutSummary;
    expect(halted.state).toBe('halted');
    const stateOf = (r: RolloutSummary, key: string | undefined) =>
      r.members.find((m) => m.root_key === key)?.state;
    expect(stateOf(halted, first?.rootKey)).toBe('succeeded');
    expect(stateOf(halted, failing?.rootKey)).toBe('failed');
    expect(stateOf(halted, third?.rootKey)).toBe('succeeded');
    // An ungated intent for each held root, with an id of its own (a held intent's id may already be a
    // BullMQ job id: queued again, it would add nothing), as a manual reconcile or another resolver's
    // copy of the change brings one: the lease refuses it and the job is parked naming the rollout.
    const ungated = held.map(
      (s) =>
        intentMessage('unicop/rollout-test', s.rootKey, { kind: 'manual', actor: 'rollout.test' }).message,
    );
    const ungatedIds = new Set(ungated.map((m) => (JSON.parse(m.value) as { id: string }).id));
    await eventLog.append(ungated);
    // Each one's first fate (polled, cap 300 s): parked naming the rollout, or a run of it — which the
    // claim forbids, so it fails here at once rather than at the cap.
    for (const message of ungated) {
      const { id, subject: rootKey } = JSON.parse(message.value) as { id: string; subject: string };
      expect(await fateOf(rootKey, id)).toMatch(
        new RegExp(`^parked: .*root ${rootKey} is held by rollout ${opened.rollout_id}`),
      );
    }
    const stillHeld = (await store.get(opened.rollout_id)) as RolloutSummary;
    for (const s of held) {
      expect(stateOf(stillHeld, s.rootKey)).toBe('held');
      expect(stillHeld.members.find((m) => m.root_key === s.rootKey)?.parked).toBeGreaterThanOrEqual(1);
      expect((await back.plugin.findRoot(s.rootKey))?.status).toBe('held');
      expect(await forbiddenRuns(s.rootKey, opened.rollout_id, ungatedIds)).toEqual({ runs: [], jobs: [] });
    }

    const resumeAt = Date.now();
    const resumed = await admin(`/rollouts/${opened.rollout_id}/resume`, {
      reason: 'the failing site is a test',
    });
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ state: 'open', wave: 3, released: 3, by: keycloakUsers.operator });
    await tail.waitFor(rolloutEvents(opened.rollout_id, 'resumed'));
    await tail.waitFor(rolloutEvents(opened.rollout_id, 'done'), 1, 900_000);
    const done = (await store.get(opened.rollout_id)) as RolloutSummary;
    expect(done.state).toBe('done');
    for (const s of held) {
      expect(stateOf(done, s.rootKey)).toBe('succeeded');
      // Its member ended with a run begun after the resume (succeeded, or skipped when a run that held
      // the lease before the rollout opened had applied the same snapshot already).
      const member = done.members.find((m) => m.root_key === s.rootKey);
      const run = (await back.plugin.listRuns(s.rootKey)).find((r) => r.run_id === member?.run_id);
      expect(Date.parse(run?.started ?? '')).toBeGreaterThanOrEqual(resumeAt);
    }
  }, 1_800_000);

  it('abort after a halt (unicop rollout show/abort): the held roots never launch, the answer names them, NetBox no longer says held', async () => {
    const all = await sites(4);
    for (const s of all) mine.add(s.rootKey);
    const [first, ...rest] = all;
    await bulkEdit(all, new Set([first?.id as number]), 'abort');
    const opened = await rolloutOf(first?.rootKey as string);
    expect(opened.waves).toEqual([1, 2, 1]);
    await tail.waitFor(rolloutEvents(opened.rollout_id, 'halted'), 1, 900_000);

    // Through the operator's CLI (dist/bin/unicop.js), signed in as otto-operator.
    const env = await signedInCliEnv(keycloakUsers.operator, bridge.url);
    const shown = await runUnicop(['rollout', 'show', opened.rollout_id, '--json'], env);
    expect(shown.code).toBe(0);
    const heldShown = (JSON.parse(shown.stdout).rollout as RolloutSummary).members.filter(
      (m) => m.state === 'held',
    );
    expect(heldShown.map((m) => m.root_key)).toEqual(rest.map((s) => s.rootKey));
    const aborted = await runUnicop(
      ['rollout', 'abort', opened.rollout_id, '--reason', 'the first wave failed', '--json'],
      env,
    );
    expect(aborted.stderr).toBe('');
    expect(aborted.code).toBe(0);
    const answer = JSON.parse(aborted.stdout) as Record<string, unknown>;
    expect(answer).toMatchObject({ decision: 'abort', by: keycloakUsers.operator, state: 'aborted' });
    expect(answer.neverLaunched).toEqual(rest.map((s) => s.rootKey));
    await tail.waitFor(rolloutEvents(opened.rollout_id, 'aborted'));
    // A second abort is refused with the reason; nothing was held back in a queue meanwhile.
    expect((await admin(`/rollouts/${opened.rollout_id}/abort`, { reason: 'again' })).status).toBe(409);
    const after = (await store.get(opened.rollout_id)) as RolloutSummary;
    expect(after.state).toBe('aborted');
    for (const s of rest) {
      expect(after.members.find((m) => m.root_key === s.rootKey)?.state).toBe('aborted');
      expect((await back.plugin.findRoot(s.rootKey))?.status).not.toBe('held');
      expect(await forbiddenRuns(s.rootKey, opened.rollout_id, new Set())).toEqual({ runs: [], jobs: [] });
    }
  }, 1_800_000);

  it('a request touching no more than UNICOP_ROLLOUT_MIN_ROOTS roots opens no rollout: every intent goes out', async () => {
    const all = await sites(3);
    // Not taken by this test's loop (not in `mine`): only the resolver's output is looked at.
    await bulkEdit(all, new Set(), 'small');
    for (const s of all) {
      await tail.waitFor(
        (m) =>
          m.topic === topics.intents &&
          m.key === s.rootKey &&
          (m.value.data as EventData<'intent'>).cause.kind === 'change',
        1,
        120_000,
      );
      expect(await store.list({ root: s.rootKey })).toEqual([]);
    }
  }, 300_000);
});
