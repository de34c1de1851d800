/**
 * The realm's discovery document is fetched once per process (core/auth/realm.ts, decision 0057):
 * the client credentials grant against the stack's real Keycloak signs in again when its token is
 * (nearly) expired — here a clock moved past it — and asks the token endpoint again, but not the
 * discovery document. Requests are counted on the global fetch, not answered by the test.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClientCredentials } from '../../core/auth/client-credentials.js';
import { type Clock, systemClock } from '../../core/clock.js';
import { resolveSecret } from '../../core/config.js';
import { keycloak } from '../support/keycloak.js';
import { stackFact } from '../support/stack.js';

describe('client credentials', () => {
  afterEach(() => vi.restoreAllMocks());

  it('signs in again past its token, reading the discovery document only once', async () => {
    let now = Date.now();
    const clock: Clock = { ...systemClock, now: () => new Date(now) };
    const signIn = new ClientCredentials({
      issuer: keycloak.issuer(),
      clientId: stackFact('UNICOP_OIDC_CLIENT_ID'),
      clientSecret: resolveSecret(keycloak.cliSecretRef(), process.env),
      clock,
    });
    const asked: string[] = [];
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      asked.push(String(input instanceof Request ? input.url : input));
      return realFetch(input, init);
    });
    const first = await signIn.accessToken();
    expect(await signIn.accessToken()).toBe(first); // held: no request
    now += 24 * 3600_000; // past its expiry
    await new Promise((r) => setTimeout(r, 1100)); // a new token differs in iat
    const second = await signIn.accessToken();
    expect(second).not.toBe(first);
    expect(asked.filter((u) => u.endsWith('/.well-known/openid-configuration'))).toHaveLength(1);
    expect(asked.filter((u) => u.endsWith('/protocol/openid-connect/token'))).toHaveLength(2);
  }, 60_000);
});
