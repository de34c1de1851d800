/**
 * The bare sink: the least any receiver must do with a NetBox webhook — read the body, verify its
 * HMAC-SHA512 signature in constant time, parse the JSON — and nothing else (nothing is kept).
 * Run as its own process: `node --import tsx bench/ingest/sink.ts` with BENCH_SINK_PORT and
 * BENCH_SINK_SECRET.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.env.BENCH_SINK_PORT);
const secret = process.env.BENCH_SINK_SECRET ?? '';

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const given = Buffer.from(String(req.headers['x-hook-signature'] ?? ''));
    const expected = Buffer.from(createHmac('sha512', secret).update(raw).digest('hex'));
    let status = 401;
    if (given.length === expected.length && timingSafeEqual(given, expected)) {
      try {
        JSON.parse(raw.toString('utf8'));
        status = 202;
      } catch {
        status = 400;
      }
    }
    const answer = status === 202 ? '{"status":"accepted"}' : '{"status":"rejected"}';
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': answer.length });
    res.end(answer);
  });
}).listen(port, '127.0.0.1');
