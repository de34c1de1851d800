/**
 * NetBox fixtures for the loop bench: sites created and deleted in bulk (the plugin makes a root
 * `site/<id>` for each), the jobs waiting in NetBox's background queues, and the plugin's run
 * records by run id.
 */
import { randomUUID } from 'node:crypto';
import type { PluginRun } from '../../core/plugin/client.js';
import { netbox } from '../../test/support/netbox.js';

/** Sites per bulk POST or DELETE on /api/dcim/sites/ (BENCH_LOOP_SITE_BATCH: smaller on a loaded NetBox). */
export const siteBatch = Number(process.env.BENCH_LOOP_SITE_BATCH ?? 100);

/** Bulk requests on /api/dcim/sites/ at once: NetBox's gunicorn workers in the stack. */
export const siteRequestsInParallel = 3;

/** Calls `each` for every batch of `items`, `siteRequestsInParallel` batches at a time, in order. */
async function inBatches<T, R>(items: T[], size: number, each: (batch: T[]) => Promise<R[]>): Promise<R[]> {
  const batches = Array.from({ length: Math.ceil(items.length / size) }, (_, i) =>
    items.slice(i * size, (i + 1) * size),
  );
  const results: R[][] = new Array(batches.length);
  let next = 0;
  const lane = async () => {
    while (next < batches.length) {
      const i = next++;
      results[i] = await each(batches[i] as T[]);
    }
  };
  await Promise.all(Array.from({ length: siteRequestsInParallel }, lane));
  return results.flat();
}

/** R new sites in bulk requests; the plugin makes a root `site/<id>` for each. */
export async function createSites(count: number): Promise<{ id: number; rootKey: string }[]> {
  const prefix = `bench-loop-${randomUUID().slice(0, 8)}`;
  const bodies = Array.from({ length: count }, (_, i) => ({
    name: `${prefix}-${i}`,
    slug: `${prefix}-${i}`,
    status: 'active',
  }));
  const created = await inBatches(bodies, siteBatch, (batch) =>
    netbox<{ id: number }[]>('POST', '/api/dcim/sites/', batch),
  );
  return created.map((s) => ({ id: s.id, rootKey: `site/${s.id}` }));
}

export async function deleteSites(sites: { id: number }[]): Promise<void> {
  await inBatches(sites, siteBatch, async (batch) => {
    await netbox(
      'DELETE',
      '/api/dcim/sites/',
      batch.map((s) => ({ id: s.id })),
    ).catch((error: unknown) =>
      process.stderr.write(`loop: ${batch.length} sites left in NetBox: ${String(error)}\n`),
    );
    return [];
  });
}

/**
 * Jobs in NetBox's background queues (its RQ worker): event-rule webhooks and search-index updates,
 * queued by creating or deleting sites and by every write of a run record or journal entry.
 */
export async function netboxBackgroundJobs(): Promise<{ queued: number; seen: number }> {
  type Queue = Record<'jobs' | 'started_jobs' | 'deferred_jobs', number>;
  type RqWorker = Record<'successful_job_count' | 'failed_job_count', number>;
  const queues = await netbox<{ results: Queue[] }>('GET', '/api/core/background-queues/');
  const workers = await netbox<{ results: RqWorker[] }>('GET', '/api/core/background-workers/');
  const waiting = queues.results.reduce((n, q) => n + q.jobs + q.started_jobs + q.deferred_jobs, 0);
  const done = workers.results.reduce((n, w) => n + w.successful_job_count + w.failed_job_count, 0);
  return {
    queued: queues.results.reduce((n, q) => n + q.jobs, 0),
    // Every job queued so far (waiting, running, or done by a worker): its growth over an interval
    // is the jobs queued meanwhile. The workers' counters, unlike RQ's registries, are never pruned.
    seen: waiting + done,
  };
}

/** The plugin's run records by run id (60 ids per request: gunicorn takes request lines up to 4 KiB). */
export async function runsById(runIds: string[]): Promise<Map<string, PluginRun>> {
  const runs = new Map<string, PluginRun>();
  for (let from = 0; from < runIds.length; from += 60) {
    const query = runIds
      .slice(from, from + 60)
      .map((id) => `run_id=${encodeURIComponent(id)}`)
      .join('&');
    const page = await netbox<{ results: PluginRun[] }>('GET', `/api/plugins/unicop/runs/?limit=60&${query}`);
    for (const run of page.results) runs.set(run.run_id, run);
  }
  return runs;
}
