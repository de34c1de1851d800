/**
 * The configuration of a long-running process (bridge, workers): core/config.ts's, with its
 * `vault:<mount>/<path>#<key>` secret references read from Vault, and read again while it runs.
 *
 * - Start-up: parse as loadConfig does (env: and file: references resolved the same way), log in
 *   with the process's AppRole (UNICOP_VAULT_ROLE_ID / UNICOP_VAULT_SECRET_ID references, or the
 *   stack's files under UNICOP_VAULT_APPROLE_DIR/<process>/), read every vault: reference. A
 *   reference that cannot be read fails the start with a ConfigError naming the field and the
 *   reference, never a value. Without any vault: reference nothing here touches Vault.
 * - While running (`watch`): every UNICOP_VAULT_REFRESH_SECONDS the references are read again and a
 *   new version replaces the value in the configuration object the process holds. Webhook secrets
 *   (UNICOP_WEBHOOK_SECRETS, and UNICOP_AWX_WEBHOOK_SECRET through acceptedAwxWebhookSecrets) are
 *   lists the bridge checks on every request, updated in place: a vault: entry stands for its
 *   current version and, for UNICOP_WEBHOOK_ROTATION_GRACE_SECONDS after that version was created
 *   (Vault's clock, so a restart keeps the grace), the previous version. The other fields are single
 *   values written into the configuration object: the NetBox and AWX clients read their token from
 *   it for every request (core/plugin/client.ts pluginClientOptions, core/awx/client.ts
 *   awxClientOptions), so a new version is used from its re-read on, without a restart.
 * - When NetBox or AWX refuses a token (401/403), `refreshCredential` reads it from Vault at once
 *   (one read shared by concurrent refusals): a rotation whose old token was revoked before the
 *   next scheduled re-read costs one refused request, sent again with the new token (decision 0056).
 *   Each new version is logged — `credential refreshed`, the field, the reference, the versions and
 *   why it was read — never a value.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, configSources, parseConfig, secretFields, type UnicopConfig } from '../config.js';
import { isVaultRef, parseVaultRef, type VaultRef } from './vault-ref.js';
import { VaultSession } from './vault-session.js';

/** Which AppRole a process logs in with (scripts/stack.d/vault.sh makes one per process). */
export type VaultProcess = 'bridge' | 'workers' | 'cli';

export interface RuntimeConfig {
  config: UnicopConfig;
  /** null when the configuration has no vault: reference. */
  secrets: LiveSecrets | null;
}

type SingleField = (typeof secretFields)[number];

/** Reading a refused credential again (LiveSecrets; the clients' `onUnauthorized`). */
export interface CredentialRefresh {
  /** True when Vault holds a new value of `field`, now in the configuration object. */
  refreshCredential(field: SingleField): Promise<boolean>;
}

/** One entry of a webhook secret list: a value resolved at start-up, or a vault: reference. */
type ListEntry = { value: string } | { ref: VaultRef };

/** Secrets a webhook accepts, kept current in place: where they come from and the array checked. */
interface AcceptedList {
  field: 'UNICOP_WEBHOOK_SECRETS' | 'UNICOP_AWX_WEBHOOK_SECRET';
  entries: ListEntry[];
  accepted: string[];
}

/** The AWX notification secrets of a configuration whose UNICOP_AWX_WEBHOOK_SECRET is in Vault. */
const awxWebhookLists = new WeakMap<UnicopConfig, readonly string[]>();

/**
 * The secrets AWX's notifications may carry now: for a vault: reference the current version and,
 * during a rotation's grace, the previous one (a list LiveSecrets keeps current in place, so the
 * bridge holds it once); otherwise the one configured.
 */
export function acceptedAwxWebhookSecrets(config: UnicopConfig): readonly string[] {
  const secret = config.UNICOP_AWX_WEBHOOK_SECRET;
  return awxWebhookLists.get(config) ?? (secret ? [secret] : []);
}

