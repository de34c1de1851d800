/**
 * A run's two launches on one template (docs/decisions/0066): the apply job and the verify job carry the
 * same run id, told apart by `unicop.phase: verify`. The client's launch looks for an earlier job of the
 * run first (decision 0011); with the phase in that identity, each launch finds only its own job — a
 * verify launch never takes the apply job for its verification (which would "pass" without checking
 * anything), an apply launch never takes the verify job, and launching either again adopts it. Against
 * the AWX double, which keeps each job's extra vars as AWX does (test/workers/verify.test.ts runs the
 * whole flow, crash cases included, on real AWX).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '../support/stack.js';
import { fixtureProject, startTestDouble, type TestDouble, unicopVars } from './support.js';

describe('AWX client: a run launches its apply job and its verify job on one template', () => {
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
          allow_simultaneous: true,
        },
      ],
    });
  });
  afterAll(async () => {
    await awx?.stop();
  });

  it('each launch finds only its own phase: two jobs, and launching either again adopts it', async () => {
    const runId = uniqueName('run');
    const since = new Date(Date.now() - 60_000);
    const apply = await awx.client.launchJobTemplate(1, { unicop: unicopVars('site/1', runId, 3), since });
    expect(apply.adopted).toBe(false);

    const verify = await awx.client.launchJobTemplate(1, {
      unicop: { ...unicopVars('site/1', runId, 3), phase: 'verify' },
      since,
    });
    expect(verify.adopted).toBe(false);
    expect(verify.job.id).not.toBe(apply.job.id);
    expect(JSON.parse(verify.job.extra_vars).unicop).toMatchObject({ run_id: runId, phase: 'verify' });

    const verifyAgain = await awx.client.launchJobTemplate(1, {
      unicop: { ...unicopVars('site/1', runId, 3), phase: 'verify' },
      since,
    });
    expect(verifyAgain).toMatchObject({ adopted: true, job: { id: verify.job.id } });
    const applyAgain = await awx.client.launchJobTemplate(1, {
      unicop: unicopVars('site/1', runId, 3),
      since,
    });
    expect(applyAgain).toMatchObject({ adopted: true, job: { id: apply.job.id } });

    expect((await awx.client.findJobByRunId(1, runId, since))?.id).toBe(apply.job.id);
    expect((await awx.client.findJobByRunId(1, runId, since, 'verify'))?.id).toBe(verify.job.id);
    expect((await awx.doubleJobs()).filter((j) => j.run_id === runId)).toHaveLength(2);
  });
});
