/**
 * Publishes the OpenAPI documents of what UNICOP calls in NetBox (`npm run gen:openapi`): fetches
 * the schema drf-spectacular serves at `/api/schema/` on the running NetBox (URL and token from the
 * environment or var/stack.env) and writes two filtered copies —
 *   openapi/plugin.yaml  every path under /api/plugins/unicop/ (the plugin's whole API);
 *   openapi/netbox.yaml  the paths and methods of NetBox's core API listed in `netboxSubset`;
 * each with exactly the components its operations reference (transitively). Then
 * `npm run gen:plugin` / `gen:netbox` turn them into TypeScript types (openapi/generated/).
 * test/openapi/published.test.ts fails when openapi/plugin.yaml is not what the live plugin serves.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { readStackEnv, repoRoot } from '../core/config.js';
import { type HttpMethod, NetboxHttp } from '../core/netbox/http.js';

type Json = Record<string, unknown>;

export const pluginPrefix = '/api/plugins/unicop/';

/**
 * The part of NetBox's core REST API that UNICOP's tools call through core/netbox/rest.ts: the demo
 * (scripts/demo.ts), the screenshots (scripts/docs-screenshots.ts), the benchmarks (bench/), the
 * test fixtures (test/). The workers call only the plugin. Add a path here before calling it.
 */
export const netboxSubset: Record<string, HttpMethod[]> = {
  '/api/status/': ['get'],
  '/api/dcim/sites/': ['get', 'post', 'delete'],
  '/api/dcim/sites/{id}/': ['get', 'patch', 'delete'],
  '/api/dcim/locations/': ['post'],
  '/api/dcim/manufacturers/': ['get', 'post'],
  '/api/dcim/device-types/': ['get', 'post'],
  '/api/dcim/device-roles/': ['get', 'post'],
  '/api/dcim/devices/': ['get', 'post'],
  '/api/dcim/racks/': ['get', 'post'],
  '/api/dcim/locations/{id}/': ['delete'],
  '/api/tenancy/tenants/': ['post'],
  '/api/tenancy/tenants/{id}/': ['delete'],
  '/api/ipam/prefixes/': ['get', 'post'],
  '/api/ipam/prefixes/{id}/': ['patch', 'delete'],
  '/api/ipam/ip-addresses/': ['get', 'post', 'delete'],
  '/api/ipam/ip-addresses/{id}/': ['patch', 'delete'],
  '/api/ipam/vlans/': ['get', 'post'],
  '/api/extras/webhooks/': ['get', 'post'],
  '/api/extras/webhooks/{id}/': ['delete'],
  '/api/extras/event-rules/': ['get', 'post'],
  '/api/extras/event-rules/{id}/': ['patch', 'delete'],
  '/api/extras/journal-entries/': ['get'],
  '/api/core/background-queues/': ['get'],
  '/api/core/background-workers/': ['get'],
};

const methods: HttpMethod[] = ['get', 'post', 'put', 'patch', 'delete'];

/** A digest of the plugin's sources (Python and JSON), which its part of the schema is made from. */
export function pluginSourceDigest(dir = join(repoRoot, 'netbox-plugin', 'unicop')): string {
  const hash = createHash('sha256');
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== '__pycache__' && entry.name !== 'tests') walk(path);
      } else if (/\.(py|json)$/.test(entry.name)) {
        hash.update(path.slice(dir.length)).update(readFileSync(path));
      }
    }
  };
  walk(dir);
  return hash.digest('hex').slice(0, 16);
}

/**
 * The schema NetBox serves (JSON), as drf-spectacular generates it for this NetBox and its plugins.
 * NetBox caches /api/schema/ for a day under a key made of its version and the request URL
 * (netbox/urls.py, cache_page), so a changed plugin would be served its old schema: the request
 * carries the digest of the plugin's sources, which makes the URL — and the cache entry — its own.
 */
export async function fetchSchema(baseUrl: string, token: string): Promise<Json> {
  const http = new NetboxHttp<unknown>(
    { baseUrl, token, timeoutMs: 120_000 },
    (answer) => new Error(`NetBox /api/schema/ answered ${answer.status}`),
  );
  const answer = await http.send('get', '/api/schema/', { format: 'json', unicop: pluginSourceDigest() });
  if (answer.status !== 200 || !answer.body || typeof answer.body !== 'object') {
    throw new Error(`NetBox /api/schema/ answered ${answer.status}`);
  }
  return answer.body as Json;
}

