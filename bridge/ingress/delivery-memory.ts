/**
 * De-duplication memory for webhook deliveries, kept in Redis so a restart does not forget.
 * A delivery is first *claimed* (short-lived "pending" marker) and only *remembered* as done once
 * Kafka acknowledged its change; a failed publish releases the claim, so the retry is not mistaken
 * for a duplicate.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export type ClaimResult = 'claimed' | 'in_flight' | 'done';

const PENDING = 'pending';
const DONE = 'done';

export class DeliveryMemory {
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
    const set = await this.redis.set(key, PENDING, 'EX', this.pendingSeconds, 'NX');
    if (set === 'OK') return 'claimed';
    return (await this.redis.get(key)) === DONE ? 'done' : 'in_flight';
  }

  async remember(key: string): Promise<void> {
    await this.redis.set(key, DONE, 'EX', this.windowSeconds);
  }

  async release(key: string): Promise<void> {
    await this.redis.del(key);
  }
}
