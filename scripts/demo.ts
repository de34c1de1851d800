/**
 * The demo: the AWX double (running the real playbooks with ansible-runner), the bridge and the
 * workers as child processes; NetBox's webhook and event rule pointed at the bridge; one real edit
 * through the NetBox REST API; and the root's timeline as UNICOP records it on Kafka (change,
 * intent, queue, lease, launch, AWX notifications, outcome, release), printed live until the
 * outcome has landed in NetBox — then what NetBox shows for it (root status, run, journal entry).
 *
 * The demo starts "from now": the workers' consumer groups are moved to the end of their topics
 * and the sweeper's Redis epoch is set, so a development stack's backlog from tests is not
 * reconciled first (docs/runbooks/redis-data-lost.md explains the epoch).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { readStackEnv, repoRoot } from '../core/config.js';
import { consumerGroups } from '../core/event-log/groups.js';
import { topics } from '../core/events/catalogue.js';
import { netboxRest } from '../core/netbox/rest.js';
import { redisEpochKey } from '../workers/sweeper/sweeper.js';

const stack = readStackEnv();
const netboxUrl = stack.UNICOP_NETBOX_URL as string;
const token = stack.UNICOP_NETBOX_TOKEN as string;
const bridgePort = 18080;
const awxPort = 18052;
// The webhook secret lives in a file: the bridge reads it by reference, the plugin's bootstrap
// command reads the same file inside NetBox's root (where the repository is mounted at /unicop).
const secretFile = join(repoRoot, 'var', 'demo', 'webhook-secret');
const awxToken = randomBytes(20).toString('hex');
const awxNotifySecret = randomBytes(20).toString('hex');
const children: ChildProcess[] = [];

const netbox = netboxRest(netboxUrl, token);

/** The plugin's own bootstrap: NetBox's webhook and event rule for every object type of the catalogue. */
async function bootstrapNetbox(): Promise<void> {
  execFileSync(
    join(repoRoot, 'scripts', 'stack.d', 'netbox.sh'),
    [
      'exec',
      'netbox',
      'unicop_bootstrap',
      '--url',
      `http://127.0.0.1:${bridgePort}/webhooks/netbox`,
      '--secret-file',
      '/unicop/var/demo/webhook-secret',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  // Earlier demo versions made their own rule; two rules would deliver every change twice.
  for (const [path, name] of [
    ['/api/extras/event-rules/', 'unicop-demo'],
    ['/api/extras/webhooks/', 'unicop-demo-bridge'],
  ] as const) {
    const found = await netbox<{ results: { id: number }[] }>('GET', `${path}?name=${name}`);
    for (const old of found.results) await netbox('DELETE', `${path}${old.id}/`);
  }
}

/** Creates or updates the object whose `field` is `value` (idempotent across demo runs). */
async function upsertBy(
  path: string,
  field: string,
  value: string,
  fields: Record<string, unknown>,
): Promise<{ id: number }> {
  const found = await netbox<{ results: { id: number }[] }>(
    'GET',
    `${path}?${field}=${encodeURIComponent(value)}`,
  );
  const existing = found.results[0];
  if (existing) return netbox('PATCH', `${path}${existing.id}/`, fields);
  return netbox('POST', path, { [field]: value, ...fields });
}

/** Creates or updates the object named `name` at `path`. */
function upsert(path: string, name: string, fields: Record<string, unknown>): Promise<{ id: number }> {
  return upsertBy(path, 'name', name, fields);
}

function start(name: string, script: string, env: Record<string, string>, args: string[] = []): void {
  // The services run compiled (dist/, `npm run build`); only the AWX double, a test tool, runs through tsx.
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...loader, join(repoRoot, script), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...stack, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[${name}] ${d}`));
  child.on('exit', (code) => {
    if (code) process.stderr.write(`[${name}] exited with code ${code}\n`);
  });
  children.push(child);
}

async function waitFor(url: string, headers: Record<string, string> = {}): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(url, { headers })).ok) return;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up`);
}

function line(time: string, what: string, detail: string): void {
  process.stdout.write(`${time.slice(11, 23)}  ${what.padEnd(34)} ${detail}\n`);
}

/** Moves the workers' consumer groups to the end of their topics and sets the sweeper's epoch. */
async function startFromNow(kafka: Kafka): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const [groupId, topic] of [
      [consumerGroups.resolver, topics.changes],
      [consumerGroups.dispatcher, topics.intents],
    ] as const) {
      const ends = await admin.fetchTopicOffsets(topic);
      await admin.setOffsets({
        groupId,
        topic,
        partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
      });
    }
  } catch (error) {
    console.log(
      `(could not move the consumer groups to the end — are other workers running? ${String(error)})`,
    );
  } finally {
    await admin.disconnect();
  }
  const redis = new Redis(stack.UNICOP_REDIS_URL as string);
  await redis.set(redisEpochKey, new Date().toISOString());
  redis.disconnect();
}

