/**
 * Issue #18 item 5, the comparisons of what a caller sends with a secret UNICOP holds
 * (core/same-secret.ts): AWX's notification secret (X-UNICOP-Token or basic auth) and NetBox's
 * webhook signature. A wrong value of any length — shorter, longer, a prefix, empty, huge — must cost
 * the same constant-time comparison of two fixed-length digests as a right one; returning early on a
 * length mismatch tells the caller the secret's length. Watched at `timingSafeEqual` itself (a
 * wrapper of node:crypto's), not by timing, so the test is exact on a loaded machine.
 */
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { awxNotificationAuthenticated } from '../../bridge/ingress/awx-webhook.js';
import { checkHookSignature, signBody } from '../../bridge/ingress/signature.js';
import { sameSecret } from '../../core/same-secret.js';

/** The lengths of the two buffers of each timingSafeEqual call, in order. */
const compared = vi.hoisted(() => [] as [number, number][]);
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared.push([a.byteLength, b.byteLength]);
      return real.timingSafeEqual(a, b);
    },
  };
});

const secret = randomBytes(24).toString('hex'); // 48 characters
/** Wrong values of every kind of length: none may be told apart from another by the work done. */
const wrong = {
  empty: '',
  'one byte': 'x',
  'a prefix': secret.slice(0, -1),
  'one byte longer': `${secret}x`,
  'same length, one byte off': `${secret.slice(0, -1)}${secret.endsWith('0') ? '1' : '0'}`,
  huge: 'y'.repeat(100_000),
};
const basic = (password: string) => `Basic ${Buffer.from(`awx:${password}`).toString('base64')}`;

beforeEach(() => {
  compared.length = 0;
});

describe('comparing a secret a caller sent', () => {
  it('sameSecret: equal only for the same value, one comparison of two 32-byte digests whatever the lengths', () => {
    expect(sameSecret(secret, secret)).toBe(true);
    for (const [what, value] of Object.entries(wrong)) {
      compared.length = 0;
      expect(sameSecret(value, secret), what).toBe(false);
      expect(compared, what).toEqual([[32, 32]]);
    }
  });

  it("AWX's notification secret: a wrong X-UNICOP-Token of any length costs the same comparison as the right one", () => {
    expect(awxNotificationAuthenticated({ 'x-unicop-token': secret }, secret)).toBe(true);
    expect(compared).toEqual([[32, 32]]);
    for (const [what, value] of Object.entries(wrong)) {
      compared.length = 0;
      expect(awxNotificationAuthenticated({ 'x-unicop-token': value }, secret), what).toBe(false);
      expect(compared, what).toEqual([[32, 32]]);
    }
  });

  it("AWX's notification secret: a wrong basic-auth password of any length costs the same comparison as the right one", () => {
    expect(awxNotificationAuthenticated({ authorization: basic(secret) }, secret)).toBe(true);
    expect(compared).toEqual([[32, 32]]);
    for (const [what, value] of Object.entries(wrong)) {
      compared.length = 0;
      expect(awxNotificationAuthenticated({ authorization: basic(value) }, secret), what).toBe(false);
      expect(compared, what).toEqual([[32, 32]]);
    }
  });

  it("NetBox's webhook signature: a wrong X-Hook-Signature of any length is compared with every secret, by digest", () => {
    const body = Buffer.from('{"event":"updated"}');
    const secrets = [randomBytes(16).toString('hex'), secret];
    expect(checkHookSignature(body, signBody(body, secret), secrets)).toBe('valid');
    expect(compared).toEqual([
      [32, 32],
      [32, 32],
    ]);
    const signature = signBody(body, secret);
    const wrongSignatures = {
      ...wrong,
      'a prefix': signature.slice(0, -1),
      'one byte longer': `${signature}0`,
    };
    for (const [what, value] of Object.entries(wrongSignatures)) {
      if (value === '') continue; // no header at all: 'missing', before any comparison
      compared.length = 0;
      expect(checkHookSignature(body, value, secrets), what).toBe('invalid');
      expect(compared, what).toEqual([
        [32, 32],
        [32, 32],
      ]);
    }
  });
});
