/**
 * The operator commands of the compiled `unicop`, each run once against the real stack: a bridge
 * (admin API) started here on a free port, the stack's NetBox with the plugin, Kafka and Redis, and
 * a real sweeper. `root status` reads the plugin; `reconcile`, `freeze`, `resume` and `sweep` act
 * through the admin API with an Idempotency-Key — a reconcile run twice with one key puts one intent
 * on unicop.intents, and the key reused for another request is refused; `root timeline` and `tail`
 * read the log (tail --follow live, stopped by SIGINT); `replay --dry-run` re-derives a change's
 * intent for the root. Output is checked in its --json form, and once in human form.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { type CloudEvent, topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { PluginClient, type PluginRoot } from '../../core/plugin/client.js';
import { intentFor } from '../../workers/resolver/resolve-changes.js';
import { Sweeper } from '../../workers/sweeper/sweeper.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail, testKafka } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { stack, uniqueName } from '../support/stack.js';
import { netbox47Body, sign } from '../support/webhooks.js';
import { assertBuilt, runUnicop, startUnicop } from './run-unicop.js';

const adminToken = randomBytes(24).toString('hex');

/**
 * The plugin as the sweeper sees it, listing only this test's root: the request's path (admin API,
 * Redis, sweeper, report) is what is shown here, and a sweep of the whole shared NetBox would put
 * intents for every other test's roots on unicop.intents.
 */
class OneRootPlugin extends PluginClient {
  constructor(private readonly rootKey: string) {
    super({ baseUrl: stack.netboxUrl(), token: stack.netboxToken() });
  }
  override async *allRoots(): AsyncGenerator<PluginRoot> {
    const root = await this.findRoot(this.rootKey);
    if (root) yield root;
  }
}
const webhookSecret = randomBytes(24).toString('hex');

type Json = Record<string, unknown>;
const parse = (stdout: string) => JSON.parse(stdout) as Json;
const lines = (stdout: string) =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Json);

