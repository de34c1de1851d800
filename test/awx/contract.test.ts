/**
 * The AWX contract suite: the same cases against real AWX 24.6.1 (the stack's awx service) and
 * against the AWX double, through UNICOP's typed client (core/awx/client.ts) and, where the client
 * hides the wire (status codes, ignored_fields, approval fields), through raw authenticated requests.
 * A difference between the two in what UNICOP reads is a failing case; the differences this suite
 * found are listed in docs/awx-double.md ("Contract: differences found").
 *
 * Both targets notify a real bridge started here (test/support/bridge.ts): real AWX through a
 * webhook notification template this suite owns (pointed at this bridge's port each run), the double
 * through its configured targets; what lands on `unicop.awx-events` is compared.
 *
 * Real AWX objects this suite owns (found by name, created or updated; never the bootstrap's):
 * job templates `unicop-contract-prefix` (prompts for extra_vars) and `unicop-contract-no-prompt`,
 * notification template `unicop-contract-bridge`. The approval workflow is the bootstrap's
 * `unicop-site-with-approval`; the suite attaches its notification template to it and detaches it
 * afterwards. Skipped only when the stack has no awx service.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AwxClient,
  type AwxJobStatus,
  AwxNotFoundError,
  AwxPromptsIgnoredError,
  terminalStatuses,
} from '../../core/awx/index.js';
import { resolveSecret } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { TopicTail } from '../support/kafka.js';
import { stackFact, uniqueName } from '../support/stack.js';
import {
  awxJson,
  basicAuth,
  bridgeNotificationTemplate,
  playbookProject,
  startTestDouble,
  type TestDouble,
  unicopVars,
} from './support.js';

// Caps, not budgets: a real job starts a podman container; minutes under load.
const capMs = 600_000;
// AWX's dispatcher sends a notification within seconds of the status change.
const notifyCapMs = 180_000;

interface Target {
  client: AwxClient;
  /** Authenticated raw request, for what the client does not expose. */
  raw(path: string, init?: RequestInit): Promise<Response>;
  templates: { prefix: number; noPrompt: number; workflow: number };
  /**
   * The base of the job URLs this AWX puts in its notifications (TOWER_URL_BASE; the double's own
   * URL). Both targets notify one bridge and number their jobs independently — on a fresh stack
   * real AWX's job 3 and the double's job 3 both exist — so a notification is told apart by it.
   */
  uiBase: string;
  targetDir: string;
  stop(): Promise<void>;
}

const secret = randomBytes(16).toString('hex');
let bridge: RunningBridge;
let tail: TopicTail;

function rawRequester(baseUrl: string, authorization: string) {
  return (path: string, init: RequestInit = {}) =>
    fetch(`${baseUrl}${path}`, {
      ...init,
      headers: { authorization, 'content-type': 'application/json', ...init.headers },
    });
}

