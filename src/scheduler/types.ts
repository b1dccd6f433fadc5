/** What the scheduler runs: jobs with a schedule, policies and a task. */
import type { AdapterLogger } from '../adapter-contract.js';
import type { JobRun } from '../store/types.js';
import type { CronSchedule } from './cron.js';

export type OverlapPolicy = 'skip' | 'queue';
export type MissedPolicy = 'skip' | 'run-once';

export interface JobContext {
  /** Aborted on timeout, when the run loses its lease, or on shutdown: stop soon and throw. */
  readonly signal: AbortSignal;
  readonly run: JobRun;
  /** Reports how many items the run has handled so far (shown by `amtsbote jobs run`). */
  progress(items: number): void;
}

/** One run of a job; resolves with how many items it handled. Must honour `context.signal`. */
export type JobTask = (context: JobContext) => Promise<{ readonly items: number }>;

export interface ScheduledJob {
  readonly name: string;
  readonly schedule: CronSchedule;
  /** An occurrence while an earlier run is still running: record it skipped, or run it after. */
  readonly overlap: OverlapPolicy;
  /** After downtime: record the missed occurrence skipped, or run it once now. */
  readonly missed: MissedPolicy;
  readonly timeoutMs: number;
  readonly task: JobTask;
}

/** The logger the scheduler writes to (the gateway's winston logger fits). */
export type SchedulerLogger = AdapterLogger;
