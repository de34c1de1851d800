/**
 * The typed AWX client against the AWX double: every call UNICOP makes (launch, follow, stdout,
 * events, cancel, workflow nodes, approvals), its named errors, and the launch that never
 * relaunches blindly — a lost answer (the double drops the connection after creating the job, or
 * answers after the client's timeout) is resolved by looking the run id up, for real, over TCP.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AwxApprovalNotPendingError,
  AwxAuthError,
  AwxClient,
  AwxLaunchUnconfirmedError,
  AwxNotFoundError,
  AwxPromptsIgnoredError,
  AwxUnavailableError,
} from '../../core/awx/index.js';
import { uniqueName } from '../support/stack.js';
import {
  eventually,
  fixtureProject,
  startTestDouble,
  type TestDouble,
  unicopVars,
  waitForJob,
  waitForWorkflowJob,
} from './support.js';

describe('AWX client', () => {
  let awx: TestDouble;

  beforeAll(async () => {
    awx = await startTestDouble({
      project_dir: fixtureProject,
      job_templates: [
        {
          id: 1,
          name: 'quick',
          playbook: 'quick.yml',
          ask_variables_on_launch: true,
          ask_job_type_on_launch: true,
        },
        { id: 2, name: 'quick-no-prompt', playbook: 'quick.yml' },
        { id: 3, name: 'slow', playbook: 'slow.yml', ask_variables_on_launch: true },
      ],
      workflow_job_templates: [
        {
          id: 10,
          name: 'approve-then-apply',
          ask_variables_on_launch: true,
          nodes: [
            { identifier: 'approval', approval: { name: 'Change approval' }, success_nodes: ['apply'] },
            { identifier: 'apply', job_template: 1 },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await awx?.stop();
  });

  const jobsOfRun = async (runId: string) => (await awx.doubleJobs()).filter((j) => j.run_id === runId);
  const faults = (body: Record<string, number>) =>
    fetch(`${awx.url}/_double/faults`, { method: 'POST', body: JSON.stringify(body) });

  it('launches a job, follows it to the end and reads its stdout and events', async () => {
    const runId = uniqueName('run');
    const { job, adopted } = await awx.client.launchJobTemplate(1, {
      unicop: unicopVars('prefix/1', runId, 1),
      extraVars: { marker: runId },
    });
    expect(adopted).toBe(false);
    expect(job.type).toBe('job');
    expect(JSON.parse(job.extra_vars).unicop.run_id).toBe(runId);

    const done = await waitForJob(awx.client, job.id);
    expect(done.status).toBe('successful');
    expect(await awx.client.getJobStdout(job.id)).toContain(`marker=${runId}`);
    const first = await awx.client.listJobEvents(job.id, 1, 4);
    expect(first.results).toHaveLength(4);
    expect(first.next).not.toBeNull();
    const all = await awx.client.listJobEvents(job.id);
    expect(all.count).toBeGreaterThan(4);
    expect(all.results.at(-1)?.event).toBe('playbook_on_stats');
    expect(await awx.client.canCancelJob(job.id)).toBe(false);
    expect(await awx.client.cancelJob(job.id)).toBe(false);
  });

  it('launches in check mode when asked', async () => {
    const { job } = await awx.client.launchJobTemplate(1, {
      unicop: unicopVars('prefix/1', uniqueName('run'), 1),
      jobType: 'check',
    });
    expect(job.job_type).toBe('check');
    expect((await waitForJob(awx.client, job.id)).status).toBe('successful');
  });

  it('adopts the job of a run that was already launched instead of launching it again', async () => {
    const runId = uniqueName('run');
    const request = { unicop: unicopVars('prefix/2', runId, 1) };
    const first = await awx.client.launchJobTemplate(1, request);
    const second = await awx.client.launchJobTemplate(1, request);
    expect(second).toMatchObject({ adopted: true, job: { id: first.job.id } });
    expect(await jobsOfRun(runId)).toHaveLength(1);
    await waitForJob(awx.client, first.job.id);
  });

  it('finds the job when the launch answer is lost after AWX created it, and launches nothing twice', async () => {
    const runId = uniqueName('run');
    await faults({ lose_launch_answers: 1 });
    const { job, adopted } = await awx.client.launchJobTemplate(1, {
      unicop: unicopVars('prefix/3', runId, 1),
    });
    expect(adopted).toBe(true);
    const jobs = await jobsOfRun(runId);
    expect(jobs.map((j) => j.id)).toEqual([job.id]);
    expect((await waitForJob(awx.client, job.id)).status).toBe('successful');
  });

  it('finds the job when the launch answer comes after the client timed out', async () => {
    const impatient = new AwxClient({
      baseUrl: awx.url,
      token: awx.token,
      timeoutMs: 400,
      confirmDelayMs: 200,
    });
    const runId = uniqueName('run');
    await faults({ delay_launch_answer_ms: 2_000 });
    const started = Date.now();
    const { job, adopted } = await impatient.launchJobTemplate(1, {
      unicop: unicopVars('prefix/4', runId, 1),
    });
    expect(adopted).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await jobsOfRun(runId)).map((j) => j.id)).toEqual([job.id]);
    await waitForJob(awx.client, job.id);
  });

  it('reports an unconfirmed launch (retriable) rather than relaunching when no job carries the run id', async () => {
    // The template drops extra_vars, so the job AWX created cannot be recognised by its run id.
    const before = (await awx.doubleJobs()).filter((j) => j.template === 2).length;
    await faults({ lose_launch_answers: 1 });
    const error = await awx.client
      .launchJobTemplate(2, { unicop: unicopVars('prefix/5', uniqueName('run'), 1) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwxLaunchUnconfirmedError);
    expect((error as AwxLaunchUnconfirmedError).retriable).toBe(true);
    expect((await awx.doubleJobs()).filter((j) => j.template === 2).length).toBe(before + 1);
  });

  it('cancels the job and refuses when AWX ignored the extra_vars', async () => {
    const error = await awx.client
      .launchJobTemplate(2, { unicop: unicopVars('prefix/6', uniqueName('run'), 1) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwxPromptsIgnoredError);
    const { jobId, fields, retriable } = error as AwxPromptsIgnoredError;
    expect({ fields, retriable }).toEqual({ fields: ['extra_vars'], retriable: false });
    expect((await waitForJob(awx.client, jobId)).status).toBe('canceled');
  });

  it('cancels a running job', async () => {
    const { job } = await awx.client.launchJobTemplate(3, {
      unicop: unicopVars('prefix/7', uniqueName('run'), 1),
      extraVars: { seconds: 30 },
    });
    await eventually(async () => (await awx.client.getJob(job.id)).status === 'running', 'job running');
    expect(await awx.client.canCancelJob(job.id)).toBe(true);
    expect(await awx.client.cancelJob(job.id)).toBe(true);
    expect((await waitForJob(awx.client, job.id)).status).toBe('canceled');
  });

  it('drives a workflow: finds its pending approval, approves it, and refuses a second decision', async () => {
    const runId = uniqueName('run');
    const { job: wf } = await awx.client.launchWorkflowJobTemplate(10, {
      unicop: unicopVars('site/1', runId, 1),
    });
    expect(wf.type).toBe('workflow_job');
    const [approval] = await eventually(async () => {
      const found = await awx.client.approvalsOfWorkflowJob(wf.id);
      return found.length ? found : undefined;
    }, 'approval');
    expect(approval?.status).toBe('pending');
    expect((await awx.client.listPendingApprovals()).map((a) => a.id)).toContain(approval?.id);
    const again = await awx.client.launchWorkflowJobTemplate(10, { unicop: unicopVars('site/1', runId, 1) });
    expect(again).toMatchObject({ adopted: true, job: { id: wf.id } });

    await awx.client.approve(approval?.id ?? -1);
    await expect(awx.client.deny(approval?.id ?? -1)).rejects.toBeInstanceOf(AwxApprovalNotPendingError);
    expect((await waitForWorkflowJob(awx.client, wf.id)).status).toBe('successful');
    const nodes = await awx.client.listWorkflowJobNodes(wf.id);
    expect(nodes.find((n) => n.identifier === 'apply')?.summary_fields?.job?.status).toBe('successful');
  });

  it('denies an approval and cancels a workflow', async () => {
    const { job: denied } = await awx.client.launchWorkflowJobTemplate(10, {
      unicop: unicopVars('site/2', uniqueName('run'), 1),
    });
    const [approval] = await eventually(async () => {
      const found = await awx.client.approvalsOfWorkflowJob(denied.id);
      return found.length ? found : undefined;
    }, 'approval');
    await awx.client.deny(approval?.id ?? -1);
    expect((await waitForWorkflowJob(awx.client, denied.id)).status).toBe('failed');

    const { job: canceled } = await awx.client.launchWorkflowJobTemplate(10, {
      unicop: unicopVars('site/3', uniqueName('run'), 1),
    });
    await eventually(
      async () => (await awx.client.approvalsOfWorkflowJob(canceled.id)).length > 0,
      'approval',
    );
    expect(await awx.client.cancelWorkflowJob(canceled.id)).toBe(true);
    expect((await waitForWorkflowJob(awx.client, canceled.id)).status).toBe('canceled');
    expect(await awx.client.cancelWorkflowJob(canceled.id)).toBe(false);
  });

  it('names its errors and never puts the token in them', async () => {
    const intruder = new AwxClient({ baseUrl: awx.url, token: 'wrong-token-0123456789' });
    const auth = await intruder.getJob(1).catch((e: unknown) => e);
    expect(auth).toBeInstanceOf(AwxAuthError);
    expect(auth).toMatchObject({ name: 'AwxAuthError', status: 401, retriable: false });
    expect(JSON.stringify({ message: (auth as Error).message, stack: (auth as Error).stack })).not.toContain(
      'wrong-token',
    );

    await expect(awx.client.getJob(999_999)).rejects.toBeInstanceOf(AwxNotFoundError);
    const missing = await awx.client
      .launchJobTemplate(404, { unicop: unicopVars('prefix/8', uniqueName('run'), 1) })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(AwxNotFoundError);
  });

  it('reports AWX unreachable as a retriable AwxUnavailableError, for a launch too', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = new AwxClient({ baseUrl: `http://127.0.0.1:${port}`, token: awx.token });
    const error = await down.getJob(1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwxUnavailableError);
    expect((error as AwxUnavailableError).retriable).toBe(true);
    await expect(
      down.launchJobTemplate(1, { unicop: unicopVars('prefix/9', uniqueName('run'), 1) }),
    ).rejects.toBeInstanceOf(AwxUnavailableError);
  });
});
