/**
 * The drift scheduler (workers/drift/scheduler.ts, docs/decisions/0054). Its rules without services
 * (jitter, when a root is due, which roots are never checked), then passes over the real NetBox
 * plugin's listing — narrowed to this test's roots, so the shared stack's other roots get no check
 * intents — publishing to the real Kafka: due roots get a `drift_check` intent (and its audit), at
 * most `maxInFlight` outstanding, none before the interval, and the check run it leads to stamps
 * the root's `last_drift_check`, from which the next check is due.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import type { PluginRoot } from '../../core/plugin/client.js';
import { DriftScheduler, driftJitter, nextCheckAt, notDue } from '../../workers/drift/scheduler.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { type BackHalf, createSite, reconcileJob, startBackHalf } from '../support/reconciler.js';

const hour = 3600_000;
const root = (over: Partial<PluginRoot> = {}) =>
  ({
    key: 'site/1',
    status: 'in_sync',
    frozen: false,
    lease: { live: false },
    policy: { drift_mode: 'detect', drift_interval_seconds: 3600 },
    last_run: { finished: '2026-12-02T10:00:00Z' },
    last_drift_check: null,
    ...over,
  }) as unknown as PluginRoot;

describe('drift scheduler: when a root is due', () => {
  it('jitter is 0.9–1.1 of the interval, the same for a key every time, different across keys', () => {
    const keys = Array.from({ length: 200 }, (_, i) => `site/${i}`);
    const values = keys.map(driftJitter);
    for (const v of values) expect(v >= 0.9 && v <= 1.1).toBe(true);
    expect(keys.map(driftJitter)).toEqual(values);
    expect(new Set(values).size).toBe(values.length);
    expect(Math.min(...values)).toBeLessThan(0.95);
    expect(Math.max(...values)).toBeGreaterThan(1.05);
  });

  it('due an interval (jittered) after the last check, or after the last run when never checked', () => {
    const jitter = driftJitter('site/1');
    const at = (since: string, ms: number) => Math.floor(Date.parse(since) + ms * jitter);
    expect(nextCheckAt(root())?.getTime()).toBe(at('2026-12-02T10:00:00Z', hour));
    const checked = root({ last_drift_check: '2026-12-02T11:00:00Z' });
    expect(nextCheckAt(checked)?.getTime()).toBe(at('2026-12-02T11:00:00Z', hour));
    const short = root({ policy: { drift_mode: 'remediate', drift_interval_seconds: 600 } });
    expect(nextCheckAt(short)?.getTime()).toBe(at('2026-12-02T10:00:00Z', 600_000));
  });

  it.each([
    ['drift_mode off', { policy: { drift_mode: 'off' } }, 'drift_mode off or never reconciled'],
    ['never reconciled', { last_run: null }, 'drift_mode off or never reconciled'],
    ['frozen', { frozen: true }, 'frozen'],
    ['drifted (waits for its apply run)', { status: 'drifted' }, 'status drifted'],
    ['out of sync', { status: 'pending' }, 'status pending'],
    ['a run holds the lease', { lease: { live: true } }, 'leased'],
    [
      'its kind has a workflow template (no check mode)',
      { awx_template: { type: 'workflow', id: 12 } },
      'workflow template: no check mode',
    ],
  ] as const)('never while %s', (_name, over, why) => {
    expect(notDue(root(over as Partial<PluginRoot>), new Date('2026-12-03T00:00:00Z'))).toBe(why);
  });

  it('in sync and past its time: due', () => {
    expect(notDue(root(), new Date('2026-12-02T11:10:00Z'))).toBeNull();
    expect(notDue(root(), new Date('2026-12-02T10:50:00Z'))).toMatch(/^due at /);
  });
});

describe('drift scheduler: passes over the real plugin listing, intents on Kafka', () => {
  let back: BackHalf;
  let tail: TopicTail;
  const log = createLogger('drift-scheduler-test', process.env.UNICOP_TEST_LOG ?? 'silent');

  beforeAll(async () => {
    back = await startBackHalf();
    tail = await TopicTail.start([topics.intents, topics.audit]);
  });
  afterAll(async () => {
    await tail?.stop();
    await back?.stop();
  });

  /** The scheduler over this test's roots only; `inFlight` stands for the reconcile queue. */
  function scheduler(keys: string[], inFlight: Set<string>, now: () => Date, maxInFlight = 1) {
    return new DriftScheduler({
      plugin: {
        async *allRoots(pageSize, fields) {
          for await (const r of back.plugin.allRoots(pageSize, fields)) if (keys.includes(r.key)) yield r;
        },
      },
      eventLog: back.eventLog,
      jobs: { inFlight: async (key) => inFlight.has(key) },
      log,
      checkMs: 1000,
      maxInFlight,
      clock: { now, sleep: async () => undefined },
    });
  }
  const checkIntents = (key: string) =>
    tail.messages.filter(
      (m: TailedMessage) =>
        m.topic === topics.intents &&
        m.key === key &&
        (m.value.data as EventData<'intent'>).cause.kind === 'drift_check',
    );

  it('asks for checks of due in-sync roots, at most maxInFlight at once, none before their time; a check run stamps last_drift_check', async () => {
    const a = await createSite();
    const b = await createSite();
    for (const s of [a, b]) await back.reconciler().reconcile(reconcileJob(s.rootKey));
    const keys = [a.rootKey, b.rootKey];
    const inFlight = new Set<string>();

    // Just reconciled: not due yet.
    const early = await scheduler(keys, inFlight, () => new Date()).pass();
    expect(early).toMatchObject({ scanned: 2, emitted: [] });

    // Two hours on (interval 3600 s, jitter ≤ 1.1): both due, one at a time.
    let now = new Date(Date.now() + 2 * hour);
    const drift = scheduler(keys, inFlight, () => now, 1);
    const first = await drift.pass();
    expect(first.emitted).toHaveLength(1);
    const [firstKey] = first.emitted as [string];
    inFlight.add(firstKey); // the dispatcher queued its job
    expect((await drift.pass()).emitted).toEqual([]);
    const [intent] = await tail.waitFor((m) => checkIntents(firstKey).includes(m));
    expect(intent?.value.source).toBe('unicop/drift');
    await tail.waitFor(
      (m) =>
        m.topic === topics.audit &&
        m.key === firstKey &&
        (m.value.data as { action: string }).action === 'intent.drift_check',
    );

    // Its check run, as the reconciler runs the job: in sync, and the root's last check stamped.
    const data = intent?.value.data as EventData<'intent'>;
    await back.reconciler().reconcile({ rootKey: firstKey, intentId: data.intentId, cause: data.cause });
    const checked = await back.plugin.findRoot(firstKey);
    expect(checked?.last_run).toMatchObject({ state: 'succeeded', outcome_class: 'in_sync' });
    expect(checked?.last_drift_check).toBeTruthy();
    expect(checked?.status).toBe('in_sync');
    inFlight.delete(firstKey); // its job is done

    // A restarted process (a new scheduler) reads the last check from NetBox: the checked root is
    // due only an interval (× its jitter) after its check, not at once.
    const again = nextCheckAt(checked as PluginRoot) as Date;
    const checkedAt = Date.parse(checked?.last_drift_check as string);
    expect(again.getTime() - checkedAt).toBe(
      Math.floor(checkedAt + hour * driftJitter(firstKey)) - checkedAt,
    );
    now = new Date(again.getTime() - 1000);
    expect((await scheduler(keys, inFlight, () => now, 5).pass()).emitted).not.toContain(firstKey);
    const before = checkIntents(firstKey).length;
    now = new Date(again.getTime() + 1000);
    expect((await scheduler(keys, inFlight, () => now, 5).pass()).emitted).toContain(firstKey);
    // The restarted scheduler's own intent on unicop.intents (not the first process's, seen above).
    await tail.waitFor((m) => checkIntents(firstKey).includes(m), before + 1, 60_000);
  }, 600_000);
});
