/**
 * The global freeze mirrored to NetBox (decision 0062): NetBox cannot read `unicop.control`, so the
 * bridge — which follows it and serves the admin API's freeze and resume — puts the latest global
 * record into the plugin (`PUT /api/plugins/unicop/global-freeze/`), which shows a banner on every
 * NetBox page while automation is frozen, whoever froze it (a person, or the fail-safe through the
 * topic). It puts once the view is replayed, at every global record applied after that, and every
 * `everyMs` (NetBox's cache may lose it). The plugin keeps the last put, whatever its `at` (the
 * writer's clock): the view applies the topic's records in the topic's order, so its latest put is the
 * topic's latest record; a lagging bridge's older put is replaced once its view catches up (it puts at
 * every record it applies). A put that fails is logged and made again at the next one.
 */
import type { Logger } from 'pino';
import type { NetboxRest } from '../netbox/rest.js';
import type { FreezeView } from './freeze-view.js';

export const globalFreezePath = '/api/plugins/unicop/global-freeze/';

/**
 * The plugin's GlobalFreezeSerializer limits: a longer reason or actor is refused whole (400), and
 * NetBox would keep showing the previous record. The admin API refuses a reason over 500 (as a
 * root's freeze); the mirror cuts whatever reaches it (a fail-safe's figures, an old record).
 */
export const globalFreezeLimits = { reason: 1000, actor: 150 } as const;

const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

export class GlobalFreezeMirror {
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private putting: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** Puts NetBox accepted (tests wait on these). */
  puts = 0;

  constructor(
    private readonly view: FreezeView,
    private readonly netbox: NetboxRest,
    private readonly log: Logger,
    private readonly everyMs = 60_000,
  ) {}

  /** Waits for the view's replay, then mirrors; resolves after the first put (made or logged). */
  async start(): Promise<void> {
    try {
      await this.view.replayed();
    } catch {
      return; // stopped before the replay: nothing to mirror
    }
    if (this.stopped) return;
    this.unsubscribe = this.view.onGlobal(() => void this.put());
    this.timer = setInterval(() => void this.put(), this.everyMs);
    await this.put();
  }

  /** One put of the current record (never two at once: a call during one makes one more after it). */
  put(): Promise<void> {
    if (this.putting) {
      this.again = true;
      return this.putting;
    }
    this.putting = this.putOnce().finally(() => {
      this.putting = null;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.put();
      }
    });
    return this.putting;
  }

  private async putOnce(): Promise<void> {
    const state = this.view.globalState();
    if (!state || this.stopped) return; // never frozen: nothing to show
    const { frozen, at } = state;
    const actor = cut(state.actor, globalFreezeLimits.actor);
    const reason = cut(state.reason, globalFreezeLimits.reason);
    try {
      await this.netbox('PUT', globalFreezePath, { frozen, actor, reason, at });
      this.puts += 1;
    } catch (error) {
      this.log.warn({ err: error }, 'the global freeze could not be mirrored to NetBox; trying again');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.putting;
  }
}
