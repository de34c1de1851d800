/**
 * The fail-safe's triggers on their own (workers/failsafe/triggers.ts, pure): when each trips, with
 * which figures, and that evidence from before a person's resume does not count. The component
 * around them, on the real stack: failsafe.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { freezeReasonLabel } from '../../core/control/automatic-freeze.js';
import {
  ConsumerLagTrigger,
  FailedRootsTrigger,
  ResolverErrorTrigger,
} from '../../workers/failsafe/triggers.js';

const t = (seconds: number) => new Date(Date.UTC(2026, 11, 2, 12) + seconds * 1000);

describe('fail-safe triggers', () => {
  it('consumer_lag trips only once the lag stayed above N on every reading for M seconds, counted from a resume', () => {
    const lag = new ConsumerLagTrigger({
      records: 3,
      seconds: 10,
      group: 'unicop-resolver',
      topic: 'unicop.changes',
    });
    lag.observe(5, t(0));
    expect(lag.check(t(9), null)).toBeNull();
    lag.observe(null, t(5)); // unreadable: neither breaks nor lengthens the run above
    lag.observe(7, t(10));
    expect(lag.check(t(10), null)).toEqual({
      trigger: 'consumer_lag',
      figures:
        'consumer group unicop-resolver has 7 records of unicop.changes not handled, above 3 on every reading for 10 s (threshold 10 s)',
    });
    expect(lag.check(t(10), t(4))).toBeNull(); // a person resumed at 4 s: only 6 s since
    lag.observe(3, t(11)); // at the threshold, not above: the run is broken
    lag.observe(9, t(12));
    expect(lag.check(t(21), null)).toBeNull();
    expect(
      new ConsumerLagTrigger({ records: 0, seconds: 0, group: 'g', topic: 't' }).check(t(0), null),
    ).toBeNull();
  });

  it.each([
    [
      'one reading above N, then only unreadable ones',
      [
        [5, 0],
        [null, 5],
        [null, 30],
      ],
      30,
    ],
    [
      'readings above N for less than M, then unreadable ones',
      [
        [5, 0],
        [6, 4],
        [null, 20],
      ],
      20,
    ],
  ] as const)(
    'consumer_lag does not trip on %s: a run above is measured up to its last good reading',
    (_name, readings, checkAt) => {
      const lag = new ConsumerLagTrigger({ records: 3, seconds: 10, group: 'g', topic: 't' });
      for (const [value, at] of readings) lag.observe(value, t(at));
      expect(lag.check(t(checkAt), null)).toBeNull();
    },
  );

  it('resolver_errors trips above the rate once the window holds the minimum of attempts, within the window only', () => {
    const errors = new ResolverErrorTrigger({ rate: 0.5, windowSeconds: 60, minRecords: 5 });
    errors.observe({ ok: 10, error: 0 }, t(0));
    errors.observe({ ok: 11, error: 3 }, t(1));
    expect(errors.check(t(1), null)).toBeNull(); // 4 attempts: fewer than the minimum
    errors.observe({ ok: 11, error: 6 }, t(2));
    expect(errors.check(t(2), null)).toEqual({
      trigger: 'resolver_errors',
      figures:
        '6 of 7 resolver record attempts ended in an error over the last 2 s (85.7 %, above 50 %; at least 5 attempts counted)',
    });
    expect(errors.check(t(2), t(1))).toBeNull(); // since the resume: 3 of 3, fewer than the minimum
    errors.observe({ ok: 30, error: 12 }, t(30));
    expect(errors.check(t(30), null)).toBeNull(); // 12 of 32: not above half
    errors.observe({ ok: 30, error: 12 }, t(120));
    expect(errors.check(t(120), null)).toBeNull(); // the window moved past every error
    expect(
      new ResolverErrorTrigger({ rate: 1, windowSeconds: 60, minRecords: 1 }).check(t(0), null),
    ).toBeNull();
  });

  it('resolver_errors after a resume counts from the first sample taken after it, not the errors made while frozen', () => {
    // Frozen, the fail-safe samples nothing: its last sample is from before the freeze.
    const errors = new ResolverErrorTrigger({ rate: 0.5, windowSeconds: 600, minRecords: 5 });
    errors.observe({ ok: 100, error: 0 }, t(0));
    // Frozen from 1 s to 1800 s, the resolver failing 890 times meanwhile; a person resumes at 1800 s.
    const resume = t(1800);
    errors.observe({ ok: 110, error: 890 }, t(1805));
    expect(errors.check(t(1805), resume)).toBeNull(); // one sample since the resume: nothing to count
    errors.observe({ ok: 111, error: 892 }, t(1810));
    expect(errors.check(t(1810), resume)).toBeNull(); // 2 of 3 since: fewer than the minimum
    errors.observe({ ok: 111, error: 898 }, t(1815)); // the condition goes on after the resume
    expect(errors.check(t(1815), resume)).toEqual({
      trigger: 'resolver_errors',
      figures:
        '8 of 9 resolver record attempts ended in an error over the last 10 s (88.9 %, above 50 %; at least 5 attempts counted)',
    });
  });

  it('failed_roots counts distinct roots with failed or timed_out runs in the window, not canceled, denied or succeeded', () => {
    const roots = new FailedRootsTrigger({ roots: 2, windowSeconds: 60 });
    const end = (rootKey: string, state: string, at: number) =>
      roots.observe({ rootKey, state, finishedAt: t(at) });
    end('site/1', 'failed', 0);
    end('site/1', 'failed', 1);
    end('site/2', 'timed_out', 2);
    end('site/3', 'canceled', 3);
    end('site/4', 'denied', 3);
    end('site/5', 'succeeded', 3);
    expect(roots.check(t(4), null)).toBeNull(); // two roots: not more than 2
    end('site/6', 'failed', 5);
    expect(roots.check(t(5), null)).toEqual({
      trigger: 'failed_roots',
      figures: 'runs failed for 3 distinct roots within 60 s (more than 2): site/1, site/2, site/6',
    });
    expect(roots.check(t(5), t(2))).toBeNull(); // resumed at 2 s: site/2 and site/6 only
    expect(roots.check(t(62), null)).toBeNull(); // site/1 left the window (site/2, site/6 stay)
  });

  it('failed_roots does not count runs the validation gate refused (invalid_snapshot); template_misconfigured counts', () => {
    const roots = new FailedRootsTrigger({ roots: 2, windowSeconds: 60 });
    for (const rootKey of ['site/1', 'site/2', 'site/3', 'site/4'])
      roots.observe({ rootKey, state: 'failed', failureClass: 'invalid_snapshot', finishedAt: t(1) });
    expect(roots.check(t(2), null)).toBeNull();
    for (const rootKey of ['site/5', 'site/6', 'site/7'])
      roots.observe({ rootKey, state: 'failed', failureClass: 'template_misconfigured', finishedAt: t(1) });
    expect(roots.check(t(2), null)).toEqual({
      trigger: 'failed_roots',
      figures: 'runs failed for 3 distinct roots within 60 s (more than 2): site/5, site/6, site/7',
    });
  });

  it("labels a global freeze by its reason: a person's, or the fail-safe trigger's", () => {
    const at = t(0).toISOString();
    const freeze = (actor: string, reason: string, frozen = true) =>
      ({ scope: 'global', rootKey: null, frozen, reason, actor, at }) as const;
    expect(freezeReasonLabel(null)).toBeNull();
    expect(freezeReasonLabel(freeze('alice', 'data-centre move'))).toBe('person');
    expect(freezeReasonLabel(freeze('unicop', 'fail-safe failed_roots: runs failed for 3 …'))).toBe(
      'failed_roots',
    );
    expect(freezeReasonLabel(freeze('alice', 'fail-safe failed_roots: pretending'))).toBe('person');
    expect(freezeReasonLabel(freeze('unicop', 'fail-safe consumer_lag: …', false))).toBeNull();
  });
});
