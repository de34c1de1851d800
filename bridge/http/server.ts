/**
 * The bridge's HTTP layer: a small route table over node:http. Every answer is JSON (except
 * /metrics); every error becomes `{status: 'rejected', reason, message, issues?}` with its HTTP
 * status; anything unexpected is a 500 that is logged with its stack and never shown to the caller.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { uuidv7 } from '../../core/ids.js';
import { HttpError, NotFoundError } from './errors.js';

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** Send `body` as text/plain (Prometheus exposition) instead of JSON. */
  text?: boolean;
}

export interface RequestContext {
  req: IncomingMessage;
  params: Record<string, string>;
  log: Logger;
  requestId: string;
}

export type Handler = (ctx: RequestContext) => Promise<Reply>;

export interface Route {
  method: 'GET' | 'POST';
  /** Path with `:name` segments (one path segment each). */
  path: string;
  handler: Handler;
}

function matcher(path: string): RegExp {
  const pattern = path
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) return `(?<${seg.slice(1)}>[^/]+)`;
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${pattern}/?$`);
}

export function createHttpServer(routes: Route[], log: Logger): Server {
  const table = routes.map((r) => ({ ...r, regex: matcher(r.path) }));
  return createServer((req, res) => {
    const requestId = uuidv7();
    const url = new URL(req.url ?? '/', 'http://bridge');
    const reqLog = log.child({ requestId, method: req.method, path: url.pathname });
    const route = table.find((r) => r.method === req.method && r.regex.test(url.pathname));
    const run = async (): Promise<Reply> => {
      if (!route) {
        const pathKnown = table.some((r) => r.regex.test(url.pathname));
        if (pathKnown) {
          const allowed = table.filter((r) => r.regex.test(url.pathname)).map((r) => r.method);
          return {
            status: 405,
            headers: { Allow: allowed.join(', ') },
            body: {
              status: 'rejected',
              reason: 'method_not_allowed',
              message: `${req.method} is not served on ${url.pathname}; allowed: ${allowed.join(', ')}`,
            },
          };
        }
        throw new NotFoundError(`route ${url.pathname}`);
      }
      const params = Object.fromEntries(
        Object.entries(route.regex.exec(url.pathname)?.groups ?? {}).map(([k, v]) => [
          k,
          decodeURIComponent(v),
        ]),
      );
      return route.handler({ req, params, log: reqLog, requestId });
    };
    run()
      .catch((error: unknown) => errorReply(error, reqLog))
      .then((reply) => send(res, reply, requestId))
      .catch((error: unknown) => reqLog.error({ err: error }, 'failed to send the reply'));
  });
}

function errorReply(error: unknown, log: Logger): Reply {
  if (error instanceof HttpError) {
    return {
      status: error.statusCode,
      headers: error.details.headers ?? {},
      body: {
        status: 'rejected',
        reason: error.reason,
        message: error.message,
        ...(error.details.issues ? { issues: error.details.issues } : {}),
      },
    };
  }
  log.error({ err: error }, 'unexpected error while handling a request');
  return { status: 500, body: { status: 'error', reason: 'internal_error', message: 'internal error' } };
}

function send(res: ServerResponse, reply: Reply, requestId: string): void {
  const text = reply.text ? String(reply.body) : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'Content-Type': reply.text ? 'text/plain; version=0.0.4; charset=utf-8' : 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'X-Request-ID': requestId,
    ...reply.headers,
  });
  res.end(text);
}
