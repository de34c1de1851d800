/**
 * Fail-safe trigger (d), NetBox answering inconsistently (decision 0067), against the real stack: the
 * real reconciler, NetBox + plugin, PostgreSQL, Kafka and AWX. The reconciler's test-only hook
 * `beforeRecheck` runs between the lease's snapshot and the hash re-read before the launch, so each
 * case changes NetBox in exactly that window:
 *
 * - a member row edited with SQL in PostgreSQL (NetBox never sees it): automation is frozen globally
 *   (`fail-safe snapshot_changed`, the root and both hashes in the reason, audited), the run ends
 *   `failed` / `netbox_inconsistent`, and AWX has no job for it;
 * - the same edit through NetBox's REST API, and a rename of a tag the member carries: the generation
 *   moves with the hash, no freeze, the run launches.
 *
 * The freeze is global on the shared stack (every helper's runs wait while it holds): it is lifted as
 * soon as it is read back, and in `finally` whenever a freeze naming this test's root still holds.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwxClient } from '../../core/awx/index.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import { cloudEvent, type EventData, topics } from '../../core/events/catalogue.js';
import { uuidv7 } from '../../core/ids.js';
import { createLogger } from '../../core/logger.js';
import { pollingOnly } from '../../workers/reconciler/awx-notifications.js';
import { createReconciler } from '../../workers/reconciler/reconcile.js';
import { kindTemplateIds } from '../support/awx.js';
import { startControlView } from '../support/freeze.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import {
  type BackHalf,
  createSite,
  eventually,
  reconcileJob,
  startBackHalf,
  testReconcilerOptions,
} from '../support/reconciler.js';
import { postgresEnv, uniqueName } from '../support/stack.js';

const log = createLogger('failsafe-inconsistent-test', process.env.UNICOP_TEST_LOG ?? 'silent');
const run = promisify(execFile);

async function sql(query: string): Promise<void> {
  await run('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', query], {
    env: postgresEnv(uniqueName('failsafe-inconsistent')),
  });
}

const freezeData = (m: TailedMessage) => m.value.data as EventData<'freeze'>;
const auditData = (m: TailedMessage) => m.value.data as EventData<'audit'>;

describe('fail-safe: NetBox answering inconsistently between lease and launch', () => {
  let back: BackHalf;
  let view: FreezeView;
  let tail: TopicTail;

  beforeAll(async () => {
    back = await startBackHalf();
    view = await startControlView(back.kafka, log);
    tail = await TopicTail.start([topics.control, topics.audit, topics.outcomes]);
  }, 120_000);
  afterAll(async () => {
    await tail?.stop();
    await view?.stop();
    await back?.stop();
  });

  /** A reconciler whose hook runs `inWindow` for `rootKey` between the lease and the re-read. */
  function reconcilerWith(rootKey: string, inWindow: () => Promise<void>) {
    let calls = 0;
    const reconciler = createReconciler({
      plugin: back.plugin,
      awx: new AwxClient({
        baseUrl: back.awx.url,
        token: back.awx.token,
        confirmDelayMs: 200,
        timeoutMs: 30_000,
      }),
      eventLog: back.eventLog,
      wakeups: pollingOnly,
      log,
      options: testReconcilerOptions(uniqueName('worker')),
      beforeRecheck: async (key) => {
        if (key !== rootKey) return;
        calls += 1;
        await inWindow();
      },
    });
    return { reconciler, calls: () => calls };
  }

  /** A site with one rack carrying a tag, all made through NetBox. */
  async function siteWithRack() {
    const site = await createSite();
    const slug = uniqueName('fs-tag').toLowerCase();
    const tag = await netbox<{ id: number }>('POST', '/api/extras/tags/', { name: slug, slug });
    const rack = await netbox<{ id: number }>('POST', '/api/dcim/racks/', {
      name: uniqueName('rack'),
      site: site.id,
      status: 'active',
      tags: [tag.id],
    });
    return { ...site, rackId: rack.id, tagId: tag.id, tagSlug: slug };
  }

  /**
   * A person's resume, as the admin API writes it — only while a freeze naming `rootKey` holds. A trip
   * this test's reconciler appended (the append was awaited) is waited for on the tail and in the
   * freeze view first (10 s: none is expected unless the case trips), so a resume is never skipped
   * because the view had not read the trip yet.
   */
  async function resumeIfOurs(rootKey: string): Promise<void> {
    const trip = await eventually(
      async () =>
        tail.messages.find(
          (m) => m.topic === topics.control && freezeData(m).frozen && freezeData(m).reason.includes(rootKey),
        ),
      'a trip naming the root',
      10_000,
    ).catch(() => undefined);
    if (!trip) return;
    await eventually(
      async () => ((view.globalState()?.at ?? '') >= freezeData(trip).at ? true : undefined),
      'the freeze view read the trip',
      60_000,
    );
    const now = view.globalState();
    if (!now?.frozen || now.actor !== 'unicop' || !now.reason.includes(rootKey)) return;
    const data: EventData<'freeze'> = {
      scope: 'global',
      rootKey: null,
      frozen: false,
      reason: 'failsafe-inconsistent test: resumed after reading the trip',
      actor: 'failsafe-inconsistent-test',
      at: new Date().toISOString(),
    };
    const event = cloudEvent('freeze', {
      id: uuidv7(),
      source: 'failsafe-inconsistent-test',
      subject: 'global',
      data,
    });
    await back.eventLog.append([{ topic: topics.control, key: 'global', value: JSON.stringify(event) }]);
    await eventually(
      async () => (view.globalState()?.frozen ? undefined : true),
      'the resume applied',
      60_000,
    );
  }

  it('a member row edited with SQL between lease and launch freezes automation globally and launches nothing', async () => {
    const site = await siteWithRack();
    const { reconciler, calls } = reconcilerWith(site.rootKey, () =>
      sql(`UPDATE dcim_rack SET serial = '${uniqueName('sql')}' WHERE id = ${site.rackId}`),
    );
    const startedAt = new Date(Date.now() - 2_000);
    try {
      await reconciler.reconcile(reconcileJob(site.rootKey));
      expect(calls()).toBe(1);
      const [record] = await tail.waitFor(
        (m) =>
          m.topic === topics.control &&
          freezeData(m).frozen &&
          freezeData(m).actor === 'unicop' &&
          freezeData(m).reason.includes(site.rootKey),
        1,
        60_000,
      );
      const freeze = freezeData(record as TailedMessage);
      expect(freeze.scope).toBe('global');
      expect(freeze.reason).toMatch(
        new RegExp(
          `^fail-safe snapshot_changed: root ${site.rootKey} snapshot hash [0-9a-f]{64} at lease, [0-9a-f]{64} before launch, hash_generation \\d+ unchanged`,
        ),
      );
      const [before, after] = [...freeze.reason.matchAll(/[0-9a-f]{64}/g)].map((m) => m[0]);
      expect(before).not.toBe(after);
      const [audit] = await tail.waitFor(
        (m) =>
          m.topic === topics.audit &&
          auditData(m).action === 'automation.frozen' &&
          auditData(m).reason === freeze.reason,
        1,
        60_000,
      );
      expect(auditData(audit as TailedMessage).metadata).toMatchObject({ trigger: 'snapshot_changed' });
      await resumeIfOurs(site.rootKey);

      const [outcome] = await tail.waitFor(
        (m) => m.topic === topics.outcomes && (m.value.data as EventData<'outcome'>).rootKey === site.rootKey,
        1,
        60_000,
      );
      const ended = (outcome as TailedMessage).value.data as EventData<'outcome'>;
      expect([ended.state, ended.failureClass, ended.awxJobId]).toEqual([
        'failed',
        'netbox_inconsistent',
        null,
      ]);
      const runs = await back.plugin.listRuns(site.rootKey);
      expect(runs.map((r) => [r.state, r.outcome_class, r.awx_job_id])).toEqual([
        ['failed', 'netbox_inconsistent', null],
      ]);
      const awx = new AwxClient({ baseUrl: back.awx.url, token: back.awx.token, timeoutMs: 30_000 });
      const found = await awx.findJobByRunId(kindTemplateIds().site, ended.runId, startedAt);
      expect(found ?? null).toBeNull();
      expect(view.globalState()?.frozen).toBe(false);
    } finally {
      await resumeIfOurs(site.rootKey);
    }
  }, 180_000);

  it('an edit through the REST API in the same window is an ordinary change: no freeze, the run launches', async () => {
    const site = await siteWithRack();
    const { reconciler, calls } = reconcilerWith(site.rootKey, async () => {
      await netbox('PATCH', `/api/dcim/racks/${site.rackId}/`, { serial: uniqueName('api') });
    });
    try {
      await reconciler.reconcile(reconcileJob(site.rootKey));
      expect(calls()).toBe(1);
      const runs = await back.plugin.listRuns(site.rootKey);
      expect(runs).toHaveLength(1);
      expect(runs[0]?.outcome_class).not.toBe('netbox_inconsistent');
      expect(runs[0]?.awx_job_id).toEqual(expect.any(Number));
      expect(
        tail.messages.some((m) => m.topic === topics.control && freezeData(m).reason?.includes(site.rootKey)),
      ).toBe(false);
    } finally {
      await resumeIfOurs(site.rootKey);
    }
  }, 300_000);

  it('renaming a tag the member carries in the same window: no freeze, the run launches', async () => {
    const site = await siteWithRack();
    const { reconciler, calls } = reconcilerWith(site.rootKey, async () => {
      await netbox('PATCH', `/api/extras/tags/${site.tagId}/`, { slug: `${site.tagSlug}-renamed` });
    });
    try {
      await reconciler.reconcile(reconcileJob(site.rootKey));
      expect(calls()).toBe(1);
      const runs = await back.plugin.listRuns(site.rootKey);
      expect(runs).toHaveLength(1);
      expect(runs[0]?.outcome_class).not.toBe('netbox_inconsistent');
      expect(runs[0]?.awx_job_id).toEqual(expect.any(Number));
      expect(
        tail.messages.some((m) => m.topic === topics.control && freezeData(m).reason?.includes(site.rootKey)),
      ).toBe(false);
    } finally {
      await resumeIfOurs(site.rootKey);
    }
  }, 300_000);
});
