/**
 * The operator commands' pure parts, without any service: how a time or offset on the command
 * line is read, which events a root's timeline and `tail --type` keep, how an admin request is
 * fingerprinted for its idempotency key, and how a root's status is summarised.
 */
import { describe, expect, it } from 'vitest';
import { requestFingerprint } from '../../bridge/admin/idempotency.js';
import { RootFilter, type ShownEvent, typeMatches } from '../../core/cli/commands/events.js';
import { parseSince, UsageError } from '../../core/cli/commands/output.js';
import { parseFrom } from '../../core/cli/commands/replay.js';
import { describeStatus, rootStatus } from '../../core/cli/commands/root-status.js';
import type { PluginRoot } from '../../core/plugin/client.js';

const now = new Date('2026-12-01T18:00:00.000Z');

function event(type: string, key: string | null, data: Record<string, unknown>): ShownEvent {
  return { time: now.toISOString(), topic: 't', partition: 0, offset: '0', key, type, subject: null, data };
}

describe('command-line times and offsets', () => {
  it('--since takes a duration ago or an ISO time, and refuses anything else as a usage error', () => {
    expect(parseSince('15m', now, '--since').toISOString()).toBe('2026-12-01T17:45:00.000Z');
    expect(parseSince('2d', now, '--since').toISOString()).toBe('2026-11-29T18:00:00.000Z');
    expect(parseSince('2026-12-01T10:00:00Z', now, '--since').toISOString()).toBe('2026-12-01T10:00:00.000Z');
    expect(() => parseSince('yesterday', now, '--since')).toThrow(UsageError);
    expect(() => parseSince('15 m', now, '--since')).toThrow(/--since: expected a time/);
  });

  it('replay --from takes a time, one offset for every partition, or partition:offset pairs', () => {
    expect(parseFrom('1h', now)).toEqual({ since: new Date('2026-12-01T17:00:00.000Z') });
    expect(parseFrom('1200', now)).toEqual({ offsets: new Map(), others: 1200n });
    expect(parseFrom('0:5,2:7', now)).toEqual({
      offsets: new Map([
        ['unicop.changes/0', 5n],
        ['unicop.changes/2', 7n],
      ]),
    });
    expect(() => parseFrom('0:5,x', now)).toThrow(/--from: expected a time/);
  });
});

describe("a root's timeline", () => {
  it('keeps what is keyed by the root or names it, the changes its intents came from and its AWX jobs, nothing else', () => {
    const filter = new RootFilter('site/7');
    const intent = event('intent', 'site/7', {
      rootKey: 'site/7',
      cause: { kind: 'change', changeId: 'c1' },
    });
    const launched = event('audit', 'site/7', { action: 'run.launched', correlation: { awxJobId: 41 } });
    for (const e of [intent, launched]) filter.learn(e);
    expect(filter.matches(intent)).toBe(true);
    expect(filter.matches(event('change', 'dcim.site:7', { changeId: 'c1' }))).toBe(true);
    expect(filter.matches(event('change', 'dcim.site:7', { changeId: 'c2' }))).toBe(false);
    expect(filter.matches(event('awx-job-status', '41', { awxJobId: 41 }))).toBe(true);
    expect(filter.matches(event('awx-job-status', '42', { awxJobId: 42 }))).toBe(false);
    expect(filter.matches(event('intent', 'site/70', { rootKey: 'site/70', cause: {} }))).toBe(false);
    // What another root's events say is not learned.
    filter.learn(event('intent', 'site/70', { rootKey: 'site/70', cause: { changeId: 'c3' } }));
    expect(filter.matches(event('change', 'x', { changeId: 'c3' }))).toBe(false);
  });

  it('--type matches the event type, an audit action, or an audit action prefix ending in a dot', () => {
    const leased = event('audit', 'site/7', { action: 'lease.acquired' });
    expect(typeMatches(leased, [])).toBe(true);
    expect(typeMatches(leased, ['audit'])).toBe(true);
    expect(typeMatches(leased, ['lease.acquired'])).toBe(true);
    expect(typeMatches(leased, ['lease.'])).toBe(true);
    expect(typeMatches(leased, ['lease'])).toBe(false);
    expect(typeMatches(leased, ['intent', 'run.'])).toBe(false);
    expect(typeMatches(event('intent', 'site/7', {}), ['intent'])).toBe(true);
  });
});

describe('idempotency fingerprints', () => {
  it('are equal for the same request whatever the order of its JSON keys, and differ for another body or path', () => {
    const a = requestFingerprint('POST', '/freeze', Buffer.from('{"reason":"window","rootKey":"site/1"}'));
    const b = requestFingerprint(
      'POST',
      '/freeze',
      Buffer.from('{ "rootKey": "site/1", "reason": "window" }'),
    );
    expect(a).toBe(b);
    expect(
      requestFingerprint('POST', '/freeze', Buffer.from('{"reason":"other","rootKey":"site/1"}')),
    ).not.toBe(a);
    expect(
      requestFingerprint('POST', '/resume', Buffer.from('{"reason":"window","rootKey":"site/1"}')),
    ).not.toBe(a);
  });
});

describe('root status', () => {
  it('says whether the current hash is the reconciled one, and carries the lease and the last run', () => {
    const root = {
      key: 'site/7',
      kind: 'site',
      status: 'in_sync',
      frozen: false,
      frozen_reason: '',
      current_hash: 'a'.repeat(64),
      last_reconciled_hash: 'a'.repeat(64),
      lease: { live: true, holder: 'w1', token: 9, expires_at: '2026-12-01T18:01:00Z', highest_token: 9 },
      last_run: {
        run_id: 'r1',
        state: 'succeeded',
        cause: 'change',
        fencing_token: 8,
        snapshot_hash: 'a'.repeat(64),
        started: '2026-12-01T17:59:00Z',
        finished: '2026-12-01T17:59:05Z',
        awx_job_type: 'job',
        awx_job_id: 102,
        awx_job_url: 'http://awx/#/jobs/playbook/102',
        outcome_class: '',
      },
    } as unknown as PluginRoot;
    const status = rootStatus(root);
    expect(status).toMatchObject({
      inStep: true,
      lease: { live: true, holder: 'w1', token: 9 },
      lastRun: { runId: 'r1', state: 'succeeded', awxJobId: 102, failureClass: null },
    });
    expect(rootStatus({ ...root, current_hash: 'b'.repeat(64) } as PluginRoot).inStep).toBe(false);
    // A change not hashed yet: the stored hash says nothing about NetBox now (plugin decision 0043).
    const stale = rootStatus({ ...root, hash_stale: true } as PluginRoot);
    expect(stale.inStep).toBe(false);
    expect(describeStatus(stale)).toContain('stale: a change not hashed yet');
    expect(rootStatus({ ...root, current_hash: '', last_reconciled_hash: '' } as PluginRoot).inStep).toBe(
      false,
    );
  });
});
