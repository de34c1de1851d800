/**
 * What the fuzz suite found in how the bridge reads a body, kept as plain regression tests (pure: no
 * stack). A signed body nested thousands deep parsed, validated, then made JSON.stringify throw
 * RangeError when the change was written (a 500); a body that is not UTF-8 was decoded with
 * replacement characters, so the change on Kafka was not what was signed. Both are now 400s.
 */
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { maxJsonDepth, nestingDepth, parseJsonBody } from '../../bridge/http/body.js';
import { HttpError } from '../../bridge/http/errors.js';
import { netboxWebhookSchema } from '../../core/events/netbox-webhook.js';

function refusal(raw: Buffer | string): { status: number; reason: string } | 'parsed' {
  try {
    parseJsonBody(Buffer.from(raw), z.unknown());
    return 'parsed';
  } catch (error) {
    if (error instanceof HttpError) return { status: error.statusCode, reason: error.reason };
    throw error;
  }
}

const nested = (depth: number) => `{"data":{"id":1,"deep":${'['.repeat(depth - 2)}${']'.repeat(depth - 2)}}}`;

describe('parseJsonBody against hostile bodies', () => {
  it('refuses a body nested deeper than maxJsonDepth with 400 json_too_deep, before parsing', () => {
    expect(refusal(nested(maxJsonDepth))).toBe('parsed');
    const parse = vi.spyOn(JSON, 'parse');
    try {
      expect(refusal(nested(maxJsonDepth + 1))).toEqual({ status: 400, reason: 'json_too_deep' });
      expect(refusal(nested(200_000))).toEqual({ status: 400, reason: 'json_too_deep' });
      expect(parse).not.toHaveBeenCalled(); // refused before parsing, not parsed and then refused
    } finally {
      parse.mockRestore();
    }
  });

  it('the depth allowed is one JSON.stringify writes back without throwing (what the change append does)', () => {
    const body = parseJsonBody(Buffer.from(nested(maxJsonDepth)), z.unknown());
    expect(() => JSON.stringify({ data: body })).not.toThrow();
  });

  it('counts brackets inside strings and after escaped quotes as text', () => {
    expect(nestingDepth(Buffer.from(`{"a":"${'['.repeat(500)}"}`))).toBe(1);
    expect(nestingDepth(Buffer.from(`{"a":"\\"[[[","b":[[1]]}`))).toBe(3);
    expect(nestingDepth(Buffer.from(`{"a":"\\\\","b":[[1]]}`))).toBe(3);
  });

  it.each([
    ['a lone continuation byte', [0x80]],
    ['0xff', [0xff]],
    ['an overlong slash', [0xc0, 0xaf]],
    ['a UTF-16 surrogate encoded in UTF-8', [0xed, 0xa0, 0x80]],
    ['a truncated 3-byte sequence', [0xe2, 0x82]],
  ])('refuses a body with %s inside a string with 400 malformed_json', (_what, bytes) => {
    const raw = Buffer.concat([Buffer.from('{"name":"a'), Buffer.from(bytes), Buffer.from('b"}')]);
    expect(refusal(raw)).toEqual({ status: 400, reason: 'malformed_json' });
  });

  it('takes well-formed multi-byte UTF-8 and escapes as they are', () => {
    const body = parseJsonBody(Buffer.from('{"name":"zürich \u{1F600} \\ud800"}'), z.unknown());
    expect(body).toEqual({ name: 'zürich \u{1F600} \ud800' });
  });

  it('an empty signed body is validated as {} (422 naming the missing fields), not a parse error', () => {
    try {
      parseJsonBody(Buffer.alloc(0), netboxWebhookSchema);
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ statusCode: 422, reason: 'invalid_body' });
    }
  });
});
