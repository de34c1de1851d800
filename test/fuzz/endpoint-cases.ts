/**
 * Fuzz cases for the bridge's other doors (issue #18 item 4, decision 0056): AWX's notification
 * webhook (`POST /webhooks/awx`) and the admin API. As for NetBox's deliveries (cases.ts), fast-check
 * draws a spec per case from the seed and the answer the bridge must give is decided by the
 * mutation alone, never by running the bridge's parser.
 *
 * - AWX: job metadata (any status word, unicode names to their cap, playbook or workflow address,
 *   times or null, extra fields such as host summaries) and approval texts, sent with the secret as
 *   `X-UNICOP-Token` or as a basic-auth password under any user name → 202; no or a wrong secret,
 *   malformed basic auth → 401 `invalid_credentials` (before the body is read: whatever the body);
 *   declared or chunked over the limit → 413 `body_too_large`; not JSON, not UTF-8 → 400
 *   `malformed_json`; deeper than 64 → 400 `json_too_deep`; wrong shapes and fields over their
 *   caps → 422 `invalid_body`; other methods → 405.
 * - Admin API: every route with no, a malformed or a wrong bearer → 401 (the failed check);
 *   the break-glass token on the acting routes (freeze, resume, reconcile, sweep) only with bodies
 *   that are invalid by construction — not JSON, too deep, over the limit, a reason of the wrong
 *   type or too short, a malformed Idempotency-Key — so nothing is ever frozen, resumed, swept or
 *   reconciled on the shared stack: 400/413/422; and the reads a viewer may make (GET /freeze 200,
 *   GET /sweeps/<unknown> 404, GET /status?root=<not a root key> 422).
 */
import fc from 'fast-check';
import { maxJsonDepth } from '../../bridge/http/body.js';
import { awxFieldCaps } from '../../bridge/ingress/awx-webhook.js';
import type { FuzzCase } from './cases.js';

export interface EndpointSettings {
  awxSecret: string;
  otherSecret: string;
  /** The break-glass admin token the bridge accepts (UNICOP_ADMIN_BREAK_GLASS=true). */
  adminToken: string;
  /** UNICOP_WEBHOOK_MAX_BYTES of the bridge under test. */
  maxBytes: number;
  /** UNICOP_ADMIN_BODY_LIMIT_BYTES of the bridge under test. */
  adminBodyLimit: number;
  /** Put in every body; must never appear in the bridge's log. */
  canary: string;
}

const statusWords = ['started', 'success', 'error', 'running', 'successful', 'failed', 'canceled', 'pending'];
const approvalWords = ['needs review', 'was approved', 'was denied', 'has timed out'];

const awxJobSpec = fc.record({
  id: fc.integer({ min: 1_000_000_000, max: 2 ** 31 - 1 }),
  status: fc.constantFrom(...statusWords),
  name: fc.option(fc.string({ unit: 'grapheme', maxLength: 120 }), { nil: null }),
  workflow: fc.boolean(),
  times: fc.boolean(),
  hosts: fc.integer({ min: 0, max: 40 }),
  extra: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
});

const awxApprovalSpec = fc.record({
  workflowId: fc.integer({ min: 1_000_000_000, max: 2 ** 31 - 1 }),
  name: fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 80 })
    .filter((s) => s.trim() === s && s !== ''),
  words: fc.constantFrom(...approvalWords),
  viewedAt: fc.boolean(),
});

const awxMutations = [
  'valid:token',
  'valid:basic',
  'valid:approval',
  'valid:chunked',
  'auth:none',
  'auth:wrong-token',
  'auth:wrong-basic',
  'auth:basic-no-colon',
  'auth:bearer',
  'size:declared',
  'size:chunked',
  'json:truncated',
  'json:noise',
  'json:not-utf8',
  'json:too-deep',
  'shape:id',
  'shape:status',
  'shape:name-type',
  'shape:array',
  'shape:approval-text',
  'cap:name',
  'cap:url',
  'cap:status',
  'cap:approval',
  'method',
] as const;

const adminMutations = [
  'auth:none',
  'auth:wrong',
  'auth:scheme',
  'auth:jwt-shaped',
  'body:not-json',
  'body:too-deep',
  'body:too-large',
  'body:reason-type',
  'body:reason-short',
  'body:not-utf8',
  'idempotency-key',
  'read:freeze',
  'read:sweep',
  'read:status',
] as const;

