/**
 * The workers' Prometheus metrics (served on UNICOP_WORKERS_METRICS_PORT at /metrics): one counter
 * per outcome branch, so what the reconciler decided is visible without reading the audit log.
 */
import { Counter, Histogram, Registry } from 'prom-client';

export function createWorkerMetrics() {
  const registry = new Registry();
  const runs = new Counter({
    name: 'unicop_runs_total',
    help: 'Runs ended, by terminal state and failure class ("none" on success or skip)',
    labelNames: ['state', 'failure_class'] as const,
    registers: [registry],
  });
  const runDuration = new Histogram({
    name: 'unicop_run_duration_seconds',
    help: 'From the run record to its terminal state, by terminal state',
    labelNames: ['state'] as const,
    buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const jobs = new Counter({
    name: 'unicop_reconcile_jobs_total',
    help: 'Reconcile jobs handled, by what the queue did with them (done, later, paused, failed)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const swept = new Counter({
    name: 'unicop_sweep_intents_total',
    help: 'Intents emitted by the sweeper, by cause (sweep, resume)',
    labelNames: ['cause'] as const,
    registers: [registry],
  });
  return { registry, runs, runDuration, jobs, swept };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
