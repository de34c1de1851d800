/**
 * The deploy suite's road from the compose network to the local stack's real AWX
 * (scripts/suites.d/40-deploy.sh). Real AWX listens on 127.0.0.1 only, which a container cannot
 * reach; this relay listens on the compose network's gateway address (what `host.containers.internal`
 * names inside the containers) and forwards each HTTP request unchanged to AWX, except its Host
 * header: AWX (Django) answers 400 to a Host outside its ALLOWED_HOSTS (127.0.0.1, localhost).
 *
 *   node --import tsx deploy/test/awx-relay.ts --listen GATEWAY:PORT --to http://127.0.0.1:18053
 *
 * Prints `awx-relay listening on http://GATEWAY:PORT -> <to>` once it listens (the gateway address
 * exists on the host only once a container has joined the network: it retries for 60 s), then one
 * line per request: method, path, status, milliseconds — never a header (the workers' bearer token).
 * SIGTERM/SIGINT close it.
 */
import { createServer, type IncomingHttpHeaders, request } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { listen: { type: 'string' }, to: { type: 'string' } } });
const listen = /^(.+):(\d+)$/.exec(values.listen ?? '');
if (!listen || !values.to) {
  process.stderr.write('usage: awx-relay.ts --listen HOST:PORT --to http://127.0.0.1:18053\n');
  process.exit(2);
}
const [, host = '', portText = ''] = listen;
const target = new URL(values.to);

// Hop-by-hop headers belong to one connection, not to the request or the answer.
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade']);
function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !hopByHop.has(name)));
}

const server = createServer((req, res) => {
  const started = Date.now();
  const upstream = request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...endToEnd(req.headers), host: target.host },
      // A fresh connection per request: uwsgi may close an idle kept-alive one just as it is reused,
      // which would reach the workers as a 502 for a request AWX never saw.
      agent: false,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
      answer.pipe(res);
      answer.on('end', () =>
        process.stdout.write(`${req.method} ${req.url} ${answer.statusCode} ${Date.now() - started}ms\n`),
      );
    },
  );
  upstream.on('error', (error) => {
    process.stdout.write(`${req.method} ${req.url} relay error: ${error.message}\n`);
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`awx-relay: ${target.origin} unreachable: ${error.message}\n`);
  });
  req.pipe(upstream);
});

const deadline = Date.now() + 60_000;
function start(): void {
  server.once('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EADDRNOTAVAIL' && Date.now() < deadline) {
      setTimeout(start, 500);
      return;
    }
    process.stderr.write(`awx-relay: cannot listen on ${host}:${portText}: ${error.message}\n`);
    process.exit(1);
  });
  server.listen(Number(portText), host, () =>
    process.stdout.write(`awx-relay listening on http://${host}:${portText} -> ${target.origin}\n`),
  );
}
start();

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