async function main(): Promise<void> {
  const kafka = new Kafka({
    clientId: 'unicop-demo',
    brokers: stack.UNICOP_KAFKA_BROKERS?.split(',') ?? [],
    logLevel: logLevel.NOTHING,
  });
  await startFromNow(kafka);
  mkdirSync(dirname(secretFile), { recursive: true });
  writeFileSync(secretFile, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
  start(
    'awx-double',
    'test/awx-double/main.ts',
    {
      UNICOP_AWX_DOUBLE_TOKEN: awxToken,
      UNICOP_AWX_DOUBLE_NOTIFY_URL: `http://127.0.0.1:${bridgePort}/webhooks/awx`,
      UNICOP_AWX_DOUBLE_NOTIFY_TOKEN: awxNotifySecret,
    },
    [
      '--config',
      'test/awx-double/templates.example.yaml',
      '--state-dir',
      'var/awx-double',
      '--port',
      String(awxPort),
    ],
  );
  start(
    'bridge',
    'dist/bin/unicop.js',
    {
      UNICOP_WEBHOOK_SECRETS: `file:${secretFile}`,
      UNICOP_AWX_WEBHOOK_SECRET: awxNotifySecret,
      UNICOP_BRIDGE_PORT: String(bridgePort),
      UNICOP_LOG_LEVEL: 'warn',
    },
    ['bridge'],
  );
  await waitFor(`http://127.0.0.1:${awxPort}/api/v2/ping/`);
  start(
    'workers',
    'dist/bin/unicop.js',
    {
      UNICOP_AWX_URL: `http://127.0.0.1:${awxPort}`,
      UNICOP_AWX_TOKEN: awxToken,
      UNICOP_POLL_MIN_MS: '500',
      // A development stack holds many test roots out of sync: the demo sweeps on the interval only.
      UNICOP_SWEEP_ON_START: 'false',
      UNICOP_LOG_LEVEL: 'warn',
    },
    ['workers'],
  );
  await waitFor(`http://127.0.0.1:${bridgePort}/healthz`);
  console.log(`AWX double on 127.0.0.1:${awxPort} (templates: test/awx-double/templates.example.yaml)`);
  console.log(
    `bridge on 127.0.0.1:${bridgePort}; workers running (resolver, dispatcher, reconciler, sweeper)`,
  );

  await bootstrapNetbox();
  // Sample roots: a prefix with an address (root prefix/N) next to the site the demo edits.
  const prefix = await upsertBy('/api/ipam/prefixes/', 'prefix', '10.99.0.0/24', {
    description: 'UNICOP demo',
  });
  await upsertBy('/api/ipam/ip-addresses/', 'address', '10.99.0.10/24', { description: 'UNICOP demo' });
  console.log(`sample roots: prefix/${prefix.id} (10.99.0.0/24 with 10.99.0.10) and the site below`);

  const consumer = kafka.consumer({ groupId: `unicop-demo-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({
    topics: [topics.changes, topics.intents, topics.audit, topics.outcomes, topics.awxEvents],
    fromBeginning: false,
  });
  const site = await upsert('/api/dcim/sites/', 'demo-site', { slug: 'demo-site', status: 'active' });
  const rootKey = `site/${site.id}`;
  const awxJobs = new Set<number>();
  let editedAt = Number.POSITIVE_INFINITY;
  let outcome: Record<string, unknown> | null = null;
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const event = JSON.parse(String(message.value)) as {
        time: string;
        subject: string;
        data: Record<string, unknown>;
      };
      const data = event.data;
      const related =
        data.rootKey === rootKey ||
        (data.subjectType === 'root' && data.subjectId === rootKey) ||
        (data.objectType === 'dcim.site' && data.objectId === site.id) ||
        (topic === topics.awxEvents && awxJobs.has(Number(data.awxJobId)));
      if (!related) return;
      const correlation = (data.correlation ?? {}) as Record<string, unknown>;
      if (typeof correlation.awxJobId === 'number') awxJobs.add(correlation.awxJobId);
      if (topic === topics.outcomes) {
        if (typeof data.awxJobId === 'number') awxJobs.add(data.awxJobId);
        // The first run that started after the edit reconciles it. On a slow machine that can be the
        // run of the site's creation (its lease came after the edit); the coalesced follow-up run then
        // finds the hash reconciled and is skipped, which must not hide the success before it.
        const afterEdit = Date.parse(String(data.startedAt)) >= editedAt;
        if (afterEdit && (outcome === null || outcome.state !== 'succeeded')) outcome = data;
      }
      line(event.time, topic, describe(topic, data));
    },
  });
  await new Promise((r) => setTimeout(r, 3000)); // let the consumer group settle at the end offsets
  const description = `edited by the UNICOP demo at ${new Date().toISOString()}`;
  console.log(`\nEditing NetBox site #${site.id} through the REST API: description = "${description}"\n`);
  editedAt = Date.now();
  await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description });

  const deadline = Date.now() + 110_000;
  while (!outcome && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 1500)); // the release and AWX's last notification
  await consumer.disconnect();
  if (!outcome) {
    console.log('\nNo outcome within 110 s: see the bridge/workers output above and var/log/.');
    process.exitCode = 1;
    return;
  }
  await showNetbox(rootKey, site.id, outcome);
}

