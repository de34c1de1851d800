/**
 * POST /webhooks/awx with AWX's approval notifications (docs/decisions/0031): the stack's real AWX
 * 24.6.1 sends them — a webhook notification template this file owns (`unicop-approval-test-bridge`,
 * pointed at this file's bridge each run) attached to the `approvals` event of the bootstrap's
 * workflow `unicop-site-with-approval` for the file's duration — and the bridge publishes each as an
 * io.unicop.awx-approval.v1 event on unicop.awx-events, keyed by the workflow job. Bodies that are
 * neither AWX's job metadata nor its approval text get a 422 naming the field, and an audit event.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwxClient } from '../../core/awx/index.js';
import { repoRoot, resolveSecret } from '../../core/config.js';
import { parseEvent, topics } from '../../core/events/catalogue.js';
import { awxJson, basicAuth, bridgeNotificationTemplate, unicopVars } from '../awx/support.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { OpenApiDocument } from '../support/openapi.js';
import { stackFact, uniqueName } from '../support/stack.js';

// Caps, not budgets: AWX's dispatcher sends a notification within seconds; minutes under load.
const notifyCapMs = 300_000;
const notificationName = 'unicop-approval-test-bridge';
const spec = new OpenApiDocument(join(repoRoot, 'openapi', 'bridge.yaml'));

const secret = randomBytes(16).toString('hex');

let bridge: RunningBridge;
let tail: TopicTail;
let awxUrl: string;
let client: AwxClient;
let workflowTemplate: number;
let admin: (path: string, init?: RequestInit) => Promise<Response>;
let detach: () => Promise<void> = async () => {};

beforeAll(async () => {
  bridge = await startBridge({ UNICOP_AWX_WEBHOOK_SECRET: secret });
  tail = await TopicTail.start([topics.awxEvents, topics.audit]);
});

afterAll(async () => {
  await tail?.stop();
  await bridge?.close();
});

/** Points this file's notification template at the bridge and attaches it to the approval workflow. */
async function attachRealAwx(): Promise<void> {
  awxUrl = stackFact('UNICOP_AWX_REAL_URL');
  const token = resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env);
  client = new AwxClient({ baseUrl: awxUrl, token, timeoutMs: 30_000 });
  const password = (await readFile(stackFact('UNICOP_AWX_ADMIN_PASSWORD_FILE'), 'utf8')).trim();
  admin = (path, init = {}) =>
    fetch(`${awxUrl}${path}`, {
      ...init,
      headers: { authorization: basicAuth('admin', password), 'content-type': 'application/json' },
    });
  const ids = JSON.parse(stackFact('UNICOP_AWX_TEMPLATE_IDS')) as Record<string, { id: number }>;
  const workflow = ids['unicop-site-with-approval']?.id;
  if (!workflow) throw new Error('UNICOP_AWX_TEMPLATE_IDS has no unicop-site-with-approval');
  workflowTemplate = workflow;
  const template = await awxJson<{ organization: number }>(
    await admin(`/api/v2/workflow_job_templates/${workflow}/`),
    'get unicop-site-with-approval',
  );

  // This file's notification template: found by name and pointed at this run's bridge, or made.
  const configuration = bridgeNotificationTemplate(template.organization, bridge.url, secret);
  const found = await awxJson<{ results: { id: number }[] }>(
    await admin(`/api/v2/notification_templates/?name=${notificationName}`),
    'find notification template',
  );
  const existing = found.results[0];
  const notification = existing
    ? existing.id
    : (
        await awxJson<{ id: number }>(
          await admin('/api/v2/notification_templates/', {
            method: 'POST',
            body: JSON.stringify({ name: notificationName, ...configuration }),
          }),
          'create notification template',
        )
      ).id;
  if (existing) {
    await awxJson(
      await admin(`/api/v2/notification_templates/${notification}/`, {
        method: 'PATCH',
        body: JSON.stringify(configuration),
      }),
      'update notification template',
    );
  }
  const attachment = `/api/v2/workflow_job_templates/${workflow}/notification_templates_approvals/`;
  const attach = async (disassociate: boolean) => {
    const res = await admin(attachment, {
      method: 'POST',
      body: JSON.stringify({ id: notification, ...(disassociate ? { disassociate: true } : {}) }),
    });
    if (res.status !== 204) throw new Error(`${attachment}: ${res.status} ${await res.text()}`);
  };
  await attach(false);
  detach = () => attach(true);
}

/** Launches unicop-site-with-approval on real AWX and waits for its pending approval. */
async function workflowAtApproval() {
  const root = `site/${100_000 + Math.floor(Math.random() * 900_000)}`;
  const snapshot = {
    root: { kind: 'site', key: root, anchor: { id: 3, name: 'Paris', slug: 'paris' } },
    members: [],
  };
  const { job: wf } = await client.launchWorkflowJobTemplate(workflowTemplate, {
    unicop: unicopVars(root, uniqueName('run'), 1, snapshot),
  });
  const deadline = Date.now() + notifyCapMs;
  for (;;) {
    const pending = (await client.approvalsOfWorkflowJob(wf.id)).find((a) => a.status === 'pending');
    if (pending) return { wf, approval: pending };
    if (Date.now() > deadline) throw new Error(`workflow job ${wf.id} reached no pending approval`);
    await sleep(1000);
  }
}

