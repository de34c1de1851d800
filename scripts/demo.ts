/**
 * The demo: the stack's real AWX (var/stack.env: UNICOP_AWX_REAL_URL, its token and webhook secret,
 * UNICOP_AWX_NOTIFY_URL), the bridge and the workers as child processes; NetBox's webhook and event
 * rule pointed at the bridge; one real edit through the NetBox REST API; and the root's timeline as
 * UNICOP records it on Kafka (change, intent, queue, lease, launch, AWX's own notifications, outcome,
 * release), printed live until the outcome has landed in NetBox — then what NetBox shows for it (root
 * status, run, journal entry) and the AWX job as AWX reports it, with its address in AWX's UI. Last,
 * one call to the bridge's admin API through Keycloak (decision 0051): the CLI's client `unicop-cli`
 * signs in with the client credentials grant and reads `GET /status?root=…` with its access token —
 * the bridge's admin API is behind the realm, break-glass off.
 *
 * Real AWX posts its notifications to UNICOP_AWX_NOTIFY_URL (its bootstrap's notification template),
 * so the demo's bridge listens exactly there, with AWX's webhook secret. Only one process can: when
 * another (a test's bridge) holds the port, the demo says so and stops, and leaves it alone.
 *
 * The demo starts "from now": the workers' consumer groups are moved to the end of their topics
 * and the sweeper's Redis epoch is set, so a development stack's backlog from tests is not
 * reconciled first (docs/runbooks/redis-data-lost.md explains the epoch).
 *
 * NetBox's event rule `unicop-bridge` lives only as long as the demo's bridge: the bootstrap enables
 * it when the demo starts, and the demo disables it when it stops (at its end, on a failure, on
 * Ctrl-C or SIGTERM), before it stops the bridge. Left enabled, every later edit of the stack's
 * NetBox would be sent to a port where nothing listens, and retried (RQ_RETRY_MAX): a backlog in
 * NetBox's one RQ worker that delays every other webhook (docs/runbooks/netbox-webhook-backlog.md).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { ClientCredentials } from '../core/auth/client-credentials.js';
import { loadConfig, readStackEnv, repoRoot, resolveSecret } from '../core/config.js';
import { consumerGroups } from '../core/event-log/groups.js';
import { KafkaEventLog } from '../core/event-log/kafka.js';
import { topics } from '../core/events/catalogue.js';
import { netboxRest } from '../core/netbox/rest.js';
import { loadRuntimeConfig } from '../core/secrets/runtime-config.js';
import { statusSources } from '../core/status/sources.js';
import { describeRootChange, describeWait, whyItWaits } from '../core/status/why-it-waits.js';
import { driftCheckMessages } from '../workers/drift/scheduler.js';
import { redisEpochKey } from '../workers/sweeper/sweeper.js';

const stack = readStackEnv();
const netboxUrl = stack.UNICOP_NETBOX_URL as string;
const token = stack.UNICOP_NETBOX_TOKEN as string;

/** A fact `scripts/stack up` recorded; the demo cannot run without it. */
function fact(name: string): string {
  const value = stack[name];
  if (!value) throw new Error(`${name} is not in var/stack.env: bring the stack up (scripts/stack up)`);
  return value;
}
const awxUrl = fact('UNICOP_AWX_REAL_URL').replace(/\/+$/, '');
// Where real AWX posts its notifications: the demo's bridge listens there.
const notifyUrl = new URL(fact('UNICOP_AWX_NOTIFY_URL'));
const bridgeHost = notifyUrl.hostname;
const bridgePort = Number(notifyUrl.port || 80);
// Every secret of the demo's bridge and workers is a Vault reference (decision 0050): each process
// logs in with its own AppRole (the stack's var/vault/approle/<process>/) and may read only its own.
const vaultRefs = {
  netboxToken: 'vault:unicop/netbox#token',
  awxToken: 'vault:unicop/awx#token',
  awxWebhookSecret: 'vault:unicop/awx-webhook#secret',
  netboxWebhookSecret: 'vault:unicop/netbox-webhook#secret',
};
// NetBox signs with the webhook secret the bridge reads from Vault: the plugin's bootstrap command
// reads it from this file inside NetBox's root (where the repository is mounted at /unicop).
const secretFile = join(repoRoot, 'var', 'demo', 'webhook-secret');
const children: ChildProcess[] = [];
// How long the demo waits for the edit's outcome (a cap: it goes on as soon as the outcome lands).
const outcomeCapMs = 600_000;
// The event rule and webhook `unicop_bootstrap` makes (its default name).
const ruleName = 'unicop-bridge';
// Set once the bootstrap may have enabled the rule: from then on, stopping disables it.
let ruleEnabled = false;

