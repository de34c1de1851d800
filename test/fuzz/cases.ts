/**
 * The fuzz suite's cases: NetBox webhook deliveries as NetBox 4.4–4.7 send them (every event, both
 * body shapes), signed, then mutated. fast-check draws a *spec* from the seed — which delivery, which
 * mutation and its parameters — and `buildCase` turns it into bytes, headers and the answer the
 * bridge must give, decided by the mutation alone (never by running the bridge's own parser):
 *
 *   202 accepted ........ a new signed delivery, however sent (slow, chunked, odd content type, …)
 *   200 duplicate/echo .. a replay of an accepted delivery; a delivery made by UNICOP's own user
 *   401 ................. signature missing, wrong, duplicated
 *   413 ................. body over the limit (declared or streamed)
 *   400 ................. not JSON: truncated, not UTF-8, nested too deep, garbage
 *   422 ................. JSON of the wrong shape: wrong types, missing fields, absurd values
 *   404/405/400/431 ..... odd paths and methods, a request Node's parser refuses
 *
 * 503 is never expected here: only a bridge whose Kafka is down may answer it (run.ts's own phase).
 * Object types are ones outside the root catalogue, so the shared stack's resolver makes no work of
 * the changes. Each body carries a canary the bridge's log must never show.
 */
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';

export interface FuzzSettings {
  /** The secret the bridge verifies with, and another one it does not know. */
  secret: string;
  otherSecret: string;
  maxBytes: number;
  /** UNICOP's own NetBox user: its deliveries are echoes. */
  ownUsername: string;
  /** Unique per run: keeps deliveries new for the bridge's 24 h de-duplication memory. */
  nonce: string;
  /** Put in every body; must never appear in the bridge's log. */
  canary: string;
  /** The time the deliveries are dated around (ms). */
  epochMs: number;
}

/** The answer a case must get: status, and the reason (refusals) or status field (2xx). */
export interface Expected {
  status: number;
  /** `reason` of a refusal; `status` of a 2xx body (accepted, duplicate, ignored); null: any/none. */
  reason: string | null;
  /** The bridge counts it in unicop_webhooks_rejected_total (the webhook route was reached). */
  counted: boolean;
}

export interface FuzzCase {
  index: number;
  /** The mutation's name, e.g. `signature:flipped`; tallies are by it. */
  mutation: string;
  method: string;
  path: string;
  /** Raw header pairs (a name may repeat). */
  headers: [string, string][];
  body: Buffer;
  /** Send without Content-Length (chunked transfer encoding). */
  chunked: boolean;
  /** Send the body in this many pieces, `trickleMs` apart (1: one write). */
  pieces: number;
  trickleMs: number;
  expected: Expected;
  /** A replay: the index of the earlier new delivery whose bytes it resends (sent after that one's answer). */
  replayOf?: number;
}

const fuzzObjectTypes = [
  'circuits.circuit',
  'circuits.provider',
  'dcim.manufacturer',
  'dcim.platform',
  'extras.tag',
  'ipam.rir',
  'virtualization.cluster',
  'fuzz.widget',
] as const;

const deliverySpec = fc.record({
  version: fc.constantFrom('4.4', '4.7'),
  event: fc.constantFrom('created', 'updated', 'deleted'),
  objectType: fc.constantFrom(...fuzzObjectTypes),
  objectId: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  offsetMs: fc.integer({ min: -86_400_000, max: 86_400_000 }),
  pythonTime: fc.boolean(),
  actor: fc.option(fc.string({ unit: 'grapheme', maxLength: 30 }), { nil: null, freq: 5 }),
  name: fc.string({ unit: 'binary', maxLength: 40 }),
  customFields: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
  withRequestNull: fc.boolean(),
});
export type DeliverySpec = typeof deliverySpec extends fc.Arbitrary<infer T> ? T : never;

const validVariants = [
  'plain',
  'content_type:text/plain',
  'content_type:none',
  'content_type:form',
  'signature:uppercase',
  'signature:padded',
  'path:trailing_slash',
  'path:query',
  'path:dot_segment',
  'chunked',
  'unknown_fields',
  'unicode_escapes',
  'nested_ok',
  'duplicate_key:valid_last',
] as const;

const signatureFaults = [
  'missing',
  'empty',
  'other_secret',
  'flipped',
  'truncated',
  'of_other_body',
  'not_hex',
  'duplicated',
  'sha256',
] as const;

