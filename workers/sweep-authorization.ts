/**
 * Who may ask the workers for a sweep (`POST /sweep` on the metrics listener): the same check as the
 * admin API's (core/auth/bearer.ts, decision 0051) — a Keycloak access token holding `operator`
 * (or `admin`), or the shared admin token while break-glass is on, audited as such
 * (`admin.break_glass_used`) and logged at warn. The answer is a refusal to send, or null to go on.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { InvalidTokenError, KeysUnavailableError } from '../core/auth/access-token.js';
import { AccessDeniedError, authenticate, type BearerCheck, requireRole } from '../core/auth/bearer.js';
import type { EventLog } from '../core/event-log/port.js';
import { auditMessage } from '../core/events/audit.js';

export interface SweepRefusal {
  status: 401 | 403 | 503;
  headers: Record<string, string>;
  body: { error: string; reason: string };
}

export async function authorizeSweep(
  req: IncomingMessage,
  deps: { check: BearerCheck; eventLog: EventLog; log: Logger },
): Promise<SweepRefusal | null> {
  try {
    const principal = await authenticate(req.headers.authorization, deps.check);
    requireRole(principal, 'operator');
    if (principal.via === 'break-glass') {
      deps.log.warn(
        { route: 'POST /sweep', peer: req.socket.remoteAddress },
        'workers: break-glass token used',
      );
      const event = auditMessage(
        'unicop/workers',
        {
          action: 'admin.break_glass_used',
          actor: 'break-glass',
          subjectType: 'automation',
          subjectId: 'global',
          outcome: 'ok',
          reason: 'shared admin token used for POST /sweep (workers)',
          correlation: {},
          metadata: { route: 'POST /sweep', peer: req.socket.remoteAddress ?? null },
        },
        'global',
      );
      await deps.eventLog.append([event]).catch((error: unknown) => {
        deps.log.error({ err: error }, 'workers: break-glass use could not be audited');
      });
    }
    return null;
  } catch (error) {
    if (error instanceof InvalidTokenError) {
      return {
        status: 401,
        headers: { 'WWW-Authenticate': 'Bearer' },
        body: { error: error.message, reason: error.reason },
      };
    }
    if (error instanceof AccessDeniedError) {
      return { status: 403, headers: {}, body: { error: error.message, reason: 'role_required' } };
    }
    if (error instanceof KeysUnavailableError) {
      return {
        status: 503,
        headers: { 'Retry-After': '5' },
        body: { error: error.message, reason: 'identity_provider_unavailable' },
      };
    }
    throw error;
  }
}
