/**
 * The one load generator for every receiver: `connections` keep-alive connections, each posting
 * distinct signed deliveries back to back until the time is up. A request counts when the receiver
 * answered `accepted(status)`; its latency is from the request's start to the end of the answer.
 * Answer bodies are kept (not parsed while timed) so the bridge's change ids can be checked later.
 */
import { Agent, request } from 'node:http';
import { signedDelivery } from './deliveries.js';

export interface LoadOptions {
  url: string;
  secret: string;
  connections: number;
  durationMs: number;
  /** First delivery number; each run uses its own range so no delivery repeats. */
  firstDelivery: number;
  accepted: (status: number) => boolean;
  keepBodies?: boolean;
}

export interface LoadResult {
  accepted: number;
  refused: number;
  failed: number;
  seconds: number;
  perSecond: number;
  /** Sorted latencies of accepted requests, ms. */
  latencies: number[];
  bodies: string[];
}

export async function drive(options: LoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies: number[] = [];
  const bodies: string[] = [];
  let next = options.firstDelivery;
  let refused = 0;
  let failed = 0;
  const started = performance.now();
  const until = started + options.durationMs;

  const post = (body: string, signature: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
            'X-Hook-Signature': signature,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const connection = async () => {
    while (performance.now() < until) {
      const { body, signature } = signedDelivery(next++, options.secret);
      const t = performance.now();
      try {
        const answer = await post(body, signature);
        if (options.accepted(answer.status)) {
          latencies.push(performance.now() - t);
          if (options.keepBodies) bodies.push(answer.text);
        } else refused++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, connection));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    accepted: latencies.length,
    refused,
    failed,
    seconds,
    perSecond: latencies.length / seconds,
    latencies,
    bodies,
  };
}
