/** The scheduler of one gateway process: the configured jobs on the gateway's store, adapters and metrics. */
import type { Registry } from 'prom-client';
import type { AdapterInstance } from '../adapter-contract.js';
import type { AttachmentStore } from '../attachments.js';
import type { GatewayConfig } from '../config/types.js';
import type { Store } from '../store/types.js';
import { scheduledJobs } from './builtin/index.js';
import type { Clock } from './clock.js';
import { jobMetrics } from './metrics.js';
import { Scheduler } from './scheduler.js';
import type { SchedulerLogger } from './types.js';

export interface SchedulerDeps {
  readonly config: GatewayConfig;
  readonly store: Store;
  /** The gateway's running adapter instances; adapter jobs poll them. */
  readonly adapters: ReadonlyMap<string, AdapterInstance>;
  readonly attachments: AttachmentStore;
  readonly logger: SchedulerLogger;
  /** Job metrics are registered here (the gateway's `metrics.registry`). */
  readonly registry?: Registry;
  readonly clock?: Clock;
  /** This instance's name in run records (default host:pid:random). */
  readonly owner?: string;
  /** Default 30 s. */
  readonly leaseMs?: number;
}

export interface RunningScheduler {
  readonly scheduler: Scheduler;
  /** Stops starting runs; running ones get `pipeline.drainTimeout` to end, then are aborted. */
  stop(): Promise<void>;
}

export async function startScheduler(deps: SchedulerDeps): Promise<RunningScheduler> {
  const metrics = deps.registry ? jobMetrics(deps.registry) : undefined;
  const scheduler = new Scheduler({
    store: deps.store,
    clock: deps.clock,
    owner: deps.owner,
    leaseMs: deps.leaseMs,
    logger: deps.logger,
    metrics,
    jobs: scheduledJobs(deps.config.jobs, {
      store: deps.store,
      attachments: deps.attachments,
      adapters: deps.adapters,
      logger: deps.logger,
      metrics,
      now: deps.clock ? () => deps.clock!.now() : undefined,
    }),
  });
  await scheduler.start();
  if (deps.config.jobs.length > 0) {
    deps.logger.info('scheduler started', {
      owner: scheduler.owner,
      jobs: deps.config.jobs.map((j) => j.name),
    });
  }
  let stopping: Promise<void> | undefined;
  return {
    scheduler,
    stop: () => (stopping ??= scheduler.stop(deps.config.pipeline.drainTimeoutMs)),
  };
}
