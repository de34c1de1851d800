/**
 * Edits made in the real NetBox become changes on unicop.changes (through the real webhook and the
 * bridge) and exactly one intent per affected root on unicop.intents (through the resolver and the
 * plugin's resolver API): create, update, a move between prefixes (both roots), delete. Replaying
 * unicop.changes under another group yields the same intent ids and nothing new.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { eventually } from '../awx/support.js';
import {
  committedOffset,
  positionGroup,
  positionGroupAtEnd,
  type TailedMessage,
  TopicTail,
  testKafka,
  topicEnds,
} from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { type FrontHalf, startFrontHalf, startResolverAt } from '../support/pipeline.js';
import { stack, uniqueName } from '../support/stack.js';

const octet = () => 16 + Math.floor(Math.random() * 200);

describe('resolver: NetBox edits → changes → intents per root', () => {
  let front: FrontHalf;
  let tail: TopicTail;
  let startOfChanges: { partition: number; offset: string }[];
  const cleanup: (() => Promise<unknown>)[] = [];
  const a = `10.${octet()}.${octet()}`;
  const b = `10.${octet()}.${octet()}`;
  let prefixA: { id: number };
  let prefixB: { id: number };
  let ip: { id: number };

  beforeAll(async () => {
    startOfChanges = await topicEnds(testKafka(), topics.changes);
    tail = await TopicTail.start([topics.changes, topics.intents, topics.audit]);
    front = await startFrontHalf(['ipam.prefix', 'ipam.ipaddress']);
    prefixA = await netbox('POST', '/api/ipam/prefixes/', {
      prefix: `${a}.0/24`,
      description: uniqueName('t'),
    });
    prefixB = await netbox('POST', '/api/ipam/prefixes/', {
      prefix: `${b}.0/24`,
      description: uniqueName('t'),
    });
    cleanup.push(() => netbox('DELETE', `/api/ipam/prefixes/${prefixA.id}/`));
    cleanup.push(() => netbox('DELETE', `/api/ipam/prefixes/${prefixB.id}/`));
  });
  afterAll(async () => {
    for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
    await front?.stop();
    await tail?.stop();
  });

  const intentsFor = (objectType: string, objectId: number, event: string) => (m: TailedMessage) => {
    const cause = (m.value.data as { cause?: Record<string, unknown> }).cause;
    return (
      m.topic === topics.intents &&
      cause?.objectType === objectType &&
      cause?.objectId === objectId &&
      cause?.event === event
    );
  };
  const rootKeys = (ms: TailedMessage[]) =>
    ms.map((m) => (m.value.data as { rootKey: string }).rootKey).sort();

  it('a new prefix is its own root: one intent, keyed by the root key', async () => {
    const [intent] = await tail.waitFor(intentsFor('ipam.prefix', prefixA.id, 'created'));
    expect(intent?.key).toBe(`prefix/${prefixA.id}`);
    expect(intent?.value.data).toMatchObject({ rootKey: `prefix/${prefixA.id}`, cause: { kind: 'change' } });
  });

  it('an IP created in prefix A → exactly one intent, for prefix A', async () => {
    ip = await netbox('POST', '/api/ipam/ip-addresses/', { address: `${a}.5/24` });
    cleanup.push(() => netbox('DELETE', `/api/ipam/ip-addresses/${ip.id}/`));
    await tail.waitFor(intentsFor('ipam.ipaddress', ip.id, 'created'));
    expect(rootKeys(await tail.settle(intentsFor('ipam.ipaddress', ip.id, 'created')))).toEqual([
      `prefix/${prefixA.id}`,
    ]);
  });

  it('the IP moved from A to B → one intent for each root', async () => {
    await netbox('PATCH', `/api/ipam/ip-addresses/${ip.id}/`, { address: `${b}.5/24` });
    await tail.waitFor(intentsFor('ipam.ipaddress', ip.id, 'updated'), 2);
    expect(rootKeys(await tail.settle(intentsFor('ipam.ipaddress', ip.id, 'updated')))).toEqual(
      [`prefix/${prefixA.id}`, `prefix/${prefixB.id}`].sort(),
    );
  });

  it('the IP deleted → one intent for prefix B, resolved from the change data', async () => {
    await netbox('DELETE', `/api/ipam/ip-addresses/${ip.id}/`);
    await tail.waitFor(intentsFor('ipam.ipaddress', ip.id, 'deleted'));
    expect(rootKeys(await tail.settle(intentsFor('ipam.ipaddress', ip.id, 'deleted')))).toEqual([
      `prefix/${prefixB.id}`,
    ]);
  });

  it('every change produced one change event (no duplicates through the real webhook path)', () => {
    const mine = tail.messages.filter(
      (m) =>
        m.topic === topics.changes &&
        (m.value.data as { objectType: string; objectId: number }).objectType === 'ipam.ipaddress' &&
        (m.value.data as { objectId: number }).objectId === ip.id,
    );
    expect(mine.map((m) => (m.value.data as { event: string }).event)).toEqual([
      'created',
      'updated',
      'deleted',
    ]);
  });

  it("commits a change's offset only after its intents are on Kafka", async () => {
    // A resolver of its own whose append of this change's intents waits at a gate: the change
    // stays uncommitted for as long as the test holds the gate. (Appends for other prefixes wait
    // only until the new prefix's id is known, then pass.)
    const net = `10.${octet()}.${octet()}`;
    let mine = '';
    let known: () => void = () => undefined;
    const idKnown = new Promise<void>((r) => {
      known = r;
    });
    let open: () => void = () => undefined;
    const opened = new Promise<void>((r) => {
      open = r;
    });
    let reached: () => void = () => undefined;
    const reachedGate = new Promise<void>((r) => {
      reached = r;
    });
    const kafka = testKafka();
    const group = uniqueName('resolver-gated');
    await positionGroupAtEnd(kafka, group, topics.changes);
    const gated = await startResolverAt(kafka, group, {
      wrapEventLog: (real) => ({
        append: async (messages) => {
          if (messages.some((m) => m.value.includes('"objectType":"ipam.prefix"'))) {
            await idKnown;
            if (messages.some((m) => m.value.includes(`"rootKey":"${mine}"`))) {
              reached();
              await opened;
            }
          }
          await real.append(messages);
        },
        healthy: () => real.healthy(),
        close: () => real.close(),
      }),
    });
    const committed = (partition: number) => committedOffset(group, topics.changes, partition);
    try {
      const prefix = await netbox<{ id: number }>('POST', '/api/ipam/prefixes/', {
        prefix: `${net}.0/24`,
        description: uniqueName('t'),
      });
      mine = `prefix/${prefix.id}`;
      known();
      cleanup.push(() => netbox('DELETE', `/api/ipam/prefixes/${prefix.id}/`));
      const created = (m: TailedMessage) =>
        m.topic === topics.changes &&
        (m.value.data as { objectType: string }).objectType === 'ipam.prefix' &&
        (m.value.data as { objectId: number }).objectId === prefix.id;
      const [change] = await tail.waitFor(created, 1, 60_000);
      if (!change) throw new Error('no change on unicop.changes');
      await reachedGate; // the resolver resolved the change and is appending its intent
      await new Promise((r) => setTimeout(r, 2000));
      expect(await committed(change.partition)).toBeLessThanOrEqual(BigInt(change.offset));

      open();
      const after = await eventually(
        async () => {
          const at = await committed(change.partition);
          return at > BigInt(change.offset) ? at : undefined;
        },
        'the change committed once its intent is on Kafka',
        30_000,
      );
      expect(after).toBeGreaterThan(BigInt(change.offset));
    } finally {
      known();
      open();
      await gated.stop();
    }
  }, 120_000);

  it('no secret reaches the logs of the whole run (bridge and resolver)', () => {
    const all = [...front.bridge.logs, ...front.resolverLogs].join('');
    expect(all).toContain('change accepted');
    expect(all).not.toContain(front.secret);
    expect(all).not.toContain(stack.netboxToken());
    expect(all).not.toContain(stack.netboxToken().split('.')[1] as string);
  });

  it('replaying unicop.changes under another group yields the same intent ids, nothing new', async () => {
    const mineOnly = (m: TailedMessage) =>
      m.topic === topics.intents &&
      [prefixA.id, prefixB.id].some((id) => (m.value.data as { rootKey: string }).rootKey === `prefix/${id}`);
    // The intents this file's edits made (at least the two prefixes' creation, even run alone).
    await tail.waitFor(intentsFor('ipam.prefix', prefixA.id, 'created'));
    await tail.waitFor(intentsFor('ipam.prefix', prefixB.id, 'created'));
    const before = tail.messages.filter(mineOnly);
    const intentId = (m: TailedMessage) => (m.value.data as { intentId: string }).intentId;
    const expected = before.map(intentId);
    expect(expected.length).toBeGreaterThanOrEqual(2);
    const kafka = testKafka();
    const group = uniqueName('replay');
    await positionGroup(kafka, group, topics.changes, startOfChanges);
    const replay = await startResolverAt(kafka, group);
    try {
      await tail.waitFor(mineOnly, expected.length * 2, 60_000);
      const replayed = (await tail.settle(mineOnly, 1500)).slice(before.length).map(intentId);
      // The same ids again: nothing new, nothing lost (a set: another test's resolver on the shared
      // stack may have seen the same changes and written the same ids once more).
      expect(new Set(replayed)).toEqual(new Set(expected));
    } finally {
      await replay.stop();
    }
  });
});