const notJson = [
  'bom',
  'trailing_garbage',
  'single_quotes',
  'nan',
  'comment',
  'random_bytes',
  'two_documents',
] as const;

const notUtf8 = [
  [0x80],
  [0xff],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xe2, 0x82],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];

/** Each a body field made wrong, and how; all 422 invalid_body. */
const wrongShapes = [
  'event:number',
  'event:unknown',
  'event:missing',
  'timestamp:not_a_date',
  'timestamp:number',
  'timestamp:empty',
  'timestamp:year_10000',
  'timestamp:before_1970',
  'object_type:upper',
  'object_type:no_dot',
  'object_type:huge',
  'type:missing',
  'data:missing',
  'data:array',
  'data:string',
  'data.id:string',
  'data.id:zero',
  'data.id:negative',
  'data.id:float',
  'data.id:unsafe',
  'data.last_updated:number',
  'snapshots:string',
  'snapshots.postchange:number',
  'request:string',
  'request.user:number',
  'request.id:huge',
  'username:huge',
  'root:array',
  'root:null',
  'root:number',
  'root:string',
  'duplicate_key:invalid_last',
  'empty_body',
] as const;

const oddRequests = [
  ['GET', '/webhooks/netbox', 405, 'method_not_allowed'],
  ['PUT', '/webhooks/netbox', 405, 'method_not_allowed'],
  ['DELETE', '/webhooks/netbox', 405, 'method_not_allowed'],
  ['PATCH', '/webhooks/netbox', 405, 'method_not_allowed'],
  ['OPTIONS', '/webhooks/netbox', 405, 'method_not_allowed'],
  ['HEAD', '/webhooks/netbox', 405, null],
  ['POST', '/webhooks/netbox2', 404, 'not_found'],
  ['POST', '/webhooks', 404, 'not_found'],
  ['POST', '/', 404, 'not_found'],
  ['POST', '/webhooks/NETBOX', 404, 'not_found'],
  ['POST', '/webhooks/netbox/extra', 404, 'not_found'],
  ['POST', '/webhooks/%zz', 404, 'not_found'],
  ['POST', '/webhooks/netbox/..', 404, 'not_found'],
  ['FUZZ', '/webhooks/netbox', 400, null],
] as const;

