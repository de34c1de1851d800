/**
 * A flood of bad webhooks from one peer cannot flood Kafka: the bridge writes at most the peer's
 * budget of `webhook.rejected` events (UNICOP_REFUSAL_AUDIT_BURST, refilled per minute), counts the
 * rest (unicop_refusal_audits_suppressed_total) and writes one `webhook.refusals_suppressed` summary
 * with their number by reason — while another peer's refusal is still recorded. Every refusal is
 * still counted by reason. Real bridge (in-process), real Kafka; the peers are two loopback
 * addresses of the test's own.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox47Body, sign } from '../support/webhooks.js';

const secret = 'refusal-flood-secret';
const burst = 5;
const flood = 200;
const octet = () => Math.floor(Math.random() * 250) + 1;
const flooder = `127.${octet()}.${octet()}.${octet()}`;
const other = `127.${octet()}.${octet()}.${octet()}`;

let bridge: RunningBridge;
let tail: TopicTail;

/** POSTs a webhook body from `localAddress`; resolves with the status. */
function post(localAddress: string, raw: string, signature: string): Promise<number> {
  const url = new URL(`${bridge.url}/webhooks/netbox`);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        localAddress,
        headers: { 'content-type': 'application/json', 'x-hook-signature': signature },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(raw);
  });
}

const data = (m: TailedMessage) => (m.value as { data: Record<string, unknown> }).data;
const refusedFrom = (peer: string) => (m: TailedMessage) =>
  m.topic === topics.audit &&
  data(m).action === 'webhook.rejected' &&
  (data(m).metadata as Record<string, unknown>).peer === peer;

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${bridge.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return Number(line?.split(' ').at(-1) ?? 0);
}

describe('refusal audit events under a flood', () => {
  beforeAll(async () => {
    tail = await TopicTail.start([topics.audit]);
    bridge = await startBridge({
      UNICOP_WEBHOOK_SECRETS: secret,
      UNICOP_REFUSAL_AUDIT_BURST: String(burst),
      UNICOP_REFUSAL_AUDIT_PER_MINUTE: '0',
      UNICOP_REFUSAL_AUDIT_SUMMARY_SECONDS: '1',
    });
  });
  afterAll(async () => {
    await bridge?.close();
    await tail?.stop();
  });

  it("writes at most the peer's burst of refusal events and one summary of the rest, and another peer's refusal still", async () => {
    const raw = JSON.stringify(netbox47Body());
    const statuses = await Promise.all(
      Array.from({ length: flood }, () => post(flooder, raw, sign(raw, 'not-the-secret'))),
    );
    expect(statuses.every((s) => s === 401)).toBe(true);
    expect(await post(other, raw, sign(raw, 'not-the-secret'))).toBe(401);

    const [summary] = await tail.waitFor(
      (m) =>
        m.topic === topics.audit &&
        data(m).action === 'webhook.refusals_suppressed' &&
        data(m).subjectId === flooder,
    );
    expect(data(summary as TailedMessage)).toMatchObject({
      outcome: 'rejected',
      reason: `${flood - burst} refusals suppressed from source ${flooder}`,
      metadata: {
        suppressed: flood - burst,
        byReason: { 'webhook.rejected:invalid_signature': flood - burst },
      },
    });
    await tail.waitFor(refusedFrom(other));
    await tail.waitFor(refusedFrom(flooder), burst);
    // The summary is written after every refusal event it follows; give stragglers a moment anyway.
    await new Promise((r) => setTimeout(r, 2000));
    expect(tail.messages.filter(refusedFrom(flooder))).toHaveLength(burst);
    expect(tail.messages.filter(refusedFrom(other))).toHaveLength(1);
    expect(await metric('unicop_refusal_audits_suppressed_total')).toBe(flood - burst);
    expect(await metric('unicop_webhooks_rejected_total{source="netbox",reason="invalid_signature"}')).toBe(
      flood + 1,
    );
  });
});