export const endpointSpec = fc.oneof(
  fc.record({
    door: fc.constant('awx' as const),
    mutation: fc.constantFrom(...awxMutations),
    job: awxJobSpec,
    approval: awxApprovalSpec,
    user: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).filter((s) => !s.includes(':')),
    wrong: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 80 }),
    cut: fc.double({ min: 0.05, max: 0.95, noNaN: true }),
    noise: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    method: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH'),
  }),
  fc.record({
    door: fc.constant('admin' as const),
    mutation: fc.constantFrom(...adminMutations),
    route: fc.constantFrom('/freeze', '/resume', '/sweep', '/roots/site/2000000000/reconcile'),
    wrong: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 200 }).filter((s) => s.trim() !== ''),
    reason: fc.oneof(
      fc.integer(),
      fc.boolean(),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
    ),
    short: fc.constantFrom('', ' ', 'ab', ' a ', '\t\n'),
    noise: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    key: fc.oneof(
      fc.string({ minLength: 256, maxLength: 300 }),
      fc.constantFrom('has space', 'tab\there', 'é'),
    ),
    root: fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('site', 'Site/1', 'site/-1', 'site/x', '/1'),
    ),
  }),
);
export type EndpointSpec = typeof endpointSpec extends fc.Arbitrary<infer T> ? T : never;