// Weights out of 334: about 40 % of the cases are new deliveries (202), a few per mille are bodies of
// a megabyte (over or near the limit), which dominate the bytes sent.
const mutationSpec = fc.oneof(
  {
    weight: 120,
    arbitrary: fc.record({ kind: fc.constant('valid' as const), variant: fc.constantFrom(...validVariants) }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('slow' as const),
      pieces: fc.integer({ min: 2, max: 12 }),
      delayMs: fc.integer({ min: 1, max: 80 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('huge_string' as const),
      size: fc.integer({ min: 8_192, max: 128 * 1024 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('near_limit' as const),
      under: fc.integer({ min: 0, max: 8_000 }),
    }),
  },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('echo' as const) }) },
  { weight: 24, arbitrary: fc.record({ kind: fc.constant('replay' as const), pick: fc.nat() }) },
  {
    weight: 32,
    arbitrary: fc.record({
      kind: fc.constant('signature' as const),
      fault: fc.constantFrom(...signatureFaults),
      at: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('oversize' as const),
      chunked: fc.boolean(),
      over: fc.integer({ min: 1, max: 64 * 1024 }),
    }),
  },
  { weight: 24, arbitrary: fc.record({ kind: fc.constant('truncated' as const), at: fc.nat() }) },
  {
    weight: 16,
    arbitrary: fc.record({
      kind: fc.constant('not_utf8' as const),
      bytes: fc.constantFrom(...notUtf8),
      at: fc.nat(),
    }),
  },
  {
    weight: 16,
    arbitrary: fc.record({
      kind: fc.constant('not_json' as const),
      how: fc.constantFrom(...notJson),
      noise: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    }),
  },
  {
    weight: 48,
    arbitrary: fc.record({ kind: fc.constant('wrong_shape' as const), how: fc.constantFrom(...wrongShapes) }),
  },
  {
    weight: 12,
    arbitrary: fc.record({ kind: fc.constant('deep' as const), depth: fc.integer({ min: 65, max: 6_000 }) }),
  },
  {
    weight: 16,
    arbitrary: fc.record({
      kind: fc.constant('odd_request' as const),
      which: fc.nat({ max: oddRequests.length - 1 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('huge_header' as const),
      size: fc.integer({ min: 17_000, max: 64_000 }),
    }),
  },
);
export type MutationSpec = typeof mutationSpec extends fc.Arbitrary<infer T> ? T : never;

export const caseSpec = fc.record({ delivery: deliverySpec, mutation: mutationSpec });
export type CaseSpec = { delivery: DeliverySpec; mutation: MutationSpec };

/** The specs of cases [from, from + count) of a run: drawn in blocks of 1,000 per seed, so any case is reproducible. */
export function specsOf(seed: number, from: number, count: number): CaseSpec[] {
  const block = 1000;
  const specs: CaseSpec[] = [];
  for (let b = Math.floor(from / block); b * block < from + count; b++) {
    const drawn = fc.sample(caseSpec, { seed: (seed + b * 7919) | 0, numRuns: block });
    for (let i = 0; i < block; i++) {
      const index = b * block + i;
      if (index >= from && index < from + count) specs.push(drawn[i] as CaseSpec);
    }
  }
  return specs;
}

export function sign(raw: Buffer, secret: string): string {
  return createHmac('sha512', secret).update(raw).digest('hex');
}

/** A UUID made from the run's nonce and the case index: a new NetBox request id per delivery. */
function requestIdOf(nonce: string, index: number): string {
  const h = createHash('sha256').update(`${nonce}/${index}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function timestampOf(ms: number, python: boolean): string {
  const iso = new Date(ms).toISOString();
  // NetBox (Python's isoformat): microseconds and an explicit offset.
  return python ? `${iso.slice(0, 23)}456+00:00` : iso;
}

/** The delivery NetBox would send for the spec (an object, so mutations can change any field). */
export function deliveryOf(
  spec: DeliverySpec,
  index: number,
  settings: FuzzSettings,
): Record<string, unknown> {
  const at = settings.epochMs + spec.offsetMs;
  const timestamp = timestampOf(at, spec.pythonTime);
  const lastUpdated = timestampOf(at - 1, spec.pythonTime);
  const object = {
    id: spec.objectId,
    name: spec.name,
    slug: `fuzz-${spec.objectId}`,
    last_updated: lastUpdated,
    custom_fields: { ...spec.customFields, fuzz_canary: settings.canary },
  };
  const before = { ...object, description: 'before' };
  const snapshots = {
    prechange: spec.event === 'created' ? null : before,
    postchange: spec.event === 'deleted' ? null : object,
  };
  const requestId = requestIdOf(settings.nonce, index);
  const actor = spec.actor === settings.ownUsername ? `${spec.actor}-not` : spec.actor;
  if (spec.version === '4.4') {
    return {
      event: spec.event,
      timestamp,
      model: spec.objectType,
      username: actor,
      request_id: requestId,
      data: object,
      snapshots,
    };
  }
  return {
    event: spec.event,
    timestamp,
    object_type: spec.objectType,
    data: object,
    snapshots,
    request: { id: requestId, user: actor, method: 'PATCH', path: `/api/fuzz/${spec.objectId}/` },
  };
}

const accepted: Expected = { status: 202, reason: 'accepted', counted: false };
const refused = (status: number, reason: string): Expected => ({ status, reason, counted: true });
const invalidBody = refused(422, 'invalid_body');
const malformed = refused(400, 'malformed_json');

/** Builds case `index` from its spec. `originals`: recent new deliveries built before it (what a replay resends). */
export function buildCase(
  index: number,
  spec: CaseSpec,
  settings: FuzzSettings,
  originals: readonly FuzzCase[],
): FuzzCase {
  const delivery = deliveryOf(spec.delivery, index, settings);
  const m = spec.mutation;
  const base = (
    body: Buffer,
    expected: Expected,
    mutation: string,
    extra: Partial<FuzzCase> = {},
  ): FuzzCase => ({
    index,
    mutation,
    method: 'POST',
    path: '/webhooks/netbox',
    headers: [
      ['content-type', 'application/json'],
      ['x-hook-signature', sign(body, settings.secret)],
    ],
    body,
    chunked: false,
    pieces: 1,
    trickleMs: 0,
    expected,
    ...extra,
  });
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const raw = json(delivery);

  switch (m.kind) {
    case 'valid':
      return validCase(index, m.variant, delivery, raw, settings, base);
    case 'slow':
      return base(raw, accepted, 'slow', { pieces: m.pieces, trickleMs: m.delayMs });
    case 'huge_string': {
      delivery.data = { ...(delivery.data as object), description: 'x'.repeat(m.size) };
      return base(json(delivery), accepted, 'huge_string');
    }
    case 'near_limit': {
      // A signed body at most `under` bytes below the limit: its change is over the bridge's largest
      // Kafka record (1,000,000 bytes), refused for good (with the 1 MiB default limit).
      // A copy: data and the postchange snapshot are one object, and only data grows.
      const data: Record<string, unknown> = { ...(delivery.data as object), description: '' };
      delivery.data = data;
      const room = settings.maxBytes - m.under - json(delivery).length;
      data.description = 'z'.repeat(Math.max(0, room));
      const body = json(delivery);
      const expected = body.length > 1_000_500 ? refused(413, 'change_too_large') : accepted;
      return base(body, expected, 'near_limit');
    }
    case 'echo': {
      if ('request' in delivery) (delivery.request as Record<string, unknown>).user = settings.ownUsername;
      else delivery.username = settings.ownUsername;
      return base(json(delivery), { status: 200, reason: 'ignored', counted: false }, 'echo');
    }
    case 'replay': {
      const original = originals[m.pick % Math.max(1, originals.length)];
      if (!original) return base(raw, accepted, 'plain');
      return {
        ...original,
        index,
        mutation: 'replay',
        pieces: 1,
        trickleMs: 0,
        expected: { status: 200, reason: 'duplicate', counted: false },
        replayOf: original.index,
      };
    }
    case 'signature':
      return signatureCase(m.fault, m.at, raw, settings, base);
    case 'oversize': {
      delivery.data = { ...(delivery.data as object), description: 'y'.repeat(settings.maxBytes + m.over) };
      const body = json(delivery);
      return base(body, refused(413, 'body_too_large'), `oversize:${m.chunked ? 'chunked' : 'declared'}`, {
        chunked: m.chunked,
      });
    }
    case 'truncated': {
      // A proper, non-empty prefix of a JSON object is never JSON (JSON.stringify adds no trailing space).
      const at = 1 + (m.at % (raw.length - 1));
      return base(raw.subarray(0, at), malformed, 'truncated');
    }
    case 'not_utf8': {
      // Inside the name's string value, so that only the encoding is wrong.
      const text = raw.toString('utf8');
      const anchor = text.indexOf('"slug":"') + 8;
      const body = Buffer.concat([raw.subarray(0, anchor), Buffer.from(m.bytes), raw.subarray(anchor)]);
      return base(body, malformed, `not_utf8:${Buffer.from(m.bytes).toString('hex')}`);
    }
    case 'not_json':
      return base(notJsonBody(m.how, raw, m.noise), malformed, `not_json:${m.how}`);
    case 'wrong_shape':
      return base(wrongShapeBody(m.how, delivery, raw), invalidBody, `wrong_shape:${m.how}`);
    case 'deep': {
      (delivery.data as Record<string, unknown>).deep = '@DEEP@';
      const depth = m.depth - 2; // the body and data objects are two levels already
      const text = JSON.stringify(delivery).replace('"@DEEP@"', `${'['.repeat(depth)}${']'.repeat(depth)}`);
      return base(Buffer.from(text), refused(400, 'json_too_deep'), 'deep');
    }
    case 'odd_request': {
      const [method, path, status, reason] = oddRequests[m.which] as (typeof oddRequests)[number];
      return base(raw, { status, reason, counted: false }, `odd_request:${method} ${path}`, { method, path });
    }
    case 'huge_header':
      return base(raw, { status: 431, reason: null, counted: false }, 'huge_header', {
        headers: [
          ['content-type', 'application/json'],
          ['x-hook-signature', sign(raw, settings.secret)],
          ['x-fuzz-padding', 'p'.repeat(m.size)],
        ],
      });
  }
}

type Base = (body: Buffer, expected: Expected, mutation: string, extra?: Partial<FuzzCase>) => FuzzCase;

function validCase(
  index: number,
  variant: (typeof validVariants)[number],
  delivery: Record<string, unknown>,
  raw: Buffer,
  settings: FuzzSettings,
  base: Base,
): FuzzCase {
  const signed = (body: Buffer) => sign(body, settings.secret);
  const withHeaders = (body: Buffer, headers: [string, string][]) =>
    base(body, accepted, `valid:${variant}`, { headers });
  switch (variant) {
    case 'plain':
      return base(raw, accepted, 'valid:plain');
    case 'content_type:text/plain':
      return withHeaders(raw, [
        ['content-type', 'text/plain'],
        ['x-hook-signature', signed(raw)],
      ]);
    case 'content_type:none':
      return withHeaders(raw, [['x-hook-signature', signed(raw)]]);
    case 'content_type:form':
      return withHeaders(raw, [
        ['content-type', 'application/x-www-form-urlencoded'],
        ['x-hook-signature', signed(raw)],
      ]);
    case 'signature:uppercase':
      return withHeaders(raw, [
        ['content-type', 'application/json'],
        ['x-hook-signature', signed(raw).toUpperCase()],
      ]);
    case 'signature:padded':
      return withHeaders(raw, [
        ['content-type', 'application/json'],
        ['x-hook-signature', ` ${signed(raw)}\t`],
      ]);
    case 'path:trailing_slash':
      return base(raw, accepted, `valid:${variant}`, { path: '/webhooks/netbox/' });
    case 'path:query':
      return base(raw, accepted, `valid:${variant}`, { path: `/webhooks/netbox?fuzz=${index}&a=%00` });
    case 'path:dot_segment':
      return base(raw, accepted, `valid:${variant}`, { path: '/webhooks/./x/../netbox' });
    case 'chunked':
      return base(raw, accepted, `valid:${variant}`, { chunked: true, pieces: 3 });
    case 'unknown_fields': {
      const body = Buffer.from(
        JSON.stringify({ ...delivery, fuzz_extra: { a: [1, 'b', null] }, __proto__x: 1 }),
      );
      return base(body, accepted, `valid:${variant}`);
    }
    case 'unicode_escapes': {
      // Every non-ASCII character, and the quotes' neighbours, as \u escapes: the same JSON value.
      const text = JSON.stringify(delivery).replace(
        /[\u007f-\uffff]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );
      return base(Buffer.from(text), accepted, `valid:${variant}`);
    }
    case 'nested_ok': {
      const data = delivery.data as Record<string, unknown>;
      data.nested = '@NEST@';
      const text = JSON.stringify(delivery).replace('"@NEST@"', `${'{"a":'.repeat(50)}1${'}'.repeat(50)}`);
      return base(Buffer.from(text), accepted, `valid:${variant}`);
    }
    case 'duplicate_key:valid_last': {
      // JSON.parse keeps the last of two equal keys: an invalid first copy changes nothing.
      const text = `{"event":42,"data":"nope",${JSON.stringify(delivery).slice(1)}`;
      return base(Buffer.from(text), accepted, `valid:${variant}`);
    }
  }
}

function signatureCase(
  fault: (typeof signatureFaults)[number],
  at: number,
  raw: Buffer,
  settings: FuzzSettings,
  base: Base,
): FuzzCase {
  const good = sign(raw, settings.secret);
  const missing = refused(401, 'missing_signature');
  const invalid = refused(401, 'invalid_signature');
  const header = (value: string | null, expected: Expected, extra: [string, string][] = []) =>
    base(raw, expected, `signature:${fault}`, {
      headers: [
        ['content-type', 'application/json'],
        ...(value === null ? [] : ([['x-hook-signature', value]] as [string, string][])),
        ...extra,
      ],
    });
  switch (fault) {
    case 'missing':
      return header(null, missing);
    case 'empty':
      return header('', missing);
    case 'other_secret':
      return header(sign(raw, settings.otherSecret), invalid);
    case 'flipped': {
      const i = at % good.length;
      const flipped = good[i] === '0' ? '1' : '0';
      return header(`${good.slice(0, i)}${flipped}${good.slice(i + 1)}`, invalid);
    }
    case 'truncated':
      return header(good.slice(0, at % good.length), at % good.length === 0 ? missing : invalid);
    case 'of_other_body':
      return header(sign(Buffer.concat([raw, Buffer.from(' ')]), settings.secret), invalid);
    case 'not_hex':
      return header(`${'zz'.repeat(64)}`, invalid);
    case 'duplicated':
      // Node joins a repeated header with ", ": never one valid signature.
      return header(good, invalid, [['x-hook-signature', good]]);
    case 'sha256':
      return header(createHmac('sha256', settings.secret).update(raw).digest('hex'), invalid);
  }
}

function notJsonBody(how: (typeof notJson)[number], raw: Buffer, noise: Uint8Array): Buffer {
  switch (how) {
    case 'bom':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), raw]);
    case 'trailing_garbage':
      return Buffer.concat([raw, Buffer.from('}x')]);
    case 'single_quotes':
      return Buffer.from(raw.toString('utf8').replace('"event"', "'event'"));
    case 'nan':
      return Buffer.from(raw.toString('utf8').replace(/"id":(\d+)/, '"id":NaN'));
    case 'comment':
      return Buffer.concat([Buffer.from('/* netbox */'), raw]);
    case 'random_bytes':
      // Starts with a byte no JSON text starts with ('#'), then ASCII noise (kept UTF-8).
      return Buffer.concat([Buffer.from('#'), Buffer.from(Array.from(noise, (b) => 0x20 + (b % 0x5f)))]);
    case 'two_documents':
      return Buffer.concat([raw, Buffer.from('\n'), raw]);
  }
}

function wrongShapeBody(how: (typeof wrongShapes)[number], d: Record<string, unknown>, raw: Buffer): Buffer {
  const data = d.data as Record<string, unknown>;
  const typeKey = 'object_type' in d ? 'object_type' : 'model';
  const text = (value: unknown) => Buffer.from(JSON.stringify(value));
  switch (how) {
    case 'event:number':
      return text({ ...d, event: 1 });
    case 'event:unknown':
      return text({ ...d, event: 'renamed' });
    case 'event:missing': {
      const { event: _event, ...rest } = d;
      return text(rest);
    }
    case 'timestamp:not_a_date':
      return text({ ...d, timestamp: 'yesterday at noon' });
    case 'timestamp:number':
      return text({ ...d, timestamp: 1_764_662_400 });
    case 'timestamp:empty':
      return text({ ...d, timestamp: '' });
    case 'timestamp:year_10000':
      return text({ ...d, timestamp: '+010000-01-01T00:00:00.000Z' });
    case 'timestamp:before_1970':
      return text({ ...d, timestamp: '1969-07-20T20:17:00Z' });
    case 'object_type:upper':
      return text({ ...d, object_type: 'DCIM.Site', model: undefined });
    case 'object_type:no_dot':
      return text({ ...d, object_type: 'dcimsite', model: undefined });
    case 'object_type:huge':
      return text({ ...d, [typeKey]: `fuzz.${'w'.repeat(2_000)}` });
    case 'type:missing': {
      const { object_type: _t, model: _m, ...rest } = d;
      return text(rest);
    }
    case 'data:missing': {
      const { data: _data, ...rest } = d;
      return text(rest);
    }
    case 'data:array':
      return text({ ...d, data: [data] });
    case 'data:string':
      return text({ ...d, data: JSON.stringify(data) });
    case 'data.id:string':
      return text({ ...d, data: { ...data, id: String(data.id) } });
    case 'data.id:zero':
      return text({ ...d, data: { ...data, id: 0 } });
    case 'data.id:negative':
      return text({ ...d, data: { ...data, id: -Number(data.id) } });
    case 'data.id:float':
      return text({ ...d, data: { ...data, id: Number(data.id) + 0.5 } });
    case 'data.id:unsafe':
      return Buffer.from(raw.toString('utf8').replace(/"id":\d+/, '"id":9007199254740993'));
    case 'data.last_updated:number':
      return text({ ...d, data: { ...data, last_updated: 1_764_662_400 } });
    case 'snapshots:string':
      return text({ ...d, snapshots: 'prechange' });
    case 'snapshots.postchange:number':
      return text({ ...d, snapshots: { prechange: null, postchange: 7 } });
    case 'request:string':
      return text({ ...d, request: 'PATCH /api/' });
    case 'request.user:number':
      return text({ ...d, request: { id: null, user: 42 }, username: undefined });
    case 'request.id:huge':
      return text({ ...d, request: { id: 'r'.repeat(2_000), user: null }, request_id: undefined });
    case 'username:huge':
      return text({ ...d, request: undefined, username: 'u'.repeat(2_000) });
    case 'root:array':
      return text([d]);
    case 'root:null':
      return Buffer.from('null');
    case 'root:number':
      return Buffer.from('42');
    case 'root:string':
      return text(JSON.stringify(d));
    case 'duplicate_key:invalid_last':
      return Buffer.from(`${raw.toString('utf8').slice(0, -1)},"event":"exploded"}`);
    case 'empty_body':
      return Buffer.alloc(0);
  }
}
