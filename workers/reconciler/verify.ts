/**
 * Post-run verification (docs/decisions/0066): after a run's apply job succeeded, the root's policy
 * `verify` may ask for a second AWX job that checks the target and changes nothing — the same job
 * template again with AWX `job_tags` (`{tags: "verify"}`: only the playbook's tasks with that tag run)
 * or another job template (`{template: <id>}`) — launched with the same snapshot, hash and run id as
 * the apply job (`unicop.phase: verify` tells the two launches apart), under the run's lease.
 *
 * The verify job's id is written on the run (`verify_job_id`) before anything waits on it, so a worker
 * that takes the run over after a crash follows that job — and never launches the apply again (its
 * apply job, already successful, ends at the first read). The run keeps its state while it verifies;
 * its end is the verification's: passed → `succeeded`, failed → `failed` with class `verify_failed`,
 * AWX's error, a cancel or the run timeout (one deadline for both jobs) as for any job.
 *
 * Check runs are never verified (they change nothing), nor a run whose apply job did not succeed.
 */
import { AwxLaunchUnconfirmedError } from '../../core/awx/errors.js';
import { decide } from './decide.js';
import { follow } from './follow.js';
import {
  type ActiveRun,
  audit,
  correlation,
  jobUrl,
  type Leased,
  policyOf,
  templateOf,
  viewOf,
  writeRun,
} from './scope.js';
import type { RunEnd } from './steps.js';

/** The policy's `verify` as the plugin checked it (catalogue.parse_policy): none, tags, or a template. */
export type VerifyPolicy = { tags: string } | { template: number } | null;

/** The root's verification, from its policy; anything the plugin would not have passed is none. */
export function verifyPolicyOf(policy: Record<string, unknown>): VerifyPolicy {
  const verify = policy.verify as { tags?: unknown; template?: unknown } | null | undefined;
  if (!verify || typeof verify !== 'object') return null;
  if (typeof verify.tags === 'string' && verify.tags) return { tags: verify.tags };
  if (typeof verify.template === 'number' && Number.isInteger(verify.template)) {
    return { template: verify.template };
  }
  return null;
}

/**
 * The run's end once verified: `end` itself when there is nothing to verify (a check run, an apply job
 * that did not succeed, no `verify` in the policy and no verify job recorded), else the verify job's
 * end, launched first unless the run records one already (adopted). `snapshot`: what the apply job was
 * launched with; null for an adopted run, whose apply job's own extra vars are read back from AWX.
 */
export async function verifyRun(
  scope: Leased,
  run: ActiveRun,
  end: RunEnd,
  snapshot: unknown | null,
): Promise<RunEnd> {
  if (run.mode !== 'apply' || end.state !== 'succeeded' || !run.awx) return end;
  const policy = verifyPolicyOf(policyOf(scope.root));
  if (!policy && !run.verify) return end;
  if (!run.verify) {
    const launched = await launchVerify(scope, run, policy as NonNullable<VerifyPolicy>, snapshot);
    if (launched) return { ...launched, summary: `${end.summary}; ${launched.summary}` };
  } else if (!run.verify.url) {
    run.verify = { ...run.verify, url: jobUrl(scope, 'job', run.verify.id) };
  }
  run.verifying = true;
  try {
    const followed = await follow(scope, run);
    if (followed.kind !== 'ended') throw new Error('a verify job is a job: it never waits for approval');
    return { ...followed.end, summary: `${end.summary}; ${followed.end.summary}` };
  } finally {
    run.verifying = false;
  }
}

/**
 * Launches the verify job and records its id on the run (`run.verify_launched`); the run's end instead
 * when it cannot be launched — a workflow template asked to verify by tags, or AWX refusing the launch
 * (classified as any launch: template_misconfigured, executor_unavailable). A launch whose answer was
 * lost is thrown: the job pauses, the run stays open, and the next holder's launch finds the job by
 * its run id and phase (core/awx/client.ts), so it is never doubled.
 */
async function launchVerify(
  scope: Leased,
  run: ActiveRun,
  policy: NonNullable<VerifyPolicy>,
  snapshot: unknown | null,
): Promise<RunEnd | null> {
  const { deps, root, lease, clock, settings } = scope;
  const own = templateOf(root);
  if ('tags' in policy && own.type !== 'job') {
    return {
      state: 'failed',
      failureClass: 'template_misconfigured',
      summary: `verify by tags "${policy.tags}" needs a job template; root kind ${root.kind} runs workflow template ${own.id} — name a verify template instead`,
    };
  }
  const templateId = 'tags' in policy ? (own.id as number) : policy.template;
  const unicop = {
    root: root.key,
    snapshot: snapshot ?? (await appliedSnapshot(scope, run)),
    hash: run.snapshotHash,
    fencing_token: lease.fencingToken,
    run_id: run.runId,
    phase: 'verify' as const,
  };
  let answer: { ok: true; id: number; adopted: boolean } | { ok: false; error: unknown };
  try {
    const launched = await deps.awx.launchJobTemplate(templateId, {
      unicop,
      ...('tags' in policy ? { jobTags: policy.tags } : {}),
      since: new Date(run.startedAt.getTime() - 60_000),
    });
    answer = { ok: true, id: launched.job.id as number, adopted: launched.adopted };
  } catch (error) {
    if (error instanceof AwxLaunchUnconfirmedError) throw error;
    answer = { ok: false, error };
  }
  const step = decide(viewOf(run, run.cause), { kind: 'launch', templateId, answer }, settings);
  if (step.kind === 'raise') throw step.error;
  if (step.kind === 'end') return { ...step.end, summary: `verification not launched: ${step.end.summary}` };
  if (step.kind !== 'record-launch') throw new Error(`a verify launch cannot ${step.kind}`);
  run.verify = { id: step.id, url: jobUrl(scope, 'job', step.id) };
  const how =
    'tags' in policy ? `job template ${templateId} with tags ${policy.tags}` : `job template ${templateId}`;
  const message = `apply job succeeded; verifying: launched AWX ${how}: job ${step.id}${step.adopted ? ' (an earlier attempt of this run had launched it)' : ''}`;
  run.log.add(clock.now(), 'info', message, { awx_template_id: templateId, verify_job_id: step.id });
  // Recorded before anything waits on it: a crash from here on follows this job, never relaunches.
  await writeRun(scope, run, run.state, { verify_job_id: step.id });
  await audit(scope, root.key, 'run.verify_launched', 'ok', `AWX ${how}`, {
    ...correlation(run, lease),
    awxJobId: run.awx?.id ?? null,
    verifyJobId: step.id,
  });
  return null;
}

/** The snapshot an adopted run's apply job (or workflow job) ran with: its extra vars, as AWX kept them. */
async function appliedSnapshot(scope: Leased, run: ActiveRun): Promise<unknown> {
  const applied = run.awx as NonNullable<ActiveRun['awx']>;
  const job =
    applied.kind === 'workflow_job'
      ? await scope.deps.awx.getWorkflowJob(applied.id)
      : await scope.deps.awx.getJob(applied.id);
  const vars = JSON.parse((job.extra_vars as string) || '{}') as { unicop?: { snapshot?: unknown } };
  if (vars.unicop?.snapshot === undefined) {
    throw new Error(`AWX job ${run.awx?.id} carries no unicop.snapshot to verify against`);
  }
  return vars.unicop.snapshot;
}
