/**
 * The sweeper and the plugin's background hashes (docs/decisions/0043), on the real stack. A new
 * site's root is stale at first, and the stack's `netbox unicop_hashes` stores its hash (the one the
 * snapshot endpoint returns) without any request asking for it. A root whose hash is stale — a change
 * committed with its mark, its recompute not done yet — is swept even though the hash the listing
 * shows equals its last reconciled hash: the listing cannot tell whether it drifted. Once recomputed,
 * the hash differs and the root is swept for that.
 *
 * To hold the root stale while the sweep runs, a psql session of the test commits the change and the
 * mark (a raw write to the site, marked as the plugin's signal would, and the root's last reconciled
 * hash set to its current one, as after a run that reconciled it), then locks the root's row in
 * the same request: the recompute skips a locked row and cannot store past the lock.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { Sweeper, sweepReason } from '../../workers/sweeper/sweeper.js';
import { TopicTail, testKafka } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { createSite, eventually, testPlugin } from '../support/reconciler.js';
import { postgresEnv, uniqueName } from '../support/stack.js';

const log = createLogger('sweeper-stale-test', process.env.UNICOP_TEST_LOG ?? 'silent');
const run = promisify(execFile);

async function sql(query: string): Promise<string> {
  const { stdout } = await run('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', query], {
    env: postgresEnv(uniqueName('sweeper-stale-query')),
  });
  return stdout.trim();
}

describe('sweeper: a root whose current hash is stale', () => {
  const plugin = testPlugin();
  const kafka = testKafka();
  const eventLog = new KafkaEventLog(kafka);
  let tail: TopicTail;
  let holder: ChildProcess | undefined;
  const siteIds: number[] = [];
  beforeAll(async () => {
    tail = await TopicTail.start([topics.intents]);
  });
  afterAll(async () => {
    holder?.kill();
    await tail?.stop();
    await eventLog.close();
    for (const id of siteIds) await netbox('DELETE', `/api/dcim/sites/${id}/`).catch(() => undefined);
  });

  it('is hashed in the background, swept while stale, and swept for its new hash once recomputed', async () => {
    const site = await createSite();
    siteIds.push(site.id);

    // The stack's unicop_hashes stores the hash; the listing computes none.
    const fresh = await eventually(
      async () => {
        const root = await plugin.findRoot(site.rootKey);
        return root && !root.hash_stale ? root : undefined;
      },
      'the background recompute of the new root',
      120_000,
    );
    expect(fresh.hash_computed_at).not.toBeNull();
    expect(fresh.current_hash).toBe((await plugin.snapshot(site.root.id)).hash);

    const lockName = uniqueName('sweeper-stale-lock');
    holder = spawn(
      'psql',
      [
        '-X',
        '-q',
        '-c',
        `BEGIN;
         UPDATE dcim_site SET description = 'changed while its hash is stale' WHERE id = ${site.id};
         UPDATE unicop_root SET last_reconciled_hash = current_hash, hash_dirty = true,
           hash_generation = hash_generation + 1, hash_stale_since = now() WHERE key = '${site.rootKey}';
         COMMIT;
         BEGIN;
         SELECT id FROM unicop_root WHERE key = '${site.rootKey}' FOR UPDATE;
         SELECT pg_sleep(300);
         COMMIT;`,
      ],
      { env: postgresEnv(lockName), stdio: 'ignore' },
    );
    await eventually(
      async () =>
        (await sql(
          `SELECT count(*) FROM pg_stat_activity WHERE application_name = '${lockName}' AND wait_event = 'PgSleep'`,
        )) === '1' || undefined,
      'the root row locked by the test',
      60_000,
    );
    try {
      const stale = await plugin.findRoot(site.rootKey);
      expect(stale?.hash_stale).toBe(true);
      expect(stale?.hash_stale_since).not.toBeNull();
      expect(stale?.current_hash).toBe(fresh.current_hash);
      expect(stale?.last_reconciled_hash).toBe(fresh.current_hash);
      expect(sweepReason(stale as NonNullable<typeof stale>)).toMatch(/stale/);

      const sweeper = new Sweeper({ plugin, eventLog, log, intervalMs: 3_600_000 });
      const report = await sweeper.sweep();
      expect(report.emitted).toContain(site.rootKey);
      // The sweep's own intent (a bridge another test runs may have turned the site's creation into
      // a `change` intent as well).
      const swept = await tail.waitFor(
        (m) =>
          m.topic === topics.intents &&
          m.key === site.rootKey &&
          (m.value.data as { cause?: { kind: string } } | undefined)?.cause?.kind === 'sweep',
      );
      expect(swept).toHaveLength(1);
    } finally {
      await sql(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = '${lockName}'`);
    }

    // The lock gone, the recompute stores the changed site's hash: now it differs, and is swept for that.
    const recomputed = await eventually(
      async () => {
        const root = await plugin.findRoot(site.rootKey);
        return root && !root.hash_stale ? root : undefined;
      },
      'the recompute after the lock',
      120_000,
    );
    expect(recomputed.current_hash).not.toBe(fresh.current_hash);
    expect(recomputed.current_hash).toBe((await plugin.snapshot(site.root.id)).hash);
    expect(sweepReason(recomputed)).toMatch(/differs/);
  }, 600_000);
});
