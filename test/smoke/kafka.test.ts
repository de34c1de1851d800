/** Smoke: produce and consume on the stack's real Kafka broker with kafkajs (acks=all). */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { topics as catalogueTopics } from '../../core/events/catalogue.js';
import { stack, uniqueName } from '../support/stack.js';

describe('kafka', () => {
  const kafka = new Kafka({
    clientId: 'unicop-smoke',
    brokers: stack.kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const topic = uniqueName('smoke');

  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('has every topic of the event catalogue', async () => {
    await admin.connect();
    const topics = await admin.listTopics();
    const wanted = Object.values(catalogueTopics);
    expect(wanted.length).toBeGreaterThanOrEqual(7);
    expect(wanted.filter((t) => !topics.includes(t))).toEqual([]);
  });

  it('round-trips a keyed message through a consumer group', async () => {
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const [meta] = await producer.send({
      topic,
      acks: -1,
      messages: [{ key: 'site/1', value: JSON.stringify({ hello: 'unicop' }) }],
    });
    await producer.disconnect();
    expect(meta?.errorCode).toBe(0);

    const consumer = kafka.consumer({ groupId: `${topic}-group` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received = await new Promise<{ key: string; value: string }>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) =>
          resolve({ key: String(message.key), value: String(message.value) }),
      });
    });
    await consumer.disconnect();
    expect(received).toEqual({ key: 'site/1', value: JSON.stringify({ hello: 'unicop' }) });
  });
});
