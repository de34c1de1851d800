/**
 * The admin API (bearer token from configuration; OIDC comes later): a root's state from NetBox,
 * a manual reconcile (an intent with cause `manual`), and freeze/resume — per root on the root in
 * NetBox, globally on `unicop.control`. A reason is required for every override; every override is
 * audited. Resuming a root emits an intent with cause `resume`, so what accumulated while it was
 * frozen is reconciled once. A sweep asked for here is queued for the workers' sweeper
 * (core/control/sweep-requests.ts) and its report read back. Every acting route (POST) honours an
 * `Idempotency-Key` header: a retried request acts once (bridge/admin/idempotency.ts). `GET /status`
 * (`?root=KEY`) is the reading `unicop status --json` prints (core/status/why-it-waits.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
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
import { auditMessage, bridgeSource } from '../audit.js';
import { parseJsonBody, readRawBody } from '../http/body.js';
import {
  HttpError,
  NotFoundError,
  ServiceUnavailableError,
  UnauthorizedError,
  ValidationError,
} from '../http/errors.js';
import type { Handler, Reply, RequestContext, Route } from '../http/server.js';
import { type IdempotencyStore, requestFingerprint } from './idempotency.js';

export interface AdminDeps {
  token: string | undefined;
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

const actor = 'admin-api';
const overrideBody = z.object({
  reason: z.string().trim().min(3, 'a reason is required'),
  rootKey: rootKeySchema.optional(),
});
const reconcileBody = z.object({ reason: z.string().trim().min(1).optional() });

function authorize(deps: AdminDeps, ctx: RequestContext): void {
  const header = ctx.req.headers.authorization;
  const given =
    typeof header === 'string' && header.startsWith('Bearer ') ? Buffer.from(header.slice(7)) : null;
  const expected = deps.token ? Buffer.from(deps.token) : null;
  if (!given || !expected || given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new UnauthorizedError('invalid_admin_token', 'a valid admin bearer token is required');
  }
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
function acting(deps: AdminDeps, act: (ctx: RequestContext, raw: Buffer) => Promise<Reply>): Handler {
  return async (ctx) => {
    authorize(deps, ctx);
    const raw = await readBody(deps, ctx);
    const header = ctx.req.headers['idempotency-key'];
    if (header === undefined) return act(ctx, raw);
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
      reply = await act(ctx, raw);
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

function pluginOf(deps: AdminDeps): PluginClient {
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

function rootIntent(deps: AdminDeps, rootKey: string, kind: 'manual' | 'resume'): IntentMessage {
  return intentMessage(bridgeSource, rootKey, { kind, actor }, { at: (deps.clock ?? systemClock).now() });
}

function overrideAudit(
  action: AuditAction,
  subject: string,
  reason: string,
  extra: Record<string, string> = {},
) {
  return auditMessage(
    {
      action,
      actor,
      subjectType: subject === 'global' ? 'automation' : 'root',
      subjectId: subject,
      outcome: 'ok',
      reason,
      correlation: extra,
      metadata: {},
    },
    subject,
  );
}

async function append(deps: AdminDeps, messages: EventLogMessage[]): Promise<void> {
  try {
    await deps.eventLog.append(messages);
  } catch (error) {
    throw new ServiceUnavailableError('event_log_unavailable', 'Kafka did not acknowledge', 5, error);
  }
}

function override(deps: AdminDeps, frozen: boolean): Handler {
  return acting(deps, async (_ctx, raw) => {
    const { reason, rootKey } = parseJsonBody(raw, overrideBody);
    const action = frozen ? 'automation.frozen' : 'automation.resumed';
    if (rootKey) {
      const root = await rootByKey(deps, rootKey);
      const updated = await pluginOf(deps).setFrozen(root.id, frozen, reason);
      const messages = [overrideAudit(action, rootKey, reason)];
      let intentId: string | null = null;
      if (!frozen) {
        const intent = rootIntent(deps, rootKey, 'resume');
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
      actor,
      at: (deps.clock ?? systemClock).now().toISOString(),
    };
    const event = cloudEvent('freeze', { id: uuidv7(), source: bridgeSource, subject: 'global', data });
    await append(deps, [
      { topic: eventTypes.freeze.topic, key: 'global', value: JSON.stringify(event) },
      overrideAudit(action, 'global', reason),
    ]);
    deps.freezeView.apply(data);
    return { status: 200, body: { scope: 'global', rootKey: null, frozen, reason, intentId: null } };
  });
}

/** Queues a sweep for the workers' sweeper; refused while automation is frozen globally. */
const sweepBody = z.object({ reason: z.string().trim().min(1).optional() });
function sweep(deps: AdminDeps): Handler {
  return acting(deps, async (_ctx, raw) => {
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
      overrideAudit('sweep.requested', 'global', reason ?? 'sweep requested', { requestId }),
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
        authorize(deps, ctx);
        const root = await rootByKey(deps, `${ctx.params.kind}/${ctx.params.id}`);
        return { status: 200, body: { root, globalFreeze: deps.freezeView.globalState() } };
      },
    },
    {
      method: 'POST',
      path: '/roots/:kind/:id/reconcile',
      handler: acting(deps, async (ctx, raw) => {
        const { reason } = parseJsonBody(raw, reconcileBody);
        const key = `${ctx.params.kind}/${ctx.params.id}`;
        await rootByKey(deps, key);
        const { message, intentId } = rootIntent(deps, key, 'manual');
        await append(deps, [
          message,
          overrideAudit('intent.manual', key, reason ?? 'manual reconcile', { intentId }),
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
        authorize(deps, ctx);
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
        authorize(deps, ctx);
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
        authorize(deps, ctx);
        const state = deps.freezeView.globalState();
        return { status: 200, body: { frozen: state?.frozen ?? false, state } };
      },
    },
  ];
}
