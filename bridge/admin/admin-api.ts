/**
 * The admin API, behind Keycloak (docs/decisions/0051): each route needs a realm role — `viewer` to
 * read, `operator` to override (reconcile, freeze, resume, sweep), `admin` for everything — checked
 * on an OIDC access token (core/auth/bearer.ts); the shared admin token only while break-glass is
 * switched on, and then every use is audited (`admin.break_glass_used`) and logged at warn. Every
 * override is audited with the person who asked (the token's preferred_username, its sub in the
 * metadata), not a service name. What it does: a root's state from NetBox,
 * a manual reconcile (an intent with cause `manual`), and freeze/resume — per root on the root in
 * NetBox, globally on `unicop.control`. A reason is required for every override; every override is
 * audited. Resuming a root emits an intent with cause `resume`, so what accumulated while it was
 * frozen is reconciled once. A sweep asked for here is queued for the workers' sweeper
 * (core/control/sweep-requests.ts) and its report read back. Every acting route (POST) honours an
 * `Idempotency-Key` header: a retried request acts once (bridge/admin/idempotency.ts). `GET /status`
 * (`?root=KEY`) is the reading `unicop status --json` prints (core/status/why-it-waits.ts).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Principal } from '../../core/auth/access-token.js';
import { admit, type BearerCheck } from '../../core/auth/bearer.js';
import type { Role } from '../../core/auth/roles.js';
import { type Clock, systemClock } from '../../core/clock.js';
import { configDefaults } from '../../core/config.js';
import type { FreezeView } from '../../core/control/freeze-view.js';
import { requestSweep, sweepRequestState } from '../../core/control/sweep-requests.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import type { AuditAction } from '../../core/events/audit.js';
import { cloudEvent, type EventData, eventTypes, rootKeySchema } from '../../core/events/catalogue.js';
import { type IntentMessage, intentMessage } from '../../core/events/intent.js';
import { uuidv7 } from '../../core/ids.js';
import { NetboxUnavailableError, type PluginClient, type PluginRoot } from '../../core/plugin/client.js';
import type { PipelineStatus } from '../../core/status/why-it-waits.js';
import { type AuditTrail, auditMessage, bridgeSource } from '../audit.js';
import { parseJsonBody, readRawBody } from '../http/body.js';
import { HttpError, NotFoundError, ServiceUnavailableError, ValidationError } from '../http/errors.js';
import type { Handler, Reply, RequestContext, Route } from '../http/server.js';
import { type IdempotencyStore, requestFingerprint } from './idempotency.js';

export interface AdminDeps {
  /** Who may call: Keycloak's tokens, and the shared token while break-glass is on. */
  auth: BearerCheck;
  /** Where a break-glass use is logged at warn. */
  log?: Logger;
  /** Where a break-glass use is audited, without delaying the answer (the bridge's audit trail). */
  audit: AuditTrail;
  plugin: PluginClient | undefined;
  eventLog: EventLog;
  freezeView: FreezeView;
  /** Where Idempotency-Key answers are kept; without it the header is refused (503). */
  idempotency?: IdempotencyStore;
  /** Redis, for sweep requests (POST /sweep, GET /sweeps/{id}); without it they answer 503. */
  redis?: Redis;
  /** Largest request body (UNICOP_ADMIN_BODY_LIMIT_BYTES); 413 above. */
  bodyLimitBytes?: number;
  /** Dates freeze events and sweep requests; the system clock by default. */
  clock?: Clock;
  /** Which stage holds work, and where a root's newest change is (GET /status); without it 503. */
  status?: (rootKey: string | null) => Promise<PipelineStatus>;
}

/** A freeze or resume body (exported for its test). */
export const overrideBody = z.object({
  // At most 500, as the plugin's root freeze takes; NetBox's global banner takes 1000 (freeze-mirror.ts).
  reason: z.string().trim().min(3, 'a reason is required').max(500, 'at most 500 characters'),
  rootKey: rootKeySchema.optional(),
});
const reconcileBody = z.object({ reason: z.string().trim().min(1).optional() });

/**
 * The caller, holding `role` (401 with the failed check as the reason, 403 `role_required`, 503
 * `identity_provider_unavailable`: core/auth/bearer.ts `admit`); a break-glass use is logged at warn
 * and audited through the bridge's audit trail — beside the route's work, never in its way: a slow or
 * absent Kafka must not delay or lock out break-glass (a failure is logged and counted by the trail).
 */
export async function authorize(deps: AdminDeps, ctx: RequestContext, role: Role): Promise<Principal> {
  const route = `${ctx.req.method ?? ''} ${new URL(ctx.req.url ?? '/', 'http://bridge').pathname}`;
  const { principal, refusal } = await admit(ctx.req.headers.authorization, deps.auth, role, {
    route,
    peer: ctx.req.socket.remoteAddress ?? null,
    witness: {
      component: 'admin API',
      ...(deps.log ? { log: deps.log } : {}),
      record: (data) => deps.audit.record(data, 'global'),
    },
  });
  if (refusal)
    throw new HttpError(refusal.status, refusal.reason, refusal.message, { headers: refusal.headers });
  return principal;
}

