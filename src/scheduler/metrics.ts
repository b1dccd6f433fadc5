/** Prometheus metrics of scheduled jobs, registered once per registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface JobMetrics {
  /** Runs by job and how they ended: succeeded, failed, timed-out, skipped, lease-lost. */
  readonly runs: Counter<'job' | 'status'>;
  readonly duration: Histogram<'job'>;
  readonly items: Counter<'job'>;
  readonly lastSuccess: Gauge<'job'>;
  /** Set by the dead-letter digest. */
  readonly deadLetters: Gauge<'route'>;
}

const byRegistry = new WeakMap<Registry, JobMetrics>();

export function jobMetrics(registry: Registry): JobMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const metrics: JobMetrics = {
    runs: new Counter({
      name: 'amtsbote_job_runs_total',
      help: 'Scheduled job runs by job and outcome (succeeded, failed, timed-out, skipped, lease-lost).',
      labelNames: ['job', 'status'],
      registers,
    }),
    duration: new Histogram({
      name: 'amtsbote_job_run_duration_seconds',
      help: 'Duration of scheduled job runs that executed, by job.',
      labelNames: ['job'],
      buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
      registers,
    }),
    items: new Counter({
      name: 'amtsbote_job_items_processed_total',
      help: 'Items handled by scheduled job runs, by job.',
      labelNames: ['job'],
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'amtsbote_job_last_success_timestamp_seconds',
      help: 'When a run of the job last succeeded on this instance (Unix time).',
      labelNames: ['job'],
      registers,
    }),
    deadLetters: new Gauge({
      name: 'amtsbote_dead_letters_by_route',
      help: 'Dead letters per route at the last dead-letter digest.',
      labelNames: ['route'],
      registers,
    }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}
