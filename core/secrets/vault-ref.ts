/**
 * A Vault secret reference, `vault:<mount>/<path>#<key>`: the key `<key>` of the KV v2 secret at
 * `<path>` under the KV v2 mount `<mount>` (e.g. `vault:unicop/netbox#token`). It sits beside the
 * `env:NAME` and `file:/path` references of core/config.ts; unlike them it is read over the network,
 * so it is resolved by core/secrets/runtime-config.ts, asynchronously, and read again while the
 * process runs.
 */

export interface VaultRef {
  /** The reference as written: errors and logs name it (never the value). */
  readonly ref: string;
  readonly mount: string;
  readonly path: string;
  readonly key: string;
}

export const vaultRefPrefix = 'vault:';

export function isVaultRef(ref: string): boolean {
  return ref.startsWith(vaultRefPrefix);
}

const shape = /^vault:([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.\-/]+)#([^#\s]+)$/;

/** Parses a reference; throws an Error naming it when it is not `vault:<mount>/<path>#<key>`. */
export function parseVaultRef(ref: string): VaultRef {
  const m = shape.exec(ref);
  const [, mount, path, key] = m ?? [];
  if (!mount || !path || !key || path.startsWith('/') || path.endsWith('/') || path.includes('//')) {
    throw new Error(`secret reference ${ref}: expected vault:<mount>/<path>#<key>`);
  }
  return { ref, mount, path, key };
}
