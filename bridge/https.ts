/**
 * Where the bridge listens: its HTTP server itself, or — with UNICOP_BRIDGE_TLS_PKI — a TLS listener
 * in front of it (issue #18 item 2). The TLS listener hands each connection, once its handshake is
 * done, to the same HTTP server, so routes, timeouts and keep-alive are the ones the bridge always
 * had. Its certificate comes from Vault's PKI engine and is swapped on renewal with setSecureContext
 * (core/secrets/serving-certificate.ts): new connections get the new certificate, open ones keep
 * theirs and are not dropped.
 */
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from 'pino';
import type { UnicopConfig } from '../core/config.js';
import { ServingCertificate } from '../core/secrets/serving-certificate.js';
import type { VaultSession } from '../core/secrets/vault-session.js';

export interface BridgeListener {
  listener: NetServer;
  scheme: 'http' | 'https';
  /** Stops renewing the certificate (the listener is closed by the caller). */
  stop(): void;
}

export async function bridgeListener(
  config: UnicopConfig,
  server: Server,
  session: VaultSession | undefined,
  log: Logger,
): Promise<BridgeListener> {
  const pki = config.UNICOP_BRIDGE_TLS_PKI;
  if (!pki) return { listener: server, scheme: 'http', stop: () => undefined };
  if (!session) throw new Error('UNICOP_BRIDGE_TLS_PKI needs Vault (UNICOP_VAULT_ADDR and an AppRole)');
  const certificate = new ServingCertificate(session, {
    pki,
    names: config.UNICOP_BRIDGE_TLS_NAMES ?? ['localhost', '127.0.0.1'],
    ttlSeconds: config.UNICOP_BRIDGE_TLS_TTL_SECONDS,
    log: log.child({ part: 'https' }),
  });
  let swap: (pair: { cert: string; key: string }) => void = () => undefined;
  const first = await certificate.start((pair) => swap(pair));
  const listener = createTlsServer({ cert: first.cert, key: first.key }, (socket) =>
    server.emit('connection', socket),
  );
  swap = ({ cert, key }) => listener.setSecureContext({ cert, key });
  // A failed handshake (a client that does not trust the CA) is the client's business, not an error.
  listener.on('tlsClientError', (error) => log.debug({ reason: error.message }, 'TLS handshake failed'));
  log.info({ pki, serial: first.serial, notAfter: new Date(first.notAfter) }, 'HTTPS certificate issued');
  return { listener, scheme: 'https', stop: () => certificate.close() };
}
