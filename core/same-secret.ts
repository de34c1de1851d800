/**
 * The one way UNICOP compares a secret someone sent with the one it holds (the AWX notification
 * secret, a webhook signature, the admin token). Both sides are first reduced to HMAC-SHA256 digests
 * under a key made fresh for this process, and the two 32-byte digests are compared with
 * `timingSafeEqual`: the time taken does not depend on where the values first differ nor on their
 * lengths, so a caller learns neither the secret's bytes nor its length. (Comparing the raw buffers
 * needs equal lengths first, and returning early on a length mismatch tells the caller the length.)
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// Keyed, so that a digest is no use outside this process (nothing can be precomputed against it).
const digestKey = randomBytes(32);

function digest(value: string | Buffer): Buffer {
  return createHmac('sha256', digestKey).update(value).digest();
}

/** Whether `given` equals `expected`, in time independent of either's content and length. */
export function sameSecret(given: string | Buffer, expected: string | Buffer): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}
