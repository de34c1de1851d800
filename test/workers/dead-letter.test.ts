/**
 * Poison changes do not stop the resolver's partition: through real Kafka, the real resolver and
 * the plugin's resolve API in the real NetBox, three records on one key (so one partition, in this
 * order) — a record that is not a change event, a change the plugin refuses with a 400 (an object
 * type it cannot parse), and a valid change of a real prefix. The first two are set aside on
 * unicop.dead-letter with their reason and audited; the third, behind them on the same partition,
 * is still resolved into its intent, and the group's offsets move past all three.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerGroupLag } from '../../core/event-log/consumer.js';
import { KafkaEventLog } from '../../core/event-log/kafka.js';
import { cloudEvent, topics } from '../../core/events/catalogue.js';
import { uuidv7 } from '../../core/ids.js';
import { eventually } from '../awx/support.js';
import { type TailedMessage, TopicTail, testKafka } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { startTestResolver } from '../support/pipeline.js';
import { uniqueName } from '../support/stack.js';

function changeEvent(objectType: string, objectId: number) {
  const changeId = uuidv7();
  const at = new Date().toISOString();
  return cloudEvent('change', {
    id: changeId,
    source: 'dead-letter-test',
    subject: `${objectType}:${objectId}`,
    data: {
      changeId,
      event: 'updated',
      objectType,
      objectId,
      occurredAt: at,
      requestId: null,
      actor: 'test',
      lastUpdated: at,
      data: { id: objectId },
      prechange: null,
      postchange: { id: objectId },
    },
  });
}

describe('resolver: poison changes go to unicop.dead-letter and the partition moves on', () => {
  let tail: TopicTail;
  let resolver: Awaited<ReturnType<typeof startTestResolver>>;
  const eventLog = new KafkaEventLog(testKafka());
  let prefix: { id: number };

  beforeAll(async () => {
    tail = await TopicTail.start([topics.deadLetter, topics.intents, topics.audit]);
    resolver = await startTestResolver();
    prefix = await netbox('POST', '/api/ipam/prefixes/', {
      prefix: `10.${16 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 250)}.0/24`,
      description: uniqueName('dead-letter'),
    });
  });
  afterAll(async () => {
    await netbox('DELETE', `/api/ipam/prefixes/${prefix.id}/`).catch(() => undefined);
    await resolver?.stop();
    await tail?.stop();
    await eventLog.close();
  });

  it('sets an invalid record and a refused change aside with the reason; the next change on the partition is resolved', async () => {
    const key = uniqueName('poison-key');
    const refused = changeEvent('Legacy-Model', 12); // the plugin accepts only "app.model" in lower case
    const valid = changeEvent('ipam.prefix', prefix.id);
    await eventLog.append([
      { topic: topics.changes, key, value: '{"specversion": "1.0", "type": "not a change' },
      { topic: topics.changes, key, value: JSON.stringify(refused) },
      { topic: topics.changes, key, value: JSON.stringify(valid) },
    ]);

    const [intent] = await tail.waitFor(
      (m) =>
        m.topic === topics.intents &&
        (m.value.data as { cause: { changeId: string } }).cause.changeId === valid.data.changeId,
      1,
      120_000,
    );
    expect(intent?.key).toBe(`prefix/${prefix.id}`);

    const letters = (
      await tail.waitFor((m) => m.topic === topics.deadLetter && m.key === key, 2, 120_000)
    ).map((m) => m.value.data as Record<string, unknown>);
    expect(letters).toHaveLength(2);
    const [invalid, poison] = letters;
    expect(invalid).toMatchObject({
      consumer: 'unicop-resolver',
      kind: 'invalid',
      status: null,
      topic: topics.changes,
      key,
      eventId: null,
      value: '{"specversion": "1.0", "type": "not a change',
      valueTruncated: false,
    });
    expect(poison).toMatchObject({
      consumer: 'unicop-resolver',
      kind: 'refused',
      status: 400,
      topic: topics.changes,
      partition: invalid?.partition,
      key,
      eventId: refused.id,
      value: JSON.stringify(refused),
    });
    expect(String(poison?.reason)).toContain('object_type');
    expect(BigInt(String(poison?.offset))).toBe(BigInt(String(invalid?.offset)) + 1n);

    const audited = (m: TailedMessage, action: string) =>
      m.topic === topics.audit && (m.value.data as { action: string }).action === action;
    const [refusal] = await tail.waitFor(
      (m) =>
        audited(m, 'change.refused') &&
        (m.value.data as { correlation: { changeId?: string } }).correlation.changeId ===
          refused.data.changeId,
    );
    expect(refusal?.value.data).toMatchObject({
      outcome: 'rejected',
      subjectType: 'Legacy-Model',
      subjectId: '12',
      metadata: { status: 400, deadLetterTopic: topics.deadLetter },
    });
    await tail.waitFor((m) => audited(m, 'change.invalid') && m.key === key);

    // The group committed past all three: nothing of the partition is left behind.
    await eventually(
      async () => (await consumerGroupLag(testKafka(), resolver.groupId, topics.changes)) === 0,
      'the resolver group to have no lag',
      120_000,
    );
  }, 300_000);
});
