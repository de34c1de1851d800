/**
 * Coalescing: K intents for one new site appended in one burst; how many the dispatcher queued and
 * coalesced, how many AWX launches that made, and how long until the root was in sync and the
 * queue quiet.
 */
import type { FreezeView } from '../../core/control/freeze-view.js';
import { netbox } from '../../test/support/netbox.js';
import { createSite } from '../../test/support/reconciler.js';
import { countBy, until } from '../support.js';
import type { LoopObserver } from './observer.js';
import { type CauseKind, intentMessage, startLoop, stopLoop } from './pipeline.js';
import { burstSize, fastPoll, perRunTimeoutMs } from './settings.js';

export interface CoalescingResult {
  kind: CauseKind;
  intents: number;
  queued: number;
  coalesced: number;
  launches: number;
  states: Map<string, number>;
  inSyncMs: number;
  quietMs: number;
  foreign: number;
}

export async function runCoalescing(
  kind: CauseKind,
  observer: LoopObserver,
  freezeView: FreezeView,
): Promise<CoalescingResult> {
  const site = await createSite();
  observer.roots.add(site.rootKey);
  const loop = await startLoop({ concurrency: 4, simultaneous: false, poll: fastPoll }, observer, freezeView);
  const from = observer.mark();
  const intents = Array.from({ length: burstSize }, () => intentMessage(observer, site.rootKey, kind));
  const ids = new Set(intents.map((i) => i.intentId));
  const dispatched = () =>
    observer.audit.filter(
      (a) =>
        (a.data.action === 'intent.queued' || a.data.action === 'intent.coalesced') &&
        ids.has(String(a.data.correlation.intentId)),
    );
  const t0 = Date.now();
  await loop.back.eventLog.append(intents.map((i) => i.message));
  let inSyncMs = Number.NaN;
  await until(async () => {
    if ((await loop.back.plugin.findRoot(site.rootKey))?.status !== 'in_sync') return false;
    inSyncMs = Date.now() - t0;
    return true;
  }, perRunTimeoutMs);
  let quietMs = Number.NaN;
  await until(async () => {
    if (dispatched().length < burstSize) return false;
    const counts = await loop.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (Object.values(counts).some((n) => n > 0)) return false;
    quietMs = Date.now() - t0;
    return true;
  }, perRunTimeoutMs * 2);
  const launches = (await loop.back.awx.jobs()).filter((j) => j.root === site.rootKey).length;
  await stopLoop(loop, 500);
  await netbox('DELETE', `/api/dcim/sites/${site.id}/`).catch(() => undefined);
  const queued = dispatched().filter((a) => a.data.action === 'intent.queued').length;
  process.stderr.write(`loop coalescing (${kind}): ${burstSize} intents → ${launches} AWX launches\n`);
  return {
    kind,
    intents: burstSize,
    queued,
    coalesced: dispatched().length - queued,
    launches,
    states: countBy(
      observer.outcomes.filter((o) => o.data.rootKey === site.rootKey),
      (o) => o.data.state,
    ),
    inSyncMs,
    quietMs,
    foreign: observer.foreignSince(from),
  };
}
