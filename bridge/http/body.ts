/** Reading request bodies: raw bytes under a size limit, then JSON validated by a zod schema. */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { MalformedBodyError, PayloadTooLargeError, ValidationError } from './errors.js';

export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new PayloadTooLargeError(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw new PayloadTooLargeError(limit);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Arrays and objects a body may nest: far above any NetBox, AWX or admin body, far below what
 * JSON.stringify recurses through (a signed body nested 5,000 deep made it throw RangeError, a 500,
 * when the change was written: found by the fuzz suite, decision 0049).
 */
export const maxJsonDepth = 64;

/**
 * Parses a raw body as JSON and validates it: 400 when it is not JSON (not UTF-8 — RFC 8259 §8.1:
 * decoding would silently replace bytes, changing what was signed — or nested deeper than
 * maxJsonDepth), 422 naming each bad field.
 */
export function parseJsonBody<T>(raw: Buffer, schema: z.ZodType<T>): T {
  let json: unknown = {};
  if (raw.length > 0) {
    if (!isUtf8(raw)) throw new MalformedBodyError('body is not UTF-8');
    if (nestingDepth(raw) > maxJsonDepth) {
      throw new MalformedBodyError(`body nests deeper than ${maxJsonDepth}`, 'json_too_deep');
    }
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (error) {
      throw new MalformedBodyError(`body is not JSON: ${(error as Error).message}`);
    }
  }
  return validateBody(json, schema);
}

/** The deepest nesting of `[`/`{` outside strings (of any text; JSON.parse judges the rest). */
export function nestingDepth(raw: Buffer): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i];
    if (inString) {
      if (byte === 0x5c)
        i++; // backslash: the next byte is escaped
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x5b || byte === 0x7b) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (byte === 0x5d || byte === 0x7d) depth--;
  }
  return deepest;
}

/** Validates an already parsed body: 422 naming each bad field. */
export function validateBody<T>(json: unknown, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new ValidationError(
      parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message })),
    );
  }
  return parsed.data;
}
