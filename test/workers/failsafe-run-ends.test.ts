/**
 * The fail-safe's run-end reader when Kafka does not answer at start (workers/failsafe/run-ends.ts):
 * it tries the positioning again with backoff instead of failing — a failure there would exit the
 * workers process (workers/main.ts). A broker address nothing listens on stands in for Kafka away.
 */
import { Writable } from 'node:stream';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.js';
import { runEndsFrom } from '../../workers/failsafe/run-ends.js';
import { eventually } from '../awx/support.js';
import { freePort } from '../support/ports.js';

describe('fail-safe run ends: Kafka away at start', () => {
  it('positioning is retried with backoff until stopped; start neither throws nor gives up', async () => {
    const port = await freePort();
    const kafka = new Kafka({
      clientId: 'failsafe-run-ends-test',
      brokers: [`127.0.0.1:${port}`],
      connectionTimeout: 500,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    });
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const reader = runEndsFrom(
      kafka,
      'failsafe-run-ends-test',
      () => new Date(),
      createLogger('t', 'warn', sink),
      {
        initialBackoffMs: 50,
        maxBackoffMs: 200,
      },
    );
    let settled: 'resolved' | Error | null = null;
    const started = reader
      .start(() => undefined)
      .then(
        () => {
          settled = 'resolved';
        },
        (error: Error) => {
          settled = error;
        },
      );
    await eventually(
      async () => lines.filter((l) => l.includes('could not position on unicop.outcomes')).length >= 3,
      'three positioning attempts that failed',
      60_000,
    );
    expect(settled).toBeNull();
    await reader.stop();
    await started;
    expect(settled).toBe('resolved');
  });
});
