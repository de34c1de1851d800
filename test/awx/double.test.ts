/**
 * The AWX double behaves as AWX documents, on the wire: auth, launch (201, ignored_fields), the
 * status progression, allow_simultaneous, cancel, stdout, paged job events, workflow approvals
 * (approve, deny, 400 once decided, timeout) and at-most-once notification webhooks. Jobs run real
 * playbooks (test/awx/fixtures/project) through ansible-runner.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  fixtureProject,
  overlappingRuns,
  startTestDouble,
  startWebhookListener,
  type TestDouble,
  waitForJob,
  waitForWorkflowJob,
} from './support.js';

// biome-ignore lint/suspicious/noExplicitAny: AWX's JSON bodies, checked field by field by the assertions
type Json = Record<string, any>;

describe('AWX double', () => {
  let awx: TestDouble;
  let listener: Awaited<ReturnType<typeof startWebhookListener>>;
  let brokenListener: Awaited<ReturnType<typeof startWebhookListener>>;

  beforeAll(async () => {
    listener = await startWebhookListener(202);
    brokenListener = await startWebhookListener(500);
    const notify = {
      started: [{ url: `${listener.url}/started` }],
      success: [{ url: `${listener.url}/success` }],
      error: [{ url: `${listener.url}/error` }],
    };
    const approvalNode = (timeout: number) => [
      { identifier: 'approval', approval: { name: 'Change approval', timeout }, success_nodes: ['apply'] },
      { identifier: 'apply', job_template: 1 },
    ];
    awx = await startTestDouble({
      project_dir: fixtureProject,
      job_templates: [
        {
          id: 1,
          name: 'quick',
          playbook: 'quick.yml',
          ask_variables_on_launch: true,
          notification_templates: notify,
        },
        { id: 2, name: 'quick-no-prompt', playbook: 'quick.yml' },
        { id: 3, name: 'slow-serial', playbook: 'slow.yml', ask_variables_on_launch: true },
        {
          id: 4,
          name: 'slow-simultaneous',
          playbook: 'slow.yml',
          ask_variables_on_launch: true,
          allow_simultaneous: true,
        },
        { id: 5, name: 'failing', playbook: 'fail.yml', notification_templates: notify },
        {
          id: 6,
          name: 'quick-broken-hook',
          playbook: 'quick.yml',
          notification_templates: { success: [{ url: `${brokenListener.url}/success` }] },
        },
      ],
      workflow_job_templates: [
        { id: 10, name: 'approve-then-apply', ask_variables_on_launch: true, nodes: approvalNode(0) },
        { id: 11, name: 'approval-times-out', ask_variables_on_launch: true, nodes: approvalNode(1) },
      ],
    });
  });

  afterAll(async () => {
    await awx?.stop();
    await listener?.close();
    await brokenListener?.close();
  });

  const launch = async (template: number, body: Json = {}, kind = 'job_templates') => {
    const res = await awx.request(`/api/v2/${kind}/${template}/launch/`, {
      method: 'POST',
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(201);
    return { body: (await res.json()) as Json, location: res.headers.get('location') };
  };
  const get = async (path: string) => (await (await awx.request(path)).json()) as Json;

  it('answers 401 without valid credentials and accepts a bearer token or Basic auth', async () => {
    const none = await fetch(`${awx.url}/api/v2/jobs/`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as Json).detail).toBe('Authentication credentials were not provided.');
    const wrong = await fetch(`${awx.url}/api/v2/jobs/`, {
      headers: { authorization: 'Bearer not-the-token' },
    });
    expect(wrong.status).toBe(401);
    const basic = Buffer.from('admin:double-password').toString('base64');
    expect(
      (await fetch(`${awx.url}/api/v2/jobs/`, { headers: { authorization: `Basic ${basic}` } })).status,
    ).toBe(200);
    expect((await awx.request('/api/v2/jobs/')).status).toBe(200);
  });

  it('launches with 201 {job, ignored_fields}, dropping extra_vars the template does not prompt for', async () => {
    const dropped = await launch(2, { extra_vars: { marker: 'dropped' } });
    expect(dropped.body.job).toBe(dropped.body.id);
    expect(dropped.body.type).toBe('job');
    expect(dropped.body.ignored_fields).toEqual({ extra_vars: { marker: 'dropped' } });
    expect(dropped.location).toBe(`/api/v2/jobs/${dropped.body.job}/`);
    const kept = await launch(1, { extra_vars: { marker: 'kept' } });
    expect(kept.body.ignored_fields).toEqual({});

    await waitForJob(awx.client, dropped.body.job);
    await waitForJob(awx.client, kept.body.job);
    expect((await get(`/api/v2/jobs/${dropped.body.job}/`)).extra_vars).toBe('{}');
    expect(await awx.client.getJobStdout(dropped.body.job)).toContain('marker=none');
    expect(await awx.client.getJobStdout(kept.body.job)).toContain('marker=kept');
  });

  it('moves a job new -> pending -> waiting -> running -> successful and records start and end', async () => {
    const { body } = await launch(1, { extra_vars: { marker: 'progression' } });
    expect(body.status).toBe('pending');
    const job = await waitForJob(awx.client, body.job);
    expect(job.status).toBe('successful');
    const record = (await awx.doubleJobs()).find((j) => j.id === body.job);
    expect(record?.status_history.map((s) => s.status)).toEqual([
      'new',
      'pending',
      'waiting',
      'running',
      'successful',
    ]);
    expect(Date.parse(job.finished ?? '')).toBeGreaterThan(Date.parse(job.started ?? ''));
  });

  it('holds the second job of a non-simultaneous template pending until the first has ended', async () => {
    const unicop = { root: 'prefix/serial' };
    const first = await launch(3, { extra_vars: { seconds: 2, unicop } });
    const second = await launch(3, { extra_vars: { seconds: 1, unicop } });
    await eventually(
      async () => (await awx.client.getJob(first.body.job)).status === 'running',
      'first job running',
    );
    expect((await awx.client.getJob(second.body.job)).status).toBe('pending');
    await waitForJob(awx.client, second.body.job);

    const records = await awx.doubleJobs();
    const a = records.find((j) => j.id === first.body.job);
    const b = records.find((j) => j.id === second.body.job);
    expect(a?.status).toBe('successful');
    expect(b?.status).toBe('successful');
    expect(Date.parse(b?.started ?? '')).toBeGreaterThanOrEqual(Date.parse(a?.finished ?? ''));
    const waitingAt = b?.status_history.find((s) => s.status === 'waiting')?.at ?? '';
    expect(Date.parse(waitingAt)).toBeGreaterThanOrEqual(Date.parse(a?.finished ?? ''));
    expect(overlappingRuns(records, 'prefix/serial')).toEqual([]);
  });

  it('runs jobs of an allow_simultaneous template at the same time', async () => {
    const unicop = { root: 'prefix/simultaneous' };
    const first = await launch(4, { extra_vars: { seconds: 2, unicop } });
    const second = await launch(4, { extra_vars: { seconds: 2, unicop } });
    await eventually(
      async () =>
        (await awx.client.getJob(first.body.job)).status === 'running' &&
        (await awx.client.getJob(second.body.job)).status === 'running',
      'both jobs running together',
    );
    await waitForJob(awx.client, first.body.job);
    await waitForJob(awx.client, second.body.job);
    expect(overlappingRuns(await awx.doubleJobs(), 'prefix/simultaneous')).toEqual([
      [first.body.job, second.body.job],
    ]);
  });

  it('cancels a running job (202) and a pending one; a finished job cannot be canceled (405)', async () => {
    const running = await launch(3, { extra_vars: { seconds: 30 } });
    const queued = await launch(3, { extra_vars: { seconds: 30 } });
    await eventually(
      async () => (await awx.client.getJob(running.body.job)).status === 'running',
      'job running',
    );
    expect(await get(`/api/v2/jobs/${queued.body.job}/cancel/`)).toEqual({ can_cancel: true });
    expect((await awx.request(`/api/v2/jobs/${queued.body.job}/cancel/`, { method: 'POST' })).status).toBe(
      202,
    );
    expect((await awx.client.getJob(queued.body.job)).status).toBe('canceled');
    expect((await awx.request(`/api/v2/jobs/${running.body.job}/cancel/`, { method: 'POST' })).status).toBe(
      202,
    );

    const canceled = await waitForJob(awx.client, running.body.job);
    expect(canceled.status).toBe('canceled');
    expect(Date.parse(canceled.finished ?? '') - Date.parse(canceled.started ?? '')).toBeLessThan(20_000);
    expect(await get(`/api/v2/jobs/${running.body.job}/cancel/`)).toEqual({ can_cancel: false });
    expect((await awx.request(`/api/v2/jobs/${running.body.job}/cancel/`, { method: 'POST' })).status).toBe(
      405,
    );
    const queuedRecord = (await awx.doubleJobs()).find((j) => j.id === queued.body.job);
    expect(queuedRecord?.started).toBeNull();
  });

  it('serves stdout as txt and json, and job events in pages that add up to all events', async () => {
    const { body } = await launch(1, { extra_vars: { marker: 'events' } });
    await waitForJob(awx.client, body.job);
    const txt = await (await awx.request(`/api/v2/jobs/${body.job}/stdout/?format=txt`)).text();
    expect(txt).toContain('PLAY RECAP');
    const json = await get(`/api/v2/jobs/${body.job}/stdout/?format=json`);
    expect(json.content).toBe(txt);
    expect(json.range.absolute_end).toBe(txt.split('\n').length - 1);

    const all = await get(`/api/v2/jobs/${body.job}/job_events/?page_size=200`);
    expect(all.count).toBe(all.results.length);
    expect(all.results.at(-1).event).toBe('playbook_on_stats');
    const paged: Json[] = [];
    let next: string | null = `/api/v2/jobs/${body.job}/job_events/?page_size=3`;
    let pages = 0;
    while (next) {
      const page: Json = await get(next);
      expect(page.count).toBe(all.count);
      expect(page.previous === null).toBe(pages === 0);
      paged.push(...page.results);
      next = page.next;
      pages++;
    }
    expect(pages).toBe(Math.ceil(all.count / 3));
    expect(paged.map((e) => e.counter)).toEqual(all.results.map((e: Json) => e.counter));
    const counters = paged.map((e) => e.counter as number);
    expect(counters).toEqual([...counters].sort((x, y) => x - y));
    expect(paged.some((e) => e.event === 'runner_on_ok' && e.task === 'Say what the job received')).toBe(
      true,
    );
  });

  it('keeps a workflow approval pending until approved, then runs the next node; a second decision is 400', async () => {
    const { body } = await launch(10, { extra_vars: { marker: 'approved' } }, 'workflow_job_templates');
    expect(body.workflow_job).toBe(body.id);
    const approval = await eventually(async () => {
      const nodes = (await get(`/api/v2/workflow_jobs/${body.workflow_job}/workflow_nodes/`))
        .results as Json[];
      return nodes.find((n) => n.summary_fields.job?.type === 'workflow_approval');
    }, 'approval node');
    const pending = (await get('/api/v2/workflow_approvals/?status=pending')).results as Json[];
    expect(pending.map((a) => a.id)).toContain(approval.job);
    expect((await get(`/api/v2/workflow_jobs/${body.workflow_job}/`)).status).toBe('running');

    expect(
      (await awx.request(`/api/v2/workflow_approvals/${approval.job}/approve/`, { method: 'POST' })).status,
    ).toBe(204);
    const again = await awx.request(`/api/v2/workflow_approvals/${approval.job}/approve/`, {
      method: 'POST',
    });
    expect(again.status).toBe(400);
    expect(((await again.json()) as Json).error).toBe(
      'This workflow step has already been approved or denied.',
    );
    expect(
      (await awx.request(`/api/v2/workflow_approvals/${approval.job}/deny/`, { method: 'POST' })).status,
    ).toBe(400);

    const wf = await waitForWorkflowJob(awx.client, body.workflow_job);
    expect(wf.status).toBe('successful');
    const nodes = (await get(`/api/v2/workflow_jobs/${body.workflow_job}/workflow_nodes/`)).results as Json[];
    const apply = nodes.find((n) => n.identifier === 'apply');
    expect(apply?.summary_fields.job.status).toBe('successful');
    expect(await awx.client.getJobStdout(apply?.job)).toContain('marker=approved');
    expect((await get(`/api/v2/workflow_approvals/${approval.job}/`)).status).toBe('successful');
  });

  it('fails the workflow when its approval is denied, and never runs the next node', async () => {
    const { body } = await launch(10, {}, 'workflow_job_templates');
    const [approval] = await eventually(async () => {
      const found = await awx.client.approvalsOfWorkflowJob(body.workflow_job);
      return found.length ? found : undefined;
    }, 'approval');
    expect(
      (await awx.request(`/api/v2/workflow_approvals/${approval?.id}/deny/`, { method: 'POST' })).status,
    ).toBe(204);
    const wf = await waitForWorkflowJob(awx.client, body.workflow_job);
    expect(wf.status).toBe('failed');
    const denied = await get(`/api/v2/workflow_approvals/${approval?.id}/`);
    expect(denied).toMatchObject({ status: 'failed', timed_out: false, can_approve_or_deny: false });
    const nodes = (await get(`/api/v2/workflow_jobs/${body.workflow_job}/workflow_nodes/`)).results as Json[];
    expect(nodes.find((n) => n.identifier === 'apply')).toMatchObject({ job: null, do_not_run: true });
  });

  it('times an approval out as AWX does: status failed, timed_out true, and the workflow fails', async () => {
    const { body } = await launch(11, {}, 'workflow_job_templates');
    const [approval] = await eventually(async () => {
      const found = await awx.client.approvalsOfWorkflowJob(body.workflow_job);
      return found.length ? found : undefined;
    }, 'approval');
    // AWX 24.6.1 shows no `timeout` on an approval; a 1 s timeout shows as an expiration 1 s after creation.
    expect(approval).toMatchObject({ status: 'pending', timed_out: false });
    expect(Date.parse(approval?.approval_expiration ?? '') - Date.parse(approval?.created ?? '')).toBe(1000);
    const wf = await waitForWorkflowJob(awx.client, body.workflow_job);
    expect(wf.status).toBe('failed');
    const expired = await get(`/api/v2/workflow_approvals/${approval?.id}/`);
    expect(expired).toMatchObject({ status: 'failed', timed_out: true });
    expect(expired.job_explanation).toBe(
      `The approval node Change approval (${approval?.id}) has expired after 1 seconds.`,
    );
    expect(
      (await awx.request(`/api/v2/workflow_approvals/${approval?.id}/approve/`, { method: 'POST' })).status,
    ).toBe(400);
  });

  it("sends started, success and error notifications with AWX's job_metadata body, each once", async () => {
    const ok = await launch(1, { extra_vars: { marker: 'notify' } });
    const failing = await launch(5);
    await waitForJob(awx.client, ok.body.job);
    const failed = await waitForJob(awx.client, failing.body.job);
    expect(failed.status).toBe('failed');
    await eventually(
      async () => listener.received.some((r) => r.body.id === failing.body.job && r.path === '/error'),
      'error hook',
    );
    await new Promise((r) => setTimeout(r, 500)); // anything sent twice would have arrived by now

    const forOk = listener.received.filter((r) => r.body.id === ok.body.job);
    expect(forOk.map((r) => r.path).sort()).toEqual(['/started', '/success']);
    const started = forOk.find((r) => r.path === '/started')?.body;
    const success = forOk.find((r) => r.path === '/success')?.body;
    expect(started).toMatchObject({
      id: ok.body.job,
      name: 'quick',
      status: 'running',
      finished: null,
      playbook: 'quick.yml',
    });
    expect(success).toMatchObject({ id: ok.body.job, status: 'successful', traceback: '', limit: '' });
    expect(Object.keys(success ?? {}).sort()).toEqual(
      [
        'created_by',
        'credential',
        'extra_vars',
        'finished',
        'hosts',
        'id',
        'inventory',
        'limit',
        'name',
        'playbook',
        'project',
        'started',
        'status',
        'traceback',
        'url',
      ].sort(),
    );
    expect(JSON.parse(success?.extra_vars as string)).toEqual({ marker: 'notify' });
    expect(((success?.hosts ?? {}) as Json).localhost).toMatchObject({ failed: false, ok: 1 });
    expect(listener.received.find((r) => r.path === '/started')?.headers['content-type']).toBe(
      'application/json',
    );

    const forFailed = listener.received.filter((r) => r.body.id === failing.body.job);
    expect(forFailed.map((r) => r.path).sort()).toEqual(['/error', '/started']);
    expect(forFailed.find((r) => r.path === '/error')?.body).toMatchObject({ status: 'failed' });
  });

  it('does not retry a notification the receiver rejected (at most once)', async () => {
    const { body } = await launch(6);
    await waitForJob(awx.client, body.job);
    await eventually(async () => brokenListener.received.length > 0, 'delivery to the broken hook');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(brokenListener.received.filter((r) => r.body.id === body.job)).toHaveLength(1);
    const deliveries = (await (await fetch(`${awx.url}/_double/notifications`)).json()) as Json[];
    expect(deliveries.filter((d) => d.job === body.job)).toMatchObject([{ trigger: 'success', result: 500 }]);
  });
});
