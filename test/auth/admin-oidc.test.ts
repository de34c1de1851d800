/**
 * The admin API behind the stack's real Keycloak (realm unicop, decision 0051): a request without a
 * token, with an expired one, one from another issuer, one meant for another audience, one whose
 * signature was altered or whose algorithm is not accepted is refused 401 naming that check; a
 * viewer may read but not override (403 role_required); an operator's override is audited with the
 * person's name (and their `sub`), and so is the intent it puts on unicop.intents; the shared admin
 * token is refused while break-glass is off and, switched on, let in and audited as break-glass (a
 * distinct audit event and a warn line). The CLI's client credentials sign-in gets an operator's
 * token the admin API accepts. Every answer conforms to openapi/bridge.yaml.
 */
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient, adminCredentials } from '../../core/cli/commands/admin-client.js';
import { parseConfig } from '../../core/config.js';
import { topics } from '../../core/events/catalogue.js';
import { adminCall } from '../support/admin-api.js';
import { type RunningBridge, startBridge } from '../support/bridge.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { keycloak, keycloakUsers, otherServiceToken, userToken } from '../support/keycloak.js';
import { netbox } from '../support/netbox.js';
import { stack, uniqueName } from '../support/stack.js';

const sharedToken = randomBytes(24).toString('hex');

type Json = Record<string, unknown>;

