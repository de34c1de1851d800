/**
 * The fault suite's seeded schedule: which fault comes when, and for how long the killed thing stays
 * down. Everything random in a fault run is drawn from one generator seeded here, so the same seed
 * gives the same schedule (and the same edit sequence): a failure is reproduced from the seed it
 * printed. mulberry32 — 32 bits of state, plenty for picking faults and roots.
 */

/** What the suite can kill -9 and restart. Process faults hit what the suite spawned itself. */
export const faultKinds = [
  'bridge',
  'workers',
  'kafka',
  'redis',
  'netbox-gunicorn',
  'netbox-rqworker',
  'awx',
] as const;
export type FaultKind = (typeof faultKinds)[number];

/** The faults that touch only processes the suite spawned (safe on a stack others are using). */
export const processFaults: readonly FaultKind[] = ['bridge', 'workers'];

export interface SeededRandom {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
}

export function seededRandom(seed: number): SeededRandom {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    pick: <T>(items: readonly T[]) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(0, items.length - 1)] as T;
    },
  };
}

export interface ScheduledFault {
  kind: FaultKind;
  /** Milliseconds of editing (no fault) before the kill. */
  gapMs: number;
  /** Milliseconds the killed thing stays down before it is restarted. */
  downMs: number;
  /** Which of the workers processes (index) when kind is 'workers'. */
  target: number;
}

export interface ScheduleOptions {
  kinds: readonly FaultKind[];
  /** How many faults in all; each kind comes once per round, in a seeded order. */
  count: number;
  workers: number;
  gapMs: [number, number];
  downMs: [number, number];
}

/**
 * Rounds of every kind in a seeded order (so a short schedule still hits each kind once), each
 * with a seeded gap before it, a seeded downtime, and for the workers a seeded victim.
 */
export function faultSchedule(random: SeededRandom, options: ScheduleOptions): ScheduledFault[] {
  const out: ScheduledFault[] = [];
  while (out.length < options.count) {
    const round = [...options.kinds];
    for (let i = round.length - 1; i > 0; i--) {
      const j = random.int(0, i);
      [round[i], round[j]] = [round[j] as FaultKind, round[i] as FaultKind];
    }
    for (const kind of round) {
      if (out.length >= options.count) break;
      out.push({
        kind,
        gapMs: random.int(...options.gapMs),
        downMs: random.int(...options.downMs),
        target: random.int(0, options.workers - 1),
      });
    }
  }
  return out;
}

/** A fresh seed when none is given: printed at the start so the run can be repeated. */
export function seedFrom(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`UNICOP_FAULT_SEED must be an integer in [0, 2^32), not ${JSON.stringify(raw)}`);
  }
  return seed;
}
