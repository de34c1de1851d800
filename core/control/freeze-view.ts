/**
 * The current human overrides, rebuilt from the compacted `unicop.control` topic: whether
 * automation is frozen globally (and why, by whom). Per-root freezes live on the root in NetBox
 * (the plugin), where operators see them; the global switch has no NetBox object to live on, so it
 * lives here, durable and replayable.
 *
 * `start()` resolves only once the topic is replayed up to the end offsets it had when start was
 * called, so a process that just restarted never serves "not frozen" while a freeze is on the log:
 * the dispatcher would queue intents, the reconciler launch, the sweeper sweep. `replayed()` is the
 * same promise for parts that take the view from their caller (the dispatcher waits on it).
 */
import type { EventStream } from '../event-log/consumer.js';
import { type EventData, parseEvent } from '../events/catalogue.js';

export type GlobalFreeze = EventData<'freeze'> | null;

/** A partition's offsets: `low` is its first record's, `high` the one the next record will get. */
export interface PartitionOffsets {
  partition: number;
  low: string;
  high: string;
}

/** A stream that can say where the topic ends now, so its replay can be known to be complete. */
export interface ReplayableStream extends EventStream {
  offsets(): Promise<PartitionOffsets[]>;
}

export class FreezeViewStoppedError extends Error {
  override readonly name = 'FreezeViewStoppedError';
  constructor() {
    super('the freeze view was stopped before unicop.control was replayed');
  }
}

export class FreezeView {
  private global: GlobalFreeze = null;
  /** The highest offset applied per partition. */
  private readonly applied = new Map<number, bigint>();
  private readonly replay: Promise<void>;
  private settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private readonly listeners = new Set<(state: GlobalFreeze) => void>();

  constructor(private readonly stream: ReplayableStream) {
    this.replay = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // A caller that awaits neither start() nor replayed() must not see an unhandled rejection.
    this.replay.catch(() => undefined);
  }

  /** Starts following the topic; resolves once everything on it at this moment is applied. */
  async start(): Promise<void> {
    const ends = (await this.stream.offsets()).filter((p) => BigInt(p.high) > BigInt(p.low));
    const caughtUp = () => ends.every((p) => (this.applied.get(p.partition) ?? -1n) >= BigInt(p.high) - 1n);
    await this.stream.start(async (records) => {
      for (const record of records) {
        const event = parseEvent('freeze', record.value);
        if (event) this.apply(event.data);
        this.applied.set(record.partition, BigInt(record.offset));
      }
      if (caughtUp()) this.settle?.resolve();
    });
    if (caughtUp()) this.settle?.resolve();
    return this.replay;
  }

  /** Resolves once start() has replayed the topic (rejects if the view is stopped first). */
  replayed(): Promise<void> {
    return this.replay;
  }

  /** The latest global freeze event, or null if automation was never frozen globally. */
  globalState(): GlobalFreeze {
    return this.global;
  }

  /** Records a change made by this process at once (the log is the truth; this avoids a lag). */
  apply(event: EventData<'freeze'>): void {
    if (event.scope !== 'global') return;
    this.global = event;
    for (const listener of this.listeners) listener(event);
  }

  /** Calls `listener` with each global record applied from now on (the replay's too); returns its removal. */
  onGlobal(listener: (state: GlobalFreeze) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stop(): Promise<void> {
    this.settle?.reject(new FreezeViewStoppedError());
    return this.stream.stop();
  }
}
