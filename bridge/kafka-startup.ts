/**
 * The bridge listens at once and connects to Kafka behind it (decision 0036). Until Kafka is
 * connected — the producer connected and unicop.control replayed into the freeze view — the bridge
 * is not ready: /readyz says `kafka: false`, and every append the ingress makes is refused with
 * EventLogUnavailableError, which the webhook endpoints answer 503 `event_log_unavailable` with
 * Retry-After (NetBox retries it: RQ_RETRY_MAX), audited like any refusal. Nothing is acknowledged
 * that is not durable. Audit events written meanwhile wait for the connection instead of failing.
 */
import type { Logger } from 'pino';
import type { FreezeView } from '../core/control/freeze-view.js';
import { type EventLog, type EventLogMessage, EventLogUnavailableError } from '../core/event-log/port.js';

export class BridgeStoppedError extends Error {
  override readonly name = 'BridgeStoppedError';
  constructor() {
    super('the bridge stopped before Kafka was connected');
  }
}

export class KafkaStartup {
  /** Resolves once Kafka is connected; rejects with BridgeStoppedError if stopped first. */
  readonly ready: Promise<void>;
  /** The event log for the ingress and the admin API: refuses appends until Kafka is connected. */
  readonly ingressLog: EventLog;
  /** The event log for the audit trail: holds appends until Kafka is connected, then writes them. */
  readonly auditLog: EventLog;
  private connected = false;
  private stopped = false;
  private abandon: ((error: Error) => void) | undefined;

  constructor(
    private readonly eventLog: EventLog,
    private readonly freezeView: FreezeView,
    private readonly log: Logger,
    /** How long to wait before trying again after Kafka could not be reached. */
    private readonly retryMs = 1_000,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.abandon = reject;
      void this.connect().then(resolve, reject);
    });
    this.ready.catch(() => undefined); // a caller that never awaits it must not see an unhandled rejection
    const startup = this;
    this.ingressLog = {
      append(messages: EventLogMessage[]) {
        if (!startup.connected) {
          return Promise.reject(
            new EventLogUnavailableError('Kafka is not connected yet: the bridge is starting'),
          );
        }
        return eventLog.append(messages);
      },
      healthy: () => (this.connected ? eventLog.healthy() : Promise.resolve(false)),
      close: () => eventLog.close(),
    };
    this.auditLog = {
      append: (messages) => this.ready.then(() => eventLog.append(messages)),
      healthy: () => this.ingressLog.healthy(),
      close: () => eventLog.close(),
    };
  }

  isConnected(): boolean {
    return this.connected;
  }

  /** Stops trying to connect (the bridge is stopping); appends waiting for the connection fail. */
  stop(): void {
    this.stopped = true;
    this.abandon?.(new BridgeStoppedError());
  }

  private async connect(): Promise<void> {
    const began = Date.now();
    while (!(await this.eventLog.healthy())) {
      this.log.warn({ retryInMs: this.retryMs }, 'Kafka not reachable yet; the bridge answers 503 meanwhile');
      await this.pause();
    }
    for (;;) {
      try {
        await this.freezeView.start();
        break;
      } catch (error) {
        if (this.stopped) throw new BridgeStoppedError();
        this.log.warn(
          { err: error, retryInMs: this.retryMs },
          'unicop.control not replayed yet; trying again',
        );
        await this.pause();
      }
    }
    this.connected = true;
    this.log.info({ ms: Date.now() - began }, 'Kafka connected: the bridge is ready');
  }

  private async pause(): Promise<void> {
    if (this.stopped) throw new BridgeStoppedError();
    await new Promise((resolve) => setTimeout(resolve, this.retryMs).unref());
    if (this.stopped) throw new BridgeStoppedError();
  }
}
