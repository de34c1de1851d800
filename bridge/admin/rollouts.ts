/**
 * The rollout routes of the admin API (docs/decisions/0061): the gradual rollouts NetBox holds, and a
 * person's resume or abort of one. The plugin decides under the rollout's row lock
 * (netbox-plugin/unicop/rollouts.py); this route appends what the decision released — the next wave's
 * intents on unicop.intents — with the rollout event and the audit event naming the person, in one
 * append. A resume of an open rollout queues its open wave's intents again (for one lost in a crash:
 * their ids are their jobs' ids, so a queued one adds nothing).
 *
 *   GET  /rollouts[?state=open|halted|aborted|done]   viewer
 *   GET  /rollouts/{id}                               viewer
 *   POST /rollouts/{id}/resume  {reason}              operator
 *   POST /rollouts/{id}/abort   {reason}              operator
 *
 * NetBox refusing the bridge's own token (401/403: its NetBox user lacks unicop.view_rollout or
 * unicop.change_rollout) is the bridge's configuration: 502 `netbox_permission_denied` naming the
 * permission, a refused decision audited `rejected` with it (decision 0068), never a 500.
 */
import { z } from 'zod';
import { systemClock } from '../../core/clock.js';
import { NetboxUnavailableError, PluginRequestError } from '../../core/plugin/client.js';
import { stepMessages } from '../../core/rollout/events.js';
import type { RolloutState, RolloutStore } from '../../core/rollout/store.js';
import { auditMessage } from '../audit.js';
import { parseJsonBody } from '../http/body.js';
import { HttpError, NotFoundError, ServiceUnavailableError, ValidationError } from '../http/errors.js';
import type { Route } from '../http/server.js';
import { type AdminDeps, acting, append, authorize } from './admin-api.js';

export interface RolloutDeps extends AdminDeps {
  /** The plugin's rollout endpoints; without it (no NetBox token) the routes answer 503. */
  rollouts?: Pick<RolloutStore, 'get' | 'list' | 'decide'> | undefined;
}

const decisionBody = z.object({ reason: z.string().trim().min(3, 'a reason is required').max(400) });
const rolloutIdPattern = /^[A-Za-z0-9._:-]{1,100}$/;
const states: RolloutState[] = ['open', 'halted', 'aborted', 'done'];

function storeOf(deps: RolloutDeps): NonNullable<RolloutDeps['rollouts']> {
  if (!deps.rollouts)
    throw new ServiceUnavailableError('netbox_not_configured', 'no NetBox token configured', 60);
  return deps.rollouts;
}

function idOf(raw: string | undefined): string {
  const id = raw ?? '';
  if (!rolloutIdPattern.test(id)) {
    throw new ValidationError([{ field: 'id', message: 'expected a rollout id (the NetBox request id)' }]);
  }
  return id;
}

/** The plugin permission each rollout call needs (netbox-plugin/unicop/api/rollouts.py RolloutPermission). */
const permissionFor = { read: 'unicop.view_rollout', decide: 'unicop.change_rollout' } as const;

/**
 * NetBox refused the bridge's own token (401/403): the NetBox user behind UNICOP_NETBOX_TOKEN lacks the
 * plugin permission, or the token is not valid — the bridge's configuration, not the caller's request
 * and not a crash. 502 (the upstream refused), naming the permission; nothing of the token is said.
 */
export function tokenRefused(error: PluginRequestError, needed: string): HttpError {
  const said = (error.body as { detail?: unknown } | null)?.detail;
  const detail = typeof said === 'string' ? `: ${said.slice(0, 200)}` : '';
  return new HttpError(
    502,
    'netbox_permission_denied',
    `NetBox refused the bridge's token (HTTP ${error.status}${detail}); the NetBox user of UNICOP_NETBOX_TOKEN needs the permission ${needed}`,
    { cause: error },
  );
}

async function netbox<T>(call: () => Promise<T>, needed: string = permissionFor.read): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof NetboxUnavailableError) {
      throw new ServiceUnavailableError('netbox_unavailable', 'NetBox is unreachable', 10, error);
    }
    if (error instanceof PluginRequestError && (error.status === 401 || error.status === 403)) {
      throw tokenRefused(error, needed);
    }
    throw error;
  }
}

