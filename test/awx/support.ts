/**
 * Test support for the AWX side: starts the AWX double in-process with a temporary state
 * directory and a random token, gives a client for it, waits for jobs to end, and listens for
 * notification webhooks on a real local port.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AwxClient, type AwxJob, type AwxWorkflowJob, terminalStatuses } from '../../core/awx/index.js';
import { sleep } from '../../core/clock.js';
import { parseDoubleConfig } from '../awx-double/config.js';
import { type AwxDouble, startAwxDouble } from '../awx-double/server.js';
import { stack } from '../support/stack.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const fixtureProject = join(here, 'fixtures', 'project');
export const playbookProject = resolve(here, '..', '..', 'awx-playbooks');

export interface TestDouble extends AwxDouble {
  token: string;
  client: AwxClient;
  stateDir: string;
  /** Raw authenticated request to the double, for checking AWX's wire format. */
  request(path: string, init?: RequestInit): Promise<Response>;
  doubleJobs(): Promise<DoubleJobRecord[]>;
  stop(): Promise<void>;
}

export interface DoubleJobRecord {
  id: number;
  type: string;
  template: number | null;
  root: string | null;
  run_id: string | null;
  status: string;
  started: string | null;
  finished: string | null;
  status_history: { status: string; at: string }[];
}

/** Starts a double with the given templates (the config file's shape, without auth). */
export async function startTestDouble(
  config: Record<string, unknown>,
  options: { stepMs?: number; instant?: boolean } = {},
): Promise<TestDouble> {
  const token = randomBytes(16).toString('hex');
  const stateDir = await mkdtemp(join(tmpdir(), 'unicop-awx-double-'));
  const double = await startAwxDouble({
    config: parseDoubleConfig({
      auth: { tokens: [token], users: [{ username: 'admin', password: 'double-password' }] },
      ...config,
    }),
    stateDir,
    ansibleBin: stack.ansibleBin(),
    stepMs: options.stepMs ?? 20,
    ...(options.instant ? { instant: true } : {}),
  });
  const client = new AwxClient({ baseUrl: double.url, token, confirmDelayMs: 200 });
  return {
    ...double,
    token,
    client,
    stateDir,
    request: (path, init = {}) =>
      fetch(`${double.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
      }),
    doubleJobs: async () => (await (await fetch(`${double.url}/_double/jobs`)).json()) as DoubleJobRecord[],
    stop: async () => {
      await double.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** Polls until the job has ended (AWX's terminal statuses). */
// The waits below return as soon as what they wait for happened; their defaults are generous caps
// (a loaded 2-core machine runs ansible-runner slowly), not budgets a test is expected to meet.
export async function waitForJob(client: AwxClient, id: number, timeoutMs = 300_000): Promise<AwxJob> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await client.getJob(id);
    if (terminalStatuses.includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
    await sleep(150);
  }
}

export async function waitForWorkflowJob(
  client: AwxClient,
  id: number,
  timeoutMs = 300_000,
): Promise<AwxWorkflowJob> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await client.getWorkflowJob(id);
    if (terminalStatuses.includes(job.status)) return job;
    if (Date.now() > deadline)
      throw new Error(`workflow job ${id} still ${job.status} after ${timeoutMs} ms`);
    await sleep(150);
  }
}

/** Polls a condition until it holds. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A local HTTP listener standing in for the bridge's AWX notification endpoint. */
export async function startWebhookListener(status = 202) {
  const received: ReceivedWebhook[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** HTTP basic credentials, as AWX's admin API and AWX's webhook notifications use them. */
export const basicAuth = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** The JSON an AWX API answer carries; an error naming `what` and the status when it is not a 2xx. */
export async function awxJson<T = Record<string, unknown>>(res: Response, what: string): Promise<T> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: ${res.status} ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : {}) as T;
}

/**
 * An AWX webhook notification template's fields that point AWX's notifications at a bridge's
 * /webhooks/awx, signed the way the bridge checks (HTTP basic, the webhook secret as password).
 */
export function bridgeNotificationTemplate(organization: number, bridgeUrl: string, secret: string) {
  return {
    organization,
    notification_type: 'webhook',
    notification_configuration: {
      url: `${bridgeUrl}/webhooks/awx`,
      http_method: 'POST',
      disable_ssl_verification: false,
      username: 'awx',
      password: secret,
      headers: {},
    },
  };
}

/** unicop extra vars for a test run. */
export function unicopVars(root: string, runId: string, fencingToken: number, snapshot: unknown = {}) {
  return { root, snapshot, hash: `sha256:${runId}`, fencing_token: fencingToken, run_id: runId };
}

/**
 * Pairs of jobs of one root whose running times overlapped, from the double's job record (a job
 * runs from `started` until `finished`; one still running counts until now). Empty when the root's
 * runs never overlapped — the property the reconciler's lease must guarantee.
 */
export function overlappingRuns(
  records: Pick<DoubleJobRecord, 'id' | 'type' | 'root' | 'started' | 'finished'>[],
  root: string,
): [number, number][] {
  const runs = records
    .filter((r) => r.type === 'job' && r.root === root && r.started)
    .map((r) => ({
      id: r.id,
      from: Date.parse(r.started ?? ''),
      to: r.finished ? Date.parse(r.finished) : Date.now(),
    }))
    .sort((a, b) => a.from - b.from);
  const pairs: [number, number][] = [];
  for (const [i, a] of runs.entries()) {
    for (const b of runs.slice(i + 1)) if (b.from < a.to) pairs.push([a.id, b.id]);
  }
  return pairs;
}
