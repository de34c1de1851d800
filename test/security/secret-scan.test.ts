/**
 * Issue #18 item 5 and guarantee 9 (no secrets in logs, events, journal entries or error messages),
 * for a whole reconcile as `npm run demo` makes it: the compiled bridge and workers processes
 * (dist/, as the fault suite spawns them) with every secret given by reference, NetBox's signed
 * webhook for a site of this test's own (an event-rule condition on its name), the site made and then
 * edited through NetBox's REST API, each change reconciled by the stack's real AWX 24.6.1 (its
 * notifications reach the bridge when the port AWX notifies is free). On the way the bridge is also
 * sent what a careless log line would keep: a webhook with a wrong signature, an AWX notification
 * with the right secret and one with the secret plus a byte, admin API calls with the admin token and
 * with the token plus a byte. Both processes log at debug.
 *
 * Then everything the run left is scanned for every configured secret value — the NetBox API token
 * (and its secret half), the NetBox webhook secret, the AWX API token, the AWX admin password, the AWX
 * notification secret, the admin API token (and, when the stack has them, the PostgreSQL password,
 * the CLI's Keycloak client secret and Vault's root token): both
 * processes' logs, what the stack's services logged meanwhile (var/log), every record written to every
 * unicop.* Kafka topic meanwhile (keys, values, headers), the site's journal entries, the root's run
 * records and root record in NetBox, and the AWX jobs of the root (extra vars and output). One hit
 * anywhere fails the test, naming the secret and where.
 *
 * Like the fault suite, it uses the workers' production consumer groups (positioned at the end of
 * their topics first; while another workers process holds them — `npm run demo` — it waits) and a
 * Redis database of its own (testRedisDatabases.secretScan). UNICOP_FAULT_UNICOP_JS runs another
 * build of the executable, as for the fault suite.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { signBody } from '../../bridge/ingress/signature.js';
import { readStackEnv, repoRoot, resolveSecret } from '../../core/config.js';
import { consumerGroups } from '../../core/event-log/groups.js';
import { topics } from '../../core/events/catalogue.js';
import { redisEpochKey } from '../../workers/sweeper/sweeper.js';
import { portFree, processReady, type SpawnedUnicop, spawnUnicop } from '../faults/suite/processes.js';
import { takeRealAwx } from '../support/awx.js';
import { positionGroupAtEnd, TopicTail, testKafka } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { hookNetboxTo } from '../support/pipeline.js';
import { journalOf } from '../support/reconciler.js';
import { redisDatabaseUrl, stack, stackFact, testRedisDatabases, uniqueName } from '../support/stack.js';

// Caps, not budgets: a real AWX job starts a podman container; minutes on a loaded machine.
const runCapMs = 600_000;
const startCapMs = 180_000;
const groupsFreeCapMs = 900_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, capMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + capMs;
  let last: unknown;
  for (;;) {
    const found = await probe().catch((error: unknown) => {
      last = error;
      return undefined;
    });
    if (found !== undefined) return found;
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${capMs} ms (last error: ${String(last)})`);
    await sleep(500);
  }
}

/** Every configured secret, by what it is (values of 8 characters or more: shorter would match by chance). */
function configuredSecrets(webhookSecret: string, adminToken: string): Record<string, string> {
  const netboxToken = stack.netboxToken();
  const out: Record<string, string> = {
    'the NetBox API token': netboxToken,
    'the NetBox webhook secret': webhookSecret,
    'the AWX API token': resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env),
    'the AWX admin password': readFileSync(stackFact('UNICOP_AWX_ADMIN_PASSWORD_FILE'), 'utf8').trim(),
    'the AWX notification secret': resolveSecret(stackFact('UNICOP_AWX_REAL_WEBHOOK_SECRET'), process.env),
    'the admin API token': adminToken,
  };
  // A v2 token is nbt_<key>.<secret>: the key is an identifier, the part after the dot the secret.
  const secretHalf = netboxToken.split('.')[1];
  if (secretHalf) out['the NetBox API token’s secret half'] = secretHalf;
  // The stack's other secrets, when it has them: anything may log them, UNICOP must not.
  const facts = { ...readStackEnv(), ...process.env };
  if (facts.UNICOP_PG_PASSWORD) out['the PostgreSQL password'] = facts.UNICOP_PG_PASSWORD;
  if (facts.UNICOP_OIDC_CLIENT_SECRET) {
    out['the CLI’s Keycloak client secret'] = resolveSecret(facts.UNICOP_OIDC_CLIENT_SECRET, process.env);
  }
  if (facts.UNICOP_VAULT_ROOT_TOKEN_FILE && existsSync(facts.UNICOP_VAULT_ROOT_TOKEN_FILE)) {
    out['the Vault root token'] = readFileSync(facts.UNICOP_VAULT_ROOT_TOKEN_FILE, 'utf8').trim();
  }
  return out;
}