/** Real AWX: the suite's own templates and notification template, made through the admin API. */
async function realTarget(): Promise<Target> {
  const base = stackFact('UNICOP_AWX_REAL_URL');
  const { readFile } = await import('node:fs/promises');
  const password = (await readFile(stackFact('UNICOP_AWX_ADMIN_PASSWORD_FILE'), 'utf8')).trim();
  const admin = rawRequester(base, basicAuth('admin', password));
  const ids = JSON.parse(stackFact('UNICOP_AWX_TEMPLATE_IDS')) as Record<string, { id: number }>;
  const prefix = await awxJson<Record<string, unknown>>(
    await admin(`/api/v2/job_templates/${ids['unicop-prefix']?.id}/`),
    'get unicop-prefix',
  );
  const workflow = ids['unicop-site-with-approval']?.id;
  if (!workflow) throw new Error('UNICOP_AWX_TEMPLATE_IDS has no unicop-site-with-approval');

  async function ensure(collection: string, name: string, fields: Record<string, unknown>) {
    const found = await awxJson<{ results: { id: number }[] }>(
      await admin(`/api/v2/${collection}/?name=${encodeURIComponent(name)}`),
      `find ${collection} ${name}`,
    );
    const existing = found.results[0];
    if (existing) {
      await awxJson(
        await admin(`/api/v2/${collection}/${existing.id}/`, {
          method: 'PATCH',
          body: JSON.stringify(fields),
        }),
        `update ${collection} ${name}`,
      );
      return existing.id;
    }
    const made = await awxJson<{ id: number }>(
      await admin(`/api/v2/${collection}/`, { method: 'POST', body: JSON.stringify({ name, ...fields }) }),
      `create ${collection} ${name}`,
    );
    return made.id;
  }

  const common = {
    job_type: 'run',
    organization: prefix.organization,
    inventory: prefix.inventory,
    project: prefix.project,
    playbook: 'prefix.yml',
    execution_environment: prefix.execution_environment,
    extra_vars: prefix.extra_vars,
    allow_simultaneous: true,
  };
  const contractPrefix = await ensure('job_templates', 'unicop-contract-prefix', {
    ...common,
    ask_variables_on_launch: true,
    ask_job_type_on_launch: true,
  });
  const noPrompt = await ensure('job_templates', 'unicop-contract-no-prompt', {
    ...common,
    ask_variables_on_launch: false,
    ask_job_type_on_launch: false,
  });
  const notification = await ensure(
    'notification_templates',
    'unicop-contract-bridge',
    bridgeNotificationTemplate(prefix.organization as number, bridge.url, secret),
  );
  const attachments: [string, string][] = [
    ...['started', 'success', 'error'].map(
      (e) => [`/api/v2/job_templates/${contractPrefix}/notification_templates_${e}/`, e] as [string, string],
    ),
    ...['started', 'success', 'error', 'approvals'].map(
      (e) =>
        [`/api/v2/workflow_job_templates/${workflow}/notification_templates_${e}/`, e] as [string, string],
    ),
  ];
  const attach = async (disassociate: boolean) => {
    for (const [path] of attachments) {
      const res = await admin(path, {
        method: 'POST',
        body: JSON.stringify({ id: notification, ...(disassociate ? { disassociate: true } : {}) }),
      });
      if (res.status !== 204) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    }
  };
  await attach(false);

  return {
    client: new AwxClient({
      baseUrl: base,
      token: resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env),
      timeoutMs: 30_000,
    }),
    raw: rawRequester(base, `Bearer ${resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env)}`),
    templates: { prefix: contractPrefix, noPrompt, workflow },
    uiBase: base, // TOWER_URL_BASE (scripts/stack.d/awx.sh)
    targetDir: stackFact('UNICOP_AWX_TARGET_DIR'),
    stop: () => attach(true),
  };
}

/** The double with the same templates (names, playbooks, prompts, approval gate, notifications). */
async function doubleTarget(): Promise<Target> {
  const targetDir = await mkdtemp(join(tmpdir(), 'unicop-contract-'));
  const notify = {
    url: `${bridge.url}/webhooks/awx`,
    headers: { authorization: basicAuth('awx', secret) },
  };
  const notifications = { started: [notify], success: [notify], error: [notify] };
  const common = {
    playbook: 'prefix.yml',
    allow_simultaneous: true,
    extra_vars: { unicop_target_dir: targetDir },
  };
  const double: TestDouble = await startTestDouble(
    {
      project_dir: playbookProject,
      job_templates: [
        {
          id: 21,
          name: 'unicop-contract-prefix',
          ...common,
          ask_variables_on_launch: true,
          ask_job_type_on_launch: true,
          notification_templates: notifications,
        },
        { id: 22, name: 'unicop-contract-no-prompt', ...common },
        {
          id: 23,
          name: 'unicop-site',
          ...common,
          playbook: 'site.yml',
          ask_variables_on_launch: true,
        },
      ],
      workflow_job_templates: [
        {
          id: 24,
          name: 'unicop-site-with-approval',
          ask_variables_on_launch: true,
          allow_simultaneous: true,
          notification_templates: notifications,
          nodes: [
            {
              identifier: 'approval',
              approval: { name: 'Approve site change', timeout: 3600 },
              success_nodes: ['apply'],
            },
            { identifier: 'apply', job_template: 23 },
          ],
        },
      ],
    },
    { stepMs: 200 },
  );
  return {
    client: double.client,
    raw: (path, init) => double.request(path, init),
    templates: { prefix: 21, noPrompt: 22, workflow: 24 },
    uiBase: double.url,
    targetDir,
    stop: async () => {
      await double.stop();
      await rm(targetDir, { recursive: true, force: true });
    },
  };
}

beforeAll(async () => {
  bridge = await startBridge({ UNICOP_AWX_WEBHOOK_SECRET: secret });
  tail = await TopicTail.start([topics.awxEvents]);
}, capMs);

