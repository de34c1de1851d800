/**
 * NetBox signs a webhook with `X-Hook-Signature`: the lowercase hex HMAC-SHA512 of the raw body,
 * keyed by the webhook's secret. Several secrets may be valid at once (rotation). Every candidate is
 * compared by digest (core/same-secret.ts: the time depends neither on the content nor on the length
 * of the header), and all of them are always compared, so timing reveals nothing.
 */
import { createHmac } from 'node:crypto';
import { sameSecret } from '../../core/same-secret.js';

export type SignatureCheck = 'valid' | 'missing' | 'invalid';

export function checkHookSignature(
  raw: Buffer,
  header: string | string[] | undefined,
  secrets: readonly string[],
): SignatureCheck {
  if (typeof header !== 'string' || header.length === 0) return 'missing';
  const given = header.trim().toLowerCase();
  let valid = false;
  for (const secret of secrets) {
    if (sameSecret(given, signBody(raw, secret))) valid = true;
  }
  return valid ? 'valid' : 'invalid';
}

export function signBody(raw: Buffer | string, secret: string): string {
  return createHmac('sha512', secret).update(raw).digest('hex');
}
