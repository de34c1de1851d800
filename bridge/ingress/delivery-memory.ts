/**
 * De-duplication memory for webhook deliveries, kept in Redis so a restart does not forget.
 * A delivery is first *claimed* (short-lived "pending" marker) and only *remembered* as done once
 * Kafka acknowledged its change; a failed publish releases the claim, so the retry is not mistaken
 * for a duplicate.
 *
 * One round trip before the change is appended: the claim is a single `SET NX GET`, which sets the
 * marker and, when the key was already there, returns what it held. Remembering is not waited for:
 * it is queued before the 202 is sent, and Redis runs one connection's commands in order, so any
 * later claim of the same delivery through this bridge sees it. Should it never arrive (Redis gone,
 * bridge killed), the pending marker expires and a retry is accepted again under the same
 * deterministic change id — what an unreachable Redis already means.
 *
 * Commands of all webhooks handled in one turn of the event loop go to Redis as one pipeline (one
 * write instead of one per command: under load the writes were the bridge's largest single cost,
 * docs/decisions/0035-ingest-throughput.md), in the order they were made.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export type ClaimResult = 'claimed' | 'in_flight' | 'done';

const PENDING = 'pending';
const DONE = 'done';

interface Queued {
  command: (string | number)[];
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

export class DeliveryMemory {
  private queued: Queued[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly windowSeconds: number,
    private readonly pendingSeconds = 30,
    private readonly prefix = 'unicop:delivery:',
  ) {}

  key(identity: (string | number | null)[]): string {
    const digest = createHash('sha256').update(JSON.stringify(identity)).digest('hex');
    return `${this.prefix}${digest}`;
  }

  async claim(key: string): Promise<ClaimResult> {
    const before = await this.send(['set', key, PENDING, 'EX', this.pendingSeconds, 'NX', 'GET']);
    if (before === null) return 'claimed';
    return before === DONE ? 'done' : 'in_flight';
  }

  /** Queued at once, in order with later claims; the promise only tells whether Redis took it. */
  remember(key: string): Promise<void> {
    return this.send(['set', key, DONE, 'EX', this.windowSeconds]).then(() => undefined);
  }

  async release(key: string): Promise<void> {
    await this.send(['del', key]);
  }

  private send(command: (string | number)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.flush());
      this.queued.push({ command, resolve, reject });
    });
  }

  private flush(): void {
    const batch = this.queued;
    this.queued = [];
    this.redis
      .pipeline(batch.map((q) => q.command))
      .exec()
      .then(
        (results) => {
          batch.forEach((q, i) => {
            const [error, result] = results?.[i] ?? [new Error('Redis gave no answer'), null];
            if (error) q.reject(error);
            else q.resolve(result);
          });
        },
        (error: Error) => {
          for (const q of batch) q.reject(error);
        },
      );
  }
}