function describe(topic: string, data: Record<string, unknown>): string {
  if (topic === topics.changes) return `${data.event} ${data.objectType} #${data.objectId} by ${data.actor}`;
  if (topic === topics.intents)
    return `intent for ${data.rootKey} (cause ${(data.cause as { kind: string }).kind})`;
  if (topic === topics.outcomes) {
    return `${data.state}${data.failureClass ? ` (${data.failureClass})` : ''}: ${data.summary}`;
  }
  if (topic === topics.awxEvents) return `AWX says ${data.kind} ${data.awxJobId} is ${data.status}`;
  const correlation = (data.correlation ?? {}) as Record<string, unknown>;
  const extra = [
    correlation.fencingToken !== undefined ? `token ${correlation.fencingToken}` : '',
    correlation.awxJobId ? `AWX job ${correlation.awxJobId}` : '',
    data.reason ? String(data.reason) : '',
  ].filter(Boolean);
  return `${data.action} by ${data.actor}${extra.length ? ` — ${extra.join(', ')}` : ''}`;
}

/** What NetBox now shows: the root's status, its last run, and the journal entry on the site. */
async function showNetbox(rootKey: string, siteId: number, outcome: Record<string, unknown>): Promise<void> {
  const roots = await netbox<{ results: { status: string; last_run: Record<string, unknown> | null }[] }>(
    'GET',
    `/api/plugins/unicop/roots/?key=${encodeURIComponent(rootKey)}`,
  );
  const root = roots.results[0];
  const journal = await netbox<{ results: { kind: { value: string }; comments: string }[] }>(
    'GET',
    `/api/extras/journal-entries/?assigned_object_type=dcim.site&assigned_object_id=${siteId}&ordering=-created&limit=1`,
  );
  console.log(`\nIn NetBox now (${netboxUrl}):`);
  console.log(`  root ${rootKey}: status ${root?.status}`);
  console.log(
    `  last run ${root?.last_run?.run_id}: ${root?.last_run?.state}, AWX job ${root?.last_run?.awx_job_id}, token ${root?.last_run?.fencing_token}`,
  );
  const entry = journal.results[0];
  if (entry) console.log(`  journal (${entry.kind.value}): ${entry.comments.split('\n')[0]}`);
  const ok = outcome.state === 'succeeded';
  console.log(`\nOutcome: ${outcome.state}${ok ? ' — the edit was reconciled end to end.' : ''}`);
  if (outcome.state !== 'succeeded') process.exitCode = 1;
}

main()
  .catch((error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGTERM');
  });