describe('unicop operator commands (compiled, real stack)', () => {
  let bridge: RunningBridge;
  let tail: TopicTail;
  let site: { id: number; name: string; slug: string };
  let key: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    assertBuilt();
    const name = uniqueName('cli-site');
    site = await netbox('POST', '/api/dcim/sites/', { name, slug: name });
    key = `site/${site.id}`;
    tail = await TopicTail.start([topics.intents, topics.audit, topics.changes]);
    bridge = await startBridge({
      UNICOP_ADMIN_TOKEN: adminToken,
      UNICOP_ADMIN_BREAK_GLASS: 'true', // the CLI's break-glass path (decision 0051); OIDC: test/auth/
      UNICOP_NETBOX_TOKEN: stack.netboxToken(),
      UNICOP_WEBHOOK_SECRETS: webhookSecret,
    });
    env = {
      UNICOP_VAR: '/nonexistent', // nothing from var/stack.env: only what is given here
      UNICOP_ADMIN_URL: bridge.url,
      UNICOP_ADMIN_TOKEN: 'env:CLI_TEST_ADMIN_TOKEN',
      CLI_TEST_ADMIN_TOKEN: adminToken,
      UNICOP_NETBOX_URL: stack.netboxUrl(),
      UNICOP_NETBOX_TOKEN: 'env:CLI_TEST_NETBOX_TOKEN',
      CLI_TEST_NETBOX_TOKEN: stack.netboxToken(),
      UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
    };
  });
  afterAll(async () => {
    await bridge?.close();
    await tail?.stop();
    if (site) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });

  const manualIntents = (m: TailedMessage) =>
    m.topic === topics.intents &&
    m.key === key &&
    (m.value.data as { cause: { kind: string } }).cause.kind === 'manual';

  it('`root status` shows the root from the plugin: state, lease, last run, current vs reconciled hash (JSON and human)', async () => {
    const ran = await runUnicop(['root', 'status', key, '--json'], env);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const status = parse(ran.stdout);
    expect(status).toMatchObject({ key, kind: 'site', frozen: false });
    expect(status.lease).toMatchObject({ live: expect.any(Boolean), highestToken: expect.any(Number) });
    expect(status).toHaveProperty('lastRun');
    expect(typeof status.inStep).toBe('boolean');
    expect(status.inStep).toBe(
      status.currentHash !== null && status.currentHash === status.lastReconciledHash,
    );
    const human = await runUnicop(['root', 'status', key], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`root ${key} (site): `);
    expect(human.stdout).toMatch(/hash: +current \S+, last reconciled \S+ — (in step|differs)/);
    const missing = await runUnicop(['root', 'status', 'site/999999999'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('NetBox has no root site/999999999');
  });

  it('`reconcile` run twice with one idempotency key puts one intent on unicop.intents; the second answer is replayed', async () => {
    const idemKey = `cli-test-${randomBytes(8).toString('hex')}`;
    const args = ['reconcile', key, '--reason', 'cli test', '--idempotency-key', idemKey, '--json'];
    const first = await runUnicop(args, env);
    expect(first.code).toBe(0);
    const second = await runUnicop(args, env);
    expect(second.code).toBe(0);
    const a = parse(first.stdout);
    const b = parse(second.stdout);
    expect(a).toMatchObject({ rootKey: key, replayed: false, idempotencyKey: idemKey });
    expect(b).toMatchObject({ rootKey: key, replayed: true, intentId: a.intentId });
    // Count on Kafka after both acts: one manual intent for the root, and one intent.manual audit.
    const [intent] = await tail.waitFor(manualIntents);
    expect((intent?.value.data as Json | undefined)?.intentId).toBe(a.intentId);
    expect(await tail.settle(manualIntents, 3000)).toHaveLength(1);
    const audits = tail.messages.filter(
      (m) => m.topic === topics.audit && m.key === key && (m.value.data as Json).action === 'intent.manual',
    );
    expect(audits).toHaveLength(1);

    // The same key for another request (another reason) is refused, and acts on nothing.
    const reused = await runUnicop(
      ['reconcile', key, '--reason', 'something else', '--idempotency-key', idemKey],
      env,
    );
    expect(reused.code).toBe(1);
    expect(reused.stderr).toContain('422 idempotency_key_reused');
    expect(await tail.settle(manualIntents, 3000)).toHaveLength(1);
  });

  it('`freeze <key>` freezes the root in NetBox and `resume <key>` unfreezes it with a resume intent', async () => {
    const frozen = await runUnicop(['freeze', key, '--reason', 'cli maintenance', '--json'], env);
    expect(frozen.code).toBe(0);
    expect(parse(frozen.stdout)).toMatchObject({
      scope: 'root',
      rootKey: key,
      frozen: true,
      replayed: false,
    });
    expect(parse((await runUnicop(['root', 'status', key, '--json'], env)).stdout)).toMatchObject({
      frozen: true,
      frozenReason: 'cli maintenance',
    });
    const resumed = await runUnicop(['resume', key, '--reason', 'cli maintenance done', '--json'], env);
    expect(resumed.code).toBe(0);
    const answer = parse(resumed.stdout);
    expect(answer).toMatchObject({ scope: 'root', rootKey: key, frozen: false });
    const [intent] = await tail.waitFor(
      (m) =>
        m.topic === topics.intents &&
        m.key === key &&
        (m.value.data as { cause: { kind: string } }).cause.kind === 'resume',
    );
    expect((intent?.value.data as Json | undefined)?.intentId).toBe(answer.intentId);
    expect(parse((await runUnicop(['root', 'status', key, '--json'], env)).stdout)).toMatchObject({
      frozen: false,
    });
  });

  it("`sweep` is taken by a workers' sweeper through Redis and prints the sweep's report", async () => {
    const redis = new Redis(stack.redisUrl(), { maxRetriesPerRequest: null });
    const kafka = testKafka();
    const eventLog = new KafkaEventLog(kafka);
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const sweeper = new Sweeper({
      plugin: new OneRootPlugin(key),
      eventLog,
      redis,
      intervalMs: 3_600_000,
      checkMs: 250,
      sweepOnStart: false,
      log: createLogger('sweeper', 'warn', sink),
    });
    sweeper.start();
    try {
      const ran = await runUnicop(['sweep', '--reason', 'cli test', '--wait', '300', '--json'], env);
      expect(ran.stderr).toBe('');
      expect(ran.code).toBe(0);
      const report = parse(ran.stdout);
      expect(report).toMatchObject({ state: 'done', replayed: false });
      expect(report.scanned).toBeGreaterThan(0);
      expect(Array.isArray(report.emitted)).toBe(true);
      await tail.waitFor(
        (m) =>
          m.topic === topics.audit &&
          (m.value.data as Json).action === 'sweep.requested' &&
          ((m.value.data as Json).correlation as Json).requestId === report.requestId,
      );
    } finally {
      sweeper.stop();
      await eventLog.close();
      redis.disconnect();
    }
  });

  it("`root timeline` prints the root's events from the log: the manual intent, its audit, the freeze", async () => {
    const ran = await runUnicop(['root', 'timeline', key, '--since', '15m', '--json'], env);
    expect(ran.code).toBe(0);
    const events = lines(ran.stdout);
    const actions = events.filter((e) => e.type === 'audit').map((e) => (e.data as Json).action);
    expect(actions).toEqual(
      expect.arrayContaining(['intent.manual', 'automation.frozen', 'automation.resumed']),
    );
    expect(events.filter((e) => e.type === 'intent').map((e) => (e.data as Json).rootKey)).toContain(key);
    // Only this root's events, in time order.
    for (const e of events)
      expect(e.key === key || (e.data as Json).rootKey === key || e.type === 'change').toBe(true);
    const times = events.map((e) => Date.parse(String(e.time)));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    const human = await runUnicop(['root', 'timeline', key, '--since', '15m'], env);
    expect(human.stdout).toMatch(/unicop\.audit +intent\.manual by break-glass — cli test/);
  });

  it('`tail --follow` prints new events as they come and stops cleanly on SIGINT', async () => {
    const follower = startUnicop(
      ['tail', '--root', key, '--type', 'intent', '--since', '15m', '--follow', '--json'],
      env,
    );
    // The backlog first (this root's intents so far), then live.
    for (let i = 0; i < 1200 && !follower.stdout().includes('"type":"intent"'); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(follower.stdout()).toContain('"type":"intent"');
    const acted = parse((await runUnicop(['reconcile', key, '--json'], env)).stdout);
    for (let i = 0; i < 1200 && !follower.stdout().includes(String(acted.intentId)); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(follower.stdout()).toContain(String(acted.intentId));
    // --type intent: no audit events.
    expect(lines(follower.stdout()).every((e) => e.type === 'intent')).toBe(true);
    follower.child.kill('SIGINT');
    const ended = await follower.done;
    expect(ended.code).toBe(0);
  });

  it('`replay --dry-run` re-derives the intent of a change on unicop.changes for the root, with the same intent id', async () => {
    const now = new Date().toISOString();
    const object = { id: site.id, name: site.name, slug: site.slug, last_updated: now };
    const body = JSON.stringify(
      netbox47Body({
        data: object,
        snapshots: { prechange: object, postchange: { ...object, description: 'r' } },
      }),
    );
    const res = await fetch(`${bridge.url}/webhooks/netbox`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Hook-Signature': sign(body, webhookSecret) },
      body,
    });
    expect(res.status).toBe(202);
    const { changeId } = (await res.json()) as { changeId: string };
    const [change] = await tail.waitFor(
      (m) => m.topic === topics.changes && (m.value.data as Json).changeId === changeId,
    );
    const from = `${change?.partition}:${change?.offset}`;
    const ran = await runUnicop(['replay', '--from', from, '--root', key, '--dry-run', '--json'], env);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const out = parse(ran.stdout);
    expect(out).toMatchObject({ rootKey: key, dryRun: true });
    const replayed = (out.intents as { intentId: string; change: Json }[]).filter(
      (i) => i.change.changeId === changeId,
    );
    expect(replayed).toHaveLength(1);
    // The id the resolver gives this change's intent, derived from change id and root key.
    const expected = intentFor(change?.value as unknown as CloudEvent<'change'>, key).data.intentId;
    expect(replayed[0]?.intentId).toBe(expected);
    const refused = await runUnicop(['replay', '--from', from, '--root', key], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('replay publishes nothing');
  });
});
