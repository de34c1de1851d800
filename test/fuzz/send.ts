/**
 * Sends one fuzz case as it is — repeated headers, no Content-Length, a body trickled in pieces, any
 * method — with node:http from a chosen local address (the bridge's refusal budget is per peer), and
 * reads the answer: status, the body's `reason`/`status`, the change id and the request id.
 */
import { Agent, request } from 'node:http';
import type { FuzzCase } from './cases.js';

export interface Answer {
  status: number;
  /** `reason` of a refusal, `status` of a 2xx body; null when the body is not our JSON. */
  reason: string | null;
  changeId: string | null;
  requestId: string | null;
  retryAfter: string | null;
}

/** The connection was closed before an answer came (what Node does to a request it cannot parse). */
export class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
}

/**
 * A kept-alive connection the bridge had closed meanwhile (its keep-alive timeout) was reused: the
 * request never reached it. Node's documented answer is to send it again (http `request.reusedSocket`).
 */
export class StaleConnectionError extends Error {
  override readonly name = 'StaleConnectionError';
}

export function fuzzAgent(localAddress: string, sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets, localAddress });
}

export function send(baseUrl: string, agent: Agent, c: FuzzCase, timeoutMs = 120_000): Promise<Answer> {
  const url = new URL(baseUrl);
  // Raw header pairs get no Host from Node, and a request without one is refused (400).
  const headers: [string, string][] = [['host', url.host], ...c.headers];
  if (!c.chunked) headers.push(['content-length', String(c.body.length)]);
  return new Promise<Answer>((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      method: c.method,
      path: c.path,
      agent,
      // An array of [name, value] pairs keeps repeated headers and their order.
      headers: headers.flat(),
      timeout: timeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error) => {
      const code = 'code' in error ? error.code : undefined;
      const reset = code === 'ECONNRESET' || code === 'EPIPE';
      if (reset && req.reusedSocket) reject(new StaleConnectionError(error.message));
      else if (reset) reject(new NoAnswerError(error.message));
      else reject(error);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        let reason: string | null = null;
        let changeId: string | null = null;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          const field = (res.statusCode ?? 0) < 300 ? body.status : body.reason;
          reason = typeof field === 'string' ? field : null;
          changeId = typeof body.changeId === 'string' ? body.changeId : null;
        } catch {
          // not JSON: Node's own answer to a request it could not parse, or a HEAD
        }
        const header = (name: string) => {
          const v = res.headers[name];
          return typeof v === 'string' ? v : null;
        };
        resolve({
          status: res.statusCode ?? 0,
          reason,
          changeId,
          requestId: header('x-request-id'),
          retryAfter: header('retry-after'),
        });
      });
    });
    void writeBody(req, c).catch((error: unknown) => req.destroy(error as Error));
  });
}

async function writeBody(req: ReturnType<typeof request>, c: FuzzCase): Promise<void> {
  const size = Math.ceil(c.body.length / c.pieces);
  for (let i = 0; i < c.pieces; i++) {
    const piece = c.body.subarray(i * size, (i + 1) * size);
    if (piece.length > 0 && !req.destroyed) req.write(piece);
    if (c.trickleMs > 0 && i < c.pieces - 1) await new Promise((r) => setTimeout(r, c.trickleMs));
  }
  req.end();
}
