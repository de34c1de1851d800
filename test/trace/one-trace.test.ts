/**
 * One trace per change, read back from the stack's Jaeger (scripts/stack.d/jaeger.sh): a real
 * NetBox edit goes through the whole loop — NetBox's event rule → signed webhook → bridge →
 * unicop.changes → resolver → unicop.intents → dispatcher → BullMQ job → reconciler → NetBox and
 * the stack's real AWX → outcome — with this process exporting its spans over OTLP/HTTP to Jaeger
 * (UNICOP_OTLP_URL). The trace id is taken from the bridge's own log line for the change (log lines
 * carry trace_id) and must be the one the outcome record's `traceparent` names; Jaeger's query API
 * must then hold, under that one id, the bridge's receipt and produce spans, the resolver's,
 * the dispatcher's and the reconciler's consumer spans in one parent chain, and the NetBox and AWX
 * calls of the run as children of the reconciler's span.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../core/events/catalogue.js';
import { startTracing, type Tracing } from '../../core/tracing.js';
import { type TailedMessage, TopicTail } from '../support/kafka.js';
import { netbox } from '../support/netbox.js';
import { type FrontHalf, startFrontHalf } from '../support/pipeline.js';
import {
  type BackHalf,
  createSite,
  eventually,
  startBackHalf,
  startDispatchAndReconcile,
} from '../support/reconciler.js';
import { stackFact, uniqueName } from '../support/stack.js';

// Caps, not budgets: a real AWX job starts a podman container; minutes on a loaded machine.
const runCapMs = 420_000;

interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; value: unknown }[];
}

const tag = (span: JaegerSpan, key: string) => span.tags.find((t) => t.key === key)?.value;
const scopeOf = (span: JaegerSpan) => tag(span, 'otel.scope.name') ?? tag(span, 'otel.library.name');
const parentOf = (span: JaegerSpan) => span.references.find((r) => r.refType === 'CHILD_OF')?.spanID;

describe('tracing: one trace per change, in Jaeger', () => {
  let tracing: Tracing;
  let back: BackHalf;
  let front: FrontHalf;
  let loop: Awaited<ReturnType<typeof startDispatchAndReconcile>>;
  let tail: TopicTail;
  let site: Awaited<ReturnType<typeof createSite>>;
  const jaeger = () => stackFact('UNICOP_JAEGER_URL');

  beforeAll(async () => {
    tracing = await startTracing(uniqueName('unicop-trace-test'), stackFact('UNICOP_OTLP_URL'));
    back = await startBackHalf();
    // Made before NetBox is hooked to this bridge: its creation is no change here, the edit is.
    site = await createSite();
    front = await startFrontHalf(['dcim.site']);
    loop = await startDispatchAndReconcile(back, 2);
    tail = await TopicTail.start([topics.outcomes]);
  }, 180_000);
  afterAll(async () => {
    await tail?.stop();
    await loop?.stop();
    await front?.stop();
    await back?.stop();
    await tracing?.shutdown();
  });

  it('a NetBox edit is one trace: bridge receipt and produce → resolver → dispatcher → reconciler, its NetBox and AWX calls its children, the outcome carrying the same trace', async () => {
    await netbox('PATCH', `/api/dcim/sites/${site.id}/`, {
      description: `traced ${new Date().toISOString()}`,
    });
    // The bridge's log line for the change carries the trace id …
    const accepted = await eventually(
      async () =>
        front.bridge.logs
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find((l) => l.msg === 'change accepted' && l.objectId === site.id),
      'the bridge accepting the edit',
      runCapMs,
    );
    const traceId = accepted.trace_id as string;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(accepted.span_id).toMatch(/^[0-9a-f]{16}$/);
    // … and the run's outcome record names the same trace in its traceparent.
    const traced = (m: TailedMessage) =>
      m.key === site.rootKey && m.headers?.traceparent?.split('-')[1] === traceId;
    const outcome = (await tail.waitFor(traced, 1, runCapMs))[0] as TailedMessage;
    expect((outcome.value.data as { state?: string }).state).toBe('succeeded');

    await tracing.flush();
    const wanted = [
      'unicop.bridge',
      'unicop.resolver',
      'unicop.dispatcher',
      'unicop.reconciler',
      'unicop.netbox',
      'unicop.awx',
    ];
    const spans = await eventually(
      async () => {
        const res = await fetch(`${jaeger()}/api/traces/${traceId}`);
        if (!res.ok) return undefined;
        const body = (await res.json()) as { data: { spans: JaegerSpan[] }[] };
        const all = body.data.flatMap((t) => t.spans);
        // Until the reconcile span that ended the run is there too (it ends after the outcome's append).
        const ended = all.some((span) => tag(span, 'unicop.run_state') !== undefined);
        return ended && wanted.every((s) => all.some((span) => scopeOf(span) === s)) ? all : undefined;
      },
      `trace ${traceId} in Jaeger with spans from ${wanted.join(', ')}`,
      60_000,
    );

    expect(new Set(spans.map((s) => s.traceID))).toEqual(new Set([traceId]));
    const byId = new Map(spans.map((s) => [s.spanID, s]));
    const one = (scope: string, name: string) => {
      const found = spans.filter((s) => scopeOf(s) === scope && s.operationName === name);
      expect(found, `${scope} ${name}`).toHaveLength(1);
      return found[0] as JaegerSpan;
    };
    const receipt = one('unicop.bridge', 'POST /webhooks/netbox');
    const produce = one('unicop.bridge', `${topics.changes} publish`);
    const resolve = one('unicop.resolver', `${topics.changes} process`);
    const dispatch = one('unicop.dispatcher', `${topics.intents} process`);
    // The job may run more than once (a lease held elsewhere: later); each run is the dispatch's child.
    const reconciles = spans.filter((s) => scopeOf(s) === 'unicop.reconciler');
    expect(reconciles.map((s) => [s.operationName, parentOf(s)])).toEqual(
      reconciles.map(() => ['reconcile site', dispatch.spanID]),
    );
    const reconcile = reconciles.find((s) => tag(s, 'unicop.run_state') === 'succeeded') as JaegerSpan;
    expect(reconcile, 'the reconcile span that ended the run').toBeDefined();
    // The chain, each hop the parent of the next: nothing lost between processes or queues.
    expect(parentOf(receipt)).toBeUndefined();
    expect(parentOf(produce)).toBe(receipt.spanID);
    expect(parentOf(resolve)).toBe(produce.spanID);
    expect(parentOf(dispatch)).toBe(resolve.spanID);
    expect(tag(dispatch, 'unicop.dispatch')).toBe('queued');
    expect(tag(reconcile, 'unicop.run_state')).toBe('succeeded');
    expect(tag(reconcile, 'unicop.result')).toBe('done');
    // The run's calls: children of the reconciler's span (the lease, the snapshot, the launch).
    const calls = spans.filter((s) => parentOf(s) === reconcile.spanID);
    expect(calls.filter((s) => scopeOf(s) === 'unicop.netbox').length).toBeGreaterThanOrEqual(3);
    expect(calls.some((s) => scopeOf(s) === 'unicop.awx' && s.operationName === 'AWX POST')).toBe(true);
    // Every reference points inside the trace: no span hangs off one Jaeger does not have.
    expect(spans.filter((s) => parentOf(s) !== undefined && !byId.has(parentOf(s) as string))).toEqual([]);
  }, 600_000);
});