afterAll(async () => {
  await tail?.stop();
  await bridge?.close();
});

const rootNumber = () => 100_000 + Math.floor(Math.random() * 900_000);
const prefixSnapshot = (root: string, prefix: string | null) => ({
  root: { kind: 'prefix', key: root, anchor: { id: 1, prefix, dns_zone: 'contract.example' } },
  members: [
    { object_type: 'ipam.ipaddress', id: 1, address: '10.77.40.5/24', dns_name: 'web1.contract.example' },
  ],
});
const siteSnapshot = (root: string) => ({
  root: { kind: 'site', key: root, anchor: { id: 3, name: 'Paris', slug: 'paris' } },
  members: [{ object_type: 'dcim.device', id: 1, name: 'sw1', status: 'active' }],
});

/** The awx-job-status events the bridge published for one job of one AWX (`uiBase`). */
function notificationsOf(uiBase: string, kind: string, id: number) {
  return (m: { value: Record<string, unknown> }) => {
    const data = m.value.data as { awxJobId?: number; kind?: string; url?: string | null } | undefined;
    return data?.awxJobId === id && data.kind === kind && (data.url ?? '').startsWith(`${uiBase}/#/`);
  };
}
const dataOf = (m: { value: Record<string, unknown> }) =>
  m.value.data as { status: string; kind: string; url: string | null; name: string | null };

/**
 * The notifications the bridge published for one job of one AWX, once the one with status `last`
 * has landed: every one seen by then, in order.
 */
async function notificationsUntil(uiBase: string, kind: string, id: number, last: string) {
  const ofJob = notificationsOf(uiBase, kind, id);
  await tail.waitFor((m) => ofJob(m) && dataOf(m).status === last, 1, notifyCapMs);
  return tail.messages.filter(ofJob).map(dataOf);
}

/** Polls a job to its end, recording each status seen in order. */
async function follow<J extends { status: AwxJobStatus }>(get: () => Promise<J>) {
  const seen: string[] = [];
  const deadline = Date.now() + capMs;
  for (;;) {
    const job = await get();
    if (seen.at(-1) !== job.status) seen.push(job.status);
    if (terminalStatuses.includes(job.status)) return { job, seen };
    if (Date.now() > deadline) throw new Error(`still ${job.status} after ${capMs} ms`);
    await sleep(250);
  }
}

/** Whether `seen` walks AWX's order pending → waiting → running → `end` (skipping is allowed). */
function inOrder(seen: string[], end: string): boolean {
  const order = ['new', 'pending', 'waiting', 'running', end];
  const positions = seen.map((s) => order.indexOf(s));
  return (
    positions.every((p, i) => p >= 0 && (i === 0 || p > (positions[i - 1] ?? -1))) && seen.at(-1) === end
  );
}