const approvalEvent = (m: TailedMessage) => parseEvent('awxApproval', JSON.stringify(m.value));
const approvalsOf = (workflowJobId: number) => (m: TailedMessage) =>
  m.topic === topics.awxEvents && approvalEvent(m)?.data.workflowJobId === workflowJobId;

describe('AWX approval notifications from real AWX', () => {
  beforeAll(attachRealAwx, notifyCapMs);
  afterAll(() => detach());

  it(
    "a pending approval and its denial each reach the bridge as AWX's approval text and become io.unicop.awx-approval.v1 events keyed by the workflow job, with the node's name and the workflow's URL",
    async () => {
      const { wf, approval } = await workflowAtApproval();
      const workflowUrl = `${awxUrl}/#/jobs/workflow/${wf.id}`;
      const [pending] = await tail.waitFor(approvalsOf(wf.id), 1, notifyCapMs);
      const event = approvalEvent(pending as TailedMessage);
      expect(pending?.key).toBe(`workflow_job/${wf.id}`);
      expect(event?.subject).toBe(`awx/workflow_job/${wf.id}/approval`);
      expect(event?.data).toMatchObject({
        workflowJobId: wf.id,
        approvalName: 'Approve site change',
        status: 'pending',
        workflowUrl,
        // AWX 24.6.1's default webhook text, verbatim.
        message: `The approval node "Approve site change" needs review. This node can be viewed at: ${workflowUrl}`,
      });

      await client.deny(approval.id);
      const both = await tail.waitFor(approvalsOf(wf.id), 2, notifyCapMs);
      expect(both.map((m) => approvalEvent(m)?.data.status)).toEqual(['pending', 'denied']);
      expect(approvalEvent(both[1] as TailedMessage)?.data.message).toBe(
        `The approval node "Approve site change" was denied. ${workflowUrl}`,
      );
      // Nothing AWX sent to this bridge was refused.
      const metrics = await (await fetch(`${bridge.url}/metrics`)).text();
      expect(metrics).not.toMatch(/unicop_webhooks_rejected_total\{source="awx"/);
    },
    2 * notifyCapMs,
  );

  it(
    'an approval that is approved sends "was approved", published as status approved',
    async () => {
      const { wf, approval } = await workflowAtApproval();
      await tail.waitFor(approvalsOf(wf.id), 1, notifyCapMs);
      await client.approve(approval.id);
      const both = await tail.waitFor(approvalsOf(wf.id), 2, notifyCapMs);
      expect(both.map((m) => approvalEvent(m)?.data.status)).toEqual(['pending', 'approved']);
      expect(approvalEvent(both[1] as TailedMessage)?.data.message).toBe(
        `The approval node "Approve site change" was approved. ${awxUrl}/#/jobs/workflow/${wf.id}`,
      );
    },
    2 * notifyCapMs,
  );
});

describe('bodies that are neither job metadata nor approval text', () => {
  const post = (body: string) =>
    fetch(`${bridge.url}/webhooks/awx`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basicAuth('awx', secret) },
      body,
    });

  it.each([
    ['approval text AWX never sends', { body: 'please review the site change' }, 'body', /approval text/],
    ['a body that is not a string', { body: 42 }, 'body', /string/],
    [
      'approval text naming a job, not a workflow job',
      { body: 'The approval node "Approve site change" was denied. http://awx/#/jobs/playbook/7' },
      'body',
      /jobs\/workflow/,
    ],
    ['job metadata with a bad id', { id: 'x', status: 'running' }, 'id', /number/],
  ] as const)(
    '%s: 422 naming the field, and an awx_notification.rejected audit event',
    async (_what, body, field, message) => {
      const res = await post(JSON.stringify(body));
      expect(res.status).toBe(422);
      const answer = (await res.json()) as { reason: string; issues: { field: string; message: string }[] };
      expect(spec.check('POST', '/webhooks/awx', 422, res.headers.get('content-type'), answer)).toEqual([]);
      expect(answer.reason).toBe('invalid_body');
      expect(answer.issues.map((i) => i.field)).toEqual([field]);
      expect(answer.issues[0]?.message).toMatch(message);
      const requestId = res.headers.get('x-request-id');
      const [audit] = await tail.waitFor(
        (m) =>
          m.topic === topics.audit &&
          parseEvent('audit', JSON.stringify(m.value))?.data.subjectId === requestId,
      );
      expect(parseEvent('audit', JSON.stringify(audit?.value))?.data).toMatchObject({
        action: 'awx_notification.rejected',
        outcome: 'rejected',
        reason: 'invalid_body',
        metadata: { status: 422, issues: [{ field }] },
      });
    },
  );
});