describe('admin API behind Keycloak', () => {
  // OIDC on, break-glass off (the default): the shared token is configured but must not open anything.
  let bridge: RunningBridge;
  let tail: TopicTail;
  let site: { id: number };
  let key: string;

  beforeAll(async () => {
    const name = uniqueName('oidc-site');
    site = await netbox('POST', '/api/dcim/sites/', { name, slug: name });
    key = `site/${site.id}`;
    tail = await TopicTail.start([topics.audit, topics.intents]);
    bridge = await startBridge({
      ...keycloak.env(),
      UNICOP_ADMIN_TOKEN: sharedToken,
      UNICOP_NETBOX_TOKEN: stack.netboxToken(),
    });
  });
  afterAll(async () => {
    await bridge?.close();
    await tail?.stop();
    if (site) await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  });

  const read = (token: string | null) =>
    adminCall(bridge, 'GET', `/roots/${key}`, '/roots/{kind}/{id}', token);

  it('refuses a request without a token: 401 token_missing', async () => {
    expect(await read(null)).toMatchObject({ status: 401, body: { reason: 'token_missing' } });
  });

  it('refuses an expired token: 401 token_expired (the same token was accepted before it expired)', async () => {
    const token = await userToken(keycloakUsers.viewer, 'unicop-test-expiring');
    const exp = Number(decodeJwt(token).exp) * 1000;
    // Used at once it is good (unless this machine is so slow it expired already: then skip that half).
    if (Date.now() < exp - 500) expect((await read(token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(exp - Date.now(), 0) + 1_100));
    expect(await read(token)).toMatchObject({ status: 401, body: { reason: 'token_expired' } });
  });

  it('refuses a token from another issuer: 401 wrong_issuer (a bridge that names the realm by another host)', async () => {
    const issuer = keycloak.issuer();
    const elsewhere = await startBridge({
      UNICOP_OIDC_ISSUER: issuer.replace('127.0.0.1', 'localhost'),
      UNICOP_OIDC_JWKS_URL: `${issuer}/protocol/openid-connect/certs`,
      UNICOP_NETBOX_TOKEN: stack.netboxToken(),
    });
    try {
      const token = await userToken(keycloakUsers.admin);
      const res = await adminCall(elsewhere, 'GET', `/roots/${key}`, '/roots/{kind}/{id}', token);
      expect(res).toMatchObject({ status: 401, body: { reason: 'wrong_issuer' } });
    } finally {
      await elsewhere.close();
    }
  });

  it('refuses a token of the realm meant for another service: 401 wrong_audience (though its account is an admin)', async () => {
    const token = await otherServiceToken();
    expect((decodeJwt(token).realm_access as { roles: string[] }).roles).toContain('admin');
    expect(await read(token)).toMatchObject({ status: 401, body: { reason: 'wrong_audience' } });
  });

  it('refuses an altered signature (401 bad_signature) and an algorithm not accepted (401 algorithm_not_allowed)', async () => {
    const token = await userToken(keycloakUsers.admin);
    const [header, payload, signature = ''] = token.split('.');
    const bytes = Buffer.from(signature, 'base64url');
    bytes[10] = (bytes[10] ?? 0) ^ 0xff;
    const altered = `${header}.${payload}.${bytes.toString('base64url')}`;
    expect(await read(altered)).toMatchObject({ status: 401, body: { reason: 'bad_signature' } });
    // The same claims, "signed" with HS256 (keyed by anything) or not at all.
    const hs256 = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    expect(await read(`${hs256}.${payload}.${signature}`)).toMatchObject({
      status: 401,
      body: { reason: 'algorithm_not_allowed' },
    });
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    expect((await read(`${none}.${payload}.`)).status).toBe(401);
    // And the untouched token is good: what was refused was the alteration.
    expect((await read(token)).status).toBe(200);
  });

  it('a viewer reads but may not override: 403 role_required, nothing frozen', async () => {
    const token = await userToken(keycloakUsers.viewer);
    expect((await read(token)).status).toBe(200);
    expect((await adminCall(bridge, 'GET', '/freeze', '/freeze', token)).status).toBe(200);
    const refused = await adminCall(bridge, 'POST', '/freeze', '/freeze', token, {
      reason: 'viewer tries',
      rootKey: key,
    });
    expect(refused).toMatchObject({ status: 403, body: { reason: 'role_required' } });
    expect(String(refused.body.message)).toContain('role operator required');
    const again = await read(token);
    expect(again.body.root).toMatchObject({ frozen: false });
    // An approver is no operator either.
    const approver = await userToken(keycloakUsers.approver);
    expect(
      (await adminCall(bridge, 'POST', '/sweep', '/sweep', approver, { reason: 'approver tries' })).status,
    ).toBe(403);
  });

  it("an operator's override is audited with the person's name and sub, and so is the intent it emits", async () => {
    const token = await userToken(keycloakUsers.operator);
    const sub = String(decodeJwt(token).sub);
    const reason = `oidc freeze ${Date.now()}`;
    const frozen = await adminCall(bridge, 'POST', '/freeze', '/freeze', token, { reason, rootKey: key });
    expect(frozen).toMatchObject({ status: 200, body: { frozen: true, rootKey: key } });
    const resumed = await adminCall(bridge, 'POST', '/resume', '/resume', token, { reason, rootKey: key });
    expect(resumed).toMatchObject({ status: 200, body: { frozen: false } });
    const audits = await tail.waitFor(
      (m: TailedMessage) => m.topic === topics.audit && (m.value.data as Json).reason === reason,
      2,
    );
    for (const audit of audits) {
      expect(audit.value.data).toMatchObject({
        actor: 'otto-operator',
        metadata: { actorSubject: sub, authenticatedBy: 'oidc' },
      });
    }
    expect(audits.map((a) => (a.value.data as Json).action).sort()).toEqual([
      'automation.frozen',
      'automation.resumed',
    ]);
    const [intent] = await tail.waitFor(
      (m) => m.topic === topics.intents && (m.value.data as Json).intentId === resumed.body.intentId,
    );
    expect(intent?.value.data).toMatchObject({
      cause: {
        kind: 'resume',
        actor: 'otto-operator',
      },
    });
  });

  it('an admin may do what an operator may', async () => {
    const token = await userToken(keycloakUsers.admin);
    const reconcile = ['POST', `/roots/${key}/reconcile`, '/roots/{kind}/{id}/reconcile'] as const;
    const res = await adminCall(bridge, ...reconcile, token, { reason: 'admin asked' });
    expect(res.status).toBe(202);
  });

  it('break-glass off: the shared admin token is refused (401), and nothing is audited as break-glass', async () => {
    expect(await read(sharedToken)).toMatchObject({ status: 401 });
    const uses = await tail.settle(
      (m) => m.topic === topics.audit && (m.value.data as Json).action === 'admin.break_glass_used',
      500,
    );
    expect(uses).toEqual([]);
  });

  it('break-glass on: the shared token is let in, audited as admin.break_glass_used and logged at warn; a wrong one is not', async () => {
    const glass = await startBridge({
      ...keycloak.env(),
      UNICOP_ADMIN_TOKEN: sharedToken,
      UNICOP_ADMIN_BREAK_GLASS: 'true',
      UNICOP_NETBOX_TOKEN: stack.netboxToken(),
    });
    try {
      expect((await adminCall(glass, 'GET', '/freeze', '/freeze', `${sharedToken}x`)).status).toBe(401);
      expect((await adminCall(glass, 'GET', '/freeze', '/freeze', sharedToken)).status).toBe(200);
      const reason = `break-glass override ${Date.now()}`;
      const frozen = await adminCall(glass, 'POST', '/freeze', '/freeze', sharedToken, {
        reason,
        rootKey: key,
      });
      expect(frozen.status).toBe(200);
      await adminCall(glass, 'POST', '/resume', '/resume', sharedToken, { reason, rootKey: key });
      const uses = await tail.waitFor(
        (m) => m.topic === topics.audit && (m.value.data as Json).action === 'admin.break_glass_used',
        3,
      );
      expect(uses.map((u) => (u.value.data as { metadata: Json }).metadata.route)).toEqual(
        expect.arrayContaining(['GET /freeze', 'POST /freeze', 'POST /resume']),
      );
      const [override] = await tail.waitFor(
        (m) =>
          m.topic === topics.audit &&
          (m.value.data as Json).reason === reason &&
          (m.value.data as Json).action === 'automation.frozen',
      );
      expect(override?.value.data).toMatchObject({
        actor: 'break-glass',
        metadata: { authenticatedBy: 'break-glass' },
      });
      expect(glass.logs.filter((l) => l.includes('break-glass token used'))).toHaveLength(3);
      expect(glass.logs.join('')).not.toContain(sharedToken);
      // Keycloak's tokens still work beside it.
      expect(
        (await adminCall(glass, 'GET', '/freeze', '/freeze', await userToken(keycloakUsers.viewer))).status,
      ).toBe(200);
    } finally {
      await glass.close();
    }
  });

  it("the CLI's client credentials sign-in (unicop-cli, an operator's service account) is accepted", async () => {
    const config = parseConfig({
      UNICOP_OIDC_ISSUER: keycloak.issuer(),
      UNICOP_OIDC_CLIENT_ID: 'unicop-cli',
      UNICOP_OIDC_CLIENT_SECRET: keycloak.cliSecretRef(),
    });
    const client = new AdminClient({
      baseUrl: bridge.url,
      credentials: adminCredentials(config),
      attempts: 1,
    });
    const answer = await client.call('GET', `/roots/${key}`);
    expect(answer.status).toBe(200);
    const reason = `cli reconcile ${Date.now()}`;
    const acted = await client.call('POST', `/roots/${key}/reconcile`, { reason }, uniqueName('idem'));
    expect(acted.status).toBe(202);
    const [audit] = await tail.waitFor(
      (m) => m.topic === topics.audit && (m.value.data as Json).reason === reason,
    );
    expect(audit?.value.data).toMatchObject({
      actor: 'service-account-unicop-cli',
      metadata: { authenticatedBy: 'oidc' },
    });
    // A wrong secret is Keycloak's refusal, named.
    const wrong = new AdminClient({
      baseUrl: bridge.url,
      credentials: adminCredentials({ ...config, UNICOP_OIDC_CLIENT_SECRET: 'not-the-secret' }),
      attempts: 1,
    });
    await expect(wrong.call('GET', `/roots/${key}`)).rejects.toThrow(
      /Keycloak refused client unicop-cli: 401/,
    );
  });
});
