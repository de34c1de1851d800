/**
 * Issue #14 (the Kafka fault's ~30 s before consuming again): how long a consumer group waits for a
 * member that vanished without leaving, on the real Kafka. A process killed with -9 (or a consumer
 * whose broker restarted: kafkajs then rejoins as a new member) leaves its member in the group, and
 * the group's next rebalance waits until that member's session expires: UNICOP's session timeout
 * (UNICOP_KAFKA_SESSION_TIMEOUT_MS, 6 s by default), not kafkajs's 30 s default. A short session
 * must not cost a live member its place: it heartbeats while a slow batch is being handled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { configDefaults, repoRoot } from '../../core/config.js';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { createLogger } from '../../core/logger.js';
import { committedOffset, positionGroupAtEnd, testKafka } from '../support/kafka.js';
import { uniqueName } from '../support/stack.js';

const kafkajsDefaultSessionMs = 30_000;

async function createTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

async function members(kafka: Kafka, groupId: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.describeGroups([groupId])).groups[0]?.members.length ?? 0;
  } finally {
    await admin.disconnect();
  }
}

async function produce(kafka: Kafka, topic: string, value: string): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic, messages: [{ key: 'k', value }] });
  } finally {
    await producer.disconnect();
  }
}

function withoutSessionSetting(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { UNICOP_KAFKA_SESSION_TIMEOUT_MS: _, ...rest } = env;
  return rest;
}

describe('consumer group sessions', () => {
  const kafka = testKafka();
  const topics: string[] = [];
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  });

  it('drops a member killed with -9 after UNICOP’s session timeout, well before kafkajs’s 30 s default', async () => {
    expect(configDefaults.UNICOP_KAFKA_SESSION_TIMEOUT_MS).toBeLessThan(kafkajsDefaultSessionMs / 2);
    const topic = uniqueName('session-kill');
    const group = uniqueName('session-kill');
    topics.push(topic);
    await createTopic(kafka, topic);
    await positionGroupAtEnd(kafka, group, topic);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'test', 'core', 'fixtures', 'stream-member.ts')],
      {
        cwd: repoRoot,
        // UNICOP's default session, whatever this environment sets.
        env: { ...withoutSessionSetting(process.env), UNICOP_TEST_GROUP: group, UNICOP_TEST_TOPIC: topic },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    const consuming = new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        if (String(chunk).includes('consuming')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`the member's process exited (${code}) before consuming`)));
    });
    await produce(kafka, topic, 'hold me');
    await consuming;
    expect(await members(kafka, group)).toBe(1);

    child.kill('SIGKILL');
    const killedAt = Date.now();
    while ((await members(kafka, group)) > 0 && Date.now() - killedAt < 120_000) {
      await new Promise((r) => setTimeout(r, 250));
    }
    const goneAfterMs = Date.now() - killedAt;
    console.log(`[session] the killed member left the group after ${goneAfterMs} ms`);
    expect(await members(kafka, group)).toBe(0);
    // A member with kafkajs's session could not be gone before 30 s: anything under it is UNICOP's.
    expect(goneAfterMs).toBeLessThan(kafkajsDefaultSessionMs);
  }, 180_000);

  it('keeps a live member through a batch handled for longer than its session timeout', async () => {
    const sessionTimeoutMs = 6_000; // the broker's minimum (group.min.session.timeout.ms)
    const topic = uniqueName('session-slow');
    const group = uniqueName('session-slow');
    topics.push(topic);
    await createTopic(kafka, topic);
    await positionGroupAtEnd(kafka, group, topic);
    const stream = new KafkaEventStream(
      kafka,
      { topic, groupId: group, sessionTimeoutMs },
      createLogger('test', 'warn'),
    );
    const handled: string[] = [];
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let membersDuring = -1;
    await stream.start(async (records) => {
      handled.push(...records.map((r) => r.value));
      if (handled.length === 1) await released;
    });
    try {
      await produce(kafka, topic, 'slow');
      while (handled.length === 0) await new Promise((r) => setTimeout(r, 100));
      // Held for 2.5 sessions: a member that only heartbeats between batches would be expelled now.
      await new Promise((r) => setTimeout(r, sessionTimeoutMs * 2.5));
      membersDuring = await members(kafka, group);
      release();
      const deadline = Date.now() + 60_000;
      while ((await committedOffset(group, topic, 0)) < 1n && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      release();
      await stream.stop();
    }
    expect(membersDuring).toBe(1);
    expect(await committedOffset(group, topic, 0)).toBe(1n);
    expect(handled).toEqual(['slow']); // handled once: not redelivered after an expulsion
  }, 180_000);
});
