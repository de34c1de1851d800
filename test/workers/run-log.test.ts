/**
 * The run's own log (the Timeline of the run page in NetBox): a real reconcile against NetBox with
 * the plugin, Kafka and the stack's real AWX 24.6.1 leaves the run record with one structured line
 * `{ts, level, message, meta}` per step, in order — lease and fencing token, snapshot hash, launch
 * and AWX job id, each AWX status change, approval asked and given, the outcome — and no secret.
 * Without services: the log stays bounded (line count, message length, flat meta) and drops
 * secrets by key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PluginRun, RunLogLine } from '../../core/plugin/client.js';
import { RunLog, runLogLimits } from '../../workers/reconciler/run-log.js';
import { kindTemplateIds } from '../support/awx.js';
import {
  type BackHalf,
  createSite,
  createTenant,
  eventually,
  reconcileJob,
  startBackHalf,
} from '../support/reconciler.js';
import { stack } from '../support/stack.js';

const linesOf = (run: PluginRun | undefined) =>
  (run as { log_lines?: RunLogLine[] } | undefined)?.log_lines ?? [];

describe('run log: bounded, no secrets', () => {
  it('keeps the first lines and the latest, says how many it left out, and cuts long messages', () => {
    const log = new RunLog();
    const at = new Date('2026-12-01T10:00:00Z');
    for (let i = 0; i < 250; i++) log.add(at, 'info', `step ${i} ${'x'.repeat(i === 3 ? 5000 : 0)}`);
    const lines = log.lines();
    expect(lines).toHaveLength(runLogLimits.maxLines);
    expect(lines[0]?.message).toBe('step 0 ');
    expect(lines[3]?.message.length).toBe(runLogLimits.maxMessage);
    const marker = lines[runLogLimits.keepFirst];
    const left = 250 - (runLogLimits.maxLines - 1);
    expect(marker).toMatchObject({ level: 'warning', meta: { omitted: left } });
    expect(lines[runLogLimits.maxLines - 1]?.message).toBe('step 249 ');

    // Continued from what was stored (an adopted run): still bounded, the count carried on.
    const continued = new RunLog(lines);
    continued.add(at, 'info', 'one more');
    expect(continued.lines()).toHaveLength(runLogLimits.maxLines);
    expect(continued.lines()[runLogLimits.keepFirst]?.meta).toEqual({ omitted: left + 1 });
  });

  it('keeps meta flat and drops secrets by key; masks tokens in text', () => {
    const log = new RunLog();
    log.add(new Date(), 'error', 'AWX said: Authorization: Bearer abc.def-123 refused', {
      fencing_token: 7,
      token: 'nbt_key.secretpart',
      password: 'hunter2',
      nested: { a: 1 },
      note: 'x'.repeat(1000),
    });
    const [line] = log.lines();
    expect(line?.message).not.toContain('abc.def-123');
    expect(line?.meta).toEqual({ fencing_token: 7, note: `${'x'.repeat(runLogLimits.maxMetaValue - 1)}…` });
  });
});

describe('run log: a real reconcile writes its steps to the run record, in order', () => {
  let back: BackHalf;

  beforeAll(async () => {
    back = await startBackHalf();
  });
  afterAll(async () => {
    await back?.stop();
  });

  it('a job run: lease + token, snapshot hash, launch + job id, AWX statuses, outcome', async () => {
    const site = await createSite();
    const siteTemplate = kindTemplateIds().site; // the template NetBox's site kind names in this AWX
    await back.reconciler().reconcile(reconcileJob(site.rootKey));
    const [run] = await back.plugin.listRuns(site.rootKey);
    expect(run?.state).toBe('succeeded');
    const lines = linesOf(run);
    const jobId = run?.awx_job_id as number;

    expect(lines[0]).toMatchObject({
      level: 'info',
      message: `lease acquired with fencing token ${run?.fencing_token}`,
      meta: { fencing_token: run?.fencing_token },
    });
    expect(lines[1]).toMatchObject({
      message: `snapshot read: ${run?.snapshot_hash.slice(0, 12)}`,
      meta: { snapshot_hash: run?.snapshot_hash },
    });
    expect(lines[2]).toMatchObject({
      message: `launched AWX job template ${siteTemplate}: job ${jobId}`,
      meta: { awx_template_id: siteTemplate, awx_job_id: jobId, awx_job_type: 'job' },
    });
    const statuses = lines.slice(3, -1);
    expect(statuses.length).toBeGreaterThan(0);
    for (const line of statuses) expect(line.message).toMatch(new RegExp(`^AWX job ${jobId} is [a-z]+$`));
    expect(statuses[statuses.length - 1]?.message).toBe(`AWX job ${jobId} is successful`);
    expect(lines[lines.length - 1]).toMatchObject({
      level: 'info',
      message: `succeeded: AWX job ${jobId} successful`,
      meta: { state: 'succeeded', failure_class: null },
    });
    const times = lines.map((l) => Date.parse(l.ts));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const written = JSON.stringify(lines);
    for (const secret of [stack.netboxToken(), back.awx.token]) expect(written).not.toContain(secret);
  }, 600_000);

  it('a workflow run with an approval: asked, then given, before the outcome', async () => {
    const tenant = await createTenant();
    const running = back.reconciler().reconcile(reconcileJob(tenant.rootKey));
    const approval = await eventually(
      async () => {
        const root = await back.plugin.findRoot(tenant.rootKey);
        const jobId = (root?.last_run as { awx_job_id?: number } | null)?.awx_job_id;
        if (root?.status !== 'awaiting_approval' || !jobId) return undefined;
        return (await back.awx.client.approvalsOfWorkflowJob(jobId)).find((a) => a.status === 'pending');
      },
      'a pending approval',
      300_000,
    );
    // While it waits, the run record already shows the question.
    const [waiting] = await back.plugin.listRuns(tenant.rootKey);
    expect(linesOf(waiting).map((l) => l.message)).toContain(
      'approval requested: the workflow waits on its approval node',
    );
    await back.awx.client.approve(approval.id as number);
    await running;

    const [run] = await back.plugin.listRuns(tenant.rootKey);
    const messages = linesOf(run).map((l) => l.message);
    const jobId = run?.awx_job_id as number;
    const asked = messages.indexOf('approval requested: the workflow waits on its approval node');
    const given = messages.indexOf('approval given: the workflow goes on');
    expect(messages[2]).toBe(
      `launched AWX workflow job template ${kindTemplateIds().approval}: workflow job ${jobId}`,
    );
    expect(asked).toBeGreaterThan(2);
    expect(given).toBeGreaterThan(asked);
    expect(messages[messages.length - 1]).toBe(`succeeded: AWX workflow job ${jobId} successful`);
  }, 600_000);
});
