/**
 * A TLS front for a test: an HTTPS reverse proxy on 127.0.0.1 that serves a given certificate and
 * passes every request on to a plain-HTTP service of the stack (the real NetBox or the real AWX), as
 * a TLS-terminating proxy in front of them would in a deployment. It counts the requests it passed
 * on: a client that does not trust the certificate fails the handshake, so the count stays 0 — the
 * test's proof that nothing reached the service.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface TlsFront {
  /** https://127.0.0.1:<port> (the certificate must carry the IP address 127.0.0.1). */
  readonly url: string;
  /** Requests passed on to the service so far (after a completed handshake). */
  readonly forwarded: number;
  /** TLS handshakes that failed (the client refused the certificate, or the reverse). */
  readonly handshakeFailures: number;
  close(): Promise<void>;
}

export async function startTlsFront(target: string, pair: { cert: string; key: string }): Promise<TlsFront> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  let forwarded = 0;
  let handshakeFailures = 0;
  const server = https.createServer({ cert: pair.cert, key: pair.key }, (req, res) => {
    forwarded += 1;
    const outgoing = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        // The service sees its own host name, as behind a proxy that rewrites Host.
        headers: { ...req.headers, host: upstream.host },
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    outgoing.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(outgoing);
  });
  server.on('tlsClientError', () => {
    handshakeFailures += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    get forwarded() {
      return forwarded;
    },
    get handshakeFailures() {
      return handshakeFailures;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