function readBody(deps: AdminDeps, ctx: RequestContext): Promise<Buffer> {
  return readRawBody(ctx.req, deps.bodyLimitBytes ?? configDefaults.UNICOP_ADMIN_BODY_LIMIT_BYTES);
}

// Printable ASCII, as the IETF Idempotency-Key draft's keys (UUIDs, in practice), at most 255 long.
const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;

/**
 * An acting route: authorized, its body read once, and — with an `Idempotency-Key` header — acted
 * on once per key: the same request again gets the first answer (header `Idempotent-Replayed:
 * true`), another request under the same key 422, a request while the first is in flight 409.
 */
export function acting(
  deps: AdminDeps,
  role: Role,
  act: (ctx: RequestContext, raw: Buffer, principal: Principal) => Promise<Reply>,
): Handler {
  return async (ctx) => {
    const principal = await authorize(deps, ctx, role);
    const raw = await readBody(deps, ctx);
    const header = ctx.req.headers['idempotency-key'];
    if (header === undefined) return act(ctx, raw, principal);
    const key = Array.isArray(header) ? header.join(',') : header;
    if (!idempotencyKeyPattern.test(key)) {
      throw new ValidationError([
        { field: 'Idempotency-Key', message: 'expected 1 to 255 printable ASCII characters' },
      ]);
    }
    const store = deps.idempotency;
    if (!store) throw new ServiceUnavailableError('idempotency_unavailable', 'no idempotency store', 60);
    const fingerprint = requestFingerprint(ctx.req.method ?? '', ctx.req.url ?? '', raw);
    const held = await store.claim(key, fingerprint).catch((error: unknown) => {
      throw new ServiceUnavailableError('redis_unavailable', 'Redis is unreachable', 5, error);
    });
    if (held) {
      if (held.fingerprint !== fingerprint) {
        throw new HttpError(
          422,
          'idempotency_key_reused',
          'this Idempotency-Key was used for another request; use a new key',
        );
      }
      if (!held.answer) {
        throw new HttpError(
          409,
          'idempotency_in_flight',
          'a request with this Idempotency-Key is in flight',
          {
            headers: { 'Retry-After': '1' },
          },
        );
      }
      return { ...held.answer, headers: { 'Idempotent-Replayed': 'true' } };
    }
    let reply: Reply;
    try {
      reply = await act(ctx, raw, principal);
    } catch (error) {
      await store.release(key).catch(() => undefined);
      throw error;
    }
    if (reply.status >= 200 && reply.status < 300) {
      await store.complete(key, { fingerprint, answer: { status: reply.status, body: reply.body } });
    } else {
      await store.release(key);
    }
    return reply;
  };
}

function redisOf(deps: AdminDeps): Redis {
  if (!deps.redis) throw new ServiceUnavailableError('redis_not_configured', 'no Redis configured', 60);
  return deps.redis;
}

export function pluginOf(deps: AdminDeps): PluginClient {
  if (!deps.plugin)
    throw new ServiceUnavailableError('netbox_not_configured', 'no NetBox token configured', 60);
  return deps.plugin;
}

async function rootByKey(deps: AdminDeps, key: string): Promise<PluginRoot> {
  if (!rootKeySchema.safeParse(key).success) {
    throw new ValidationError([{ field: 'rootKey', message: 'expected "<root-kind>/<anchor-id>"' }]);
  }
  try {
    const root = await pluginOf(deps).findRoot(key);
    if (!root) throw new NotFoundError(`root ${key}`);
    return root;
  } catch (error) {
    if (error instanceof NetboxUnavailableError) {
      throw new ServiceUnavailableError('netbox_unavailable', 'NetBox is unreachable', 10, error);
    }
    throw error;
  }
}

function rootIntent(
  deps: AdminDeps,
  rootKey: string,
  kind: 'manual' | 'resume',
  principal: Principal,
): IntentMessage {
  return intentMessage(
    bridgeSource,
    rootKey,
    { kind, actor: principal.name },
    { at: (deps.clock ?? systemClock).now() },
  );
}

/** An override's audit event: the person who asked (`actor`), their subject and how they signed in. */
export function overrideAudit(
  principal: Principal,
  action: AuditAction,
  subject: string,
  reason: string,
  extra: Record<string, string | number> = {},
) {
  return auditMessage(
    {
      action,
      actor: principal.name,
      subjectType: subject === 'global' ? 'automation' : 'root',
      subjectId: subject,
      outcome: 'ok',
      reason,
      correlation: extra,
      metadata: { actorSubject: principal.subject, authenticatedBy: principal.via },
    },
    subject,
  );
}

export async function append(deps: AdminDeps, messages: EventLogMessage[]): Promise<void> {
  try {
    await deps.eventLog.append(messages);
  } catch (error) {
    throw new ServiceUnavailableError('event_log_unavailable', 'Kafka did not acknowledge', 5, error);
  }
}

