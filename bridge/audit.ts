/**
 * The bridge's audit trail on `unicop.audit`. Audit events that accompany a change are appended in
 * the same batch as the change; audit events about refused requests are appended on their own and
 * must never delay or change the answer, so their failures are logged and counted, not thrown.
 */
import type { Logger } from 'pino';
import type { EventLog, EventLogMessage } from '../core/event-log/port.js';
import { type AuditData, auditMessage as sourcedAuditMessage } from '../core/events/audit.js';

export const bridgeSource = 'unicop/bridge';

export function auditMessage(data: AuditData, key: string): EventLogMessage {
  return sourcedAuditMessage(bridgeSource, data, key);
}

export class AuditTrail {
  constructor(
    private readonly log: EventLog,
    private readonly logger: Logger,
    private readonly onFailure: () => void = () => undefined,
  ) {}

  private readonly pending = new Set<Promise<void>>();

  /** Appends without waiting; a failure is logged (without the event's data) and counted. */
  record(data: AuditData, key: string): void {
    const appended: Promise<void> = this.log
      .append([auditMessage(data, key)])
      .catch((error: unknown) => {
        this.onFailure();
        this.logger.warn({ err: error, action: data.action }, 'audit event could not be written');
      })
      .finally(() => this.pending.delete(appended));
    this.pending.add(appended);
  }

  /** Waits for every event recorded so far: a bridge that stops writes them before its producer closes. */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