const netbox = netboxRest(netboxUrl, token);

/**
 * The plugin's own bootstrap: NetBox's webhook and event rule for every object type of the catalogue,
 * the rule enabled (a previous demo disabled it when it stopped; the bootstrap says `updated` then).
 */
async function bootstrapNetbox(): Promise<void> {
  ruleEnabled = true;
  execFileSync(
    join(repoRoot, 'scripts', 'stack.d', 'netbox.sh'),
    [
      'exec',
      'netbox',
      'unicop_bootstrap',
      '--url',
      `http://${bridgeHost}:${bridgePort}/webhooks/netbox`,
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
  // The services run compiled (dist/, `npm run build`).
  const child = spawn(process.execPath, [join(repoRoot, script), ...args], {
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

/**
 * The NetBox webhook secret's current version, read from Vault as the bridge reads it (its AppRole),
 * into the file the plugin's bootstrap hands to NetBox (mode 600).
 */
async function secretForNetbox(): Promise<void> {
  const { config, secrets } = await loadRuntimeConfig('bridge', {
    ...process.env,
    UNICOP_WEBHOOK_SECRETS: vaultRefs.netboxWebhookSecret,
  });
  await secrets?.close();
  const [current] = config.UNICOP_WEBHOOK_SECRETS ?? [];
  if (!current) throw new Error(`${vaultRefs.netboxWebhookSecret}: no value in Vault`);
  mkdirSync(dirname(secretFile), { recursive: true });
  writeFileSync(secretFile, `${current}\n`, { mode: 0o600 });
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

/** Whether nothing listens on host:port yet (the demo never takes a port from another process). */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

/** AWX's own answer: its version (GET /api/v2/ping/, unauthenticated). */
async function awxVersion(): Promise<string> {
  const res = await fetch(`${awxUrl}/api/v2/ping/`, { signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`AWX at ${awxUrl} answered ${res.status} to /api/v2/ping/`);
  return ((await res.json()) as { version: string }).version;
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
  if (!(await portFree(bridgeHost, bridgePort))) {
    console.log(
      `${bridgeHost}:${bridgePort} (UNICOP_AWX_NOTIFY_URL, where AWX sends its notifications) is taken by another process — another bridge, perhaps a test's. The demo leaves it alone: run it again once that process has finished.`,
    );
    process.exitCode = 1;
    return;
  }
  const version = await awxVersion();
  await startFromNow(kafka);
  await secretForNetbox();
  start(
    'bridge',
    'dist/bin/unicop.js',
    {
      UNICOP_WEBHOOK_SECRETS: vaultRefs.netboxWebhookSecret,
      // The secret real AWX's notification template sends (in Vault, as every secret here).
      UNICOP_AWX_WEBHOOK_SECRET: vaultRefs.awxWebhookSecret,
      UNICOP_NETBOX_TOKEN: vaultRefs.netboxToken,
      UNICOP_BRIDGE_HOST: bridgeHost,
      UNICOP_BRIDGE_PORT: String(bridgePort),
      UNICOP_LOG_LEVEL: 'warn',
    },
    ['bridge'],
  );
  start(
    'workers',
    'dist/bin/unicop.js',
    {
      UNICOP_AWX_URL: awxUrl,
      UNICOP_AWX_TOKEN: vaultRefs.awxToken,
      UNICOP_NETBOX_TOKEN: vaultRefs.netboxToken,
      UNICOP_AWX_UI_URL: awxUrl,
      UNICOP_POLL_MIN_MS: '500',
      // A development stack holds many test roots out of sync: the demo sweeps on the interval only.
      UNICOP_SWEEP_ON_START: 'false',
      // Nor drift checks of those roots (decision 0054): they would queue real AWX jobs beside the demo's.
      UNICOP_DRIFT_CHECK_SECONDS: '0',
      // Tests may hold the default metrics port; the demo needs no metrics listener.
      UNICOP_WORKERS_METRICS_PORT: '0',
      UNICOP_LOG_LEVEL: 'warn',
    },
    ['workers'],
  );
  // Ready, not only listening: the bridge answers webhooks 503 until Kafka is connected.
  await waitFor(`http://${bridgeHost}:${bridgePort}/readyz`);
  console.log(`AWX ${version} at ${awxUrl} (real AWX; version from its /api/v2/ping/)`);
  console.log(
    `bridge on ${bridgeHost}:${bridgePort}, where AWX posts its notifications; workers running (resolver, dispatcher, reconciler, sweeper)`,
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
  // AWX's notifications about jobs not (yet) known to be this root's: AWX may notify before the
  // demo has read the launch's audit event, so they wait here until the job turns out to be ours.
  const unclaimed: { time: string; data: Record<string, unknown> }[] = [];
  const finishedJobs = new Set<number>();
  let released = false;
  let editedAt = Number.POSITIVE_INFINITY;
  let outcome: Record<string, unknown> | null = null;
  let traceId: string | null = null;
  const showAwx = (time: string, data: Record<string, unknown>) => {
    if (['successful', 'failed', 'error', 'canceled'].includes(String(data.status))) {
      finishedJobs.add(Number(data.awxJobId));
    }
    line(time, topics.awxEvents, describe(topics.awxEvents, data));
  };
  const claim = (jobId: number) => {
    awxJobs.add(jobId);
    for (const waiting of unclaimed.filter((u) => Number(u.data.awxJobId) === jobId)) {
      unclaimed.splice(unclaimed.indexOf(waiting), 1);
      showAwx(waiting.time, waiting.data);
    }
  };
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const event = JSON.parse(String(message.value)) as {
        time: string;
        subject: string;
        data: Record<string, unknown>;
      };
      const data = event.data;
      if (topic === topics.awxEvents && data.kind === 'job' && !awxJobs.has(Number(data.awxJobId))) {
        unclaimed.push({ time: event.time, data });
        return;
      }
      const related =
        data.rootKey === rootKey ||
        (data.subjectType === 'root' && data.subjectId === rootKey) ||
        (data.objectType === 'dcim.site' && data.objectId === site.id) ||
        (topic === topics.awxEvents && awxJobs.has(Number(data.awxJobId)));
      if (!related) return;
      if (topic === topics.awxEvents) return showAwx(event.time, data);
      line(event.time, topic, describe(topic, data));
      const correlation = (data.correlation ?? {}) as Record<string, unknown>;
      if (typeof correlation.awxJobId === 'number') claim(correlation.awxJobId);
      if (data.action === 'lease.released') released = true;
      if (topic === topics.outcomes) {
        if (typeof data.awxJobId === 'number') claim(data.awxJobId);
        // The first run that started after the edit reconciles it. On a slow machine that can be the
        // run of the site's creation (its lease came after the edit); the coalesced follow-up run then
        // finds the hash reconciled and is skipped, which must not hide the success before it.
        const afterEdit = Date.parse(String(data.startedAt)) >= editedAt;
        if (afterEdit && (outcome === null || outcome.state !== 'succeeded')) {
          outcome = data;
          // The run's trace (decision 0040): the outcome record's traceparent, when tracing is on.
          traceId = message.headers?.traceparent?.toString().split('-')[1] ?? null;
        }
      }
    },
  });
  await new Promise((r) => setTimeout(r, 3000)); // let the consumer group settle at the end offsets
  const description = `edited by the UNICOP demo at ${new Date().toISOString()}`;
  console.log(`\nEditing NetBox site #${site.id} through the REST API: description = "${description}"\n`);
  editedAt = Date.now();
  await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description });

  // Caps, not budgets: a real AWX job starts a podman container (tens of seconds, minutes under load).
  const deadline = Date.now() + outcomeCapMs;
  while (!outcome && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  // Then the lease's release and AWX's own last notification about the job (sent once it ended).
  const jobOf = (o: Record<string, unknown> | null) => (typeof o?.awxJobId === 'number' ? o.awxJobId : null);
  const tailEnd = Date.now() + 60_000;
  while (outcome && Date.now() < tailEnd) {
    const job = jobOf(outcome);
    if (released && (job === null || finishedJobs.has(job))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await consumer.disconnect();
  if (!outcome) {
    await printWhyItWaits(kafka, rootKey, `No outcome within ${outcomeCapMs / 1000} s`);
    console.log('See the bridge/workers output above and var/log/.');
    process.exitCode = 1;
    return;
  }
  await showNetbox(rootKey, site.id, outcome);
  const job = jobOf(outcome);
  if (job !== null) await showAwxJob(job, version);
  // Jaeger (scripts/stack up jaeger) shows the edit's one trace: bridge → … → AWX → outcome; a
  // URL is printed only while Jaeger answers (var/stack.env keeps its address after it stops).
  const jaeger = stack.UNICOP_JAEGER_URL;
  const answering =
    jaeger !== undefined &&
    (await fetch(`${jaeger}/api/services`, { signal: AbortSignal.timeout(3000) }).then(
      (res) => res.ok,
      () => false,
    ));
  if (traceId && answering) console.log(`\nTrace of the edit: ${jaeger}/trace/${traceId}`);
  const accessToken = await adminCallThroughKeycloak(rootKey);
  if (accessToken) await driftDetectedAndRemediated(kafka, rootKey, accessToken);
}

/**
 * Drift (decisions 0054, 0062): a person edits the site's file at the target by hand (the site
 * playbook's output under UNICOP_AWX_TARGET_DIR); a drift check — the intent the drift scheduler
 * appends when a root's check is due (workers/drift/scheduler.ts's driftCheckMessages; the demo's
 * workers run without the scheduler, whose interval is an hour) — runs the playbook in check mode and
 * ends `drifted` naming the file, nothing applied; then an operator's manual reconcile through the
 * admin API (an apply run) restores the file, and the root is in sync again.
 */
async function driftDetectedAndRemediated(kafka: Kafka, rootKey: string, accessToken: string): Promise<void> {
  const file = join(fact('UNICOP_AWX_TARGET_DIR'), rootKey.replace('/', '-'), 'inventory.json');
  const original = readFileSync(file, 'utf8');
  const edited = original.replace('"devices"', '"devices_edited_by_hand"');
  const outcomes: Record<string, unknown>[] = [];
  const consumer = kafka.consumer({ groupId: `unicop-demo-drift-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topics.outcomes], fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const data = (JSON.parse(String(message.value)) as { data: Record<string, unknown> }).data;
      if (data.rootKey === rootKey) outcomes.push(data);
    },
  });
  await new Promise((r) => setTimeout(r, 3000)); // let the consumer group settle at the end offsets
  const nextOutcome = async (mode: 'check' | 'apply', after: number) => {
    const deadline = Date.now() + outcomeCapMs;
    for (;;) {
      const found = outcomes.find(
        (o) => (o.mode ?? 'apply') === mode && Date.parse(String(o.startedAt)) >= after,
      );
      if (found || Date.now() > deadline) return found ?? null;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const rootStatus = async () =>
    (
      await netbox<{ results: { status: string }[] }>(
        'GET',
        `/api/plugins/unicop/roots/?key=${encodeURIComponent(rootKey)}`,
      )
    ).results[0]?.status;
  try {
    console.log(`
Drift: editing ${file} at the target by hand ("devices" → "devices_edited_by_hand")`);
    writeFileSync(file, edited);
    const checkAsked = Date.now();
    const eventLog = new KafkaEventLog(kafka);
    await eventLog.append(
      driftCheckMessages(
        { key: rootKey },
        new Date(),
        'unicop-demo',
        'demo: check the site after a hand edit',
      ),
    );
    await eventLog.close();
    console.log(
      `  drift check of ${rootKey} asked for (intent cause drift_check, as the drift scheduler appends it)`,
    );
    const check = await nextOutcome('check', checkAsked);
    if (!check) {
      console.log(`  no check outcome within ${outcomeCapMs / 1000} s`);
      process.exitCode = 1;
      return;
    }
    const files = (check.changedFiles as string[] | undefined) ?? [];
    console.log(
      `  check run ${String(check.runId)} (AWX job ${String(check.awxJobId)}, job_type check): ${String(check.state)}, differing: ${files.join(', ') || 'none named'}`,
    );
    console.log(`  ${String(check.summary)}`);
    const untouched = readFileSync(file, 'utf8') === edited;
    const shown = await rootStatus();
    console.log(
      `  NetBox: root ${rootKey} status ${shown}; the file at the target ${untouched ? 'still carries the hand edit (a check applies nothing)' : 'CHANGED by the check'}`,
    );
    if (check.state !== 'drifted' || !files.includes('inventory.json') || !untouched || shown !== 'drifted') {
      process.exitCode = 1;
      return;
    }

    const remediateAsked = Date.now();
    const path = `/roots/${rootKey}/reconcile`;
    const res = await fetch(`http://${bridgeHost}:${bridgePort}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ reason: 'demo: restore the hand-edited file' }),
      signal: AbortSignal.timeout(30_000),
    });
    const answer = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    console.log(
      `  remediation: POST ${path} (an operator's manual reconcile: an apply run) → ${res.status} ${String(answer.status ?? answer.reason ?? '')}`,
    );
    const apply = res.ok ? await nextOutcome('apply', remediateAsked) : null;
    if (!apply) {
      console.log(`  no apply outcome within ${outcomeCapMs / 1000} s`);
      process.exitCode = 1;
      return;
    }
    const restored = readFileSync(file, 'utf8') === original;
    // The root reads `reconciling` until the run's lease is released, just after its outcome.
    let status = await rootStatus();
    for (const until = Date.now() + 60_000; status === 'reconciling' && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 500));
      status = await rootStatus();
    }
    console.log(
      `  apply run ${String(apply.runId)} (AWX job ${String(apply.awxJobId)}): ${String(apply.state)}; the file ${restored ? 'restored' : 'NOT restored'}; NetBox: root ${rootKey} status ${status}`,
    );
    if (apply.state !== 'succeeded' || !restored || status !== 'in_sync') process.exitCode = 1;
    else console.log('\nDrift: detected, reported and remediated end to end.');
  } finally {
    await consumer.disconnect();
  }
}

/**
 * One admin API call as automation makes it (decision 0051): Keycloak's client credentials grant for
 * the stack's `unicop-cli` (an operator), then `GET /status?root=…` with the access token. The token
 * is never printed; its user and roles are (read from its claims).
 */
async function adminCallThroughKeycloak(rootKey: string): Promise<string | null> {
  const config = loadConfig({ ...process.env, ...stack });
  if (!config.UNICOP_OIDC_ISSUER || !config.UNICOP_OIDC_CLIENT_ID || !config.UNICOP_OIDC_CLIENT_SECRET) {
    throw new Error(
      'var/stack.env has no Keycloak client (UNICOP_OIDC_*): bring the stack up (scripts/stack up)',
    );
  }
  const signIn = new ClientCredentials({
    issuer: config.UNICOP_OIDC_ISSUER,
    clientId: config.UNICOP_OIDC_CLIENT_ID,
    clientSecret: config.UNICOP_OIDC_CLIENT_SECRET,
  });
  const accessToken = await signIn.accessToken();
  const claims = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
    preferred_username?: string;
    realm_access?: { roles?: string[] };
  };
  const roles = (claims.realm_access?.roles ?? []).filter((r) =>
    ['viewer', 'operator', 'approver', 'admin'].includes(r),
  );
  const path = `/status?root=${rootKey}`;
  const res = await fetch(`http://${bridgeHost}:${bridgePort}${path}`, {
    headers: { Authorization: `Bearer ${accessToken}` },
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  console.log(
    `\nAdmin API through Keycloak (${config.UNICOP_OIDC_ISSUER}): client ${config.UNICOP_OIDC_CLIENT_ID} signed in (client credentials) as ${claims.preferred_username ?? '?'}, roles ${roles.join(', ') || 'none'}`,
  );
  if (!res.ok) {
    console.log(`  GET ${path} → ${res.status} ${String(body.reason ?? '')}: ${String(body.message ?? '')}`);
    process.exitCode = 1;
    return null;
  }
  const change = body.change
    ? describeRootChange(body.change as Parameters<typeof describeRootChange>[0])
    : 'not read';
  console.log(`  GET ${path} → ${res.status}: the edit is ${change}`);
  return accessToken;
}

/**
 * Which stage holds the edit (core/status/why-it-waits.ts, the reading of `unicop root why` and the
 * admin API's GET /status), read from the stack's services now: named on the headline, then every stage.
 */
async function printWhyItWaits(kafka: Kafka, rootKey: string, headline: string): Promise<void> {
  const config = loadConfig({
    ...process.env,
    UNICOP_AWX_URL: awxUrl,
    UNICOP_AWX_TOKEN: fact('UNICOP_AWX_REAL_TOKEN'),
  });
  const sources = statusSources(config, kafka);
  try {
    const status = await whyItWaits(sources, { rootKey });
    const change = status.change ? describeRootChange(status.change) : 'not read';
    console.log(`\n${headline}: the edit is ${change}\n${describeWait(status)}`);
  } finally {
    await sources.close();
  }
}

/** The run's AWX job as AWX reports it, and where AWX's UI shows its output. */
async function showAwxJob(id: number, version: string): Promise<void> {
  const token = resolveSecret(fact('UNICOP_AWX_REAL_TOKEN'), process.env);
  const res = await fetch(`${awxUrl}/api/v2/jobs/${id}/`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(30_000),
  });
  console.log(`\nIn AWX now (${version}, ${awxUrl}):`);
  if (!res.ok) {
    console.log(`  job ${id}: AWX answered ${res.status}`);
    return;
  }
  const job = (await res.json()) as { name: string; status: string; elapsed: number; playbook: string };
  console.log(`  job ${id} "${job.name}" (${job.playbook}): ${job.status} after ${job.elapsed} s`);
  console.log(`  output: ${awxUrl}/#/jobs/playbook/${id}/output`);
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

/**
 * Disables the event rule the bootstrap enabled, so that NetBox stops sending changes to the bridge
 * about to stop (the rule and its webhook stay: the next demo's bootstrap enables the rule again).
 * Says what it did, and what to do when NetBox did not answer.
 */
async function disableEventRule(): Promise<void> {
  if (!ruleEnabled) return;
  ruleEnabled = false;
  try {
    const found = await netbox<{ results: { id: number; enabled: boolean }[] }>(
      'GET',
      `/api/extras/event-rules/?name=${ruleName}`,
    );
    for (const rule of found.results) {
      const after = await netbox<{ enabled: boolean }>('PATCH', `/api/extras/event-rules/${rule.id}/`, {
        enabled: false,
      });
      if (after.enabled) throw new Error(`NetBox kept event rule #${rule.id} enabled`);
      console.log(`event rule ${ruleName}: disabled (the bridge stops; the next demo enables it again)`);
    }
  } catch (error) {
    console.error(
      `event rule ${ruleName} not disabled (${error instanceof Error ? error.message : String(error)}): ` +
        'NetBox keeps sending changes to the stopped bridge; disable it in NetBox (Operations → Event rules)',
    );
  }
}

/** Stops the bridge and the workers and waits for them to exit (SIGKILL after 30 s), freeing the ports. */
async function stopChildren(): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

// `on`, not `once`: tsx's own signal handler exits at once when it finds no listener left (a `once`
// listener is removed before it runs), which skipped the rule and orphaned the children. A second
// Ctrl-C while stopping changes nothing: stopChildren kills what does not exit within 30 s.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void disableEventRule()
      .then(stopChildren)
      .then(() => process.exit(130));
  });
}

main()
  .catch((error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await disableEventRule();
    await stopChildren();
    // Nothing else keeps the demo: the Kafka clients are disconnected, the children gone.
    process.exit();
  });
