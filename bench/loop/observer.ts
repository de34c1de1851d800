/**
 * What the loop bench sees on Kafka: a consumer of unicop.intents, unicop.outcomes and
 * unicop.audit from their current end, keeping what concerns the bench's roots, and the freeze
 * view its dispatchers consult.
 */
import { randomUUID } from 'node:crypto';
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { readStackEnv } from '../../core/config.js';
import { FreezeView } from '../../core/control/freeze-view.js';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { type EventData, topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { positionGroupAtEnd } from '../../test/support/kafka.js';
import { reconcilerSource } from '../../workers/reconciler/scope.js';
import { sleep } from '../support.js';

export interface SeenOutcome {
  receivedAt: number;
  data: EventData<'outcome'>;
}

export interface SeenAudit {
  source: string;
  data: EventData<'audit'>;
}

/** Where the observer stood when a scenario began: what it saw afterwards is the scenario's. */
export interface ObserverMark {
  audit: number;
  foreign: number;
}

/**
 * A consumer from the current end of intents, outcomes and audit, keeping what concerns the bench's
 * roots. Intents the bench did not append (`foreignIntents`) and reconciler audit events from
 * holders that are not the bench's show another process working on the same roots.
 */
export class LoopObserver {
  readonly outcomes: SeenOutcome[] = [];
  /** The same outcomes by the intent id they answer. */
  readonly outcomeByIntent = new Map<string, SeenOutcome>();
  readonly audit: SeenAudit[] = [];
  readonly foreignIntents: { source: string; kind: string }[] = [];
  /** Intent ids the bench appended. */
  readonly mine = new Set<string>();
  /** Lease holder names of the bench's reconcilers. */
  readonly holders = new Set<string>();
  private consumer: Consumer | undefined;

  constructor(
    private readonly kafka: Kafka,
    readonly roots: Set<string>,
  ) {}

  async start(): Promise<void> {
    const groupId = `bench-loop-observer-${randomUUID()}`;
    const watched = [topics.intents, topics.outcomes, topics.audit];
    for (const topic of watched) await positionGroupAtEnd(this.kafka, groupId, topic);
    this.consumer = this.kafka.consumer({ groupId, maxWaitTimeInMs: 50 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: watched });
    await this.consumer.run({
      eachMessage: async ({ topic, message }) => {
        const key = message.key?.toString() ?? '';
        if (!this.roots.has(key)) return;
        const event = JSON.parse(String(message.value)) as { source: string; data: unknown };
        if (topic === topics.outcomes) {
          const outcome = { receivedAt: Date.now(), data: event.data as EventData<'outcome'> };
          this.outcomes.push(outcome);
          if (outcome.data.intentId) this.outcomeByIntent.set(outcome.data.intentId, outcome);
        } else if (topic === topics.audit) {
          this.audit.push({ source: event.source, data: event.data as EventData<'audit'> });
        } else {
          const intent = event.data as EventData<'intent'>;
          if (!this.mine.has(intent.intentId)) {
            this.foreignIntents.push({ source: event.source, kind: intent.cause.kind });
          }
        }
      },
    });
  }

  /** Reconciler audit events for the bench's roots written by a holder that is not the bench's. */
  foreignReconcilerActions(from = 0): SeenAudit[] {
    return this.audit
      .slice(from)
      .filter((a) => a.source === reconcilerSource && !this.holders.has(a.data.actor));
  }

  /** Where the observer stands now. */
  mark(): ObserverMark {
    return { audit: this.audit.length, foreign: this.foreignIntents.length };
  }

  /** Intents not from the bench and reconciler actions not from its holders, since the mark. */
  foreignSince(from: ObserverMark): number {
    return this.foreignIntents.length - from.foreign + this.foreignReconcilerActions(from.audit).length;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

/** The observer and the freeze view a bench needs on Kafka, for the given roots. */
export async function watch(roots: string[]) {
  const env = readStackEnv();
  const kafka = new Kafka({
    clientId: `bench-loop-${process.pid}`,
    brokers: env.UNICOP_KAFKA_BROKERS?.split(',') ?? [],
    logLevel: logLevel.NOTHING,
  });
  const observer = new LoopObserver(kafka, new Set(roots));
  await observer.start();
  const freezeView = new FreezeView(
    new KafkaEventStream(
      kafka,
      { topic: topics.control, groupId: `bench-loop-control-${randomUUID()}` },
      createLogger('bench-loop', 'silent'),
    ),
  );
  await freezeView.start();
  await sleep(2000); // the control topic is read from its start: a global freeze would hold every intent
  return {
    observer,
    freezeView,
    frozen: freezeView.globalState()?.frozen === true,
    stop: async () => {
      await observer.stop();
      await freezeView.stop();
    },
  };
}
