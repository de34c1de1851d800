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
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.js';
import { parseEvent, topics } from '../../core/events/catalogue.js';
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
import { stack, stackFact, uniqueName } from '../support/stack.js';

// Caps, not budgets: a real AWX job starts a podman container; minutes on a loaded machine.
const runCapMs = 900_000;
// On a cold machine Jaeger starts only when its Go build ends (scripts/stack.d/jaeger.sh: `stack up`
// does not wait for it), which took 77 min at load 35–40, partly beside the suites before this one.
const jaegerCapMs = 100 * 60_000;

/** `scripts/stack.d/jaeger.sh status`: up, starting (still building) or down. */
function jaegerStatus(): Promise<{ down: boolean; line: string }> {
  return new Promise((resolve) => {
    execFile(join(repoRoot, 'scripts/stack.d/jaeger.sh'), ['status'], (error, stdout) =>
      resolve({ down: error !== null, line: stdout.trim() }),
    );
  });
}

/**
 * Waits for Jaeger's query API while the stack says Jaeger is up or starting; fails at once when it
 * is down (not started, or its build failed), and after the cap.
 */
async function waitForJaeger(url: string): Promise<void> {
  const answers = () =>
    fetch(`${url}/api/services`, { signal: AbortSignal.timeout(5000) }).then(
      (res) => res.ok,
      () => false,
    );
  const deadline = Date.now() + jaegerCapMs;
  while (!(await answers())) {
    const status = await jaegerStatus();
    if (status.down)
      throw new Error(`Jaeger is down (${status.line}): scripts/stack up jaeger; var/log/jaeger*.log`);
    if (Date.now() > deadline)
      throw new Error(`Jaeger did not answer at ${url} within the cap (${status.line})`);
    await sleep(5000);
  }
}

interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  processID: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; value: unknown }[];
}

