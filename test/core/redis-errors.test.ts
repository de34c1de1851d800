/**
 * Redis errors go through the structured logger (core/redis-errors.ts, issue #14 observation 9):
 * an ioredis client and BullMQ's Queue and Worker pointed at a closed port — never the shared
 * Redis — log JSON lines `redis error` with the client, its target (host:port/db) and the error's
 * name, code and message; repeats of one code are held back; nothing reaches stderr or the console
 * raw ("[ioredis] Unhandled error event", BullMQ's own printing); the password in the Redis URL is
 * in no line.
 */
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { Writable } from 'node:stream';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../core/logger.js';
import { logRedisErrors, redisTarget, withoutCredentials } from '../../core/redis-errors.js';

const password = 's3cret-redis-pass';

/** A port nothing listens on: bound once by us, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function capture(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, log: createLogger('redis-errors-test', 'info', sink) };
}

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  // A client that never connected closes at once; bounded anyway.
  await Promise.all(
    closers.splice(0).map((close) => Promise.race([close(), new Promise((r) => setTimeout(r, 5_000))])),
  );
});

async function until(condition: () => boolean, capMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > capMs) throw new Error(`condition not met within ${capMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('core/redis-errors.ts: Redis errors as structured log lines', () => {
  it('ioredis, a BullMQ Queue and Worker at a closed port: JSON lines with client, target and error; nothing raw on stderr; no password', async () => {
    const raw: string[] = [];
    const record = (...args: unknown[]) => {
      raw.push(args.map(String).join(' '));
    };
    vi.spyOn(console, 'error').mockImplementation(record);
    vi.spyOn(console, 'warn').mockImplementation(record);
    vi.spyOn(console, 'log').mockImplementation(record);
    const stderrWrite = process.stderr.write.bind(process.stderr);
    vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
      raw.push(String(chunk));
      return (stderrWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write);

    const port = await closedPort();
    const url = `redis://:${password}@127.0.0.1:${port}/2`;
    const { lines, log } = capture();
    const redis = logRedisErrors(
      new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 100 }),
      log,
      { client: 'sweeper', url },
    );
    closers.push(async () => redis.disconnect());
    const connection = { url, retryStrategy: () => 100 };
    const queue = logRedisErrors(new Queue(`redis-errors-${port}`, { connection }), log, {
      client: 'reconcile-queue',
      url,
    });
    closers.push(() => queue.close());
    const worker = logRedisErrors(
      new Worker(`redis-errors-${port}`, async () => undefined, { connection }),
      log,
      {
        client: 'reconcile-worker',
        url,
      },
    );
    closers.push(() => worker.close(true));

    const clients = () => new Set(lines.map((line) => JSON.parse(line).redis?.client));
    const rawRedis = () => raw.filter((text) => /redis|ECONNREFUSED|Unhandled error/i.test(text));
    await until(
      () =>
        rawRedis().length > 0 ||
        ['sweeper', 'reconcile-queue', 'reconcile-worker'].every((c) => clients().has(c)),
    );
    // ioredis retries every 100 ms: let several attempts fail, which must not add lines.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(rawRedis()).toEqual([]);
    expect([...clients()].sort()).toEqual(['reconcile-queue', 'reconcile-worker', 'sweeper']);

    const parsed = lines.map((line) => JSON.parse(line));
    for (const entry of parsed) {
      expect(entry).toMatchObject({
        level: 40,
        component: 'redis-errors-test',
        msg: 'redis error',
        redis: { target: `127.0.0.1:${port}/2` },
        err: { code: 'ECONNREFUSED' },
      });
      expect(entry.err.message).toMatch(/ECONNREFUSED/);
    }
    // One line per client and code while the quiet period lasts, however many attempts failed.
    const perClient = new Map<string, number>();
    for (const entry of parsed)
      perClient.set(entry.redis.client, (perClient.get(entry.redis.client) ?? 0) + 1);
    expect(Math.max(...perClient.values())).toBeLessThanOrEqual(2);
    expect(lines.join('\n')).not.toContain(password);
  });

  it("a Redis that goes away and comes back: 'redis error' while it is gone, then one 'redis connection restored'", async () => {
    // A redis-server of this test's own on a free port (never the shared one), stopped and started again.
    const port = await closedPort();
    const startRedis = async () => {
      const server = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      closers.push(async () => server.kill('SIGKILL'));
      // Listening before the client is made: a first connection refused would be an error of its own.
      const accepts = () =>
        new Promise<boolean>((resolve) => {
          const socket = connect(port, '127.0.0.1', () => {
            socket.destroy();
            resolve(true);
          });
          socket.once('error', () => resolve(false));
        });
      for (let i = 0; i < 200 && !(await accepts()); i++) await new Promise((r) => setTimeout(r, 50));
      return server;
    };
    const url = `redis://127.0.0.1:${port}`;
    const { lines, log } = capture();
    let server = await startRedis();
    const redis = logRedisErrors(
      new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 100 }),
      log,
      {
        client: 'bridge',
        url,
      },
    );
    closers.push(async () => redis.disconnect());
    await until(() => redis.status === 'ready');
    expect(lines).toEqual([]);
    const stopped = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGKILL');
    await stopped;
    const messages = () => lines.map((line) => JSON.parse(line).msg as string);
    await until(() => messages().includes('redis error'));
    server = await startRedis();
    await until(() => messages().includes('redis connection restored'));
    const restored = lines
      .map((line) => JSON.parse(line))
      .find((entry) => entry.msg === 'redis connection restored');
    expect(restored).toMatchObject({ level: 30, redis: { client: 'bridge', target: `127.0.0.1:${port}/0` } });
    expect(messages().filter((m) => m === 'redis connection restored')).toHaveLength(1);
  });

  it('the target names host, port and database only; credentials are cut out of messages', () => {
    expect(redisTarget(`redis://user:${password}@redis.internal:6380/4`)).toBe('redis.internal:6380/4');
    expect(redisTarget('redis://127.0.0.1')).toBe('127.0.0.1:6379/0');
    expect(withoutCredentials(`connect to rediss://u:${password}@h:1/0 failed`)).toBe(
      'connect to rediss://[redacted]@h:1/0 failed',
    );
  });
});
