/**
 * The event catalogue: ids are valid UUIDv7 (deterministic where they must be), every event type
 * validates through its zod schema, and the JSON Schemas in docs/events/ and docs/events.md are
 * exactly what the catalogue exports — the schemas accept real events while refusing broken ones.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { auditActions } from '../../core/events/audit.js';
import { cloudEvent, terminalRunStates } from '../../core/events/catalogue.js';
import { eventCatalogueMarkdown } from '../../core/events/catalogue-doc.js';
import { eventJsonSchemas } from '../../core/events/json-schema.js';
import { deterministicUuidv7, uuidv7, uuidv7Pattern } from '../../core/ids.js';

describe('ids', () => {
  it('makes valid, time-ordered UUIDv7s', () => {
    const a = uuidv7(1_700_000_000_000);
    const b = uuidv7(1_700_000_000_001);
    expect(a).toMatch(uuidv7Pattern);
    expect(a < b).toBe(true);
    expect(uuidv7()).not.toBe(uuidv7());
  });

  it('derives the same UUIDv7 from the same identity, and another from any other', () => {
    const id = deterministicUuidv7(1_700_000_000_000, 'change-1', 'prefix/42');
    expect(id).toMatch(uuidv7Pattern);
    expect(deterministicUuidv7(1_700_000_000_000, 'change-1', 'prefix/42')).toBe(id);
    expect(deterministicUuidv7(1_700_000_000_000, 'change-1', 'prefix/43')).not.toBe(id);
    expect(deterministicUuidv7(1_700_000_000_000, 'change-1prefix', '/42')).not.toBe(id);
  });
});

const intent = () =>
  cloudEvent('intent', {
    id: uuidv7(),
    source: 'unicop/resolver',
    subject: 'prefix/42',
    data: {
      intentId: uuidv7(),
      rootKey: 'prefix/42',
      cause: {
        kind: 'change',
        changeId: uuidv7(),
        requestId: null,
        event: 'updated',
        objectType: 'ipam.ipaddress',
        objectId: 7,
        actor: 'alice',
        at: new Date().toISOString(),
      },
    },
  });

describe('catalogue', () => {
  it('refuses to build an event whose data does not match its schema', () => {
    expect(() =>
      cloudEvent('intent', {
        id: uuidv7(),
        source: 'x',
        subject: 'x',
        data: { intentId: 'not-a-uuid', rootKey: 'Prefix 42' } as never,
      }),
    ).toThrow(/intentId|rootKey/);
  });

  it('docs/events/ and docs/events.md hold exactly what the catalogue exports (run npm run events:export)', () => {
    const exported = eventJsonSchemas();
    const files = readdirSync(join(repoRoot, 'docs', 'events')).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(Object.keys(exported).sort()); // none missing, none left over
    for (const [file, schema] of Object.entries(exported)) {
      const committed = JSON.parse(readFileSync(join(repoRoot, 'docs', 'events', file), 'utf8'));
      expect(committed, file).toEqual(schema);
    }
    expect(readFileSync(join(repoRoot, 'docs', 'events.md'), 'utf8')).toBe(eventCatalogueMarkdown());
  });

  it('the exported JSON Schema accepts a real event and refuses a broken one', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const validate = ajv.compile(eventJsonSchemas()['io.unicop.intent.v1.json'] as object);
    const event = intent();
    expect(validate(event), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...event, data: { ...event.data, rootKey: 'no slash' } })).toBe(false);
    expect(validate({ ...event, specversion: '0.3' })).toBe(false);
  });

  it('every audit action the code writes is in the catalogue, and docs/events.md lists them all', () => {
    const sources = ['bridge', 'workers', 'core'].flatMap((dir) =>
      readdirSync(join(repoRoot, dir), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.ts'))
        .map((f) => readFileSync(join(repoRoot, dir, f), 'utf8')),
    );
    const prefixes = 'change|webhook|awx_notification|intent|automation|lease|run|approval';
    const literal = new RegExp(`'((?:${prefixes})\\.[a-z_]+)'`, 'g');
    const used = new Set(sources.flatMap((text) => [...text.matchAll(literal)].map((m) => m[1] as string)));
    // Built from run states: `run.${state}` for every terminal state and `run.running`.
    for (const state of [...terminalRunStates, 'running']) used.add(`run.${state}`);
    const known = Object.keys(auditActions);
    expect([...used].filter((action) => !known.includes(action))).toEqual([]);
    const doc = readFileSync(join(repoRoot, 'docs', 'events.md'), 'utf8');
    expect(known.filter((action) => !doc.includes(`\`${action}\``))).toEqual([]);
  });
});
