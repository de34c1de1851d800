/**
 * KafkaEventLog's group commit, with a producer double whose acknowledgements the test releases:
 * a caller is answered only once its batch is acknowledged; appends made while a batch is in flight
 * go out together in the next produce request as soon as it is acknowledged, without lingering; an
 * idle producer with lingerMs 0 writes what one turn of the event loop appended in one request.
 * (Against the real broker: test/core/event-log.test.ts.)
 */
import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkaEventLog } from '../../core/event-log/kafka.js';

interface Held {
  values: string[];
  acknowledge(): void;
}

function producerDouble() {
  const requests: Held[] = [];
  const kafka = {
    producer: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      sendBatch: (batch: { topicMessages: { messages: { value: string }[] }[] }) =>
        new Promise((resolve) => {
          requests.push({
            values: batch.topicMessages.flatMap((t) => t.messages.map((m) => m.value)),
            acknowledge: () => resolve([]),
          });
        }),
    }),
  } as unknown as Kafka;
  return { kafka, requests };
}

const message = (value: string) => [{ topic: 't', key: 'k', value }];
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Lets the event loop run until `probe` holds (each round is one turn, nothing timed). */
async function turnsUntil(probe: () => boolean, rounds = 1000): Promise<boolean> {
  for (let i = 0; i < rounds && !probe(); i++) await turn();
  return probe();
}

describe('KafkaEventLog group commit', () => {
  it('answers a caller only once its batch is acknowledged', async () => {
    const { kafka, requests } = producerDouble();
    const log = new KafkaEventLog(kafka, { lingerMs: 0 });
    let answered = false;
    const append = log.append(message('a')).then(() => {
      answered = true;
    });
    expect(await turnsUntil(() => requests.length === 1)).toBe(true);
    for (let i = 0; i < 20; i++) await turn();
    expect(answered).toBe(false);
    requests[0]?.acknowledge();
    await append;
    expect(answered).toBe(true);
  });

  it('writes appends made during a batch in the next request, right after the acknowledgement', async () => {
    const { kafka, requests } = producerDouble();
    // Only an append to an idle producer may wait this long for company.
    const log = new KafkaEventLog(kafka, { lingerMs: 200 });
    const a = log.append(message('a'));
    expect(await turnsUntil(() => requests.length === 1, 1_000_000)).toBe(true);
    const b = log.append(message('b'));
    const c = log.append(message('c'));
    await turn();
    expect(requests).toHaveLength(1);
    requests[0]?.acknowledge();
    await a;
    // A few turns of the event loop, far less than the linger: b and c are on their way already.
    expect(await turnsUntil(() => requests.length === 2, 3)).toBe(true);
    expect(requests[1]?.values).toEqual(['b', 'c']);
    requests[1]?.acknowledge();
    await Promise.all([b, c]);
  });

  it('with lingerMs 0, writes what one turn of the event loop appended in one request', async () => {
    const { kafka, requests } = producerDouble();
    const log = new KafkaEventLog(kafka, { lingerMs: 0 });
    const appends = [log.append(message('a')), log.append(message('b')), log.append(message('c'))];
    expect(await turnsUntil(() => requests.length === 1)).toBe(true);
    await turn();
    expect(requests).toHaveLength(1);
    expect(requests[0]?.values).toEqual(['a', 'b', 'c']);
    requests[0]?.acknowledge();
    await Promise.all(appends);
  });
});
