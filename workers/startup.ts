/**
 * How the workers process starts its stages: each one on its own, so that no stage waits for
 * another's Kafka consumer-group join (decision 0036). A group join after a kill -9 waits for the
 * dead member's session to expire (~30 s): the resolver and the dispatcher pay that, the reconcile
 * worker and the sweeper do not — they need only the freeze view replayed (a fresh group of its
 * own, joined at once), so a restarted process reconciles queued jobs while the consumers of
 * unicop.changes and unicop.intents are still joining.
 *
 *   freeze view ──┬── reconcile worker (BullMQ)
 *                 ├── sweeper
 *                 └── dispatcher (unicop.intents; waits for the replay itself)
 *   resolver (unicop.changes)
 *   AWX notifications (unicop.awx-events; until joined, a run follows its AWX job by polling)
 *
 * A stage that fails to start ends the process (`onFailed`), as any start-up failure did before.
 */
import type { Logger } from 'pino';

export interface Stoppable {
  stop(): Promise<void>;
}

/** The parts of the workers process, built but not started (workers/main.ts builds them). */
export interface WorkerStageParts {
  freezeView: { start(): Promise<void>; replayed(): Promise<void>; stop(): Promise<void> };
  awxNotifications: { start(): Promise<void>; stop(): Promise<void> };
  startResolver(): Promise<Stoppable>;
  /** Waits for the freeze view's replay itself (a frozen system queues nothing). */
  startDispatcher(): Promise<Stoppable>;
  /** Starts the BullMQ worker; called once the freeze view is replayed (never launch while frozen). */
  startReconcileWorker(): { close(): Promise<void> };
  sweeper: { start(): void; stop(): void };
}

export type StageName =
  | 'freeze view'
  | 'awx notifications'
  | 'resolver'
  | 'dispatcher'
  | 'reconciler'
  | 'sweeper';

export interface WorkerStages {
  /** Each stage's start, resolved once it runs (the dispatcher's and resolver's after their join). */
  started: Record<StageName, Promise<void>>;
  /** Stops every stage that started, the reconcile worker first (its jobs finish or stall). */
  stop(): Promise<void>;
}

export function startWorkerStages(
  parts: WorkerStageParts,
  log: Logger,
  onFailed: (stage: StageName, error: unknown) => void,
): WorkerStages {
  const began = Date.now();
  let resolver: Stoppable | undefined;
  let dispatcher: Stoppable | undefined;
  let worker: { close(): Promise<void> } | undefined;
  let sweeping = false;
  let stopping = false;
  const stage = (name: StageName, start: () => Promise<void>): Promise<void> => {
    const running = start().then(() => log.info({ stage: name, ms: Date.now() - began }, 'stage started'));
    running.catch((error: unknown) => {
      if (!stopping) onFailed(name, error); // stopped while starting: not a failure
    });
    return running;
  };
  const replayed = stage('freeze view', () => parts.freezeView.start());
  const started: Record<StageName, Promise<void>> = {
    'freeze view': replayed,
    'awx notifications': stage('awx notifications', () => parts.awxNotifications.start()),
    resolver: stage('resolver', async () => {
      resolver = await parts.startResolver();
    }),
    dispatcher: stage('dispatcher', async () => {
      dispatcher = await parts.startDispatcher();
    }),
    reconciler: stage('reconciler', async () => {
      await parts.freezeView.replayed();
      if (!stopping) worker = parts.startReconcileWorker();
    }),
    sweeper: stage('sweeper', async () => {
      await parts.freezeView.replayed();
      if (stopping) return;
      parts.sweeper.start();
      sweeping = true;
    }),
  };
  return {
    started,
    stop: async () => {
      stopping = true;
      if (sweeping) parts.sweeper.stop();
      await worker?.close();
      await Promise.all([
        resolver?.stop(),
        dispatcher?.stop(),
        parts.freezeView.stop(),
        parts.awxNotifications.stop(),
      ]);
    },
  };
}
