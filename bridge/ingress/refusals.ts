/**
 * What every webhook endpoint does around its own work: count what arrives, and count, log and
 * audit every refusal by reason — without the body, which may be forged or carry secrets. Every
 * refusal is counted (`unicop_webhooks_rejected_total{source,reason}`); its audit event and log
 * line are rate-limited per peer address (AuditTrail.recordRefusal): beyond a peer's budget the
 * refusal is counted in `unicop_refusal_audits_suppressed_total` and summarised instead.
 */
import type { AuditTrail } from '../audit.js';
import { HttpError } from '../http/errors.js';
import type { Handler } from '../http/server.js';
import type { BridgeMetrics } from '../metrics.js';

export function auditedWebhook(
  source: 'netbox' | 'awx',
  deps: { audit: AuditTrail; metrics: BridgeMetrics },
  handler: Handler,
): Handler {
  const stage = source === 'netbox' ? 'bridge_ingest' : 'bridge_awx';
  return async (ctx) => {
    // Read now: once the connection is gone (a client that stopped sending) the socket is null.
    const peer = ctx.req.socket?.remoteAddress ?? 'unknown';
    deps.metrics.received.inc({ source });
    const answered = deps.metrics.stageDuration.startTimer({ stage });
    try {
      const reply = await handler(ctx);
      deps.metrics.stageItems.inc({ stage, outcome: 'ok' });
      return reply;
    } catch (error) {
      const outcome = error instanceof HttpError && error.statusCode < 500 ? 'rejected' : 'error';
      deps.metrics.stageItems.inc({ stage, outcome });
      if (error instanceof HttpError) {
        deps.metrics.rejected.inc({ source, reason: error.reason });
        const recorded = deps.audit.recordRefusal(
          peer,
          {
            action: source === 'netbox' ? 'webhook.rejected' : 'awx_notification.rejected',
            actor: source,
            subjectType: 'webhook',
            subjectId: ctx.requestId,
            outcome: error.statusCode === 503 ? 'failed' : 'rejected',
            reason: error.reason,
            correlation: { bridgeRequestId: ctx.requestId },
            metadata: {
              status: error.statusCode,
              peer,
              ...(error.details.issues ? { issues: error.details.issues } : {}),
            },
          },
          `webhook/${ctx.requestId}`,
        );
        const line = { status: error.statusCode, reason: error.reason, source, peer };
        if (recorded) ctx.log.info(line, 'webhook refused');
        else ctx.log.debug(line, 'webhook refused (audit event suppressed: over the peer budget)');
      }
      throw error;
    } finally {
      answered();
    }
  };
}
