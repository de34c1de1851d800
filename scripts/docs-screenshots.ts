/**
 * The UI screenshots in docs/img/, from what real runs wrote (docs/img/README.md):
 *
 *   npx tsx scripts/docs-screenshots.ts      (the stack up: scripts/stack up; Debian `chromium`)
 *
 * 1. Objects through NetBox's REST API (found again by slug/name when they exist): site `fra1` with
 *    three devices, a rack and a VLAN; prefix 10.20.30.0/24 with four named IPs; site `ams2`.
 * 2. Real runs through the whole pipeline, as workers/main.ts wires it, for these three roots only:
 *    edits through NetBox's REST API, NetBox's webhook to a bridge, the resolver, the dispatcher and
 *    a reconcile worker on the stack's Kafka, Redis and NetBox plugin, and the stack's real AWX
 *    (its catalogue templates and playbooks). So every run carries a real cause chain (NetBox
 *    change, request id, actor, intent: decision 0039). fra1 is edited while AWX is unreachable (a
 *    port that refuses connections: the run fails, executor_unavailable) and the port is opened to
 *    AWX once the failed run is in NetBox: the retry the reconciler scheduled succeeds. The prefix
 *    and ams2 are edited once each; then ams2 is frozen through the plugin API with a reason.
 * 3. A session from NetBox's own login form (the stack's superuser `admin`, its password read from
 *    the stack's secrets file and never printed), a local proxy that adds that session and serves
 *    /static/ (gunicorn does not serve static files in the local stack), and headless chromium.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../core/config.js';
import { topics } from '../core/events/catalogue.js';
import type { PluginClient } from '../core/plugin/client.js';
import { isTerminal, type RunState } from '../core/runs/state-machine.js';
import { startBridge } from '../test/support/bridge.js';
import { positionGroupAtEnd } from '../test/support/kafka.js';
import { netbox } from '../test/support/netbox.js';
import { OwnIntents, startResolverAt } from '../test/support/pipeline.js';
import { type BackHalf, startBackHalf, startDispatchAndReconcile } from '../test/support/reconciler.js';
import { redisDatabaseUrl, stack, stackFact, testRedisDatabases, uniqueName } from '../test/support/stack.js';

const out = join(repoRoot, 'docs', 'img');
const proxyPort = Number(process.env.UNICOP_SCREENSHOT_PORT ?? 18099);
const profile = mkdtempSync(join(tmpdir(), 'unicop-chromium-'));

type Obj = { id: number };

/** The object at `path` matching `query`, created with `body` when there is none. */
async function ensure(path: string, query: string, body: Record<string, unknown>): Promise<Obj> {
  const found = await netbox<{ results: Obj[] }>('GET', `${path}?${query}`);
  return found.results[0] ?? (await netbox<Obj>('POST', path, body));
}

async function makeObjects() {
  const fra1 = await ensure('/api/dcim/sites/', 'slug=fra1', {
    name: 'fra1',
    slug: 'fra1',
    status: 'active',
    description: 'Frankfurt 1',
  });
  const manufacturer = await ensure('/api/dcim/manufacturers/', 'slug=acme', { name: 'Acme', slug: 'acme' });
  const type = await ensure('/api/dcim/device-types/', 'slug=edge-48', {
    model: 'Edge 48',
    slug: 'edge-48',
    manufacturer: manufacturer.id,
  });
  const role = await ensure('/api/dcim/device-roles/', 'slug=leaf', { name: 'Leaf', slug: 'leaf' });
  for (const name of ['fra1-leaf1', 'fra1-leaf2', 'fra1-spine1']) {
    await ensure('/api/dcim/devices/', `name=${name}`, {
      name,
      site: fra1.id,
      device_type: type.id,
      role: role.id,
      status: 'active',
    });
  }
  await ensure('/api/dcim/racks/', `site_id=${fra1.id}&name=R01`, { name: 'R01', site: fra1.id });
  await ensure('/api/ipam/vlans/', `site_id=${fra1.id}&vid=120`, {
    vid: 120,
    name: 'servers',
    site: fra1.id,
  });
  const prefix = await ensure('/api/ipam/prefixes/', 'prefix=10.20.30.0/24&vrf_id=null', {
    prefix: '10.20.30.0/24',
    description: 'servers fra1',
  });
  for (const [i, name] of ['web1', 'web2', 'db1', 'cache1'].entries()) {
    const address = `10.20.30.${10 + i}/24`;
    await ensure('/api/ipam/ip-addresses/', `address=${address}&vrf_id=null`, {
      address,
      dns_name: `${name}.example.net`,
    });
  }
  const ams2 = await ensure('/api/dcim/sites/', 'slug=ams2', {
    name: 'ams2',
    slug: 'ams2',
    status: 'active',
  });
  return { fra1, prefix, ams2 };
}

