/**
 * AWX notifications wake a run that follows its job (workers/reconciler/awx-notifications.ts): a
 * notification POSTed to a real bridge's /webhooks/awx in AWX's own shapes (job_metadata for a
 * job's status; the approval text AWX 24.6.1 sends for a workflow's gate, as the real AWX in
 * test/bridge/awx-webhook.test.ts sends it) goes through real Kafka to the wake-ups view and ends
 * the matching wait with `true` — the wait's own timer would end it with `false`. A notification
 * for another job wakes nothing.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaEventStream } from '../../core/event-log/consumer.js';
import { topics } from '../../core/events/catalogue.js';
import { createLogger } from '../../core/logger.js';
import { AwxNotificationWakeups } from '../../workers/reconciler/awx-notifications.js';
import { basicAuth } from '../awx/support.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { positionGroupAtEnd } from '../support/kafka.js';
import { stack, uniqueName } from '../support/stack.js';

// A cap, not a budget: the notification crosses the bridge and Kafka in well under a second; the
// wait returns the moment it lands. Only a wait nothing wakes runs this long.
const capMs = 120_000;
const secret = randomBytes(16).toString('hex');
const awxBase = 'http://127.0.0.1:18053';

let bridge: RunningBridge;
let wakeups: AwxNotificationWakeups;

beforeAll(async () => {
  bridge = await startBridge({ UNICOP_AWX_WEBHOOK_SECRET: secret });
  const kafka = new Kafka({
    clientId: uniqueName('wakeups'),
    brokers: stack.kafkaBrokers(),
    logLevel: logLevel.NOTHING,
  });
  const groupId = uniqueName('wakeups');
  await positionGroupAtEnd(kafka, groupId, topics.awxEvents);
  const log = createLogger('wakeups-test', process.env.UNICOP_TEST_LOG ?? 'silent');
  wakeups = new AwxNotificationWakeups(
    new KafkaEventStream(kafka, { topic: topics.awxEvents, groupId }, log),
  );
  await wakeups.start();
});

afterAll(async () => {
  await wakeups?.stop();
  await bridge?.close();
});

async function notify(body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${bridge.url}/webhooks/awx`, {
    method: 'POST',
    headers: {
      authorization: basicAuth('awx', secret),
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.text()).toBe(202);
}

/** A job id no other test's AWX notification uses while this file runs. */
const jobId = () => 900_000_000 + Math.floor(Math.random() * 99_999_999);

describe('AWX notifications wake the run following the job', () => {
  it("a job's status notification ends the wait for that job at once (true, not the timer)", async () => {
    const id = jobId();
    const waiting = wakeups.wait('job', id, capMs);
    await notify({ id, status: 'successful', name: 'unicop-site', url: `${awxBase}/#/jobs/playbook/${id}` });
    expect(await waiting).toBe(true);
  });

  it("an approval notification of a workflow's gate ends the wait for that workflow job", async () => {
    const id = jobId();
    const waiting = wakeups.wait('workflow_job', id, capMs);
    await notify({
      body: `The approval node "Approve site change" needs review. This node can be viewed at: ${awxBase}/#/jobs/workflow/${id}`,
    });
    expect(await waiting).toBe(true);
  });

  it('a notification for another job wakes nothing: the wait is still open once both have been handled (false)', async () => {
    const id = jobId();
    const other = id + 1;
    const done = new AbortController();
    const waiting = wakeups.wait('workflow_job', id, capMs, done.signal);
    // The other job's notifications, both kinds. The second wakes a wait of its own; the view handles
    // records in log order, so a wrong wake of `waiting` would have happened by then. Only then is
    // `waiting` ended (aborted: false) — no timer decides, however slow the machine.
    const otherSeen = wakeups.wait('workflow_job', other, capMs);
    await notify({ id: other, status: 'running', name: 'x', url: `${awxBase}/#/jobs/playbook/${other}` });
    await notify({
      body: `The approval node "Approve site change" was approved. This node can be viewed at: ${awxBase}/#/jobs/workflow/${other}`,
    });
    expect(await otherSeen).toBe(true);
    done.abort();
    expect(await waiting).toBe(false);
  });
});
