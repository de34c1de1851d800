/**
 * The bridge's HTTPS certificate from Vault's PKI engine (issue #18 item 2): issued at start-up from
 * the PKI role UNICOP_BRIDGE_TLS_PKI (`<mount>/<role>`) for UNICOP_BRIDGE_TLS_NAMES, and issued again
 * at 2/3 of its life. Each new certificate is handed to `onRenewed`, which swaps the listener's
 * secure context (tls.Server#setSecureContext): new connections get the new certificate, open ones
 * keep theirs — nothing is dropped — and the old certificate is never served again. A failed renewal
 * is tried again every 5 s while the current certificate is still valid (logged with the role, never
 * a key).
 */
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { IssuedCertificate, VaultSession } from './vault-session.js';

export interface ServingCertificateOptions {
  /** `<mount>/<role>` of the PKI role, e.g. pki/unicop-bridge. */
  pki: string;
  /** DNS names and IP addresses the certificate names; the first DNS name is its common name. */
  names: readonly string[];
  ttlSeconds: number;
  log?: Logger;
}

export interface CertificatePair {
  cert: string;
  key: string;
  serial: string;
  /** When it expires (ms since the epoch). */
  notAfter: number;
}

const retryMs = 5_000;

export class ServingCertificate {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly session: VaultSession,
    private readonly options: ServingCertificateOptions,
  ) {}

  /** Issues the first certificate; renewals follow until close(), each handed to `onRenewed`. */
  async start(onRenewed: (pair: CertificatePair) => void): Promise<CertificatePair> {
    const first = await this.issue();
    this.schedule(first, onRenewed);
    return first;
  }

  private async issue(): Promise<CertificatePair> {
    const [mount, role] = this.options.pki.split('/', 2) as [string, string];
    const ips = this.options.names.filter((n) => isIP(n) !== 0);
    const dns = this.options.names.filter((n) => isIP(n) === 0);
    const answer: IssuedCertificate = await this.session.issueCertificate(mount, role, {
      common_name: dns[0] ?? ips[0] ?? 'localhost',
      ...(dns.length > 1 ? { alt_names: dns.slice(1).join(',') } : {}),
      ...(ips.length > 0 ? { ip_sans: ips.join(',') } : {}),
      ttl: `${this.options.ttlSeconds}s`,
    });
    // The chain a client needs: the certificate, then the CA that issued it.
    return {
      cert: `${answer.certificate}\n${answer.issuing_ca}\n`,
      key: answer.private_key,
      serial: answer.serial_number,
      notAfter: answer.expiration * 1000,
    };
  }

  private schedule(pair: CertificatePair, onRenewed: (pair: CertificatePair) => void): void {
    if (this.closed) return;
    const life = pair.notAfter - Date.now();
    const delay = Math.max(1000, (life * 2) / 3);
    this.timer = setTimeout(() => void this.renew(pair, onRenewed), delay);
    this.timer.unref();
  }

  private async renew(old: CertificatePair, onRenewed: (pair: CertificatePair) => void): Promise<void> {
    if (this.closed) return;
    try {
      const next = await this.issue();
      onRenewed(next);
      this.options.log?.info(
        {
          pki: this.options.pki,
          serial: next.serial,
          retiredSerial: old.serial,
          notAfter: new Date(next.notAfter),
        },
        'HTTPS certificate renewed',
      );
      this.schedule(next, onRenewed);
    } catch (error) {
      this.options.log?.warn(
        { pki: this.options.pki, reason: (error as Error).message, expiresAt: new Date(old.notAfter) },
        'HTTPS certificate not renewed; trying again',
      );
      this.timer = setTimeout(() => void this.renew(old, onRenewed), retryMs);
      this.timer.unref();
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
