/**
 * The Kafka event log against the real broker: one append far larger than Kafka's largest record
 * batch (thousands of messages for one key, so one partition) is written completely and in order.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { chunksOf, KafkaEventLog } from '../../core/event-log/kafka.js';
import { stack, uniqueName } from '../support/stack.js';

describe('KafkaEventLog', () => {
  const kafka = new Kafka({
    clientId: uniqueName('log'),
    brokers: stack.kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const topic = uniqueName('eventlog');
  const log = new KafkaEventLog(kafka);
  afterAll(async () => {
    await log.close();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('splits messages into ordered chunks under the byte limit', () => {
    const messages = Array.from({ length: 10 }, (_, i) => ({
      topic: 't',
      key: 'k',
      value: 'x'.repeat(100 + i),
    }));
    const chunks = chunksOf(messages, 400);
    expect(chunks.flat()).toEqual(messages);
    expect(chunks.length).toBeGreaterThan(1);
  });

  it('appends 3 MiB for one key in one call, all of it, in order', async () => {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const count = 6000;
    const pad = 'p'.repeat(500);
    await log.append(
      Array.from({ length: count }, (_, i) => ({ topic, key: 'root/1', value: `${i}:${pad}` })),
    );
    const offsets = await admin.fetchTopicOffsets(topic);
    expect(Number(offsets[0]?.high)).toBe(count);
    const consumer = kafka.consumer({ groupId: uniqueName('eventlog-read') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(Number(String(message.value).split(':')[0]));
          if (seen.length === count) resolve();
        },
      });
    });
    await consumer.disconnect();
    expect(seen).toEqual(Array.from({ length: count }, (_, i) => i));
  });
});