export async function loadRuntimeConfig(
  process: VaultProcess,
  env: Record<string, string | undefined> = globalThis.process.env,
): Promise<RuntimeConfig> {
  const config = parseConfig(configSources(env), { keepVaultRefs: true });
  const problems: { field: string; message: string }[] = [];
  const parse = (field: string, ref: string): VaultRef | undefined => {
    try {
      return parseVaultRef(ref);
    } catch (error) {
      problems.push({ field, message: (error as Error).message });
      return undefined;
    }
  };
  const singles: [SingleField, VaultRef][] = [];
  for (const field of secretFields) {
    const ref = config[field];
    if (ref === undefined || !isVaultRef(ref) || field === 'UNICOP_AWX_WEBHOOK_SECRET') continue;
    if (field === 'UNICOP_VAULT_ROLE_ID' || field === 'UNICOP_VAULT_SECRET_ID') {
      problems.push({ field, message: 'the AppRole credentials are env: or file: references' });
      continue;
    }
    const parsed = parse(field, ref);
    if (parsed) singles.push([field, parsed]);
  }
  const entriesOf = (field: AcceptedList['field'], values: readonly string[]): ListEntry[] =>
    values.map((entry) => {
      if (!isVaultRef(entry)) return { value: entry };
      const ref = parse(field, entry);
      return ref ? { ref } : { value: '' };
    });
  const lists: AcceptedList[] = [];
  const webhook = entriesOf('UNICOP_WEBHOOK_SECRETS', config.UNICOP_WEBHOOK_SECRETS ?? []);
  if (webhook.some((e) => 'ref' in e) && config.UNICOP_WEBHOOK_SECRETS) {
    lists.push({
      field: 'UNICOP_WEBHOOK_SECRETS',
      entries: webhook,
      accepted: config.UNICOP_WEBHOOK_SECRETS,
    });
  }
  const awx = config.UNICOP_AWX_WEBHOOK_SECRET;
  if (awx && isVaultRef(awx)) {
    const accepted: string[] = [];
    lists.push({
      field: 'UNICOP_AWX_WEBHOOK_SECRET',
      entries: entriesOf('UNICOP_AWX_WEBHOOK_SECRET', [awx]),
      accepted,
    });
    awxWebhookLists.set(config, accepted);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // The bridge's HTTPS certificate comes from Vault too (core/secrets/serving-certificate.ts).
  const tls = process === 'bridge' && config.UNICOP_BRIDGE_TLS_PKI !== undefined;
  if (singles.length === 0 && lists.length === 0 && !tls) return { config, secrets: null };

  const addr = config.UNICOP_VAULT_ADDR;
  if (!addr) {
    throw new ConfigError([{ field: 'UNICOP_VAULT_ADDR', message: 'required by vault: secret references' }]);
  }
  const session = new VaultSession({
    addr,
    roleId: approleCredential(config, 'UNICOP_VAULT_ROLE_ID', process, 'role-id'),
    secretId: approleCredential(config, 'UNICOP_VAULT_SECRET_ID', process, 'secret-id'),
    timeoutMs: config.UNICOP_VAULT_TIMEOUT_MS,
  });
  try {
    await session.login();
  } catch (error) {
    throw new ConfigError([{ field: 'UNICOP_VAULT_ROLE_ID', message: (error as Error).message }]);
  }
  const secrets = new LiveSecrets(config, session, singles, lists);
  try {
    await secrets.refresh();
  } catch (error) {
    await session.close();
    throw error;
  }
  return { config, secrets };
}

function approleCredential(
  config: UnicopConfig,
  field: 'UNICOP_VAULT_ROLE_ID' | 'UNICOP_VAULT_SECRET_ID',
  process: VaultProcess,
  file: string,
): string {
  const given = config[field];
  if (given) return given; // already resolved from its env: or file: reference by parseConfig
  const dir = config.UNICOP_VAULT_APPROLE_DIR;
  if (!dir) throw new ConfigError([{ field, message: 'required by vault: secret references' }]);
  const path = join(dir, process, file);
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch {
    throw new ConfigError([{ field, message: `unset, and ${path} cannot be read` }]);
  }
}

/** The vault: secrets of one configuration, kept current (see the file header). */
export class LiveSecrets implements CredentialRefresh {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private log: Logger | undefined;
  private readonly versions = new Map<string, number>();
  /** A credential's read after a refusal, shared by the refusals that arrive meanwhile. */
  private readonly refusedReads = new Map<SingleField, Promise<boolean>>();

  constructor(
    private readonly config: UnicopConfig,
    readonly session: VaultSession,
    private readonly singles: [SingleField, VaultRef][],
    private readonly lists: AcceptedList[],
  ) {}

  /**
   * Reads every reference once and applies what changed; returns when the grace of a previous
   * webhook secret version ends next (null: none pending). Throws a ConfigError naming the field
   * and the reference of each that cannot be read (nothing is applied then).
   */
  async refresh(now = Date.now()): Promise<number | null> {
    const problems: { field: string; message: string }[] = [];
    const graceMs = this.config.UNICOP_WEBHOOK_ROTATION_GRACE_SECONDS * 1000;
    const current = async (field: string, ref: VaultRef) => {
      try {
        const read = await this.session.read(ref);
        if (read.value === undefined) {
          problems.push({
            field,
            message: `secret reference ${ref.ref}: version ${read.version} has no such key`,
          });
        }
        return read;
      } catch (error) {
        problems.push({ field, message: (error as Error).message });
        return undefined;
      }
    };
    const singles = await Promise.all(
      this.singles.map(async ([field, ref]) => [field, ref, await current(field, ref)] as const),
    );
    let graceEnds: number | null = null;
    const accepted = async (
      field: string,
      entry: ListEntry,
    ): Promise<{ values: string[]; ref?: VaultRef; version?: number }> => {
      if ('value' in entry) return { values: [entry.value] };
      const read = await current(field, entry.ref);
      if (!read?.value) return { values: [] };
      const found = { ref: entry.ref, version: read.version };
      const ends = read.createdTime.getTime() + graceMs;
      if (read.version < 2 || ends <= now) return { values: [read.value], ...found };
      // Still within the grace of this version: its predecessor is accepted too.
      const previous = await this.session.read(entry.ref, read.version - 1).catch(() => undefined);
      graceEnds = Math.min(graceEnds ?? ends, ends);
      const values =
        previous?.value && previous.value !== read.value ? [read.value, previous.value] : [read.value];
      return { values, ...found };
    };
    const lists = await Promise.all(
      this.lists.map(async (list) => ({
        list,
        entries: await Promise.all(list.entries.map((entry) => accepted(list.field, entry))),
      })),
    );
    if (problems.length > 0) throw new ConfigError(problems);
    for (const [field, ref, read] of singles) {
      if (!read?.value) continue;
      this.config[field] = read.value;
      this.noteVersion(ref, read.version, field, 'scheduled');
    }
    for (const { list, entries } of lists) {
      for (const { ref, version } of entries)
        if (ref && version !== undefined) this.noteVersion(ref, version);
      list.accepted.splice(0, list.accepted.length, ...entries.flatMap((e) => e.values));
      // The single field shows the current version, as the others do.
      const [current] = list.accepted;
      if (list.field === 'UNICOP_AWX_WEBHOOK_SECRET' && current)
        this.config.UNICOP_AWX_WEBHOOK_SECRET = current;
    }
    return graceEnds;
  }

  /**
   * Reads `field` (a single vault: credential) from Vault now, because a service refused the value
   * in use: true when Vault holds another value, which replaces it in the configuration. Refusals
   * that arrive while it is read share the read. False for a field that is not a vault: reference.
   */
  refreshCredential(field: SingleField): Promise<boolean> {
    const single = this.singles.find(([f]) => f === field);
    if (!single || this.closed) return Promise.resolve(false);
    let read = this.refusedReads.get(field);
    if (!read) {
      read = this.readRefused(field, single[1]).finally(() => this.refusedReads.delete(field));
      this.refusedReads.set(field, read);
    }
    return read;
  }

  private async readRefused(field: SingleField, ref: VaultRef): Promise<boolean> {
    let read: Awaited<ReturnType<VaultSession['read']>>;
    try {
      read = await this.session.read(ref);
    } catch (error) {
      this.log?.warn(
        { field, ref: ref.ref, reason: (error as Error).message },
        'credential refused and not read again; the value in use is kept',
      );
      return false;
    }
    if (!read.value || read.value === this.config[field]) return false;
    this.config[field] = read.value;
    this.noteVersion(ref, read.version, field, 'refused');
    return true;
  }

  /** Logs a reference's new version (its field, the versions, why it was read), never the value. */
  private noteVersion(
    ref: VaultRef,
    version: number,
    field?: string,
    trigger?: 'scheduled' | 'refused',
  ): void {
    const before = this.versions.get(ref.ref);
    this.versions.set(ref.ref, version);
    if (before !== undefined && before !== version) {
      const credential = trigger !== undefined;
      this.log?.info(
        {
          ref: ref.ref,
          version,
          previousVersion: before,
          ...(field ? { field } : {}),
          ...(trigger ? { trigger } : {}),
        },
        credential ? 'credential refreshed' : 'secret has a new version',
      );
    }
  }

  /**
   * Reads the references again every UNICOP_VAULT_REFRESH_SECONDS (and when a grace ends) until
   * close(); a failed read keeps the values in use and is logged with the reference and why.
   */
  watch(log: Logger): void {
    this.log = log;
    const everyMs = this.config.UNICOP_VAULT_REFRESH_SECONDS * 1000;
    const next = (graceEnds: number | null) => {
      if (this.closed) return;
      const delay =
        graceEnds === null ? everyMs : Math.min(everyMs, Math.max(50, graceEnds - Date.now() + 10));
      this.timer = setTimeout(tick, delay);
      this.timer.unref();
    };
    const tick = () => {
      this.refresh().then(next, (error: unknown) => {
        log.warn(
          { reason: (error as Error).message },
          'vault: secrets not read again; the values in use are kept',
        );
        next(null);
      });
    };
    next(null);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.session.close();
  }
}