/** The stack's service logs and their sizes now: what is written from here on is scanned. */
function stackLogsNow(): { file: string; from: number }[] {
  const dir = join(process.env.UNICOP_VAR ?? join(repoRoot, 'var'), 'log');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .map((f) => ({ file: join(dir, f), from: statSync(join(dir, f)).size }));
}

function readFrom(file: string, from: number): string {
  try {
    const all = readFileSync(file);
    return all.subarray(Math.min(from, all.length)).toString('utf8');
  } catch {
    return '';
  }
}

interface Outcome {
  rootKey: string;
  state: string;
  awxJobId: number | null;
  finishedAt: string;
}

describe('no secret in anything a whole reconcile leaves', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const step of cleanups.reverse()) await step().catch(() => undefined);
  });

  it(
    'logs, Kafka records, journal entries, run records and AWX jobs hold none of the configured secrets',
    async () => {
      const tag = uniqueName('secret-scan');
      const dir = join(process.env.UNICOP_VAR ?? join(repoRoot, 'var'), 'secret-scan', tag);
      mkdirSync(dir, { recursive: true });
      const webhookSecret = randomBytes(24).toString('hex');
      const adminToken = randomBytes(24).toString('hex');
      const secrets = configuredSecrets(webhookSecret, adminToken);
      for (const [what, value] of Object.entries(secrets)) {
        expect(value.length, what).toBeGreaterThanOrEqual(8);
        // A value, not a reference this test cannot resolve (vault:): scanning for that proves nothing.
        expect(value, what).not.toMatch(/^(env|file|vault):/);
      }
      // Given by reference, as in production: a file for the webhook secret, a variable for the token.
      const webhookSecretFile = join(dir, 'webhook-secret');
      writeFileSync(webhookSecretFile, `${webhookSecret}\n`, { mode: 0o600 });
      cleanups.push(async () => rmSync(webhookSecretFile, { force: true })); // the logs stay for a look

      const kafka = testKafka();
      // The workers' groups at the end of their topics (as `npm run demo` does); while another workers
      // process holds them (a demo, a fault run), Kafka refuses that: wait for it to end (a cap).
      for (const [group, topic] of [
        [consumerGroups.resolver, topics.changes],
        [consumerGroups.dispatcher, topics.intents],
      ] as const) {
        await until(`Kafka group ${group} free of other workers processes`, groupsFreeCapMs, () =>
          positionGroupAtEnd(kafka, group, topic).then(
            () => true,
            (error: Error) => {
              if (/no running instances/.test(error.message)) return undefined;
              throw error;
            },
          ),
        );
      }
      const redisUrl = redisDatabaseUrl(testRedisDatabases.secretScan);
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      await redis.flushdb();
      await redis.set(redisEpochKey, new Date().toISOString()); // no sweep of every root at start
      redis.disconnect();

      const admin = kafka.admin();
      await admin.connect();
      const unicopTopics = (await admin.listTopics()).filter((t) => t.startsWith('unicop.'));
      await admin.disconnect();
      expect(unicopTopics).toEqual(expect.arrayContaining(Object.values(topics)));
      const tail = await TopicTail.start(unicopTopics, kafka);
      cleanups.push(() => tail.stop());
      const stackLogs = stackLogsNow();
      const awx = await takeRealAwx();

      // The bridge listens where real AWX posts its notifications when that port is free.
      const notifyPort = Number(new URL(stackFact('UNICOP_AWX_NOTIFY_URL')).port);
      const bridgePort = notifyPort && (await portFree(notifyPort)) ? notifyPort : undefined;
      const unicop: SpawnedUnicop = await spawnUnicop({
        dir,
        workers: 1,
        ...(bridgePort === undefined ? {} : { bridgePort }),
        env: {
          UNICOP_VAR: process.env.UNICOP_VAR ?? join(repoRoot, 'var'),
          UNICOP_LOG_LEVEL: 'debug',
          UNICOP_REDIS_URL: redisUrl,
          UNICOP_KAFKA_BROKERS: stack.kafkaBrokers().join(','),
          UNICOP_NETBOX_URL: stack.netboxUrl(),
          UNICOP_NETBOX_TOKEN: 'env:SCAN_NETBOX_TOKEN',
          SCAN_NETBOX_TOKEN: stack.netboxToken(),
        },
        bridgeEnv: {
          UNICOP_WEBHOOK_SECRETS: `file:${webhookSecretFile}`,
          UNICOP_AWX_WEBHOOK_SECRET: stackFact('UNICOP_AWX_REAL_WEBHOOK_SECRET'),
          UNICOP_ADMIN_TOKEN: 'env:SCAN_ADMIN_TOKEN',
          // The shared token is break-glass (decision 0051): on here, so its use is audited and logged.
          UNICOP_ADMIN_BREAK_GLASS: 'true',
          SCAN_ADMIN_TOKEN: adminToken,
        },
        workersEnv: {
          UNICOP_AWX_URL: awx.url,
          UNICOP_AWX_TOKEN: stackFact('UNICOP_AWX_REAL_TOKEN'),
          UNICOP_AWX_UI_URL: awx.url,
          UNICOP_POLL_MIN_MS: '500',
          UNICOP_SWEEP_ON_START: 'false',
          // No drift checks of the shared stack's other roots (decision 0054).
          UNICOP_DRIFT_CHECK_SECONDS: '0',
        },
      });
      cleanups.push(() => unicop.close());
      await until('the bridge ready', startCapMs, async () => processReady(unicop.bridge) || undefined);
      for (const w of unicop.workers) {
        await until(`${w.name} running`, startCapMs, async () => processReady(w) || undefined);
      }
      cleanups.push(await hookNetboxTo(unicop.bridgeUrl, webhookSecret, ['dcim.site'], tag));

      // The site is made (a new root: its first run) and edited (the next): both reconciled by real AWX.
      const site = await netbox<{ id: number }>('POST', '/api/dcim/sites/', {
        name: tag,
        slug: tag.toLowerCase(),
        status: 'active',
      });
      cleanups.push(() => netbox('DELETE', `/api/dcim/sites/${site.id}/`));
      const rootKey = `site/${site.id}`;
      const succeeded = () =>
        tail.messages
          .filter((m) => m.topic === topics.outcomes && m.key === rootKey)
          .map((m) => m.value.data as Outcome)
          .filter((o) => o.state === 'succeeded' && o.awxJobId !== null);
      const first = await until('the new site reconciled by AWX', runCapMs, async () => succeeded()[0]);
      await netbox('PATCH', `/api/dcim/sites/${site.id}/`, { description: `edited by ${tag}` });
      await until('the edit reconciled by AWX', runCapMs, async () =>
        succeeded().find((o) => o.finishedAt > first.finishedAt),
      );

      // What a careless line would keep: refused and accepted requests carrying the secrets.
      const awxSecret = secrets['the AWX notification secret'] as string;
      const post = (path: string, headers: Record<string, string>, body: unknown) =>
        fetch(`${unicop.bridgeUrl}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(body),
        });
      const change = { event: 'updated', model: 'site', data: { id: site.id, name: tag } };
      const forged = await post(
        '/webhooks/netbox',
        { 'x-hook-signature': signBody(JSON.stringify(change), `${webhookSecret}x`) },
        change,
      );
      expect([401, 403]).toContain(forged.status);
      const job = {
        id: first.awxJobId,
        name: 'unicop-site',
        status: 'successful',
        url: `${awx.url}/#/jobs/playbook/${first.awxJobId}`,
      };
      expect((await post('/webhooks/awx', { 'x-unicop-token': awxSecret }, job)).status).toBe(202);
      const basic = `Basic ${Buffer.from(`awx:${awxSecret}`).toString('base64')}`;
      expect((await post('/webhooks/awx', { authorization: basic }, job)).status).toBe(202);
      expect((await post('/webhooks/awx', { 'x-unicop-token': `${awxSecret}x` }, job)).status).toBe(401);
      for (const token of [adminToken, `${adminToken}x`]) {
        const answer = await fetch(`${unicop.bridgeUrl}/roots/site/${site.id}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(answer.status).toBeLessThan(500);
      }

      // Everything the run left, read after the act.
      await tail.settle(() => true, 3000);
      await unicop.close();
      const runs = await netbox<{ results: unknown[] }>(
        'GET',
        `/api/plugins/unicop/runs/?root=${encodeURIComponent(rootKey)}&limit=100`,
      );
      const root = await netbox<{ results: unknown[] }>(
        'GET',
        `/api/plugins/unicop/roots/?key=${encodeURIComponent(rootKey)}`,
      );
      const journal = await journalOf('dcim.site', site.id);
      const awxJobs = await awx.jobsOf(rootKey);
      const awxGet = async (path: string) =>
        (await fetch(`${awx.url}${path}`, { headers: { authorization: `Bearer ${awx.token}` } })).text();
      const awxRecords: string[] = [];
      for (const j of awxJobs) {
        const kind = j.type === 'job' ? 'jobs' : 'workflow_jobs';
        awxRecords.push(await awxGet(`/api/v2/${kind}/${j.id}/`));
        if (j.type === 'job') awxRecords.push(await awxGet(`/api/v2/jobs/${j.id}/stdout/?format=txt`));
      }

      const places: Record<string, string> = {
        ...Object.fromEntries(unicop.logFiles().map((f) => [f, readFileSync(f, 'utf8')])),
        ...Object.fromEntries(stackLogs.map(({ file, from }) => [file, readFrom(file, from)])),
        'Kafka records (unicop.*)': JSON.stringify([tail.messages, tail.unparsed]),
        'NetBox journal entries of the site': JSON.stringify(journal),
        'NetBox run records of the root': JSON.stringify(runs),
        'NetBox root record': JSON.stringify(root),
        'AWX jobs of the root (record, output)': awxRecords.join('\n'),
      };
      // The scan saw the whole way: both processes logged it, the records are there.
      const bridgeLog = places[unicop.bridge.logFile] as string;
      expect(bridgeLog).toContain('change accepted');
      expect(bridgeLog).toContain('AWX notification accepted');
      expect(tail.messages.filter((m) => m.key === rootKey).length).toBeGreaterThan(5);
      expect(runs.results.length).toBeGreaterThanOrEqual(2);
      expect(journal.length).toBeGreaterThanOrEqual(2);
      expect(awxJobs.length).toBeGreaterThanOrEqual(2);

      const hits = Object.entries(secrets).flatMap(([what, value]) =>
        Object.entries(places)
          .filter(([, text]) => text.includes(value))
          .map(([where]) => `${what} in ${where}`),
      );
      expect(hits).toEqual([]);
    },
    2 * runCapMs + 2 * startCapMs + groupsFreeCapMs,
  );
});
