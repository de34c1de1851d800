/**
 * The demo: bridge and workers as child processes, NetBox's webhook and event rule pointed at the
 * bridge, one real edit through the NetBox REST API, and the timeline of that edit as UNICOP
 * recorded it on Kafka (changes, intents, audit), printed as it arrives.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { readStackEnv, repoRoot } from '../core/config.js';
import { topics } from '../core/events/catalogue.js';

const stack = readStackEnv();
const netboxUrl = stack.UNICOP_NETBOX_URL as string;
const token = stack.UNICOP_NETBOX_TOKEN as string;
const bridgePort = 18080;
const secret = randomBytes(24).toString('hex');
const children: ChildProcess[] = [];

async function netbox<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${netboxUrl}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json',
    },
    body: body === undefined ? null : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`NetBox ${method} ${path} -> ${res.status}`);
  return (res.status === 204 ? {} : await res.json()) as T;
}

/** Creates or updates the object named `name` at `path` (idempotent across demo runs). */
async function upsert(path: string, name: string, fields: Record<string, unknown>): Promise<{ id: number }> {
  const found = await netbox<{ results: { id: number }[] }>(
    'GET',
    `${path}?name=${encodeURIComponent(name)}`,
  );
  const existing = found.results[0];
  if (existing) return netbox('PATCH', `${path}${existing.id}/`, fields);
  return netbox('POST', path, { name, ...fields });
}

function start(name: string, script: string, env: Record<string, string>): void {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, script)], {
    cwd: repoRoot,
    env: { ...process.env, ...stack, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[${name}] ${d}`));
  children.push(child);
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(url)).ok) return;
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

async function main(): Promise<void> {
  start('bridge', 'bridge/main.ts', {
    UNICOP_WEBHOOK_SECRETS: secret,
    UNICOP_BRIDGE_PORT: String(bridgePort),
    UNICOP_LOG_LEVEL: 'warn',
  });
  start('workers', 'workers/main.ts', { UNICOP_LOG_LEVEL: 'warn' });
  await waitFor(`http://127.0.0.1:${bridgePort}/healthz`);
  console.log(`bridge listening on 127.0.0.1:${bridgePort}; workers running`);

  const webhook = await upsert('/api/extras/webhooks/', 'unicop-demo-bridge', {
    payload_url: `http://127.0.0.1:${bridgePort}/webhooks/netbox`,
    http_method: 'POST',
    http_content_type: 'application/json',
    secret,
  });
  await upsert('/api/extras/event-rules/', 'unicop-demo', {
    object_types: ['dcim.site', 'ipam.prefix', 'ipam.ipaddress'],
    event_types: ['object_created', 'object_updated', 'object_deleted'],
    action_type: 'webhook',
    action_object_type: 'extras.webhook',
    action_object_id: webhook.id,
    enabled: true,
  });
  console.log('NetBox webhook + event rule point at the bridge (signed with a fresh secret)');

  const kafka = new Kafka({
    clientId: 'unicop-demo',
    brokers: stack.UNICOP_KAFKA_BROKERS?.split(',') ?? [],
    logLevel: logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: `unicop-demo-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topics.changes, topics.intents, topics.audit], fromBeginning: false });
  const site = await upsert('/api/dcim/sites/', 'demo-site', { slug: 'demo-site', status: 'active' });
  const subjects = new Set([`dcim.site:${site.id}`, `site/${site.id}`]);
  let seenChange = false;
  let editedAt = Number.POSITIVE_INFINITY;
  let seenQueued = false;
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const event = JSON.parse(String(message.value)) as {
        time: string;
        type: string;
        subject: string;
        data: Record<string, unknown>;
      };
      const data = event.data;
      const related =
        subjects.has(event.subject) ||
        (data.objectType === 'dcim.site' && data.objectId === site.id) ||
        (data.subjectType === 'dcim.site' && data.subjectId === String(site.id));
      if (!related) return;
      if (topic === topics.changes) seenChange = true;
      const dispatched = data.action === 'intent.queued' || data.action === 'intent.coalesced';
      if (topic === topics.audit && dispatched && Date.parse(event.time) >= editedAt) seenQueued = true;
      const detail =
        topic === topics.audit
          ? `${data.action} (${data.outcome}${data.reason ? `: ${data.reason}` : ''})`
          : topic === topics.intents
            ? `intent for ${data.rootKey}`
            : `${data.event} ${data.objectType} #${data.objectId} by ${data.actor}`;
      line(event.time, `${topic}`, detail);
    },
  });
  await new Promise((r) => setTimeout(r, 3000)); // let the consumer group settle at the end offsets
  const description = `edited by the UNICOP demo at ${new Date().toISOString()}`;
  console.log(`\nEditing NetBox site #${site.id} through the REST API: description = "${description}"\n`);
  editedAt = Date.now();
  await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description });

  // The workers may first work through a backlog left by earlier runs: allow them a minute.
  const deadline = Date.now() + 60_000;
  while (!seenQueued && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 1000));
  await consumer.disconnect();
  console.log(
    seenQueued
      ? `\nThe edit became a change on Kafka, an intent for site/${site.id} and a job on the reconcile queue (one active + one waiting per root). Running it through AWX lands with issue #6.`
      : seenChange
        ? '\nThe edit reached Kafka, but no reconcile job was queued within 60 s: see the workers output above.'
        : '\nNo change arrived: see var/log/netbox-rqworker.log and the bridge output above.',
  );
  if (!seenChange) process.exitCode = 1;
}

main()
  .catch((error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGTERM');
  });
