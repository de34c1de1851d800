/**
 * The fault run's editors: real NetBox edits (site descriptions, through NetBox's REST API) across
 * the run's roots while faults come and go. Each editor owns a share of the roots, so one root's
 * edits are made one after another and "the last edit NetBox acknowledged" is the root's final
 * state. An edit that fails (NetBox down, a reset) is made again, the same PATCH, until NetBox
 * answers it: the suite's edits never give up, as a user's would not.
 */
import { netbox } from '../../support/netbox.js';
import type { SeededRandom } from './schedule.js';

export interface FaultRoot {
  siteId: number;
  rootKey: string;
}

export interface EditRecord {
  rootKey: string;
  description: string;
  /** When NetBox acknowledged it (ms since epoch). */
  at: number;
  /** Attempts it took (1: NetBox answered the first one). */
  attempts: number;
}

export interface EditorsOptions {
  roots: FaultRoot[];
  editors: number;
  /** Pause after each edit, per editor (seeded in this range). */
  pauseMs: [number, number];
  random: SeededRandom;
  /** Stop once this many edits were acknowledged (and `stop()` was called or not). */
  maxEdits: number;
  /**
   * Asked before each edit: while it answers true the editor waits (a closed loop: the suite keeps
   * its backlog below what the stack reconciles, whatever the machine's speed). An error is a no:
   * edits go on while NetBox is away, so faults still hit them.
   */
  holdWhile?: () => Promise<boolean>;
}

export interface RunningEditors {
  readonly edits: EditRecord[];
  /** The last acknowledged description of each root. */
  readonly finalDescription: Map<string, string>;
  /** Resolves once `maxEdits` edits were acknowledged. */
  readonly reachedMax: Promise<void>;
  /** Milliseconds the editors spent held by `holdWhile`, summed over editors. */
  heldMs(): number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** PATCHes until NetBox acknowledges it; returns the attempts it took. */
export async function patchUntilAcknowledged(path: string, body: unknown, stopped: () => boolean) {
  for (let attempt = 1; ; attempt++) {
    try {
      await netbox('PATCH', path, body);
      return attempt;
    } catch (error) {
      if (stopped() && attempt > 600) throw error;
      await sleep(Math.min(200 * attempt, 2000));
    }
  }
}

export function startEditors(options: EditorsOptions): RunningEditors {
  const edits: EditRecord[] = [];
  const finalDescription = new Map<string, string>();
  let stopping = false;
  let sequence = 0;
  let held = 0;
  let reached: () => void = () => undefined;
  const reachedMax = new Promise<void>((resolve) => {
    reached = resolve;
  });
  // The seeded choices are drawn up front per editor turn, in one order, so a seed gives one
  // sequence of (root, pause) draws whatever the timing.
  const shares = Array.from({ length: options.editors }, (_, e) =>
    options.roots.filter((_, i) => i % options.editors === e),
  );
  const editor = async (share: FaultRoot[]) => {
    while (!stopping && sequence < options.maxEdits) {
      const root = options.random.pick(share);
      const pause = options.random.int(...options.pauseMs);
      const holdStart = Date.now();
      while (!stopping && options.holdWhile && (await options.holdWhile().catch(() => false)))
        await sleep(1000);
      held += Date.now() - holdStart;
      if (stopping) break;
      const description = `fault edit ${++sequence}`;
      const attempts = await patchUntilAcknowledged(
        `/api/dcim/sites/${root.siteId}/`,
        { description },
        () => stopping,
      );
      edits.push({ rootKey: root.rootKey, description, at: Date.now(), attempts });
      finalDescription.set(root.rootKey, description);
      if (edits.length >= options.maxEdits) reached();
      await sleep(pause);
    }
  };
  const running = Promise.all(shares.filter((s) => s.length > 0).map(editor));
  return {
    edits,
    finalDescription,
    reachedMax,
    heldMs: () => held,
    stop: async () => {
      stopping = true;
      await running;
    },
  };
}
