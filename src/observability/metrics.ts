/** Prometheus metrics of one gateway process (prom-client, own registry so tests stay isolated). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CommitObservation } from '../store/group-commit.js';
import { amtsboteVersion } from '../version.js';

export interface Metrics {
  readonly registry: Registry;
  readonly intakeTotal: Counter<'tenant' | 'outcome'>;
  readonly intakeDuration: Histogram<'outcome'>;
  readonly deliveriesTotal: Counter<'adapter' | 'outcome'>;
  readonly deliveryDuration: Histogram<'adapter'>;
  readonly queueDepth: Gauge<'status'>;
  readonly deadLettersTotal: Counter<'adapter'>;
  readonly routeMappingBroken: Gauge<'route'>;
  readonly storeCommitWait: Histogram;
  readonly storeCommitDuration: Histogram;
  readonly storeCommitItems: Histogram<'kind'>;
}

/** Commit latency buckets: a WAL flush takes about a millisecond, a busy store tens of them. */
const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'amtsbote_' });
  new Gauge({
    name: 'amtsbote_build_info',
    help: 'Always 1; the version of the running gateway and the Node.js it runs on, as labels.',
    labelNames: ['version', 'node'],
    registers: [registry],
  }).set({ version: amtsboteVersion(), node: process.versions.node }, 1);
  return {
    registry,
    intakeTotal: new Counter({
      name: 'amtsbote_intake_total',
      help: 'Applications received at the intake API, by tenant and outcome (accepted, duplicate, rejected).',
      labelNames: ['tenant', 'outcome'],
      registers: [registry],
    }),
    intakeDuration: new Histogram({
      name: 'amtsbote_intake_duration_seconds',
      help: 'Time from reading the request headers to the answer (for 202: after the durable commit); time a request waited in the socket before that is not included.',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    deliveriesTotal: new Counter({
      name: 'amtsbote_deliveries_total',
      help: 'Delivery attempts by adapter instance and outcome (delivered, retry, dead).',
      labelNames: ['adapter', 'outcome'],
      registers: [registry],
    }),
    deliveryDuration: new Histogram({
      name: 'amtsbote_delivery_duration_seconds',
      help: 'Duration of delivery attempts by adapter instance.',
      labelNames: ['adapter'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'amtsbote_messages',
      help: 'Messages in the store by status (sampled).',
      labelNames: ['status'],
      registers: [registry],
    }),
    deadLettersTotal: new Counter({
      name: 'amtsbote_dead_letters_total',
      help: 'Messages that became dead letters, by adapter instance.',
      labelNames: ['adapter'],
      registers: [registry],
    }),
    routeMappingBroken: new Gauge({
      name: 'amtsbote_route_mapping_broken',
      help: "1 while a route's mapping file does not compile (its applications become dead letters), else 0; sampled at scrape time.",
      labelNames: ['route'],
      registers: [registry],
    }),
    storeCommitWait: new Histogram({
      name: 'amtsbote_store_commit_wait_seconds',
      help: 'How long accepted applications waited for their commit to start (the longest-waiting of each commit).',
      buckets: COMMIT_BUCKETS,
      registers: [registry],
    }),
    storeCommitDuration: new Histogram({
      name: 'amtsbote_store_commit_duration_seconds',
      help: 'Duration of group commits of intake and delivery outcomes, flush to disk included.',
      buckets: COMMIT_BUCKETS,
      registers: [registry],
    }),
    storeCommitItems: new Histogram({
      name: 'amtsbote_store_commit_items',
      help: 'Applications (kind="accept") and delivery outcomes (kind="outcome") per group commit.',
      labelNames: ['kind'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
  };
}

/** Records one group commit (see `GroupCommitOptions.onCommit`). */
export function observeCommit(metrics: Metrics, commit: CommitObservation): void {
  metrics.storeCommitDuration.observe(commit.durationMs / 1000);
  if (commit.waitedMs !== undefined) metrics.storeCommitWait.observe(commit.waitedMs / 1000);
  if (commit.accepts > 0) metrics.storeCommitItems.observe({ kind: 'accept' }, commit.accepts);
  if (commit.outcomes > 0) metrics.storeCommitItems.observe({ kind: 'outcome' }, commit.outcomes);
}
