/**
 * The global switch for tests, driven the way an operator drives it: POST /freeze and /resume on a
 * real bridge's admin API, which writes to the real compacted `unicop.control` topic; and freeze
 * views replaying that topic as a workers process does. The freeze is global on the shared stack
 * (every bridge and workers process on it obeys): a test holds it briefly and resumes in `finally`.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { FreezeView, type ReplayableStream } from '../../core/control/freeze-view.js';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { topics } from '../../core/events/catalogue.js';
import { eventually } from '../awx/support.js';
import { type RunningBridge, startBridge } from './bridge.js';
import { uniqueName } from './stack.js';

const adminToken = 'admin-test-token-global-switch-0123456789';

export class GlobalSwitch {
  private frozenByUs = false;

  private constructor(private readonly bridge: RunningBridge) {}

  static async start(): Promise<GlobalSwitch> {
    // The shared token with break-glass on (decision 0051): the switch is test plumbing, not a person.
    return new GlobalSwitch(
      await startBridge({ UNICOP_ADMIN_TOKEN: adminToken, UNICOP_ADMIN_BREAK_GLASS: 'true' }),
    );
  }

  freeze(reason: string): Promise<void> {
    this.frozenByUs = true;
    return this.call('/freeze', reason);
  }

  async resume(reason: string): Promise<void> {
    await this.call('/resume', reason);
    this.frozenByUs = false;
  }

  /** Resumes if this switch left automation frozen, then stops the bridge. */
  async close(): Promise<void> {
    try {
      if (this.frozenByUs) await this.resume('test teardown');
    } finally {
      await this.bridge.close();
    }
  }

  private async call(path: string, reason: string): Promise<void> {
    const res = await fetch(`${this.bridge.url}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ reason }),
    });
    if (res.status !== 200) throw new Error(`POST ${path} answered ${res.status}: ${await res.text()}`);
  }
}

/** The real control stream under a fresh group, as a workers process builds it. */
export function controlStream(kafka: Kafka, log: Logger): KafkaEventStream {
  return new KafkaEventStream(kafka, { topic: topics.control, groupId: uniqueName('control') }, log);
}

/** A freeze view over the real unicop.control, started (replayed) like a workers process's. */
export async function startControlView(kafka: Kafka, log: Logger): Promise<FreezeView> {
  const view = new FreezeView(controlStream(kafka, log));
  await view.start();
  return view;
}

/**
 * The real control stream, each batch handed on only after `delayMs`: a control topic that takes
 * long to replay (a slow broker, a long log), so a reader that does not wait for the replay shows.
 */
export function slowReplay(stream: ReplayableStream, delayMs: number): ReplayableStream {
  return {
    offsets: () => stream.offsets(),
    lag: () => stream.lag(),
    stop: () => stream.stop(),
    start: (handler) =>
      stream.start(async (records) => {
        await new Promise((r) => setTimeout(r, delayMs));
        await handler(records);
      }),
  };
}

/** Waits until `view` shows the global switch in the given position with the given reason. */
export function untilGlobal(view: FreezeView, frozen: boolean, reason: string): Promise<true> {
  return eventually(
    async () => {
      const state = view.globalState();
      return (state?.frozen ?? false) === frozen && state?.reason === reason ? true : undefined;
    },
    `the freeze view to show frozen=${frozen} (${reason})`,
    60_000,
  );
}
