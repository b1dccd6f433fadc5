/** Turns configured jobs into scheduled jobs: a cron schedule and the task the job names. */
import type { AdapterInstance } from '../../adapter-contract.js';
import type { AttachmentStore } from '../../attachments.js';
import type { JobConfig } from '../../config/types.js';
import type { Store } from '../../store/types.js';
import { CronSchedule } from '../cron.js';
import type { JobMetrics } from '../metrics.js';
import type { JobTask, ScheduledJob, SchedulerLogger } from '../types.js';
import { adapterTask } from './adapter-task.js';
import { deadLetterDigestTask } from './dead-letter-digest.js';
import { idpMetadataRefreshTask } from './idp-metadata-refresh.js';
import type { DeadLetterDigestOptions, IdpMetadataRefreshOptions, RetentionPurgeOptions } from './options.js';
import { retentionPurgeTask } from './retention-purge.js';

export interface JobTaskDeps {
  readonly store: Store;
  readonly attachments: AttachmentStore;
  /** Running adapter instances by id; adapter jobs run their poll or refresh. */
  readonly adapters: ReadonlyMap<string, AdapterInstance>;
  readonly logger: SchedulerLogger;
  readonly metrics?: JobMetrics | undefined;
  readonly now?: () => number;
}

export function jobTask(job: JobConfig, deps: JobTaskDeps): JobTask {
  if ('adapter' in job.run) return adapterTask(job.run.adapter, job.run.task, deps.adapters);
  switch (job.run.builtin) {
    case 'retention-purge':
      return retentionPurgeTask(job.options as unknown as RetentionPurgeOptions, deps);
    case 'dead-letter-digest':
      return deadLetterDigestTask((job.options ?? {}) as DeadLetterDigestOptions, deps);
    case 'idp-metadata-refresh':
      return idpMetadataRefreshTask(job.options as unknown as IdpMetadataRefreshOptions, deps);
  }
}

export function scheduledJobs(jobs: readonly JobConfig[], deps: JobTaskDeps): ScheduledJob[] {
  return jobs.map((job) => ({
    name: job.name,
    schedule: new CronSchedule(job.schedule, job.timezone),
    overlap: job.overlap,
    missed: job.missed,
    timeoutMs: job.timeoutMs,
    task: jobTask(job, deps),
  }));
}
