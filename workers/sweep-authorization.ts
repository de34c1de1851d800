/**
 * Who may ask the workers for a sweep (`POST /sweep` on the metrics listener): the admin API's gate
 * (core/auth/bearer.ts `admit`, decisions 0051 and 0057) — a Keycloak access token holding `operator`
 * (or `admin`), or the shared admin token while break-glass is on, audited as such
 * (`admin.break_glass_used`, written beside the sweep, not awaited) and logged at warn. The answer is
 * a refusal to send, or null to go on.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { admit, type BearerCheck } from '../core/auth/bearer.js';
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
  const { refusal } = await admit(req.headers.authorization, deps.check, 'operator', {
    route: 'POST /sweep',
    peer: req.socket.remoteAddress ?? null,
    witness: {
      component: 'workers',
      log: deps.log,
      record: (data) => {
        void deps.eventLog
          .append([auditMessage('unicop/workers', data, 'global')])
          .catch((error: unknown) => {
            deps.log.error({ err: error }, 'workers: break-glass use could not be audited');
          });
      },
    },
  });
  if (!refusal) return null;
  return {
    status: refusal.status,
    headers: refusal.headers,
    body: { error: refusal.message, reason: refusal.reason },
  };
}
