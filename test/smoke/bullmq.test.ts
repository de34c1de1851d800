/** Smoke: a BullMQ job round trip on the stack's real Redis (fresh queue name per test). */
import { Queue, QueueEvents, Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { stack, uniqueName } from '../support/stack.js';

describe('redis + bullmq', () => {
  const name = uniqueName('smoke');
  const connection = { url: stack.redisUrl() };
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  let worker: Worker | undefined;

  afterAll(async () => {
    await worker?.close();
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
  });

  it('runs a job in a worker and returns its result', async () => {
    worker = new Worker(name, async (job) => ({ doubled: (job.data as { n: number }).n * 2 }), {
      connection,
    });
    await events.waitUntilReady();
    const job = await queue.add('double', { n: 21 });
    const result = await job.waitUntilFinished(events, 120_000); // a cap: it returns once the job finished
    expect(result).toEqual({ doubled: 42 });
    expect(await queue.getJobCounts('completed')).toEqual({ completed: 1 });
  });
});
