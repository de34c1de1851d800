/**
 * Identifiers. Every CloudEvent id is a UUIDv7 (RFC 9562: 48-bit Unix milliseconds, version 7,
 * variant 10, then 74 further bits). For events that must keep the same id when they are produced
 * again — a change re-delivered by NetBox, an intent re-derived on replay — those 74 bits come from
 * a SHA-256 of the event's identity instead of from randomness, and the time from the event's own
 * timestamp: still a valid, time-ordered UUIDv7, and the same input gives the same id.
 */
import { createHash, randomFillSync } from 'node:crypto';

function formatV7(timeMs: number, tail: Buffer): string {
  const bytes = Buffer.alloc(16);
  bytes.writeUIntBE(Math.max(0, Math.floor(timeMs)) % 2 ** 48, 0, 6);
  tail.copy(bytes, 6, 0, 10);
  bytes[6] = 0x70 | ((bytes[6] ?? 0) & 0x0f);
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Random bytes drawn 4 KiB at a time and handed out 10 at a time: one `randomFillSync` per id was
 * a webhook's largest single cost after the HMAC (decision 0059). Node's own `randomUUID()` pools
 * its entropy the same way; the bytes are as random, only fetched in bulk.
 */
const entropy = Buffer.alloc(4096);
let entropyUsed = entropy.length;

function randomTail(): Buffer {
  if (entropyUsed + 10 > entropy.length) {
    randomFillSync(entropy);
    entropyUsed = 0;
  }
  entropyUsed += 10;
  return entropy.subarray(entropyUsed - 10, entropyUsed);
}

/** A fresh UUIDv7 for now. */
export function uuidv7(now = Date.now()): string {
  return formatV7(now, randomTail());
}

/** A UUIDv7 determined by (timeMs, identity): the same arguments always give the same id. */
export function deterministicUuidv7(timeMs: number, ...identity: (string | number)[]): string {
  const digest = createHash('sha256').update(identity.map(String).join('\u001f')).digest();
  return formatV7(timeMs, digest);
}

export const uuidv7Pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A run id as the plugin names runs (any UUID, either case): what a run path or command may carry. */
export const runIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
