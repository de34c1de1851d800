/**
 * The bridge's audit trail on `unicop.audit`. Audit events that accompany a change are appended in
 * the same batch as the change; audit events about refused requests are appended on their own and
 * must never delay or change the answer, so their failures are logged and counted, not thrown.
 * Refusals are also rate-limited per source (bridge/ingress/refusal-budget.ts): beyond a source's
 * budget they are counted and written as one `webhook.refusals_suppressed` summary per source and
 * interval, so a flood of bad requests cannot flood Kafka (decision 0049).
 */
import type { Logger } from 'pino';
import type { EventLog, EventLogMessage } from '../core/event-log/port.js';
import { type AuditData, auditMessage as sourcedAuditMessage } from '../core/events/audit.js';
import type { RefusalBudget } from './ingress/refusal-budget.js';

export const bridgeSource = 'unicop/bridge';

export function auditMessage(data: AuditData, key: string): EventLogMessage {
  return sourcedAuditMessage(bridgeSource, data, key);
}

export interface RefusalLimit {
  budget: RefusalBudget;
  /** How often the suppressed refusals are summarised (and once more when the trail closes). */
  summaryEveryMs: number;
  /** Counts one suppressed refusal (a metric). */
  onSuppressed: () => void;
}

export class AuditTrail {
  private readonly pending = new Set<Promise<void>>();
  private readonly summaries: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: EventLog,
    private readonly logger: Logger,
    private readonly onFailure: () => void = () => undefined,
    private readonly refusals?: RefusalLimit,
  ) {
    if (refusals) this.summaries = setInterval(() => this.summarise(), refusals.summaryEveryMs).unref();
  }

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

  /**
   * Records a refusal of a request from `source` (the peer's address) if the source's budget allows;
   * otherwise counts it for the source's next summary. True when the event was recorded.
   */
  recordRefusal(source: string, data: AuditData, key: string): boolean {
    if (this.refusals && !this.refusals.budget.take(source, `${data.action}:${data.reason ?? ''}`)) {
      this.refusals.onSuppressed();
      return false;
    }
    this.record(data, key);
    return true;
  }

  /** One `webhook.refusals_suppressed` event per source whose refusals were counted since the last one. */
  summarise(): void {
    for (const s of this.refusals?.budget.drain() ?? []) {
      this.record(
        {
          action: 'webhook.refusals_suppressed',
          actor: 'unicop-bridge',
          subjectType: 'source',
          subjectId: s.source,
          outcome: 'rejected',
          reason: `${s.count} refusals suppressed from source ${s.source}`,
          correlation: {},
          metadata: { suppressed: s.count, byReason: s.byReason, since: s.since },
        },
        `source/${s.source}`,
      );
      this.logger.warn({ source: s.source, suppressed: s.count }, 'refusal audit events suppressed');
    }
  }

  /** Waits for every event recorded so far: a bridge that stops writes them before its producer closes. */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  /** Stops the summaries, writes the last one and waits for every event recorded. */
  async close(): Promise<void> {
    clearInterval(this.summaries);
    this.summarise();
    await this.flush();
  }
}
