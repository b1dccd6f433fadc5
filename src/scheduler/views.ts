/** JSON views of jobs and their runs, shared by the admin API and `amtsbote jobs … --json`. */
import type { JobRun } from '../store/types.js';
import type { JobStatus } from './scheduler.js';

const iso = (t: number | undefined): string | null => (t === undefined ? null : new Date(t).toISOString());

export interface JobRunView {
  readonly id: string;
  readonly job: string;
  readonly scheduledAt: string;
  readonly attempt: number;
  readonly trigger: JobRun['trigger'];
  readonly owner: string;
  readonly status: JobRun['status'];
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly leaseExpiresAt: string | null;
  readonly itemsProcessed: number | null;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly takeoverOf: string | null;
}

export function jobRunView(run: JobRun): JobRunView {
  return {
    id: run.id,
    job: run.job,
    scheduledAt: iso(run.scheduledAt)!,
    attempt: run.attempt,
    trigger: run.trigger,
    owner: run.owner,
    status: run.status,
    startedAt: iso(run.startedAt)!,
    finishedAt: iso(run.finishedAt),
    leaseExpiresAt: iso(run.leaseExpiresAt),
    itemsProcessed: run.itemsProcessed ?? null,
    error: run.error ? { code: run.error.code, message: run.error.message } : null,
    takeoverOf: run.takeoverOf ?? null,
  };
}

export interface JobView {
  readonly name: string;
  readonly schedule: string;
  readonly timezone: string;
  readonly overlap: JobStatus['overlap'];
  readonly missed: JobStatus['missed'];
  readonly timeoutMs: number;
  readonly nextRunAt: string | null;
  readonly lastRun: JobRunView | null;
}

export function jobView(status: JobStatus, lastRun: JobRun | undefined): JobView {
  return {
    name: status.name,
    schedule: status.schedule,
    timezone: status.timezone,
    overlap: status.overlap,
    missed: status.missed,
    timeoutMs: status.timeoutMs,
    nextRunAt: iso(status.nextRunAt),
    lastRun: lastRun ? jobRunView(lastRun) : null,
  };
}
