/**
 * The run state machine (DESIGN.md §2), declared once: the states, the ones a run record may be
 * created in, the terminal ones, every transition a run write may make, and the audit action
 * (core/events/audit.ts) the reconciler emits when it makes it. Entering a terminal state also
 * emits the run's outcome (`io.unicop.outcome.v1`).
 *
 * Everything else is derived from this declaration: the `RunState` types of the event catalogue and
 * the plugin client, `netbox-plugin/unicop/run_states.json` (the plugin refuses any other state change
 * with 409 naming the allowed next states) and the diagram in docs/architecture.md — both written by
 * `npm run gen:run-states` (scripts/export-run-states.ts); the static suite fails when they are stale.
 *
 * A write that keeps the run's state is not a transition and is always allowed (the reconciler
 * records the AWX job id, a summary, or a new change-window opening that way).
 */

/** Every state, in the order they are listed everywhere (the plugin's choices, the 409's `allowed`). */
export const runStates = [
  'queued',
  'leased',
  'launched',
  'awaiting_approval',
  'running',
  'succeeded',
  'drifted',
  'failed',
  'canceled',
  'timed_out',
  'denied',
  'skipped',
] as const;

export type RunState = (typeof runStates)[number];

/**
 * The five ways a followed run ends; `drifted` (a check-mode run that found the target differing,
 * docs/decisions/0054) is a sixth for check runs, `skipped` the seventh terminal state, reached only
 * before any work.
 */
const outcomes = {
  succeeded: 'run.succeeded',
  failed: 'run.failed',
  canceled: 'run.canceled',
  timed_out: 'run.timed_out',
  denied: 'run.denied',
} as const;

/** A state's ways out: next state -> the audit action the transition emits. */
type WaysOut = { readonly [S in RunState]?: `${'run' | 'approval'}.${string}` };

export const runStateMachine = {
  /** The states a run record is created in, with the action written when it is. */
  initial: {
    queued: 'run.window_wait', // the change window is closed: the run waits for it under its own id
    leased: 'run.leased', // the run starts
    skipped: 'run.skipped', // the snapshot hash is already reconciled
  },
  terminal: ['succeeded', 'drifted', 'failed', 'canceled', 'timed_out', 'denied', 'skipped'],
  transitions: {
    queued: {
      leased: 'run.leased', // the change window opened
      skipped: 'run.skipped', // the hash was reconciled meanwhile
    },
    leased: {
      // A run a dead worker left before launching, resumed by the next holder (docs/decisions/0037),
      // whose change window has closed meanwhile: it waits again, under its own id.
      queued: 'run.window_wait',
      launched: 'run.launched', // AWX accepted the launch; the job id is recorded before waiting
      // Adoption: the AWX job of a run left leased (its launch answer was lost) was found by run id
      // and is already that far.
      awaiting_approval: 'approval.requested',
      running: 'run.running',
      // The launch failed (template_misconfigured, executor_unavailable); or the adopted run's job
      // already ended.
      ...outcomes,
      drifted: 'run.drifted', // an adopted check run whose job had already ended finding drift
      // A resumed run (0037) whose snapshot hash was reconciled meanwhile, or that another open run
      // of the root supersedes.
      skipped: 'run.skipped',
    },
    launched: {
      awaiting_approval: 'approval.requested', // a workflow reached an approval node
      running: 'run.running',
      ...outcomes, // AWX's outcome; AWX refused or stayed unreachable (failed); the run timeout
      drifted: 'run.drifted', // a check run's job ended successful, its summary saying drift: true
    },
    awaiting_approval: {
      // A run held by the blast-radius gate (docs/decisions/0065), approved in UNICOP: launched now.
      launched: 'run.launched',
      running: 'approval.given', // approved: the workflow goes on
      ...outcomes, // denied, expired (timed_out), or the workflow ended otherwise
      // A blast-radius hold approved for a snapshot that changed since: a new run takes the new one.
      skipped: 'run.skipped',
    },
    running: {
      awaiting_approval: 'approval.requested', // the workflow's next approval node
      ...outcomes,
      drifted: 'run.drifted',
    },
    succeeded: {},
    drifted: {},
    failed: {},
    canceled: {},
    timed_out: {},
    denied: {},
    skipped: {},
  },
} as const satisfies {
  initial: WaysOut;
  terminal: readonly RunState[];
  transitions: { readonly [S in RunState]: WaysOut };
};

type Machine = typeof runStateMachine;
type ValuesOf<T> = T extends unknown ? T[keyof T] : never;

/** The audit actions transitions emit (each one is in core/events/audit.ts's `auditActions`). */
export type RunTransitionEvent = ValuesOf<Machine['initial'] | Machine['transitions'][RunState]>;
export type TerminalRunState = Machine['terminal'][number];
export type OpenRunState = Exclude<RunState, TerminalRunState>;

export const initialRunStates: readonly RunState[] = inOrder(runStateMachine.initial);
export const terminalRunStates: Machine['terminal'] = runStateMachine.terminal;
export const openRunStates = runStates.filter((s) => !isTerminal(s)) as readonly OpenRunState[];

export function isTerminal(state: RunState): state is TerminalRunState {
  return (terminalRunStates as readonly RunState[]).includes(state);
}

/** The states a run in `from` may move to, in `runStates` order; none from a terminal state. */
export function allowedNext(from: RunState): readonly RunState[] {
  return inOrder(runStateMachine.transitions[from]);
}

/** Whether a write may move a run from `from` to `to` (keeping the state is not a transition). */
export function canTransition(from: RunState, to: RunState): boolean {
  return Object.hasOwn(runStateMachine.transitions[from], to);
}

export function canCreate(state: RunState): boolean {
  return Object.hasOwn(runStateMachine.initial, state);
}

/**
 * The audit action a transition emits: from `from` (null: the run record is created) to `to`;
 * null when the declaration does not allow it.
 */
export function transitionEvent(from: RunState | null, to: RunState): RunTransitionEvent | null {
  const ways: WaysOut = from === null ? runStateMachine.initial : runStateMachine.transitions[from];
  return (ways[to] as RunTransitionEvent | undefined) ?? null;
}

function inOrder(ways: WaysOut): readonly RunState[] {
  return runStates.filter((s) => Object.hasOwn(ways, s));
}
