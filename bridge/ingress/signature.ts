/**
 * NetBox signs a webhook with `X-Hook-Signature`: the lowercase hex HMAC-SHA512 of the raw body,
 * keyed by the webhook's secret. Several secrets may be valid at once (rotation). Every candidate is
 * compared in constant time, and all of them are always compared, so timing reveals nothing.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureCheck = 'valid' | 'missing' | 'invalid';

export function checkHookSignature(
  raw: Buffer,
  header: string | string[] | undefined,
  secrets: readonly string[],
): SignatureCheck {
  if (typeof header !== 'string' || header.length === 0) return 'missing';
  const given = Buffer.from(header.trim().toLowerCase(), 'utf8');
  let valid = false;
  for (const secret of secrets) {
    const expected = Buffer.from(createHmac('sha512', secret).update(raw).digest('hex'), 'utf8');
    if (given.length === expected.length && timingSafeEqual(given, expected)) valid = true;
  }
  return valid ? 'valid' : 'invalid';
}

export function signBody(raw: Buffer | string, secret: string): string {
  return createHmac('sha512', secret).update(raw).digest('hex');
}