/**
 * Real AWX behind a port of its own that refuses connections until it is opened: AWX down, then back.
 * Refused, not reset: a refused connection is a launch never sent (executor_unavailable), whereas a
 * reset one may have been received (a lost answer: the run stays open, decision 0037).
 */
async function awxGate(awx: URL) {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  return {
    url: `http://127.0.0.1:${port}`,
    open: () =>
      new Promise<void>((resolve, reject) => {
        server = createServer((client) => {
          const upstream = connect(Number(awx.port || 80), awx.hostname);
          for (const socket of [client, upstream]) {
            sockets.add(socket);
            socket.on('close', () => sockets.delete(socket));
            socket.on('error', () => {
              client.destroy();
              upstream.destroy();
            });
          }
          client.pipe(upstream).pipe(client);
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}

/**
 * NetBox's webhook to `bridgeUrl` for changes of these objects only (an event rule with a condition
 * on their ids: other work on the stack is not sent here); returns how to remove both.
 */
async function hookObjects(bridgeUrl: string, secret: string, ids: number[]): Promise<() => Promise<void>> {
  const name = uniqueName('docs-screenshots');
  const webhook = await netbox<Obj>('POST', '/api/extras/webhooks/', {
    name,
    payload_url: `${bridgeUrl}/webhooks/netbox`,
    http_method: 'POST',
    http_content_type: 'application/json',
    secret,
  });
  const rule = await netbox<Obj>('POST', '/api/extras/event-rules/', {
    name,
    object_types: ['dcim.site', 'ipam.prefix'],
    event_types: ['object_updated'],
    conditions: { attr: 'id', value: ids, op: 'in' },
    action_type: 'webhook',
    action_object_type: 'extras.webhook',
    action_object_id: webhook.id,
  });
  return async () => {
    await netbox('DELETE', `/api/extras/event-rules/${rule.id}/`).catch(() => undefined);
    await netbox('DELETE', `/api/extras/webhooks/${webhook.id}/`).catch(() => undefined);
  };
}

type Run = { id: number; run_id: string; state: RunState; cause: string; change_ids: string[] };

/** The first run of `rootKey` not in `before` that `done` accepts, waited for (a cap, not a budget). */
async function nextRun(
  plugin: PluginClient,
  rootKey: string,
  before: Set<string>,
  done: (run: Run) => boolean,
): Promise<Run> {
  // A cap: on a shared stack NetBox sends the edit's webhook after the jobs queued before it.
  const deadline = Date.now() + 1_800_000;
  for (;;) {
    const fresh = ((await plugin.listRuns(rootKey)) as unknown as Run[]).filter((r) => !before.has(r.run_id));
    const found = fresh.find(done);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new Error(`no such run of ${rootKey} within 1800 s; new runs: ${JSON.stringify(fresh)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The pipeline of workers/main.ts for these roots only: a bridge fed by a NetBox webhook, the
 * resolver, then the dispatcher and a reconcile worker (startDispatchAndReconcile), each on a
 * consumer group or queue of its own, with the stack's Kafka, Redis and NetBox plugin. The
 * reconciler reaches real AWX through `gate`. Other work on the shared stack is left alone: the
 * bridge keeps its delivery memory in a Redis database of its own, the resolver publishes only for
 * these roots, and the dispatcher takes only the intents of changes this bridge accepted for them
 * and their retries (OwnIntents): a sweeper elsewhere on the stack that sees the edited root before
 * NetBox's webhook arrives (NetBox sends it after the jobs queued before it) would otherwise give
 * the runs its cause.
 */
async function startPipeline(back: BackHalf, gate: { url: string }, roots: Set<string>, ids: number[]) {
  const secret = randomBytes(24).toString('hex');
  const bridge = await startBridge({
    UNICOP_WEBHOOK_SECRETS: secret,
    UNICOP_REDIS_URL: redisDatabaseUrl(testRedisDatabases.docsScreenshots),
  });
  const unhook = await hookObjects(bridge.url, secret, ids);
  const resolverGroup = uniqueName('docs-resolver');
  await positionGroupAtEnd(back.kafka, resolverGroup, topics.changes);
  const resolver = await startResolverAt(back.kafka, resolverGroup, {
    wrapEventLog: (real) => ({
      append: (messages) => real.append(messages.filter((m) => roots.has(m.key))),
      healthy: () => real.healthy(),
      close: () => real.close(),
    }),
  });
  const loop = await startDispatchAndReconcile(back, 1, {
    onlyIntents: new OwnIntents(bridge, roots).accepts,
    awxUrl: gate.url,
    reconciler: {
      holder: 'unicop-docs-reconciler',
      // The job links open real AWX's UI, not the gate.
      awxUiUrl: stackFact('UNICOP_AWX_REAL_URL'),
      // Time to open the gate after the failed run, before its retry.
      retry: { maxAttempts: 3, baseDelayMs: 5_000, maxDelayMs: 10_000 },
    },
  });
  return {
    stop: async () => {
      await unhook();
      await loop.stop();
      await resolver.stop();
      await bridge.close();
    },
  };
}

async function makeRuns(objects: Awaited<ReturnType<typeof makeObjects>>) {
  const back = await startBackHalf({ awx: 'real' });
  const gate = await awxGate(new URL(back.awx.url));
  const { plugin } = back;
  const keys = {
    fra1: `site/${objects.fra1.id}`,
    ams2: `site/${objects.ams2.id}`,
    prefix: `prefix/${objects.prefix.id}`,
  };
  const pipeline = await startPipeline(back, gate, new Set(Object.values(keys)), [
    objects.fra1.id,
    objects.ams2.id,
    objects.prefix.id,
  ]);
  try {
    const ams2Root = await plugin.findRoot(keys.ams2);
    if (ams2Root?.frozen) await plugin.setFrozen(ams2Root.id, false, 'screenshots: run first');
    const runsBefore = async (key: string) => new Set((await plugin.listRuns(key)).map((r) => r.run_id));
    const before = {
      fra1: await runsBefore(keys.fra1),
      ams2: await runsBefore(keys.ams2),
      prefix: await runsBefore(keys.prefix),
    };
    const stamp = new Date().toISOString();

    // fra1 edited while AWX is unreachable: a failed run (executor_unavailable), AWX back, its retry.
    await netbox('PATCH', `/api/dcim/sites/${objects.fra1.id}/`, { description: `Frankfurt 1 (${stamp})` });
    const ended = (r: Run) => r.cause === 'change' && isTerminal(r.state);
    const failed = await nextRun(plugin, keys.fra1, before.fra1, ended);
    if (failed.state !== 'failed' || !failed.change_ids.length) {
      throw new Error(`the fra1 run ended ${failed.state}, not failed (another worker on the stack?)`);
    }
    process.stdout.write(`fra1: run ${failed.run_id} failed with AWX unreachable; AWX back\n`);
    await gate.open();
    const retried = await nextRun(
      plugin,
      keys.fra1,
      before.fra1,
      (r) => r.cause === 'retry' && r.state === 'succeeded',
    );
    if (retried.change_ids.join() !== failed.change_ids.join()) {
      throw new Error(
        `the retry names changes ${retried.change_ids}, not its failed run's ${failed.change_ids}`,
      );
    }
    process.stdout.write(`fra1: retry ${retried.run_id} succeeded\n`);

    await netbox('PATCH', `/api/ipam/prefixes/${objects.prefix.id}/`, {
      description: `servers fra1 (${stamp})`,
    });
    await netbox('PATCH', `/api/dcim/sites/${objects.ams2.id}/`, { description: `Amsterdam 2 (${stamp})` });
    for (const key of ['prefix', 'ams2'] as const) {
      const run = await nextRun(plugin, keys[key], before[key], ended);
      process.stdout.write(`${key}: run ${run.run_id} ${run.state}\n`);
    }
    const ams2 = await plugin.findRoot(keys.ams2);
    await plugin.setFrozen(ams2?.id as number, true, 'DC migration until Friday (CHG-2231)');

    const fra1 = await plugin.findRoot(keys.fra1);
    const prefix = await plugin.findRoot(keys.prefix);
    return {
      fra1Root: fra1?.id as number,
      ams2Root: ams2?.id as number,
      prefixRoot: prefix?.id as number,
      run: retried.id,
      failedRun: failed.id,
    };
  } finally {
    await pipeline.stop();
    await gate.close();
    await back.stop();
  }
}

/** A session of the stack's superuser, from NetBox's own login form. */
async function login(): Promise<string> {
  const base = stack.netboxUrl().replace(/\/+$/, '');
  const password = readFileSync(join(repoRoot, 'var', 'netbox', 'secrets', 'admin_password'), 'utf8').trim();
  const form = await fetch(`${base}/login/`);
  const csrf = /csrftoken=([^;]+)/.exec(form.headers.getSetCookie().join('; '))?.[1];
  const hidden = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(await form.text())?.[1];
  if (!csrf || !hidden) throw new Error('NetBox login form: no CSRF token');
  const answer = await fetch(`${base}/login/`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: `csrftoken=${csrf}`,
      referer: `${base}/login/`,
    },
    body: new URLSearchParams({ csrfmiddlewaretoken: hidden, username: 'admin', password, next: '/' }),
  });
  const session = /sessionid=([^;]+)/.exec(answer.headers.getSetCookie().join('; '))?.[1];
  if (answer.status !== 302 || !session) throw new Error(`NetBox login refused (HTTP ${answer.status})`);
  return session;
}

/** One page to a PNG; a chromium that hangs (it sometimes does, headless) is stopped and tried again. */
function shot(name: string, path: string, height: number): void {
  for (let attempt = 1; ; attempt++) {
    try {
      capture(name, path, height);
      break;
    } catch (error) {
      if (attempt >= 3) throw error;
      process.stdout.write(`chromium did not finish ${path}; trying again\n`);
    }
  }
  process.stdout.write(`docs/img/${name}.png <- ${path}\n`);
}

function capture(name: string, path: string, height: number): void {
  const file = join(out, `${name}.png`);
  const started = Date.now();
  try {
    runChromium(file, path, height);
  } catch {
    // Headless chromium sometimes writes the screenshot and then never exits: keep what it wrote.
  }
  const written = existsSync(file) && statSync(file).mtimeMs >= started - 1000 && statSync(file).size > 0;
  if (!written) throw new Error(`chromium wrote no ${file}`);
}

function runChromium(file: string, path: string, height: number): void {
  execFileSync(
    'chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      '--hide-scrollbars',
      `--window-size=1440,${height}`,
      '--virtual-time-budget=4000',
      `--screenshot=${file}`,
      `http://127.0.0.1:${proxyPort}${path}`,
    ],
    { stdio: 'ignore', timeout: 90_000, killSignal: 'SIGKILL' },
  );
}

const objects = await makeObjects();
const ids = await makeRuns(objects);
const session = await login();
const proxy: ChildProcess = spawn(
  'python3',
  [
    join(repoRoot, 'scripts', 'screenshot-proxy.py'),
    String(proxyPort),
    stack.netboxUrl(),
    join(stackFact('UNICOP_NETBOX_ROOTFS'), 'opt', 'netbox', 'static'),
  ],
  { env: { ...process.env, SESSION: session }, stdio: 'inherit' },
);
try {
  await new Promise((r) => setTimeout(r, 1000));
  const roots = [ids.fra1Root, ids.prefixRoot, ids.ams2Root].map((id) => `id=${id}`).join('&');
  shot('plugin-root-list', `/plugins/unicop/roots/?${roots}`, 700);
  shot('plugin-root-detail', `/plugins/unicop/roots/${ids.fra1Root}/`, 1100);
  shot('plugin-run-detail', `/plugins/unicop/runs/${ids.run}/`, 1250);
  shot('plugin-run-failed', `/plugins/unicop/runs/${ids.failedRun}/`, 1250);
  shot('plugin-site-panel', `/dcim/sites/${objects.fra1.id}/`, 1200);
  shot('plugin-prefix-panel', `/ipam/prefixes/${objects.prefix.id}/`, 1100);
  shot('plugin-freeze-form', `/plugins/unicop/roots/${ids.prefixRoot}/freeze/`, 600);
} finally {
  proxy.kill();
  rmSync(profile, { recursive: true, force: true });
}
