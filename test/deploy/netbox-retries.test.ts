/**
 * deploy/netbox/configuration.py (the netbox-unicop image) retries undelivered webhooks exactly as
 * the local stack's NetBox does (scripts/stack.d/netbox.sh writes RQ_RETRY_MAX and
 * RQ_RETRY_INTERVAL; decision 0036), and NETBOX_RQ_RETRY_* override both. The image's
 * configuration is evaluated by python3 as NetBox would import it (build mode, so no secret files;
 * Django's one import stubbed), the stack's values read from the lines netbox.sh writes.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';

const evaluate = `
import json, runpy, sys, types
exceptions = types.ModuleType('django.core.exceptions')
exceptions.ImproperlyConfigured = Exception
for name in ('django', 'django.core'):
    sys.modules[name] = types.ModuleType(name)
sys.modules['django.core.exceptions'] = exceptions
config = runpy.run_path(sys.argv[1])
print(json.dumps({'max': config['RQ_RETRY_MAX'], 'interval': config.get('RQ_RETRY_INTERVAL')}))
`;

function imageRetries(env: Record<string, string> = {}): { max: number; interval: unknown } {
  const answer = execFileSync(
    'python3',
    ['-c', evaluate, join(repoRoot, 'deploy', 'netbox', 'configuration.py')],
    { env: { PATH: process.env.PATH, NETBOX_SECRET_KEY_BUILD: 'test-only', ...env }, encoding: 'utf8' },
  );
  return JSON.parse(answer);
}

function stackRetries(): { max: number; interval: unknown } {
  const script = readFileSync(join(repoRoot, 'scripts', 'stack.d', 'netbox.sh'), 'utf8');
  const max = /^RQ_RETRY_MAX = (\d+)$/m.exec(script)?.[1];
  const interval = /^RQ_RETRY_INTERVAL = (\[[\d, ]+\])$/m.exec(script)?.[1];
  if (!max || !interval)
    throw new Error('scripts/stack.d/netbox.sh writes no RQ_RETRY_MAX / RQ_RETRY_INTERVAL');
  return { max: Number(max), interval: JSON.parse(interval) };
}

describe("the netbox-unicop image's webhook retries", () => {
  it('are the local stack’s: the same RQ_RETRY_MAX and RQ_RETRY_INTERVAL', () => {
    const stack = stackRetries();
    expect(stack.max).toBeGreaterThan(0);
    expect(imageRetries()).toEqual(stack);
  });

  it('are set by NETBOX_RQ_RETRY_MAX and NETBOX_RQ_RETRY_INTERVAL', () => {
    expect(imageRetries({ NETBOX_RQ_RETRY_MAX: '4', NETBOX_RQ_RETRY_INTERVAL: '5, 30,60' })).toEqual({
      max: 4,
      interval: [5, 30, 60],
    });
  });
});
