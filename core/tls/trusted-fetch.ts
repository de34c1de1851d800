/**
 * A `fetch` for the AWX client (openapi-fetch takes any fetch) that trusts a CA bundle of its own
 * for https URLs (UNICOP_AWX_CA_FILE, decision 0056). Node 20's global fetch (its bundled undici)
 * takes its CAs only from a `dispatcher` built with undici's own Agent (`connect: { ca }`), which
 * Node does not export and UNICOP does not depend on; so the requests go through node:https with an
 * https.Agent carrying `ca` — the same mechanism the NetBox client (axios) uses. Without a bundle
 * the AWX client keeps the global fetch (the system's CAs).
 *
 * Only what the AWX client uses: the request's method, headers and body out, status, headers and
 * the whole body back (AWX's answers are JSON pages and job output); no redirects followed (AWX's
 * API paths end in `/` and answer directly). Errors are shaped as fetch's: a connection failure is
 * `TypeError('fetch failed')` with the socket error as its cause (its `code`, e.g.
 * ECONNREFUSED or UNABLE_TO_VERIFY_LEAF_SIGNATURE), an abort rejects with the signal's reason.
 */
import https from 'node:https';

export type FetchLike = (request: Request, init?: { signal?: AbortSignal }) => Promise<Response>;

/** Statuses whose Response must have no body. */
const bodiless = new Set([101, 204, 205, 304]);

export function fetchTrusting(ca: string): FetchLike {
  const agent = new https.Agent({ keepAlive: true, ca });
  return async (request, init) => {
    const url = new URL(request.url);
    if (url.protocol !== 'https:') return globalThis.fetch(request, init);
    const signal = init?.signal;
    signal?.throwIfAborted();
    const body = request.body === null ? undefined : Buffer.from(await request.arrayBuffer());
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (body !== undefined) headers['content-length'] = String(body.length);
    return new Promise<Response>((resolve, reject) => {
      const outgoing = https.request(url, { method: request.method, headers, agent }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('error', (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(new TypeError('fetch failed', { cause: error }));
        });
        answer.on('end', () => {
          signal?.removeEventListener('abort', onAbort);
          const status = answer.statusCode ?? 502;
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(answer.headers)) {
            if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
            else if (value !== undefined) responseHeaders.set(name, value);
          }
          const empty = bodiless.has(status) || request.method === 'HEAD';
          resolve(
            new Response(empty ? null : Buffer.concat(chunks), {
              status,
              statusText: answer.statusMessage ?? '',
              headers: responseHeaders,
            }),
          );
        });
      });
      const onAbort = () => {
        outgoing.destroy();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      outgoing.on('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(new TypeError('fetch failed', { cause: error }));
      });
      outgoing.end(body);
    });
  };
}