function decide(deps: RolloutDeps, decision: 'resume' | 'abort') {
  return acting(deps, 'operator', async (ctx, raw, principal) => {
    const id = idOf(ctx.params.id);
    const { reason } = parseJsonBody(raw, decisionBody);
    const audit = (outcome: 'ok' | 'rejected', why: string, correlation: Record<string, string | number>) =>
      auditMessage(
        {
          action: decision === 'resume' ? 'rollout.resumed' : 'rollout.aborted',
          actor: principal.name,
          subjectType: 'rollout',
          subjectId: id,
          outcome,
          reason: why,
          correlation: { rolloutId: id, ...correlation },
          metadata: { actorSubject: principal.subject, authenticatedBy: principal.via },
        },
        id,
      );
    let step: Awaited<ReturnType<RolloutStore['decide']>>;
    try {
      step = await netbox(
        () => storeOf(deps).decide(id, decision, principal.name, reason),
        permissionFor.decide,
      );
    } catch (error) {
      if (error instanceof HttpError && error.reason === 'netbox_permission_denied') {
        // The person's decision was not taken: audited rejected, naming the permission NetBox wants.
        await append(deps, [audit('rejected', `${reason} (not taken: ${error.message})`, { status: 502 })]);
        throw error;
      }
      if (!(error instanceof PluginRequestError)) throw error;
      // The plugin refused the person's decision (no such rollout, not live, …): audited too, with their
      // reason and the refusal (review-A #12), before the answer.
      const detail =
        (error.body as { detail?: string } | null)?.detail ??
        (error.status === 404 ? `no rollout ${id}` : `rollout ${id} refuses ${decision}`);
      await append(deps, [audit('rejected', `${reason} (refused: ${detail})`, { status: error.status })]);
      if (error.status === 404) throw new NotFoundError(`rollout ${id}`);
      if (error.status === 409) throw new HttpError(409, 'rollout_not_live', detail);
      throw error;
    }
    const rollout = step.rollout;
    if (!rollout) throw new NotFoundError(`rollout ${id}`);
    const at = (deps.clock ?? systemClock).now();
    const messages = stepMessages(
      decision === 'resume' && step.transition ? { ...step, transition: 'resumed' } : step,
      principal.name,
      at,
    );
    // A resume that opened a wave says so too (the rollout's wave_started or done, after `resumed`).
    if (decision === 'resume' && step.transition) {
      messages.push(...stepMessages({ ...step, release: [] }, 'unicop-rollout', at));
    }
    messages.push(audit('ok', reason, { wave: rollout.current_wave + 1, released: step.release.length }));
    await append(deps, messages);
    return {
      status: 200,
      body: {
        rolloutId: id,
        decision,
        by: principal.name,
        state: rollout.state,
        wave: rollout.current_wave + 1,
        waves: rollout.waves,
        counts: rollout.counts,
        released: step.release.length,
        neverLaunched: step.never_launched ?? [],
        reason: rollout.reason,
      },
    };
  });
}

export function rolloutRoutes(deps: RolloutDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/rollouts',
      handler: async (ctx) => {
        await authorize(deps, ctx, 'viewer');
        const state = new URL(ctx.req.url ?? '/', 'http://bridge').searchParams.get('state');
        if (state !== null && !states.includes(state as RolloutState)) {
          throw new ValidationError([{ field: 'state', message: `one of ${states.join(', ')}` }]);
        }
        const filter = state ? { state: state as RolloutState } : {};
        return { status: 200, body: { rollouts: await netbox(() => storeOf(deps).list(filter)) } };
      },
    },
    {
      method: 'GET',
      path: '/rollouts/:id',
      handler: async (ctx) => {
        await authorize(deps, ctx, 'viewer');
        const id = idOf(ctx.params.id);
        const rollout = await netbox(() => storeOf(deps).get(id));
        if (!rollout) throw new NotFoundError(`rollout ${id}`);
        return { status: 200, body: { rollout } };
      },
    },
    { method: 'POST', path: '/rollouts/:id/resume', handler: decide(deps, 'resume') },
    { method: 'POST', path: '/rollouts/:id/abort', handler: decide(deps, 'abort') },
  ];
}
