/**
 * OpenTelemetry tracing: one trace per change, from the bridge's receipt to the run's outcome
 * (docs/decisions/0040-tracing.md). The trace context crosses each hop as a W3C `traceparent`:
 * in the Kafka message headers (unicop.changes, unicop.intents, unicop.outcomes) and in the
 * reconcile job's data (BullMQ). Inside a process it follows the awaited calls
 * (AsyncLocalStorage), so a NetBox or AWX request made during a span becomes its child.
 *
 * Off unless `UNICOP_OTLP_URL` is set: then nothing is registered, every tracer is the API's no-op,
 * no header is written and no span is kept (a few function calls per message). On: spans are
 * batched and exported over OTLP/HTTP (`<url>/v1/traces`); an unreachable collector loses spans,
 * never work.
 */
import {
  type Attributes,
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { LogRecord } from './event-log/consumer.js';

export { SpanKind };

/** The parts of UNICOP whose spans a trace shows; each is the instrumentation scope of its spans. */
export type TracedPart = 'bridge' | 'resolver' | 'dispatcher' | 'reconciler' | 'netbox' | 'awx';

export function tracer(part: TracedPart): Tracer {
  return trace.getTracer(`unicop.${part}`);
}

export interface Tracing {
  readonly enabled: boolean;
  /** Exports what has ended so far (a test reading the trace back; the demo before it prints the URL). */
  flush(): Promise<void>;
  /** Exports what is left and stops; called once when the process stops. */
  shutdown(): Promise<void>;
}

const off: Tracing = { enabled: false, flush: async () => {}, shutdown: async () => {} };

/**
 * Starts exporting this process's spans as `serviceName` when `otlpUrl` is set (the collector's
 * OTLP/HTTP base URL, e.g. http://127.0.0.1:14318); registers the W3C propagator and the
 * AsyncLocalStorage context manager. Without a URL it does nothing, and the SDK is not even loaded.
 */
export async function startTracing(serviceName: string, otlpUrl: string | undefined): Promise<Tracing> {
  if (!otlpUrl) return off;
  const [{ OTLPTraceExporter }, { resourceFromAttributes }, { BatchSpanProcessor, NodeTracerProvider }] =
    await Promise.all([
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace-node'),
    ]);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${otlpUrl.replace(/\/+$/, '')}/v1/traces` }), {
        // A trace is readable a second after its spans end; bounded memory if the collector is away.
        scheduledDelayMillis: 1000,
        maxQueueSize: 4096,
      }),
    ],
  });
  provider.register();
  return { enabled: true, flush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
}

/** The context a carrier (Kafka headers, HTTP headers, job data) hands on; ROOT when it has none. */
export function contextFrom(carrier: Record<string, string | string[] | undefined> | undefined): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
}

/** `traceparent` (and `tracestate`) of `ctx`; {} when tracing is off or `ctx` holds no span. */
export function traceCarrier(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** `{ headers }` for an event-log message carrying `ctx`'s trace, or {} (spread into the message). */
export function traceHeaders(ctx: Context = context.active()): { headers?: Record<string, string> } {
  const carrier = traceCarrier(ctx);
  return carrier.traceparent ? { headers: carrier } : {};
}

/**
 * trace_id/span_id of the active span, for log lines (core/logger.ts); {} outside a span. A new
 * object each time: pino merges the line's own fields into what its mixin returns.
 */
export function activeTraceIds(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return traceId === INVALID_SPAN_CONTEXT.traceId ? {} : { trace_id: traceId, span_id: spanId };
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent; the active context by default. */
  parent?: Context;
}

/**
 * Runs `work` inside a new span (the active one while it runs); a throw marks the span as failed
 * and is rethrown. The span ends when `work` settles.
 */
export async function inSpan<T>(
  tracer: Tracer,
  name: string,
  options: SpanOptions,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes ? { attributes: options.attributes } : {}),
    },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => work(span));
  } catch (error) {
    failed(span, error);
    throw error;
  } finally {
    span.end();
  }
}

const idleSpan = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * A client call (NetBox, AWX) as a child of the active span; outside any span no span is made, so
 * that calls of no change (the sweeper, a health probe) add no one-span traces.
 */
export function inClientSpan<T>(
  tracer: Tracer,
  name: string,
  attributes: Attributes,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  if (!trace.getActiveSpan()) return work(idleSpan);
  return inSpan(tracer, name, { kind: SpanKind.CLIENT, attributes }, work);
}

/** Marks a span as failed with the error's name and message (never more of it: no secrets). */
export function failed(span: Span, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: `${e.name}: ${e.message}` });
  span.setAttribute('error.type', e.name);
}

/**
 * Runs `work` on a batch of consumed records with one CONSUMER span per record, each the child of
 * the context its headers carry (a record without one starts a trace). `work` gets each record's
 * context, to hand on in what it writes; a batch of one record runs inside its span, so that the
 * calls made for it are its children (a batch of several shares its calls: they are no one's).
 */
export async function inRecordSpans<T>(
  tracer: Tracer,
  operation: string,
  records: LogRecord[],
  work: (contextOf: (record: LogRecord) => Context) => Promise<T>,
): Promise<T> {
  const contexts = new Map<LogRecord, Context>();
  const spans: Span[] = [];
  for (const record of records) {
    const parent = contextFrom(record.headers);
    const span = tracer.startSpan(
      `${record.topic} ${operation}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.destination.name': record.topic,
          'messaging.destination.partition.id': String(record.partition),
          'messaging.kafka.offset': Number(record.offset),
          ...(record.key ? { 'messaging.kafka.message.key': record.key } : {}),
        },
      },
      parent,
    );
    spans.push(span);
    contexts.set(record, trace.setSpan(parent, span));
  }
  const contextOf = (record: LogRecord) => contexts.get(record) ?? ROOT_CONTEXT;
  const only = records.length === 1 ? contexts.get(records[0] as LogRecord) : undefined;
  try {
    return await context.with(only ?? context.active(), () => work(contextOf));
  } catch (error) {
    for (const span of spans) failed(span, error);
    throw error;
  } finally {
    for (const span of spans) span.end();
  }
}
