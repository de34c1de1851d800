/**
 * The UI screenshots in docs/img/, from what real runs wrote (docs/img/README.md):
 *
 *   npx tsx scripts/docs-screenshots.ts      (the stack up: scripts/stack up; Debian `chromium`)
 *
 * 1. Objects through NetBox's REST API (found again by slug/name when they exist): site `fra1` with
 *    three devices, a rack and a VLAN; prefix 10.20.30.0/24 with four named IPs; site `ams2`.
 * 2. Real runs through the reconciler against the stack's NetBox plugin, Kafka and the AWX double
 *    running the real playbooks with ansible-runner (the harness of test/support/reconciler.ts):
 *    fra1 once with AWX unreachable (failed, executor_unavailable) and then its retry (succeeded);
 *    the prefix and ams2 once each; then ams2 frozen through the plugin API with a reason.
 * 3. A session from NetBox's own login form (the stack's superuser `admin`, its password read from
 *    the stack's secrets file and never printed), a local proxy that adds that session and serves
 *    /static/ (gunicorn does not serve static files in the local stack), and headless chromium.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwxClient } from '../core/awx/index.js';
import { repoRoot } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { netbox } from '../test/support/netbox.js';
import { reconcileJob, startBackHalf, testReconcilerOptions } from '../test/support/reconciler.js';
import { stack, stackFact } from '../test/support/stack.js';
import { pollingOnly } from '../workers/reconciler/awx-notifications.js';
import { createReconciler, type Reconciler } from '../workers/reconciler/reconcile.js';

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

/** Runs the reconcile job until it is done (a retry waits for its backoff). */
async function reconcileToEnd(reconciler: Reconciler, job: ReturnType<typeof reconcileJob>): Promise<void> {
  for (;;) {
    const result = await reconciler.reconcile(job);
    if (result.kind === 'done') return;
    await new Promise((r) => setTimeout(r, Math.max(0, result.at.getTime() - Date.now())));
  }
}

async function makeRuns(objects: Awaited<ReturnType<typeof makeObjects>>) {
  const back = await startBackHalf();
  try {
    const { plugin } = back;
    const keys = {
      fra1: `site/${objects.fra1.id}`,
      ams2: `site/${objects.ams2.id}`,
      prefix: `prefix/${objects.prefix.id}`,
    };
    const ams2Root = await plugin.findRoot(keys.ams2);
    if (ams2Root?.frozen) await plugin.setFrozen(ams2Root.id, false, 'screenshots: run first');

    // fra1: AWX unreachable (a real failed run), then its retry once AWX answers.
    const unreachable = createReconciler({
      plugin,
      awx: new AwxClient({ baseUrl: 'http://127.0.0.1:9', token: 'unused' }),
      eventLog: back.eventLog,
      wakeups: pollingOnly,
      log: createLogger('screenshots', 'silent'),
      options: testReconcilerOptions('reconciler-docs-1'),
    });
    const failed = reconcileJob(keys.fra1, 'manual');
    await unreachable.reconcile(failed);
    const [failedRun] = await plugin.listRuns(keys.fra1);
    const retry = reconcileJob(keys.fra1, 'retry');
    retry.cause = { ...retry.cause, retryOf: failedRun?.run_id, attempt: 2, actor: 'unicop-reconciler' };
    const worker = back.reconciler({ holder: 'reconciler-docs-2' });
    await reconcileToEnd(worker, retry);
    await reconcileToEnd(worker, reconcileJob(keys.prefix, 'manual'));
    await reconcileToEnd(worker, reconcileJob(keys.ams2, 'manual'));
    const ams2 = await plugin.findRoot(keys.ams2);
    await plugin.setFrozen(ams2?.id as number, true, 'DC migration until Friday (CHG-2231)');

    const fra1 = await plugin.findRoot(keys.fra1);
    const prefix = await plugin.findRoot(keys.prefix);
    const [run] = await plugin.listRuns(keys.fra1);
    if (run?.state !== 'succeeded') throw new Error(`the fra1 retry ended ${run?.state}, not succeeded`);
    return {
      fra1Root: fra1?.id as number,
      ams2Root: ams2?.id as number,
      prefixRoot: prefix?.id as number,
      run: (run as unknown as Obj).id,
    };
  } finally {
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
  shot('plugin-run-detail', `/plugins/unicop/runs/${ids.run}/`, 900);
  shot('plugin-site-panel', `/dcim/sites/${objects.fra1.id}/`, 1200);
  shot('plugin-prefix-panel', `/ipam/prefixes/${objects.prefix.id}/`, 1100);
  shot('plugin-freeze-form', `/plugins/unicop/roots/${ids.prefixRoot}/freeze/`, 600);
} finally {
  proxy.kill();
  rmSync(profile, { recursive: true, force: true });
}
