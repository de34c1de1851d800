/**
 * A run's structured log, `{ts, level, message, meta}` per step (lease and token, snapshot hash,
 * launch and AWX job id, AWX status changes, approval asked and decided, outcome): the plugin shows
 * it as the run page's Timeline. It travels with every run write, whole: the plugin replaces
 * `log_lines` on each PATCH (docs/plugin-api.md), so the list sent is always the full log.
 *
 * Bounded, so a long or looping run cannot grow its record without end: at most `maxLines` lines
 * (the first `keepFirst` and the latest, with one line saying how many were left out between),
 * messages cut at `maxMessage` characters, `meta` only flat scalar values (strings cut at
 * `maxMetaValue`, at most `maxMetaKeys` keys). No secrets: meta keys that name one are dropped by
 * name, and bearer/NetBox tokens are masked in messages should an error text ever carry one.
 */
import type { RunLogLine } from '../../core/plugin/client.js';

export const runLogLimits = {
  maxLines: 100,
  keepFirst: 20,
  maxMessage: 500,
  maxMetaKeys: 12,
  maxMetaValue: 200,
} as const;

type Level = RunLogLine['level'];
type MetaValue = string | number | boolean | null;

const secretKey = /secret|password|passwd|authorization|bearer|api_?key|^token$|cookie/i;
const secretText = /\b(Bearer|Token)\s+[A-Za-z0-9._~+/=-]+|\bnbt_[A-Za-z0-9._-]+/g;

const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

function cleanMeta(meta: Record<string, unknown>): Record<string, MetaValue> {
  const out: Record<string, MetaValue> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (Object.keys(out).length >= runLogLimits.maxMetaKeys) break;
    if (secretKey.test(key) || value === undefined) continue;
    if (typeof value === 'string')
      out[key] = cut(value.replace(secretText, '$1 ***'), runLogLimits.maxMetaValue);
    else if (typeof value === 'number' || typeof value === 'boolean' || value === null) out[key] = value;
  }
  return out;
}

export class RunLog {
  private readonly head: RunLogLine[] = [];
  private tail: RunLogLine[] = [];
  private omitted = 0;

  /** Continues a log already stored with the run (an adopted run, a run that waited for its window). */
  constructor(stored: readonly RunLogLine[] = []) {
    for (const line of stored) {
      const omitted = line.meta?.omitted;
      if (typeof omitted === 'number')
        this.omitted += omitted; // the marker is rebuilt by lines()
      else this.push(line);
    }
  }

  add(at: Date, level: Level, message: string, meta: Record<string, unknown> = {}): void {
    this.push({
      ts: at.toISOString(),
      level,
      message: cut(message.replace(secretText, '$1 ***'), runLogLimits.maxMessage),
      meta: cleanMeta(meta),
    });
  }

  /** The lines to write: never more than `maxLines`. */
  lines(): RunLogLine[] {
    if (this.omitted === 0) return [...this.head, ...this.tail];
    const marker: RunLogLine = {
      ts: this.tail[0]?.ts ?? new Date().toISOString(),
      level: 'warning',
      message: `${this.omitted} log lines left out (a run keeps at most ${runLogLimits.maxLines})`,
      meta: { omitted: this.omitted },
    };
    return [...this.head, marker, ...this.tail];
  }

  private push(line: RunLogLine): void {
    if (this.head.length < runLogLimits.keepFirst) {
      this.head.push(line);
      return;
    }
    this.tail.push(line);
    const room = runLogLimits.maxLines - runLogLimits.keepFirst - 1; // one line for the marker
    if (this.tail.length > room) {
      this.omitted += this.tail.length - room;
      this.tail = this.tail.slice(-room);
    }
  }
}