interface JaegerTrace {
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

const tag = (span: JaegerSpan, key: string) => span.tags.find((t) => t.key === key)?.value;
const scopeOf = (span: JaegerSpan) => tag(span, 'otel.scope.name') ?? tag(span, 'otel.library.name');
const parentOf = (span: JaegerSpan) => span.references.find((r) => r.refType === 'CHILD_OF')?.spanID;

describe('tracing: one trace per change, in Jaeger', () => {
  // This process's spans carry this service name. On a shared stack other processes consume the
  // same records (another resolver or dispatcher) and rightly continue the same trace: the claims
  // below are about this process's loop, found by its service name.
  const service = uniqueName('unicop-trace-test');
  let tracing: Tracing;
  let back: BackHalf;
  let front: FrontHalf;
  let loop: Awaited<ReturnType<typeof startDispatchAndReconcile>>;
  let tail: TopicTail;
  let site: Awaited<ReturnType<typeof createSite>>;
  /** The intents of this bridge's changes for the site: the only ones this loop dispatches. */
  const intentIds = new Set<string>();
  const jaeger = () => stackFact('UNICOP_JAEGER_URL');

  beforeAll(async () => {
    await waitForJaeger(jaeger());
    tracing = await startTracing(service, stackFact('UNICOP_OTLP_URL'));
    back = await startBackHalf();
    // Made before NetBox is hooked to this bridge: its creation is no change here, the edit is.
    site = await createSite();
    // Its delivery memory in a Redis database of its own: other tests' bridges get the same NetBox
    // events through their hooks, and the first to claim one in the shared memory makes it theirs
    // (a duplicate here: no change, no trace of this bridge).
    // (UNICOP_TEST_TRACE_DB: another database, for a second copy of this test run beside it.)
    front = await startFrontHalf(['dcim.site'], {
      UNICOP_REDIS_URL: `${stack.redisUrl()}/${process.env.UNICOP_TEST_TRACE_DB ?? '13'}`,
    });
    // Only the intents of the changes this bridge accepted for this site. unicop.intents carries
    // every other test's too, whose real AWX jobs would hold this worker's slots for minutes; and
    // on a shared stack other hooks' bridges deliver this site's creation late (NetBox's queue): a
    // run of theirs here would reconcile the edited site first, leaving the edit's run nothing to do.
    const accepted = new Set<string>();
    loop = await startDispatchAndReconcile(back, 2, {
      onlyIntents: (record) => {
        if (record.key !== site.rootKey) return false;
        for (const line of front.bridge.logs) {
          const l = JSON.parse(line) as { msg?: string; changeId?: string };
          if (l.msg === 'change accepted' && l.changeId) accepted.add(l.changeId);
        }
        const intent = parseEvent('intent', record.value)?.data;
        if (!intent?.cause.changeId || !accepted.has(intent.cause.changeId)) return false;
        intentIds.add(intent.intentId);
        return true;
      },
    });
    tail = await TopicTail.start([topics.outcomes]);
  }, jaegerCapMs + 180_000);
  afterAll(async () => {
    await tail?.stop();
    await loop?.stop();
    await front?.stop();
    await back?.stop();
    await tracing?.shutdown();
  });

  it(
    'a NetBox edit is one trace: bridge receipt and produce → resolver → dispatcher → reconciler, its NetBox and AWX calls its children, the outcome carrying the same trace',
    async () => {
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
      // … and the outcome of the edit's run (its intent's) names the same trace in its traceparent.
      const ofTheEdit = (m: TailedMessage) =>
        m.key === site.rootKey && intentIds.has((m.value.data as { intentId?: string }).intentId ?? '');
      const outcome = (await tail.waitFor(ofTheEdit, 1, runCapMs))[0] as TailedMessage;
      expect((outcome.value.data as { state?: string }).state).toBe('succeeded');
      expect(outcome.headers?.traceparent?.split('-')[1], "the outcome record's trace").toBe(traceId);

      await tracing.flush();
      const wanted = [
        'unicop.bridge',
        'unicop.resolver',
        'unicop.dispatcher',
        'unicop.reconciler',
        'unicop.netbox',
        'unicop.awx',
      ];
      const ours = (t: JaegerTrace) => (span: JaegerSpan) =>
        t.processes[span.processID]?.serviceName === service;
      const found = await eventually(
        async () => {
          const res = await fetch(`${jaeger()}/api/traces/${traceId}`);
          if (!res.ok) return undefined;
          const body = (await res.json()) as { data: JaegerTrace[] };
          const all = body.data.flatMap((t) => t.spans);
          const mine = body.data.flatMap((t) => t.spans.filter(ours(t)));
          // Until the reconcile span that ended the run is there too (it ends after the outcome's append).
          const ended = mine.some((span) => tag(span, 'unicop.run_state') === 'succeeded');
          return ended && wanted.every((s) => mine.some((span) => scopeOf(span) === s))
            ? { all, mine }
            : undefined;
        },
        `trace ${traceId} in Jaeger with spans of ${service} from ${wanted.join(', ')}`,
        120_000,
      );
      const { all, mine } = found;

      expect(new Set(all.map((s) => s.traceID))).toEqual(new Set([traceId]));
      const byId = new Map(all.map((s) => [s.spanID, s]));
      const one = (scope: string, name: string) => {
        const spans = mine.filter((s) => scopeOf(s) === scope && s.operationName === name);
        expect(spans, `${scope} ${name}`).toHaveLength(1);
        return spans[0] as JaegerSpan;
      };
      const receipt = one('unicop.bridge', 'POST /webhooks/netbox');
      const produce = one('unicop.bridge', `${topics.changes} publish`);
      expect(parentOf(receipt)).toBeUndefined();
      expect(parentOf(produce)).toBe(receipt.spanID);
      // This process's resolver consumed the change in the trace: its span is the produce's child.
      expect(parentOf(one('unicop.resolver', `${topics.changes} process`))).toBe(produce.spanID);

      // The run: the job may run more than once (a lease held elsewhere: later), each time a child of
      // a dispatcher's span of this process; the one that ended the run, walked up parent by parent,
      // reaches the receipt through the dispatcher's, a resolver's and the produce span — nothing lost
      // between processes or queues. (The resolver hop may be another process's: its intent for the
      // same change has the same id, so whichever reached this dispatcher first is the job it queued.)
      const mineById = new Map(mine.map((s) => [s.spanID, s]));
      const reconciles = mine.filter((s) => scopeOf(s) === 'unicop.reconciler');
      const parentInMine = (s: JaegerSpan) => mineById.get(parentOf(s) ?? '');
      expect(
        reconciles.map((s) => [s.operationName, parentInMine(s) && scopeOf(parentInMine(s) as JaegerSpan)]),
      ).toEqual(reconciles.map(() => ['reconcile site', 'unicop.dispatcher']));
      const ended = reconciles.filter((s) => tag(s, 'unicop.run_state') === 'succeeded');
      expect(ended, 'the reconcile span that ended the run').toHaveLength(1);
      const reconcile = ended[0] as JaegerSpan;
      expect(tag(reconcile, 'unicop.result')).toBe('done');
      const dispatch = parentInMine(reconcile) as JaegerSpan;
      expect(dispatch.operationName).toBe(`${topics.intents} process`);
      expect(tag(dispatch, 'unicop.dispatch')).toBe('queued');
      expect(tag(dispatch, 'unicop.root_key')).toBe(site.rootKey);
      const resolve = byId.get(parentOf(dispatch) ?? '');
      expect(resolve && [scopeOf(resolve), resolve.operationName]).toEqual([
        'unicop.resolver',
        `${topics.changes} process`,
      ]);
      expect(parentOf(resolve as JaegerSpan)).toBe(produce.spanID);

      // The run's calls: children of the reconciler's span (the lease, the snapshot, the launch).
      const calls = mine.filter((s) => parentOf(s) === reconcile.spanID);
      expect(calls.filter((s) => scopeOf(s) === 'unicop.netbox').length).toBeGreaterThanOrEqual(3);
      expect(calls.some((s) => scopeOf(s) === 'unicop.awx' && s.operationName === 'AWX POST')).toBe(true);
      // Every reference points inside the trace: no span hangs off one Jaeger does not have.
      expect(all.filter((s) => parentOf(s) !== undefined && !byId.has(parentOf(s) as string))).toEqual([]);
    },
    2 * runCapMs + 300_000,
  );
});
