/**
 * Which certificate authorities UNICOP trusts for NetBox's and AWX's HTTPS (issue #18 item 2,
 * decision 0056): Node's system trust by default; with UNICOP_NETBOX_CA_FILE / UNICOP_AWX_CA_FILE a
 * PEM bundle of its own, which REPLACES the system CAs for that service (Node's `ca` option:
 * "Mozilla's CAs are completely replaced when CAs are explicitly specified"), so a private NetBox is
 * trusted only through its own CA. Verification is never switched off: nothing here or in the
 * clients sets `rejectUnauthorized: false`.
 *
 * A certificate the client does not trust fails the TLS handshake before a byte of the request is
 * sent: the failure is a TlsVerificationError (the cause of the client's own "unavailable" error),
 * naming the service, OpenSSL's verification code and the setting to look at — never a header,
 * token or body.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.js';

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const bundles = new Map<string, string>();

/**
 * The PEM bundle at `path` (read once per process), every block a parsable certificate; a
 * ConfigError naming `field` when it cannot be read or holds no certificate.
 */
export function readCaBundle(field: string, path: string): string {
  const known = bundles.get(path);
  if (known !== undefined) return known;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'unreadable';
    throw new ConfigError([{ field, message: `CA bundle ${path} cannot be read (${code})` }]);
  }
  const blocks = text.match(pemBlock) ?? [];
  if (blocks.length === 0) {
    throw new ConfigError([{ field, message: `CA bundle ${path} holds no PEM certificate` }]);
  }
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      throw new ConfigError([{ field, message: `CA bundle ${path}: certificate ${i + 1} does not parse` }]);
    }
  }
  const bundle = blocks.join('\n');
  bundles.set(path, bundle);
  return bundle;
}

/** The CA bundle a setting names, or undefined (Node's system trust) when it is unset. */
export function caBundleOf(field: string, path: string | undefined): string | undefined {
  return path === undefined ? undefined : readCaBundle(field, path);
}

/** OpenSSL's certificate verification codes Node reports (`error.code`), the common ones. */
const verificationCodes = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The service's certificate was not trusted: the handshake failed, no request was sent. */
export class TlsVerificationError extends Error {
  override readonly name = 'TlsVerificationError';
  constructor(
    readonly service: 'NetBox' | 'AWX',
    /** OpenSSL's verification code, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
    readonly code: string,
    /** The setting that chooses the CAs trusted for the service. */
    readonly setting: string,
  ) {
    super(
      `TLS verification failed (${code}): ${service}'s certificate is not trusted — check ${setting} ` +
        `(unset: the system's CAs) and the certificate ${service} serves`,
    );
  }
}

/**
 * The verification code of a failed connection, looked for in the error and its causes (axios puts
 * it on the error, fetch on its cause); undefined when the failure was anything else.
 */
export function tlsVerificationCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && verificationCodes.has(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
