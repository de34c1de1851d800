/**
 * openapi/plugin.yaml and openapi/netbox.yaml are what the running NetBox serves: its /api/schema/
 * (drf-spectacular), filtered the way scripts/export-openapi.ts filters it, equals the committed
 * documents. The generated types are checked against these documents by the static suite
 * (scripts/suites.d/10-static.sh, `openapi-generated`). After a change to the plugin's API:
 * `npm run gen:openapi && npm run gen:plugin && npm run gen:netbox`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../../core/config.js';
import { fetchSchema, netboxDocument, pluginDocument } from '../../scripts/export-openapi.js';
import { stack } from '../support/stack.js';

const committed = (file: string): unknown => parse(readFileSync(join(repoRoot, 'openapi', file), 'utf8'));

describe('the published OpenAPI documents match the running NetBox', () => {
  let served: Record<string, unknown>;
  beforeAll(async () => {
    served = await fetchSchema(stack.netboxUrl(), stack.netboxToken());
  }, 180_000);

  it('openapi/plugin.yaml is the plugin API NetBox serves (run npm run gen:openapi when not)', () => {
    const live = pluginDocument(served);
    expect(Object.keys(live.paths as object).length).toBeGreaterThan(0);
    expect(committed('plugin.yaml')).toEqual(live);
  });

  it('openapi/netbox.yaml is the NetBox subset NetBox serves (run npm run gen:openapi when not)', () => {
    expect(committed('netbox.yaml')).toEqual(netboxDocument(served));
  });
});
