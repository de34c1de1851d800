/**
 * The typed AWX client against the real AWX 24.6.1 of the local stack (scripts/stack.d/awx.sh, the
 * objects made by scripts/awx-bootstrap.ts): a job template launch with extra_vars runs a real
 * playbook in the podman execution environment to `successful` and what it wrote is on the host;
 * the approval workflow stops at a pending approval that approve and deny decide.
 *
 * Skipped only when the stack has no awx service (no UNICOP_AWX_REAL_URL in var/stack.env).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { bootstrapAwx } from '../../core/awx/bootstrap.js';
import { AwxApprovalNotPendingError, AwxClient } from '../../core/awx/index.js';
import { readStackEnv, resolveSecret } from '../../core/config.js';
import { stackFact, uniqueName } from '../support/stack.js';
import { unicopVars, waitForJob, waitForWorkflowJob } from './support.js';

const facts = { ...readStackEnv(), ...process.env };
const haveAwx = Boolean(facts.UNICOP_AWX_REAL_URL);
// Caps, not budgets: a job container start and a playbook take seconds here, minutes under load.
const jobCapMs = 600_000;

// The awx service is in the default stack: missing facts are a failure, never a silent skip.
describe('real AWX (the stack’s awx service)', () => {
  it('has the real AWX facts in var/stack.env', () => {
    expect(haveAwx, 'UNICOP_AWX_REAL_URL missing: scripts/stack up awx').toBe(true);
  });

  const client = () =>
    new AwxClient({
      baseUrl: stackFact('UNICOP_AWX_REAL_URL'),
      token: resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env),
      timeoutMs: 30_000,
    });
  const template = (name: string) => {
    const ids = JSON.parse(stackFact('UNICOP_AWX_TEMPLATE_IDS')) as Record<
      string,
      { type: string; id: number }
    >;
    const t = ids[name];
    if (!t) throw new Error(`UNICOP_AWX_TEMPLATE_IDS has no ${name}: run scripts/stack up awx`);
    return t.id;
  };
  const targetDir = () => stackFact('UNICOP_AWX_TARGET_DIR');
  const rootNumber = () => 100_000 + Math.floor(Math.random() * 900_000);

  it(
    'a job template launch with extra_vars runs prefix.yml in the podman execution environment to successful; the zones are on the host',
    async () => {
      const awx = client();
      const root = `prefix/${rootNumber()}`;
      const runId = uniqueName('run');
      const snapshot = {
        root: {
          kind: 'prefix',
          key: root,
          anchor: { id: 1, prefix: '10.77.30.0/24', dns_zone: 'real.example' },
        },
        members: [
          { object_type: 'ipam.ipaddress', id: 1, address: '10.77.30.5/24', dns_name: 'web1.real.example' },
        ],
      };
      const { job, adopted } = await awx.launchJobTemplate(template('unicop-prefix'), {
        unicop: unicopVars(root, runId, 3, snapshot),
      });
      expect(adopted).toBe(false);

      const done = await waitForJob(awx, job.id, jobCapMs);
      expect(done.status, done.job_explanation).toBe('successful');
      expect(JSON.parse(done.extra_vars).unicop.run_id).toBe(runId);
      // Run in a container of the stack's image, on the stack's instance.
      const ee = (done.summary_fields as { execution_environment?: { image?: string } })
        .execution_environment;
      expect(ee?.image).toBe(stackFact('UNICOP_AWX_EE_IMAGE'));
      expect(done.artifacts?.unicop_summary).toMatchObject({
        root,
        mode: 'apply',
        a_records: 1,
        ptr_records: 1,
      });

      const dir = join(targetDir(), root.replace('/', '-'));
      expect(await readFile(join(dir, 'real.example.zone'), 'utf8')).toContain(
        'web1.real.example. IN A 10.77.30.5',
      );
      expect(await readFile(join(dir, '30.77.10.in-addr.arpa.zone'), 'utf8')).toContain(
        '5.30.77.10.in-addr.arpa. IN PTR web1.real.example.',
      );
      expect(JSON.parse(await readFile(join(dir, 'unicop-state.json'), 'utf8'))).toMatchObject({
        fencing_token: 3,
        run_id: runId,
      });

      // The run id finds the job again (what a retry after a lost launch answer relies on).
      const found = await awx.findJobByRunId(
        template('unicop-prefix'),
        runId,
        new Date(Date.now() - 3_600_000),
      );
      expect(found?.id).toBe(job.id);
    },
    jobCapMs + 60_000,
  );

  /** Launches the approval workflow for a fresh site root; waits for its pending approval. */
  async function launchToApproval(awx: AwxClient) {
    const root = `site/${rootNumber()}`;
    const snapshot = {
      root: { kind: 'site', key: root, anchor: { id: 3, name: 'Paris', slug: 'paris' } },
      members: [{ object_type: 'dcim.device', id: 1, name: 'sw1', status: 'active' }],
    };
    const { job: wf } = await awx.launchWorkflowJobTemplate(template('unicop-site-with-approval'), {
      unicop: unicopVars(root, uniqueName('run'), 1, snapshot),
    });
    // Polled once a second: every poll costs real AWX a few queries.
    const deadline = Date.now() + jobCapMs;
    for (;;) {
      const pending = (await awx.approvalsOfWorkflowJob(wf.id)).find((a) => a.status === 'pending');
      if (pending) return { wf, root, approval: pending };
      if (Date.now() > deadline) throw new Error(`workflow job ${wf.id} reached no pending approval`);
      await sleep(1000);
    }
  }

  it(
    'the approval workflow stops at a pending approval; approve runs the site job to successful',
    async () => {
      const awx = client();
      const { wf, root, approval } = await launchToApproval(awx);
      expect(approval.name).toBe('Approve site change');
      expect((await awx.listPendingApprovals()).map((a) => a.id)).toContain(approval.id);
      const dir = join(targetDir(), root.replace('/', '-'));
      // Nothing ran yet: the gate holds the site job.
      await expect(readdir(dir)).rejects.toThrow();

      await awx.approve(approval.id);
      const done = await waitForWorkflowJob(awx, wf.id, jobCapMs);
      expect(done.status).toBe('successful');
      expect((await awx.getApproval(approval.id)).status).toBe('successful');
      const index = JSON.parse(await readFile(join(dir, 'inventory.json'), 'utf8'));
      expect(index.devices.map((d: { name: string }) => d.name)).toEqual(['sw1']);
      // A decided approval cannot be decided again.
      await expect(awx.deny(approval.id)).rejects.toBeInstanceOf(AwxApprovalNotPendingError);
    },
    2 * jobCapMs,
  );

  it(
    'deny fails the approval and the workflow; the site job never runs',
    async () => {
      const awx = client();
      const { wf, root, approval } = await launchToApproval(awx);
      await awx.deny(approval.id);
      const done = await waitForWorkflowJob(awx, wf.id, jobCapMs);
      expect((await awx.getApproval(approval.id)).status).toBe('failed');
      expect(done.status).toBe('failed');
      const nodes = await awx.listWorkflowJobNodes(wf.id);
      const apply = nodes.find((n) => n.summary_fields?.job?.type !== 'workflow_approval');
      expect(apply?.job ?? null).toBeNull();
      await expect(readdir(join(targetDir(), root.replace('/', '-')))).rejects.toThrow();
      await expect(awx.approve(approval.id)).rejects.toBeInstanceOf(AwxApprovalNotPendingError);
    },
    2 * jobCapMs,
  );

  it('the bootstrap is idempotent and repairs drift: a second run keeps every id and the token, restores a prompt turned off by hand and turns UI live updates off again', async () => {
    const base = stackFact('UNICOP_AWX_REAL_URL');
    const password = (await readFile(stackFact('UNICOP_AWX_ADMIN_PASSWORD_FILE'), 'utf8')).trim();
    const admin = { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` };
    const prefixId = template('unicop-prefix');
    const drift = await fetch(`${base}/api/v2/job_templates/${prefixId}/`, {
      method: 'PATCH',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ ask_variables_on_launch: false }),
    });
    expect(drift.status).toBe(200);
    const uiSettings = `${base}/api/v2/settings/ui/`;
    const liveUpdates = async (enabled?: boolean): Promise<boolean> => {
      const answer = await fetch(uiSettings, {
        ...(enabled === undefined
          ? { headers: admin }
          : {
              method: 'PATCH',
              headers: { ...admin, 'content-type': 'application/json' },
              body: JSON.stringify({ UI_LIVE_UPDATES_ENABLED: enabled }),
            }),
      });
      expect(answer.status).toBe(200);
      return ((await answer.json()) as { UI_LIVE_UPDATES_ENABLED: boolean }).UI_LIVE_UPDATES_ENABLED;
    };
    expect(await liveUpdates(true)).toBe(true);

    try {
      const token = resolveSecret(stackFact('UNICOP_AWX_REAL_TOKEN'), process.env);
      const result = await bootstrapAwx({
        baseUrl: base,
        username: 'admin',
        password,
        eeImage: stackFact('UNICOP_AWX_EE_IMAGE'),
        projectLocalPath: 'unicop-playbooks',
        targetDir: targetDir(),
        webhookUrl: stackFact('UNICOP_AWX_NOTIFY_URL'),
        webhookSecret: resolveSecret(stackFact('UNICOP_AWX_REAL_WEBHOOK_SECRET'), process.env),
        existingToken: token,
      });

      expect(result.templates).toEqual(JSON.parse(stackFact('UNICOP_AWX_TEMPLATE_IDS')));
      expect(result.newToken).toBeUndefined();
      const after = (await (
        await fetch(`${base}/api/v2/job_templates/${prefixId}/`, { headers: admin })
      ).json()) as {
        ask_variables_on_launch: boolean;
      };
      expect(after.ask_variables_on_launch).toBe(true);
      expect(await liveUpdates()).toBe(false);
    } finally {
      // Whatever happened, the other tests (and the next run) need the prompt back.
      await fetch(`${base}/api/v2/job_templates/${prefixId}/`, {
        method: 'PATCH',
        headers: { ...admin, 'content-type': 'application/json' },
        body: JSON.stringify({ ask_variables_on_launch: true }),
      });
      await liveUpdates(false);
    }
  }, 300_000);
});
