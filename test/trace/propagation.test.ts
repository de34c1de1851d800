/**
 * Trace propagation without a backend (core/tracing.ts; decision 0040): off, nothing is written —
 * no Kafka header, no log field, no span; on (an in-memory exporter), a record's `traceparent`
 * makes the consumer's span a child of the producer's, the context it hands on names that span,
 * and a log line written inside a span carries its ids. The whole loop against Jaeger is
 * test/trace/one-trace.test.ts.
 */
import { Writable } from 'node:stream';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../../core/event-log/consumer.js';
import { createLogger } from '../../core/logger.js';
import { inClientSpan, inRecordSpans, inSpan, SpanKind, traceHeaders, tracer } from '../../core/tracing.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(
    'trace-test',
    'info',
    new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { log, lines };
}

const record = (headers?: Record<string, string>): LogRecord => ({
  topic: 'unicop.changes',
  partition: 0,
  offset: '7',
  key: 'dcim.site:1',
  value: '{}',
  ...(headers ? { headers } : {}),
});

describe('trace propagation', () => {
  // First, before any provider is registered: this is every process without UNICOP_OTLP_URL.
  it('off: no header is written, a consumer hands on nothing, log lines carry no ids', async () => {
    const { log, lines } = capture();
    const handed = await inSpan(tracer('bridge'), 'receipt', { kind: SpanKind.SERVER }, async () => {
      log.info({ a: 1 }, 'inside');
      return traceHeaders();
    });
    expect(handed).toEqual({});
    const next = await inRecordSpans(tracer('resolver'), 'process', [record()], async (contextOf) =>
      traceHeaders(contextOf(record())),
    );
    expect(next).toEqual({});
    expect(lines[0]).toMatchObject({ a: 1, msg: 'inside' });
    expect(lines[0]).not.toHaveProperty('trace_id');
  });

  it('on: the consumer span is the child of the producer span its record names; calls are children; log lines carry the ids', async () => {
    const exporter = new InMemorySpanExporter();
    new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).register();
    const { log, lines } = capture();

    const headers = await inSpan(tracer('bridge'), 'receipt', { kind: SpanKind.SERVER }, async () => {
      log.info({ a: 1 }, 'received');
      return inSpan(tracer('bridge'), 'publish', { kind: SpanKind.PRODUCER }, async () => traceHeaders());
    });
    expect(headers.headers?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const consumed = record(headers.headers);
    const handedOn = await inRecordSpans(tracer('resolver'), 'process', [consumed], async (contextOf) => {
      await inClientSpan(tracer('netbox'), 'NetBox POST', { 'url.path': '/api/x/' }, async () => undefined);
      return traceHeaders(contextOf(consumed));
    });
    // Outside any span a client call makes no span (the sweeper's calls add no one-span traces).
    await inClientSpan(tracer('netbox'), 'NetBox GET', {}, async () => undefined);

    const spans = exporter.getFinishedSpans();
    const named = (name: string) => spans.find((s) => s.name === name);
    const receipt = named('receipt');
    const publish = named('publish');
    const process = named('unicop.changes process');
    const call = named('NetBox POST');
    expect(spans.map((s) => s.name).sort()).toEqual(
      ['NetBox POST', 'publish', 'receipt', 'unicop.changes process'].sort(),
    );
    const traceId = receipt?.spanContext().traceId;
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
    expect(publish?.parentSpanContext?.spanId).toBe(receipt?.spanContext().spanId);
    expect(process?.parentSpanContext?.spanId).toBe(publish?.spanContext().spanId);
    expect(call?.parentSpanContext?.spanId).toBe(process?.spanContext().spanId);
    expect(handedOn.headers?.traceparent).toBe(`00-${traceId}-${process?.spanContext().spanId}-01`);
    expect(lines[0]).toMatchObject({ trace_id: traceId, span_id: receipt?.spanContext().spanId, a: 1 });
  });
});
