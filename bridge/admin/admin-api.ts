/**
 * The admin API (bearer token from configuration; OIDC comes later): a root's state from NetBox,
 * a manual reconcile (an intent with cause `manual`), and freeze/resume — per root on the root in
 * NetBox, globally on `unicop.control`. A reason is required for every override; every override is
 * audited. Resuming a root emits an intent with cause `resume`, so what accumulated while it was
 * frozen is reconciled once.
 */
import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { FreezeView } from '../../core/control/freeze-view.js';
import type { EventLog, EventLogMessage } from '../../core/event-log/port.js';
import type { AuditAction } from '../../core/events/audit.js';
import { cloudEvent, type EventData, eventTypes, rootKeySchema } from '../../core/events/catalogue.js';
import { type IntentMessage, intentMessage } from '../../core/events/intent.js';
import { uuidv7 } from '../../core/ids.js';
import { NetboxUnavailableError, type PluginClient, type PluginRoot } from '../../core/plugin/client.js';
import { auditMessage, bridgeSource } from '../audit.js';
import { parseJsonBody, readRawBody } from '../http/body.js';
import {
  NotFoundError,
  ServiceUnavailableError,
  UnauthorizedError,
  ValidationError,
} from '../http/errors.js';
import type { Handler, RequestContext, Route } from '../http/server.js';

export interface AdminDeps {
  token: string | undefined;
  plugin: PluginClient | undefined;
  eventLog: EventLog;
  freezeView: FreezeView;
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

async function body<T>(ctx: RequestContext, schema: z.ZodType<T>): Promise<T> {
  return parseJsonBody(await readRawBody(ctx.req, 64 * 1024), schema);
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

function rootIntent(rootKey: string, kind: 'manual' | 'resume'): IntentMessage {
  return intentMessage(bridgeSource, rootKey, { kind, actor });
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
  return async (ctx) => {
    authorize(deps, ctx);
    const { reason, rootKey } = await body(ctx, overrideBody);
    const action = frozen ? 'automation.frozen' : 'automation.resumed';
    if (rootKey) {
      const root = await rootByKey(deps, rootKey);
      const updated = await pluginOf(deps).setFrozen(root.id, frozen, reason);
      const messages = [overrideAudit(action, rootKey, reason)];
      let intentId: string | null = null;
      if (!frozen) {
        const intent = rootIntent(rootKey, 'resume');
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
      at: new Date().toISOString(),
    };
    const event = cloudEvent('freeze', { id: uuidv7(), source: bridgeSource, subject: 'global', data });
    await append(deps, [
      { topic: eventTypes.freeze.topic, key: 'global', value: JSON.stringify(event) },
      overrideAudit(action, 'global', reason),
    ]);
    deps.freezeView.apply(data);
    return { status: 200, body: { scope: 'global', rootKey: null, frozen, reason, intentId: null } };
  };
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
      handler: async (ctx) => {
        authorize(deps, ctx);
        const { reason } = await body(ctx, reconcileBody);
        const key = `${ctx.params.kind}/${ctx.params.id}`;
        await rootByKey(deps, key);
        const { message, intentId } = rootIntent(key, 'manual');
        await append(deps, [
          message,
          overrideAudit('intent.manual', key, reason ?? 'manual reconcile', { intentId }),
        ]);
        return { status: 202, body: { status: 'accepted', intentId } };
      },
    },
    { method: 'POST', path: '/freeze', handler: override(deps, true) },
    { method: 'POST', path: '/resume', handler: override(deps, false) },
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
