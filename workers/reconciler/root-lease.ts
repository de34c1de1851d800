/**
 * A held root lease: renewed every third of its TTL while the run goes on. When a renewal is
 * refused (the lease expired and someone else took the root, with a higher fencing token), the
 * lease is lost: `signal` aborts so the run stops waiting, and every later write of the run is
 * refused by the fence anyway. A renewal that fails because NetBox is unreachable is tried again at
 * the next tick; the lease only counts as lost on a refusal.
 */
import type { Logger } from 'pino';
import { NetboxUnavailableError, PluginConflictError } from '../../core/plugin/client.js';
import type { RunStore } from './ports.js';

export class RootLease {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  constructor(
    private readonly plugin: Pick<RunStore, 'renewLease' | 'releaseLease'>,
    readonly rootId: number,
    readonly rootKey: string,
    readonly fencingToken: number,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.renew(), (ttlSeconds * 1000) / 3);
    this.timer.unref();
  }

  /** Aborts when the lease is lost. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get lost(): boolean {
    return this.controller.signal.aborted;
  }

  /** Marks the lease lost (a write was refused by the fence). */
  markLost(reason: string): void {
    if (!this.lost) this.log.warn({ reason }, 'root lease lost');
    this.stopRenewing();
    this.controller.abort(new Error(reason));
  }

  private async renew(): Promise<void> {
    if (this.lost || this.released) return;
    try {
      await this.plugin.renewLease(this.rootId, this.fencingToken, this.ttlSeconds);
    } catch (error) {
      // A renewal that crossed the run's own release is refused harmlessly: not a lost lease.
      if (this.released) return;
      if (error instanceof PluginConflictError) this.markLost(error.detail);
      else if (error instanceof NetboxUnavailableError) this.log.warn('lease renewal: NetBox unavailable');
      else this.log.error({ err: error }, 'lease renewal failed');
    }
  }

  private stopRenewing(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Releases the lease; a lease already lost or expired is left alone. Never throws. */
  async release(): Promise<boolean> {
    this.stopRenewing();
    if (this.lost || this.released) return false;
    this.released = true;
    try {
      await this.plugin.releaseLease(this.rootId, this.fencingToken);
      return true;
    } catch (error) {
      this.log.warn({ err: error }, 'lease release refused or failed; it expires on its own');
      return false;
    }
  }
}
