/** Reading request bodies: raw bytes under a size limit, then JSON validated by a zod schema. */
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

/** Parses a raw body as JSON and validates it: 400 when it is not JSON, 422 naming each bad field. */
export function parseJsonBody<T>(raw: Buffer, schema: z.ZodType<T>): T {
  let json: unknown = {};
  if (raw.length > 0) {
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (error) {
      throw new MalformedBodyError(`body is not JSON: ${(error as Error).message}`);
    }
  }
  return validateBody(json, schema);
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
