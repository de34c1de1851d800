/**
 * What NetBox itself did during a pass, read from its own logs (host paths of the stack's files):
 * the background jobs its RQ workers ran (every var/log/netbox-rqworker*.log — the stack runs
 * UNICOP_NETBOX_RQWORKERS of them and RQ gives each job to one: one "Successfully completed …" line
 * per job, with its arguments and duration) and, when gunicorn writes an access log in the
 * bench's format, the server time of every request (BENCH_LOOP_ACCESS_LOG). Only the lines written
 * between start() and stop() are read.
 *
 * The access log is not on by default in the stack. To measure server times, add to NetBox's
 * gunicorn config (var/netbox/rootfs/opt/netbox/contrib/gunicorn.py) `accesslog =
 * '/tmp/unicop-access.log'` and `access_log_format = accessLogFormat` below, reload gunicorn
 * (`kill -HUP $(cat var/run/netbox-gunicorn.pid)`), run the bench with
 * BENCH_LOOP_ACCESS_LOG=var/netbox/rootfs/tmp/unicop-access.log, then take both lines out and HUP again.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../core/config.js';
import { netbox } from '../../test/support/netbox.js';

/** gunicorn's access_log_format the bench parses: method, path (no query), status, microseconds. */
export const accessLogFormat = 'unicop-bench %(m)s %(U)s %(s)s %(D)s';

const logDir = join(repoRoot, 'var', 'log');

/** Every RQ worker's log: netbox-rqworker.log, netbox-rqworker-2.log, … */
function rqLogs(): string[] {
  if (!existsSync(logDir)) return [];
  return readdirSync(logDir)
    .filter((file) => /^netbox-rqworker(?:-\d+)?\.log$/.test(file))
    .map((file) => join(logDir, file));
}

export interface Tally {
  count: number;
  totalMs: number;
  maxMs: number;
}

export interface NetboxSide {
  /** RQ jobs by kind ("search cache: unicop.reconciliationrun", "webhook"), with their run time. */
  rqJobs: Map<string, Tally>;
  /** Server time of the plugin's and NetBox's API requests by method and path (`:id`); empty without an access log. */
  requests: Map<string, Tally>;
  /** Whether an access log was read. */
  accessLog: boolean;
}

function add(map: Map<string, Tally>, key: string, ms: number): void {
  const t = map.get(key) ?? { count: 0, totalMs: 0, maxMs: 0 };
  t.count += 1;
  t.totalMs += ms;
  t.maxMs = Math.max(t.maxMs, ms);
  map.set(key, t);
}

function sizeOf(file: string | undefined): number {
  return file && existsSync(file) ? statSync(file).size : 0;
}

/** The bytes appended to `file` since `from`. */
function readFrom(file: string, from: number): string {
  const size = sizeOf(file);
  if (size <= from) return '';
  const buffer = Buffer.alloc(size - from);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, from);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('utf8');
}

/** "0:00:00.070226" → ms. */
function durationMs(text: string): number {
  const [h, m, s] = text.split(':').map(Number);
  return ((h ?? 0) * 3600 + (m ?? 0) * 60 + (s ?? 0)) * 1000;
}

export class NetboxSideTally {
  private readonly accessLogFile = process.env.BENCH_LOOP_ACCESS_LOG;
  /** Each RQ worker log's size at start(); a log that appears later is read from its beginning. */
  private rqFrom = new Map<string, number>();
  private accessFrom = 0;
  private readonly objectTypes = new Map<number, string>();

  start(): void {
    this.rqFrom = new Map(rqLogs().map((file) => [file, sizeOf(file)]));
    this.accessFrom = sizeOf(this.accessLogFile);
  }

  /**
   * Reads what was logged since start(); call once NetBox's background queues are empty again. The
   * stack's NetBox serves other clients too: a search-index job of run records only is counted when
   * it names one of `ownRunIds` (the pass's runs); other jobs are every client's.
   */
  async stop(ownRunIds: ReadonlySet<number>): Promise<NetboxSide> {
    const rqJobs = new Map<string, Tally>();
    const lines = rqLogs().flatMap((file) => readFrom(file, this.rqFrom.get(file) ?? 0).split('\n'));
    for (const line of lines) {
      const done = / Successfully completed (.*) job in (\d+:\d+:[\d.]+)s/.exec(line);
      if (!done) continue;
      const [, call = '', duration = '0:0:0'] = done;
      const kind = await this.jobKind(call);
      if (kind === 'search cache update: unicop.reconciliationrun') {
        const pks = [...call.matchAll(/\[([\d, ]*)\]/g)].flatMap((m) => (m[1] ?? '').split(',').map(Number));
        if (!pks.some((pk) => ownRunIds.has(pk))) continue;
      }
      add(rqJobs, kind, durationMs(duration));
    }
    const requests = new Map<string, Tally>();
    const accessLog = Boolean(this.accessLogFile && existsSync(this.accessLogFile));
    if (accessLog) {
      for (const line of readFrom(this.accessLogFile as string, this.accessFrom).split('\n')) {
        const hit = /unicop-bench (\S+) (\S+) (\d+) (\d+)/.exec(line);
        if (!hit) continue;
        const [, method = '', path = '', , micros = '0'] = hit;
        const label = path
          .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, ':id')
          .replace(/\/\d+(?=\/|$)/g, '/:id');
        add(requests, `${method} ${label}`, Number(micros) / 1000);
      }
    }
    return { rqJobs, requests, accessLog };
  }

  /** "handle(cache_groups={166: [1]}, job=<Job: Search cache update>, remove_groups={}, …)" → its models. */
  private async jobKind(call: string): Promise<string> {
    if (call.startsWith('extras.webhooks.send_webhook')) return 'webhook (event rule)';
    if (!call.includes('Search cache update')) return call.replace(/\(.*/, '');
    const groups = [...call.matchAll(/(\d+): \[/g)].map((m) => Number(m[1]));
    const names: string[] = [];
    for (const id of new Set(groups)) names.push(await this.objectType(id));
    return `search cache update: ${names.sort().join(' + ') || 'nothing'}`;
  }

  private async objectType(id: number): Promise<string> {
    const known = this.objectTypes.get(id);
    if (known) return known;
    const type = await netbox<{ app_label: string; model: string }>(
      'GET',
      `/api/core/object-types/${id}/`,
    ).catch(() => ({ app_label: '?', model: String(id) }));
    const name = `${type.app_label}.${type.model}`;
    this.objectTypes.set(id, name);
    return name;
  }
}