/** The specs of cases `from` … `from + count - 1` (blocks of 1,000 per derived seed, as cases.ts). */
export function endpointSpecsOf(seed: number, from: number, count: number): EndpointSpec[] {
  const out: EndpointSpec[] = [];
  for (let block = Math.floor(from / 1000); out.length < count; block++) {
    const specs = fc.sample(endpointSpec, { seed: (seed + block * 7919) | 0, numRuns: 1000 });
    const start = block === Math.floor(from / 1000) ? from % 1000 : 0;
    out.push(...specs.slice(start, start + count - out.length));
  }
  return out;
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const deep = (depth: number) => Buffer.from(`${'['.repeat(depth)}1${']'.repeat(depth)}`);
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

function base(index: number, mutation: string, path: string): Omit<FuzzCase, 'body' | 'expected'> {
  return {
    index,
    mutation,
    method: 'POST',
    path,
    headers: [['content-type', 'application/json']],
    chunked: false,
    pieces: 1,
    trickleMs: 0,
  };
}

const refused = (status: number, reason: string | null) => ({ status, reason, counted: true });

export function buildEndpointCase(index: number, spec: EndpointSpec, s: EndpointSettings): FuzzCase {
  return spec.door === 'awx' ? awxCase(index, spec, s) : adminCase(index, spec, s);
}

function jobBody(job: EndpointSpec & { door: 'awx' } extends { job: infer J } ? J : never, canary: string) {
  const kind = job.workflow ? 'workflow' : 'playbook';
  const hosts = Object.fromEntries(
    Array.from({ length: job.hosts }, (_, i) => [`h${i}.${canary}`, { failed: false, changed: i % 2 }]),
  );
  return {
    ...job.extra,
    id: job.id,
    name: job.name === null ? null : `${job.name} ${canary}`,
    url: `https://awx.example.net/#/jobs/${kind}/${job.id}`,
    status: job.status,
    started: job.times ? new Date(1_760_000_000_000).toISOString() : null,
    finished: null,
    hosts,
  };
}

function awxCase(index: number, spec: EndpointSpec & { door: 'awx' }, s: EndpointSettings): FuzzCase {
  const c = base(index, `awx:${spec.mutation}`, '/webhooks/awx');
  const token: [string, string] = ['x-unicop-token', s.awxSecret];
  const valid = json(jobBody(spec.job, s.canary));
  const a = spec.approval;
  const approvalText = `The approval node "${a.name} ${s.canary}" ${a.words}.${a.viewedAt ? ' This node can be viewed at:' : ''} https://awx.example.net/#/jobs/workflow/${a.workflowId}`;
  const accepted = { status: 202, reason: 'accepted', counted: false };
  const withAuth = (
    body: Buffer,
    expected: FuzzCase['expected'],
    extra: Partial<FuzzCase> = {},
  ): FuzzCase => ({
    ...c,
    headers: [...c.headers, token],
    body,
    expected,
    ...extra,
  });
  switch (spec.mutation) {
    case 'valid:token':
      return withAuth(valid, accepted);
    case 'valid:basic':
      return {
        ...c,
        headers: [...c.headers, ['authorization', basic(spec.user, s.awxSecret)]],
        body: valid,
        expected: accepted,
      };
    case 'valid:approval':
      return withAuth(json({ body: approvalText }), accepted);
    case 'valid:chunked':
      return withAuth(valid, accepted, { chunked: true, pieces: 3 });
    case 'auth:none':
      return { ...c, body: valid, expected: refused(401, 'invalid_credentials') };
    case 'auth:wrong-token':
      return {
        ...c,
        headers: [...c.headers, ['x-unicop-token', `${s.otherSecret}${spec.wrong}`]],
        body: valid,
        expected: refused(401, 'invalid_credentials'),
      };
    case 'auth:wrong-basic':
      return {
        ...c,
        headers: [...c.headers, ['authorization', basic(spec.user, `${spec.wrong}${s.otherSecret}`)]],
        body: valid,
        expected: refused(401, 'invalid_credentials'),
      };
    case 'auth:basic-no-colon':
      return {
        ...c,
        headers: [...c.headers, ['authorization', `Basic ${Buffer.from(s.awxSecret).toString('base64')}`]],
        body: valid,
        expected: refused(401, 'invalid_credentials'),
      };
    case 'auth:bearer':
      return {
        ...c,
        headers: [...c.headers, ['authorization', `Bearer ${s.awxSecret}`]],
        body: valid,
        expected: refused(401, 'invalid_credentials'),
      };
    case 'size:declared':
      return withAuth(Buffer.alloc(s.maxBytes + 1 + spec.job.hosts, 0x20), refused(413, 'body_too_large'));
    case 'size:chunked':
      return withAuth(Buffer.alloc(s.maxBytes + 1, 0x20), refused(413, 'body_too_large'), {
        chunked: true,
        pieces: 4,
      });
    case 'json:truncated':
      return withAuth(
        valid.subarray(0, Math.max(1, Math.floor(valid.length * spec.cut))),
        refused(400, 'malformed_json'),
      );
    case 'json:noise':
      return withAuth(
        Buffer.concat([Buffer.from('{"id":'), Buffer.from(spec.noise).map((b) => (b % 26) + 0x61)]),
        refused(400, 'malformed_json'),
      );
    case 'json:not-utf8':
      return withAuth(
        Buffer.concat([Buffer.from('{"id":1,"status":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
        refused(400, 'malformed_json'),
      );
    case 'json:too-deep':
      return withAuth(deep(maxJsonDepth + 1 + spec.job.hosts), refused(400, 'json_too_deep'));
    case 'shape:id':
      return withAuth(
        json({ ...jobBody(spec.job, s.canary), id: [0, -1, 1.5, '7', null][spec.job.id % 5] }),
        refused(422, 'invalid_body'),
      );
    case 'shape:status':
      return withAuth(
        json({ ...jobBody(spec.job, s.canary), status: ['', 3, null, []][spec.job.id % 4] }),
        refused(422, 'invalid_body'),
      );
    case 'shape:name-type':
      return withAuth(
        json({ ...jobBody(spec.job, s.canary), name: [1, {}, [], true][spec.job.id % 4] }),
        refused(422, 'invalid_body'),
      );
    case 'shape:array':
      return withAuth(json([jobBody(spec.job, s.canary)]), refused(422, 'invalid_body'));
    case 'shape:approval-text':
      return withAuth(
        json({ body: `${approvalText.replace('The approval node', 'A node')}` }),
        refused(422, 'invalid_body'),
      );
    case 'cap:name':
      return withAuth(
        json({ ...jobBody(spec.job, s.canary), name: 'n'.repeat(awxFieldCaps.name + 1 + spec.job.hosts) }),
        refused(422, 'invalid_body'),
      );
    case 'cap:url':
      return withAuth(
        json({
          ...jobBody(spec.job, s.canary),
          url: `https://awx/#/jobs/playbook/1?${'u'.repeat(awxFieldCaps.url)}`,
        }),
        refused(422, 'invalid_body'),
      );
    case 'cap:status':
      return withAuth(
        json({ ...jobBody(spec.job, s.canary), status: 's'.repeat(awxFieldCaps.status + 1) }),
        refused(422, 'invalid_body'),
      );
    case 'cap:approval':
      return withAuth(
        json({ body: approvalText.replace(`"${a.name}`, `"${'a'.repeat(awxFieldCaps.approvalText)}`) }),
        refused(422, 'invalid_body'),
      );
    case 'method':
      return {
        ...c,
        method: spec.method,
        headers: [token],
        body: Buffer.alloc(0),
        expected: { status: 405, reason: null, counted: false },
      };
  }
}

function adminCase(index: number, spec: EndpointSpec & { door: 'admin' }, s: EndpointSettings): FuzzCase {
  const c = base(index, `admin:${spec.mutation}`, spec.route);
  const auth: [string, string] = ['authorization', `Bearer ${s.adminToken}`];
  const unauthorized = { status: 401, reason: null, counted: false };
  const valid = json({ reason: `fuzz ${s.canary}` });
  const refusedBody = (body: Buffer, status: number, reason: string): FuzzCase => ({
    ...c,
    headers: [...c.headers, auth],
    body,
    expected: { status, reason, counted: false },
  });
  switch (spec.mutation) {
    case 'auth:none':
      return { ...c, body: valid, expected: { ...unauthorized, reason: 'token_missing' } };
    case 'auth:wrong':
      return {
        ...c,
        headers: [...c.headers, ['authorization', `Bearer ${spec.wrong}`]],
        body: valid,
        expected: unauthorized,
      };
    case 'auth:scheme':
      return {
        ...c,
        headers: [...c.headers, ['authorization', `Basic ${s.adminToken}`]],
        body: valid,
        expected: unauthorized,
      };
    case 'auth:jwt-shaped': {
      const part = (t: string) => Buffer.from(t).toString('base64url');
      const jwt = `${part('{"alg":"RS256","typ":"JWT"}')}.${part(spec.wrong)}.${part(s.canary)}`;
      return {
        ...c,
        headers: [...c.headers, ['authorization', `Bearer ${jwt}`]],
        body: valid,
        expected: unauthorized,
      };
    }
    case 'body:not-json':
      return refusedBody(
        Buffer.concat([Buffer.from('{"reason":'), Buffer.from(spec.noise).map((b) => (b % 26) + 0x61)]),
        400,
        'malformed_json',
      );
    case 'body:too-deep':
      return refusedBody(deep(maxJsonDepth + 1), 400, 'json_too_deep');
    case 'body:too-large':
      return refusedBody(Buffer.alloc(s.adminBodyLimit + 1, 0x20), 413, 'body_too_large');
    case 'body:reason-type':
      return refusedBody(json({ reason: spec.reason }), 422, 'invalid_body');
    case 'body:reason-short':
      // Freeze and resume need three characters; reconcile and sweep any reason — so send them a wrong type.
      return spec.route === '/freeze' || spec.route === '/resume'
        ? refusedBody(json({ reason: spec.short }), 422, 'invalid_body')
        : refusedBody(json({ reason: [spec.short] }), 422, 'invalid_body');
    case 'body:not-utf8':
      return refusedBody(
        Buffer.concat([Buffer.from('{"reason":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
        400,
        'malformed_json',
      );
    case 'idempotency-key':
      return {
        ...c,
        headers: [...c.headers, auth, ['idempotency-key', spec.key]],
        body: valid,
        expected: { status: 422, reason: 'invalid_body', counted: false },
      };
    case 'read:freeze':
      return {
        ...c,
        method: 'GET',
        path: '/freeze',
        headers: [auth],
        body: Buffer.alloc(0),
        expected: { status: 200, reason: null, counted: false },
      };
    case 'read:sweep':
      return {
        ...c,
        method: 'GET',
        path: `/sweeps/fuzz-${Buffer.from(spec.noise).toString('hex')}`,
        headers: [auth],
        body: Buffer.alloc(0),
        expected: { status: 404, reason: 'not_found', counted: false },
      };
    case 'read:status':
      return {
        ...c,
        method: 'GET',
        path: `/status?root=${encodeURIComponent(`${spec.root}\u00a7`)}`,
        headers: [auth],
        body: Buffer.alloc(0),
        expected: { status: 422, reason: 'invalid_body', counted: false },
      };
  }
}