function override(deps: AdminDeps, frozen: boolean): Handler {
  return acting(deps, 'operator', async (_ctx, raw, principal) => {
    const { reason, rootKey } = parseJsonBody(raw, overrideBody);
    const action = frozen ? 'automation.frozen' : 'automation.resumed';
    if (rootKey) {
      const root = await rootByKey(deps, rootKey);
      const updated = await pluginOf(deps).setFrozen(root.id, frozen, reason);
      const messages = [overrideAudit(principal, action, rootKey, reason)];
      let intentId: string | null = null;
      if (!frozen) {
        const intent = rootIntent(deps, rootKey, 'resume', principal);
        messages.push(intent.message);
        intentId = intent.intentId;
      }
      await append(deps, messages);
      return { status: 200, body: { scope: 'root', rootKey, frozen: updated.frozen, reason, intentId } };
    }
    const data: EventData<'freeze'> = {
      scope: 'global',
      rootKey: null,
      frozen,
      reason,
      actor: principal.name,
      at: (deps.clock ?? systemClock).now().toISOString(),
    };
    const event = cloudEvent('freeze', { id: uuidv7(), source: bridgeSource, subject: 'global', data });
    await append(deps, [
      { topic: eventTypes.freeze.topic, key: 'global', value: JSON.stringify(event) },
      overrideAudit(principal, action, 'global', reason),
    ]);
    deps.freezeView.apply(data);
    return { status: 200, body: { scope: 'global', rootKey: null, frozen, reason, intentId: null } };
  });
}

/** Queues a sweep for the workers' sweeper; refused while automation is frozen globally. */
const sweepBody = z.object({ reason: z.string().trim().min(1).optional() });
function sweep(deps: AdminDeps): Handler {
  return acting(deps, 'operator', async (_ctx, raw, principal) => {
    const { reason } = parseJsonBody(raw, sweepBody);
    if (deps.freezeView.globalState()?.frozen) {
      throw new HttpError(
        409,
        'globally_frozen',
        'automation is frozen globally: the sweeper sweeps nothing',
      );
    }
    const requestId = uuidv7();
    const at = (deps.clock ?? systemClock).now();
    await requestSweep(redisOf(deps), requestId, at).catch((error: unknown) => {
      throw new ServiceUnavailableError('redis_unavailable', 'Redis is unreachable', 5, error);
    });
    await append(deps, [
      overrideAudit(principal, 'sweep.requested', 'global', reason ?? 'sweep requested', { requestId }),
    ]);
    return { status: 202, body: { status: 'accepted', requestId, requestedAt: at.toISOString() } };
  });
}

export function adminRoutes(deps: AdminDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/roots/:kind/:id',
      handler: async (ctx) => {
        await authorize(deps, ctx, 'viewer');
        const root = await rootByKey(deps, `${ctx.params.kind}/${ctx.params.id}`);
        return { status: 200, body: { root, globalFreeze: deps.freezeView.globalState() } };
      },
    },
    {
      method: 'POST',
      path: '/roots/:kind/:id/reconcile',
      handler: acting(deps, 'operator', async (ctx, raw, principal) => {
        const { reason } = parseJsonBody(raw, reconcileBody);
        const key = `${ctx.params.kind}/${ctx.params.id}`;
        await rootByKey(deps, key);
        const { message, intentId } = rootIntent(deps, key, 'manual', principal);
        await append(deps, [
          message,
          overrideAudit(principal, 'intent.manual', key, reason ?? 'manual reconcile', { intentId }),
        ]);
        return { status: 202, body: { status: 'accepted', intentId } };
      }),
    },
    { method: 'POST', path: '/freeze', handler: override(deps, true) },
    { method: 'POST', path: '/resume', handler: override(deps, false) },
    { method: 'POST', path: '/sweep', handler: sweep(deps) },
    {
      method: 'GET',
      path: '/sweeps/:id',
      handler: async (ctx) => {
        await authorize(deps, ctx, 'viewer');
        const state = await sweepRequestState(redisOf(deps), ctx.params.id ?? '').catch((error: unknown) => {
          throw new ServiceUnavailableError('redis_unavailable', 'Redis is unreachable', 5, error);
        });
        if (!state) throw new NotFoundError(`sweep request ${ctx.params.id}`);
        return { status: 200, body: state };
      },
    },
    {
      method: 'GET',
      path: '/status',
      handler: async (ctx) => {
        await authorize(deps, ctx, 'viewer');
        const rootKey = new URL(ctx.req.url ?? '/', 'http://bridge').searchParams.get('root');
        if (rootKey !== null && !rootKeySchema.safeParse(rootKey).success) {
          throw new ValidationError([{ field: 'root', message: 'expected "<root-kind>/<anchor-id>"' }]);
        }
        if (!deps.status) {
          throw new ServiceUnavailableError('status_not_configured', 'no status sources configured', 60);
        }
        return { status: 200, body: await deps.status(rootKey) };
      },
    },
    {
      method: 'GET',
      path: '/freeze',
      handler: async (ctx) => {
        await authorize(deps, ctx, 'viewer');
        const state = deps.freezeView.globalState();
        return { status: 200, body: { frozen: state?.frozen ?? false, state } };
      },
    },
  ];
}