/** Every `#/components/...` reference inside a value. */
function refsIn(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) {
    for (const item of value) refsIn(item, out);
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key === '$ref' && typeof item === 'string' && item.startsWith('#/components/')) out.add(item);
      else refsIn(item, out);
    }
  }
}

/**
 * The schema cut down to the operations `keep` selects and the components they reference,
 * transitively; components sorted by name so that the file only changes when the API does.
 */
export function filterSchema(
  schema: Json,
  keep: (path: string, method: HttpMethod) => boolean,
  title: string,
  description: string,
): Json {
  const paths: Json = {};
  for (const [path, item] of Object.entries((schema.paths ?? {}) as Record<string, Json>)) {
    const kept: Json = {};
    for (const [key, value] of Object.entries(item)) {
      if (!methods.includes(key as HttpMethod) || keep(path, key as HttpMethod)) kept[key] = value;
    }
    if (methods.some((m) => m in kept)) paths[path] = kept;
  }
  const components = (schema.components ?? {}) as Record<string, Json>;
  const wanted = new Set<string>();
  refsIn(paths, wanted);
  const done = new Set<string>();
  const out: Record<string, Json> = {};
  while (wanted.size > 0) {
    const [ref] = wanted;
    wanted.delete(ref as string);
    if (done.has(ref as string)) continue;
    done.add(ref as string);
    const [, , section, name] = (ref as string).split('/') as [string, string, string, string];
    const target = components[section]?.[name];
    if (target === undefined) throw new Error(`the schema references ${ref}, which it does not define`);
    out[section] ??= {};
    (out[section] as Json)[name] = target;
    const more = new Set<string>();
    refsIn(target, more);
    for (const r of more) if (!done.has(r)) wanted.add(r);
  }
  const sorted: Json = {};
  for (const section of Object.keys(out).sort()) {
    const entries = Object.entries(out[section] as Json).sort(([a], [b]) => a.localeCompare(b));
    sorted[section] = Object.fromEntries(entries);
  }
  if (components.securitySchemes) sorted.securitySchemes = components.securitySchemes;
  const info = (schema.info ?? {}) as Json;
  return {
    openapi: schema.openapi,
    info: { title, version: info.version, description },
    paths,
    components: sorted,
    ...(schema.security ? { security: schema.security } : {}),
  };
}

export function pluginDocument(schema: Json): Json {
  return filterSchema(
    schema,
    (path) => path.startsWith(pluginPrefix),
    'UNICOP NetBox plugin API',
    `The unicop plugin's REST API (docs/plugin-api.md) as drf-spectacular serves it in NetBox's /api/schema/, ` +
      `filtered to ${pluginPrefix} and the components it references by scripts/export-openapi.ts.`,
  );
}

export function netboxDocument(schema: Json): Json {
  return filterSchema(
    schema,
    (path, method) => netboxSubset[path]?.includes(method) === true,
    'NetBox REST API: the subset UNICOP calls',
    'The operations of NetBox core REST API that UNICOP tools call through core/netbox/rest.ts, filtered ' +
      'from the /api/schema/ NetBox serves by scripts/export-openapi.ts (netboxSubset).',
  );
}

export function toYaml(document: Json): string {
  const header =
    '# Generated by scripts/export-openapi.ts (npm run gen:openapi) from the running NetBox. Do not edit.\n';
  return header + stringify(document, { lineWidth: 0, aliasDuplicateObjects: false });
}

async function main(): Promise<void> {
  const facts = { ...readStackEnv(), ...process.env };
  const baseUrl = facts.UNICOP_NETBOX_URL;
  const token = facts.UNICOP_NETBOX_TOKEN;
  if (!baseUrl || !token) {
    throw new Error(
      'UNICOP_NETBOX_URL and UNICOP_NETBOX_TOKEN are needed (or var/stack.env: scripts/stack up)',
    );
  }
  const schema = await fetchSchema(baseUrl, token);
  const netboxPaths = Object.keys((schema.paths ?? {}) as Json);
  const missing = Object.keys(netboxSubset).filter((p) => !netboxPaths.includes(p));
  if (missing.length) throw new Error(`NetBox does not serve ${missing.join(', ')}`);
  for (const [file, document] of [
    ['plugin.yaml', pluginDocument(schema)],
    ['netbox.yaml', netboxDocument(schema)],
  ] as const) {
    writeFileSync(join(repoRoot, 'openapi', file), toYaml(document));
    process.stdout.write(`wrote openapi/${file} (${Object.keys(document.paths as Json).length} paths)\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`export-openapi: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
