/**
 * The NetBox client on a connection reset in flight (issue #14, observation 7): an idempotent call
 * — a GET, a lease renewal, a fenced run write without a journal entry — is sent once more and
 * gets its answer; a call whose repeat could act twice (taking a lease, a run write carrying a
 * journal entry) is not, and the reset is the caller's NetboxUnavailableError; a second reset is not
 * retried again. nock stands for NetBox here (decision 0012): a reset at a chosen request is an
 * HTTP fault the real NetBox cannot produce on demand.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NetboxUnavailableError, PluginClient } from '../../core/plugin/client.js';
import { startNock, stopNock } from '../faults/nock.js';

const base = 'http://netbox.resets.invalid';
const token = 'nbt_reset-test.0123456789abcdef';
let nock: ReturnType<typeof startNock>;
const plugin = () => new PluginClient({ baseUrl: base, token, timeoutMs: 5_000 });
/** The error a reset connection gives (an Error: nock 15 never delivers a plain object's). */
const broken = (code: string, message: string) => Object.assign(new Error(message), { code });
const reset = () => broken('ECONNRESET', 'socket hang up');
const lease = { root: 'site/1', token: 7, holder: 'w1', expires_at: '2026-12-01T23:00:00Z' };
const run = { run_id: 'r1', state: 'running' };

beforeAll(() => {
  nock = startNock();
});
afterEach(() => nock.cleanAll());
afterAll(() => stopNock());

describe('core/netbox/http.ts: a connection reset in flight', () => {
  it('a GET reset once is sent again and answers', async () => {
    const scope = nock(base)
      .get('/api/plugins/unicop/roots/1/snapshot/')
      .replyWithError(reset())
      .get('/api/plugins/unicop/roots/1/snapshot/')
      .reply(200, { root: 'site/1', snapshot: {}, hash: 'h' });
    await expect(plugin().snapshot(1)).resolves.toMatchObject({ hash: 'h' });
    expect(scope.isDone()).toBe(true);
  });

  it('a GET reset twice fails after the one retry: NetboxUnavailableError naming the reset', async () => {
    const scope = nock(base)
      .get('/api/plugins/unicop/roots/1/snapshot/')
      .times(2)
      .replyWithError(reset())
      .get('/api/plugins/unicop/roots/1/snapshot/')
      .reply(200, { root: 'site/1', snapshot: {}, hash: 'h' });
    const error = await plugin()
      .snapshot(1)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetboxUnavailableError);
    expect((error as Error).message).toMatch(/ECONNRESET/);
    expect(scope.pendingMocks()).toHaveLength(1);
  });

  it('a lease renewal (POST, same token) broken by EPIPE is sent again and answers', async () => {
    const scope = nock(base)
      .post('/api/plugins/unicop/roots/1/lease/renew/')
      .replyWithError(broken('EPIPE', 'write EPIPE'))
      .post('/api/plugins/unicop/roots/1/lease/renew/')
      .reply(200, lease);
    await expect(plugin().renewLease(1, 7, 60)).resolves.toMatchObject({ token: 7 });
    expect(scope.isDone()).toBe(true);
  });

  it('a fenced run write without a journal entry is sent again and answers', async () => {
    const scope = nock(base)
      .patch('/api/plugins/unicop/runs/r1/')
      .replyWithError(reset())
      .patch('/api/plugins/unicop/runs/r1/')
      .reply(200, run);
    await expect(plugin().updateRun('r1', { fencing_token: 7, state: 'running' })).resolves.toMatchObject(
      run,
    );
    expect(scope.isDone()).toBe(true);
  });

  it('a non-idempotent POST (taking a lease) reset once is not sent again: NetboxUnavailableError', async () => {
    const scope = nock(base)
      .post('/api/plugins/unicop/roots/1/lease/')
      .replyWithError(reset())
      .post('/api/plugins/unicop/roots/1/lease/')
      .reply(200, lease);
    const error = await plugin()
      .acquireLease(1, 'w1', 60)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetboxUnavailableError);
    expect((error as NetboxUnavailableError).retriable).toBe(true);
    expect((error as Error).message).toMatch(/ECONNRESET/);
    expect(scope.pendingMocks()).toHaveLength(1);
  });

  it('a run write carrying a journal entry reset once is not sent again (the entry would be written twice)', async () => {
    const scope = nock(base)
      .patch('/api/plugins/unicop/runs/r1/')
      .replyWithError(reset())
      .patch('/api/plugins/unicop/runs/r1/')
      .reply(200, run);
    const write = {
      fencing_token: 7,
      state: 'succeeded' as const,
      journal: { kind: 'success', comments: 'done' },
    };
    const error = await plugin()
      .updateRun('r1', write as Parameters<PluginClient['updateRun']>[1])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetboxUnavailableError);
    expect(scope.pendingMocks()).toHaveLength(1);
  });
});
