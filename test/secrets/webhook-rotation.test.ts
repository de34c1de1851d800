/**
 * Webhook secrets rotated in Vault reach the running COMPILED bridge (dist/, `npm run build`)
 * without a restart: its UNICOP_WEBHOOK_SECRETS (NetBox's signing secret) and
 * UNICOP_AWX_WEBHOOK_SECRET (AWX's notification secret) are vault: references; a new KV version is
 * accepted once the bridge has read it again, the previous one stays accepted for the grace
 * (UNICOP_WEBHOOK_ROTATION_GRACE_SECONDS, from the new version's creation in Vault) and is refused
 * after it; no secret value appears in anything the bridge wrote. Against the stack's real OpenBao,
 * Kafka and Redis; the test has its own KV paths and AppRole (vault-support.ts).
 *
 * A secret is told apart without writing anything to Kafka: the probe body is signed (NetBox) or
 * carries the token (AWX) but is no webhook, so a good secret gets the body's refusal (4xx, not 401)
 * and a bad one 401.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../bridge/ingress/signature.js';
import { assertBuilt, type Running, startUnicop } from '../cli/run-unicop.js';
import { freePort } from '../support/ports.js';
import { type TestRole, testRole } from './vault-support.js';

const graceSeconds = 60; // both rotations must be picked up (30 s re-reads) and probed inside it, on a loaded machine too
const probe = JSON.stringify({ probe: 'vault webhook secret rotation' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('webhook secrets rotated in Vault, against the compiled bridge', () => {
  let role: TestRole;
  let bridge: Running | undefined;
  let url: string;

  type Sender = 'netbox' | 'awx';
  /** The bridge's answer to the probe `sender` sends with `secret` (0: no answer yet). */
  async function answer(secret: string, sender: Sender = 'netbox'): Promise<number> {
    const credential: Record<string, string> =
      sender === 'netbox' ? { 'X-Hook-Signature': signBody(probe, secret) } : { 'X-UNICOP-Token': secret };
    try {
      const res = await fetch(`${url}/webhooks/${sender}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...credential },
        body: probe,
        signal: AbortSignal.timeout(10_000),
      });
      return res.status;
    } catch {
      return 0;
    }
  }
  const accepted = async (secret: string, sender?: Sender) => {
    const status = await answer(secret, sender);
    return status >= 400 && status < 500 && status !== 401;
  };
  const refused = async (secret: string, sender?: Sender) => (await answer(secret, sender)) === 401;

  /** Polls until `check` holds; the cap is generous and never a budget. */
  async function until(check: () => Promise<boolean>, capMs: number, what: string): Promise<number> {
    const end = Date.now() + capMs;
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`${what}: not within ${capMs} ms`);
      await sleep(100);
    }
    return Date.now();
  }

  beforeAll(async () => {
    assertBuilt();
    role = await testRole();
  });

  afterAll(async () => {
    if (bridge && bridge.child.exitCode === null) {
      bridge.child.kill('SIGTERM');
      await bridge.done;
    }
    await role?.remove();
  });

  it('accepts the new version of each webhook secret without a restart, the previous one during the grace, and refuses it after', async () => {
    const first = `first-${crypto.randomUUID()}`;
    const second = `second-${crypto.randomUUID()}`;
    const awxFirst = `awx-first-${crypto.randomUUID()}`;
    const awxSecond = `awx-second-${crypto.randomUUID()}`;
    await role.write('netbox-webhook', { secret: first });
    await role.write('awx-webhook', { secret: awxFirst });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    bridge = startUnicop(['bridge'], {
      ...(process.env.UNICOP_VAR ? { UNICOP_VAR: process.env.UNICOP_VAR } : {}),
      ...role.env,
      UNICOP_BRIDGE_PORT: String(port),
      UNICOP_WEBHOOK_SECRETS: role.ref('netbox-webhook', 'secret'),
      UNICOP_AWX_WEBHOOK_SECRET: role.ref('awx-webhook', 'secret'),
      UNICOP_VAULT_REFRESH_SECONDS: '0.5',
      UNICOP_WEBHOOK_ROTATION_GRACE_SECONDS: String(graceSeconds),
      UNICOP_LOG_LEVEL: 'debug',
    });
    // Listening and connected to Kafka (503 before): the first version is the one it holds.
    await until(async () => ![0, 503].includes(await answer(first)), 180_000, 'the bridge answering');
    expect(await accepted(first)).toBe(true);
    expect(await refused(second)).toBe(true);
    expect(await accepted(awxFirst, 'awx')).toBe(true);
    expect(await refused(awxSecond, 'awx')).toBe(true);

    const { version, createdTime } = await role.write('netbox-webhook', { secret: second });
    const awxVersion = await role.write('awx-webhook', { secret: awxSecond });
    expect([version, awxVersion.version]).toEqual([2, 2]);
    const graceEnds = createdTime.getTime() + graceSeconds * 1000;
    const awxGraceEnds = awxVersion.createdTime.getTime() + graceSeconds * 1000;
    await until(() => accepted(second), 60_000, 'the new version accepted');
    await until(() => accepted(awxSecond, 'awx'), 60_000, "AWX's new version accepted");
    // Still within the grace (or the test could not tell): the previous versions are accepted too.
    expect(Date.now(), 'the new versions were picked up too late to see the grace').toBeLessThan(
      graceEnds - 2000,
    );
    expect(await accepted(first)).toBe(true);
    expect(await accepted(awxFirst, 'awx')).toBe(true);
    expect(Date.now()).toBeLessThan(graceEnds);

    const cap = graceSeconds * 1000 + 60_000;
    const refusedAt = await until(() => refused(first), cap, 'the previous version refused');
    expect(refusedAt).toBeGreaterThanOrEqual(graceEnds - 500); // not before the grace ended
    const awxRefusedAt = await until(() => refused(awxFirst, 'awx'), cap, "AWX's previous version refused");
    expect(awxRefusedAt).toBeGreaterThanOrEqual(awxGraceEnds - 500);
    expect(await accepted(second)).toBe(true);
    expect(await accepted(awxSecond, 'awx')).toBe(true);
    expect(bridge.child.exitCode).toBeNull(); // the same process throughout

    bridge.child.kill('SIGTERM');
    const { stdout, stderr } = await bridge.done;
    const written = stdout + stderr;
    expect(written).toContain('secret has a new version');
    expect(written).toContain(role.ref('netbox-webhook', 'secret'));
    for (const [name, value] of Object.entries({
      first,
      second,
      awxFirst,
      awxSecond,
      secretId: role.secretId,
    })) {
      expect(written.includes(value), `${name} in the bridge's output`).toBe(false);
    }
  });
});