// The awx service is in the default stack: missing facts fail the real-AWX cases (no silent skip).
describe.each([
  ['real AWX', realTarget],
  ['AWX double', doubleTarget],
] as const)('AWX contract: %s', (_name, make) => {
  let t: Target;

  beforeAll(async () => {
    t = await make();
  }, capMs);

  afterAll(async () => {
    await t?.stop();
  });

  it(
    'launch answers 201 with the job (id twice, Location, pending, empty ignored_fields); it runs pending → running → successful with the detail fields the reconciler reads; started and success notifications land on unicop.awx-events',
    async () => {
      const root = `prefix/${rootNumber()}`;
      const runId = uniqueName('run');
      const res = await t.raw(`/api/v2/job_templates/${t.templates.prefix}/launch/`, {
        method: 'POST',
        body: JSON.stringify({
          extra_vars: { unicop: unicopVars(root, runId, 1, prefixSnapshot(root, '10.77.40.0/24')) },
        }),
      });
      expect(res.status).toBe(201);
      const launched = (await res.json()) as Record<string, unknown>;
      const id = launched.id as number;
      expect(launched.job).toBe(id);
      expect(res.headers.get('location')).toMatch(new RegExp(`/api/v2/jobs/${id}/$`));
      expect(launched).toMatchObject({ type: 'job', ignored_fields: {}, job_template: t.templates.prefix });
      expect(['new', 'pending']).toContain(launched.status);
      expect(JSON.parse(launched.extra_vars as string).unicop.run_id).toBe(runId);

      const { job, seen } = await follow(() => t.client.getJob(id));
      expect(inOrder(seen, 'successful'), seen.join(' → ')).toBe(true);
      expect(job).toMatchObject({
        id,
        type: 'job',
        status: 'successful',
        failed: false,
        job_explanation: '',
      });
      expect(typeof job.started).toBe('string');
      expect(typeof job.finished).toBe('string');
      expect(job.elapsed).toBeGreaterThan(0);
      expect(job.artifacts?.unicop_summary).toMatchObject({ root, mode: 'apply', a_records: 1 });
      expect(await t.client.canCancelJob(id)).toBe(false);
      // The run id finds the job again (a retry after a lost launch answer relies on it).
      expect(
        (await t.client.findJobByRunId(t.templates.prefix, runId, new Date(Date.now() - 3_600_000)))?.id,
      ).toBe(id);

      const all = await notificationsUntil(t.uiBase, 'job', id, 'successful');
      expect(all.map((d) => d.status)).toEqual(['running', 'successful']);
      expect(all.at(-1)?.url).toMatch(new RegExp(`/#/jobs/playbook/${id}$`));
    },
    capMs + 60_000,
  );

  it(
    'a failing playbook ends failed (failed: true) and sends the error notification with status failed',
    async () => {
      const root = `prefix/${rootNumber()}`;
      const { job: launched } = await t.client.launchJobTemplate(t.templates.prefix, {
        unicop: unicopVars(root, uniqueName('run'), 1, prefixSnapshot(root, null)),
      });
      const { job, seen } = await follow(() => t.client.getJob(launched.id));
      expect(inOrder(seen, 'failed'), seen.join(' → ')).toBe(true);
      expect(job).toMatchObject({ status: 'failed', failed: true });
      const all = await notificationsUntil(t.uiBase, 'job', job.id, 'failed');
      expect(all.map((d) => d.status)).toEqual(['running', 'failed']);
    },
    capMs + 60_000,
  );

  it(
    'a template that does not prompt for extra_vars lists them in ignored_fields; the client refuses such a launch and cancels it',
    async () => {
      const root = `prefix/${rootNumber()}`;
      const vars = { unicop: unicopVars(root, uniqueName('run'), 1, prefixSnapshot(root, '10.77.40.0/24')) };
      const res = await t.raw(`/api/v2/job_templates/${t.templates.noPrompt}/launch/`, {
        method: 'POST',
        body: JSON.stringify({ extra_vars: vars }),
      });
      expect(res.status).toBe(201);
      const launched = (await res.json()) as { id: number; ignored_fields: Record<string, unknown> };
      expect(Object.keys(launched.ignored_fields)).toEqual(['extra_vars']);
      expect(launched.ignored_fields.extra_vars).toEqual(vars);
      await t.client.cancelJob(launched.id);

      const refused = await t.client
        .launchJobTemplate(t.templates.noPrompt, { unicop: unicopVars(root, uniqueName('run'), 1) })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(AwxPromptsIgnoredError);
      const jobId = (refused as AwxPromptsIgnoredError).jobId;
      const { job } = await follow(() => t.client.getJob(jobId));
      expect(job.status).toBe('canceled');
      expect((await follow(() => t.client.getJob(launched.id))).job.status).toBe('canceled');
    },
    capMs + 60_000,
  );

  it(
    'cancel answers 202 and the job ends canceled; a second cancel answers 405 and can_cancel is false',
    async () => {
      const root = `prefix/${rootNumber()}`;
      const { job: launched } = await t.client.launchJobTemplate(t.templates.prefix, {
        unicop: unicopVars(root, uniqueName('run'), 1, prefixSnapshot(root, '10.77.40.0/24')),
      });
      expect(await t.client.canCancelJob(launched.id)).toBe(true);
      expect(await t.client.cancelJob(launched.id)).toBe(true);
      const { job } = await follow(() => t.client.getJob(launched.id));
      expect(job).toMatchObject({ status: 'canceled', failed: true });
      expect(await t.client.cancelJob(launched.id)).toBe(false);
      expect(await t.client.canCancelJob(launched.id)).toBe(false);
    },
    capMs + 60_000,
  );

  it('a missing job, workflow job or approval is 404 {detail}, AwxNotFoundError through the client', async () => {
    const missing = 987_654_321;
    await expect(t.client.getJob(missing)).rejects.toBeInstanceOf(AwxNotFoundError);
    await expect(t.client.getWorkflowJob(missing)).rejects.toBeInstanceOf(AwxNotFoundError);
    await expect(t.client.getApproval(missing)).rejects.toBeInstanceOf(AwxNotFoundError);
    const res = await t.raw(`/api/v2/jobs/${missing}/`);
    expect(res.status).toBe(404);
    expect(typeof ((await res.json()) as { detail?: unknown }).detail).toBe('string');
  });

  /** Launches the approval workflow; waits for its pending approval. */
  async function toApproval() {
    const root = `site/${rootNumber()}`;
    const { job: wf } = await t.client.launchWorkflowJobTemplate(t.templates.workflow, {
      unicop: unicopVars(root, uniqueName('run'), 1, siteSnapshot(root)),
    });
    const deadline = Date.now() + capMs;
    for (;;) {
      const pending = (await t.client.approvalsOfWorkflowJob(wf.id)).find((a) => a.status === 'pending');
      if (pending) return { wf, approval: pending };
      if (Date.now() > deadline) throw new Error(`workflow job ${wf.id} reached no pending approval`);
      await sleep(1000);
    }
  }

  it(
    'a workflow stops at a pending approval (listed by status=pending, approval_expiration set, no timeout/expires fields); deny answers 204, the approval and the workflow end failed, approval_expiration null, a second decision 400; started and error notifications are the workflow job’s',
    async () => {
      const { wf, approval } = await toApproval();
      expect((await t.client.listPendingApprovals()).map((a) => a.id)).toContain(approval.id);
      const pending = await awxJson<Record<string, unknown>>(
        await t.raw(`/api/v2/workflow_approvals/${approval.id}/`),
        'get approval',
      );
      expect(pending).toMatchObject({ status: 'pending', can_approve_or_deny: true, timed_out: false });
      expect(typeof pending.approval_expiration).toBe('string');
      expect(Object.keys(pending)).not.toContain('timeout');
      expect(Object.keys(pending)).not.toContain('expires');
      const nodes = await t.client.listWorkflowJobNodes(wf.id);
      const gate = nodes.find((n) => n.summary_fields?.job?.type === 'workflow_approval');
      expect(typeof gate?.unified_job_template).toBe('number');
      expect(gate).toMatchObject({
        summary_fields: { unified_job_template: { unified_job_type: 'workflow_approval' } },
      });

      const res = await t.raw(`/api/v2/workflow_approvals/${approval.id}/deny/`, { method: 'POST' });
      expect(res.status).toBe(204);
      const { job: done } = await follow(() => t.client.getWorkflowJob(wf.id));
      expect(done.status).toBe('failed');
      const decided = await awxJson<Record<string, unknown>>(
        await t.raw(`/api/v2/workflow_approvals/${approval.id}/`),
        'get approval',
      );
      expect(decided).toMatchObject({
        status: 'failed',
        can_approve_or_deny: false,
        approval_expiration: null,
      });
      expect((await t.client.listPendingApprovals()).map((a) => a.id)).not.toContain(approval.id);
      const again = await t.raw(`/api/v2/workflow_approvals/${approval.id}/approve/`, { method: 'POST' });
      expect(again.status).toBe(400);

      const all = await notificationsUntil(t.uiBase, 'workflow_job', wf.id, 'failed');
      expect(all.map((d) => d.status)).toEqual(['running', 'failed']);
    },
    2 * capMs,
  );

  it(
    'approve answers 204: the approval ends successful and the workflow runs its job to successful',
    async () => {
      const { wf, approval } = await toApproval();
      const res = await t.raw(`/api/v2/workflow_approvals/${approval.id}/approve/`, { method: 'POST' });
      expect(res.status).toBe(204);
      const { job: done, seen } = await follow(() => t.client.getWorkflowJob(wf.id));
      expect(seen.at(-1)).toBe('successful');
      expect(done.status).toBe('successful');
      expect((await t.client.getApproval(approval.id)).status).toBe('successful');
      const nodes = await t.client.listWorkflowJobNodes(wf.id);
      const apply = nodes.find((n) => n.summary_fields?.job?.type === 'job');
      expect(apply?.summary_fields?.job?.status).toBe('successful');
    },
    2 * capMs,
  );
});
