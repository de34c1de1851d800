/**
 * The current human overrides, rebuilt from the compacted `unicop.control` topic: whether
 * automation is frozen globally (and why, by whom). Per-root freezes live on the root in NetBox
 * (the plugin), where operators see them; the global switch has no NetBox object to live on, so it
 * lives here, durable and replayable.
 */
import type { EventStream } from '../event-log/consumer.js';
import { type EventData, parseEvent } from '../events/catalogue.js';

export type GlobalFreeze = EventData<'freeze'> | null;

export class FreezeView {
  private global: GlobalFreeze = null;

  constructor(private readonly stream: EventStream) {}

  async start(): Promise<void> {
    await this.stream.start(async (records) => {
      for (const record of records) {
        const event = parseEvent('freeze', record.value);
        if (event) this.apply(event.data);
      }
    });
  }

  /** The latest global freeze event, or null if automation was never frozen globally. */
  globalState(): GlobalFreeze {
    return this.global;
  }

  /** Records a change made by this process at once (the log is the truth; this avoids a lag). */
  apply(event: EventData<'freeze'>): void {
    if (event.scope === 'global') this.global = event;
  }

  stop(): Promise<void> {
    return this.stream.stop();
  }
}
