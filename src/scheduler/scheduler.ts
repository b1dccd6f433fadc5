/**
 * Durable, cluster-safe cron. The clock only says when an occurrence is due; whether this
 * instance runs it is decided by the store: every occurrence goes through `claimJobOccurrence`,
 * so with several instances on one database exactly one of them runs it. While a run works it
 * renews its lease; when its instance dies, the lease expires and another instance's sweep takes
 * the occurrence over (recorded as a new attempt, the old one `abandoned`). So an occurrence's
 * work is done at least once and completed by exactly one run; a task that may be interrupted
 * half-way must be idempotent (all built-in jobs are).
 *
 * Policies: overlap `skip` records an occurrence skipped while an earlier run of the job still
 * holds a live lease, `queue` lets it wait for those runs (a takeover always waits — its
 * occurrence was admitted before). Missed occurrences (no instance was up, or this one was late
 * by more than the tolerance) are recorded skipped or, with `run-once`, the latest of them runs
 * once. The timeout starts when the task starts (after a queue wait) and aborts it.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { AmtError, isAmtError } from '../errors.js';
import type { ErrorInfo, JobClaim, JobRun, JobRunOutcome, JobTrigger, Store } from '../store/types.js';
import { systemClock, type Clock } from './clock.js';
import type { JobMetrics } from './metrics.js';
import type { ScheduledJob, SchedulerLogger } from './types.js';

export interface SchedulerOptions {
  readonly store: Store;
  readonly jobs: readonly ScheduledJob[];
  /** This instance's name in run records (default host:pid:random). */
  readonly owner?: string;
  readonly clock?: Clock;
  /** How long a run holds an occurrence without renewing (default 30 s). */
  readonly leaseMs?: number;
  /** Lease renewal, expired-lease sweep and queue polling interval (default a third of the lease). */
  readonly heartbeatMs?: number;
  /** An occurrence noticed later than this counts as missed (default 60 s). */
  readonly lateToleranceMs?: number;
  /** Runs of one occurrence that may be abandoned before it is given up (default 3). */
  readonly maxAttempts?: number;
  readonly logger?: SchedulerLogger;
  readonly metrics?: JobMetrics;
}

export interface JobStatus {
  readonly name: string;
  readonly schedule: string;
  readonly timezone: string;
  readonly overlap: ScheduledJob['overlap'];
  readonly missed: ScheduledJob['missed'];
  readonly timeoutMs: number;
  readonly nextRunAt: number | undefined;
}

export interface StartedRun {
  /** The run as claimed (`running`) or, when the overlap policy skipped it, as recorded. */
  readonly run: JobRun;
  /** The run as recorded when it ended; undefined when it lost its lease to another instance. */
  readonly finished: Promise<JobRun | undefined>;
}

const quiet: SchedulerLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** A run this instance is carrying out: its abort switch and lease renewal. */
interface ActiveRun {
  readonly job: ScheduledJob;
  run: JobRun;
  readonly controller: AbortController;
  items: number;
  /** Set before the outcome is written: a failing heartbeat then means "finished", not "lost". */
  finishing: boolean;
  stopHeartbeat: () => void;
}

export class Scheduler {
  readonly owner: string;
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly lateToleranceMs: number;
  private readonly maxAttempts: number;
  private readonly logger: SchedulerLogger;
  private readonly metrics: JobMetrics | undefined;
  private readonly jobs: ReadonlyMap<string, ScheduledJob>;
  private readonly handledUpTo = new Map<string, number>();
  private readonly timers = new Map<string, () => void>();
  private cancelSweep: (() => void) | undefined;
  private readonly active = new Set<ActiveRun>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly finishListeners = new Set<() => void>();
  private started = false;
  private stopping = false;

  constructor(options: SchedulerOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.heartbeatMs = options.heartbeatMs ?? Math.max(1, Math.floor(this.leaseMs / 3));
    this.lateToleranceMs = options.lateToleranceMs ?? 60_000;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.logger = options.logger ?? quiet;
    this.metrics = options.metrics;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    const jobs = new Map<string, ScheduledJob>();
    for (const job of options.jobs) {
      if (jobs.has(job.name)) throw new AmtError('AMT_CONFIG_INVALID', `two jobs are named ${job.name}`);
      jobs.set(job.name, job);
    }
    this.jobs = jobs;
  }

  /** Starts the clock: applies the missed-run policy, then runs occurrences as they come due. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const job of this.jobs.values()) {
      // Cluster-wide: the last occurrence any instance claimed. Without one the job is new and
      // nothing was missed.
      const last = await this.store.lastJobOccurrence(job.name);
      this.handledUpTo.set(job.name, last ?? this.clock.now());
      this.tick(job);
    }
    this.armSweep();
  }

  /**
   * Stops starting runs, gives running ones `graceMs` to end, then aborts them (recorded
   * `failed` with AMT_SHUTTING_DOWN) and waits for the records to be written.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
    this.cancelSweep?.();
    if (this.active.size > 0) {
      await new Promise<void>((resolve) => {
        const cancel = this.clock.setTimer(this.clock.now() + graceMs, () => {
          this.finishListeners.delete(check);
          resolve();
        });
        const check = (): void => {
          if (this.active.size > 0) return;
          this.finishListeners.delete(check);
          cancel();
          resolve();
        };
        this.finishListeners.add(check);
        check();
      });
    }
    for (const active of this.active) {
      active.controller.abort(
        new AmtError('AMT_SHUTTING_DOWN', 'the gateway stopped while the job was running'),
      );
    }
    await this.idle();
  }

  /** Resolves when no scheduler bookkeeping or run is in flight (tests; shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  list(): JobStatus[] {
    const now = this.clock.now();
    return [...this.jobs.values()].map((job) => ({
      name: job.name,
      schedule: job.schedule.expression,
      timezone: job.schedule.timezone,
      overlap: job.overlap,
      missed: job.missed,
      timeoutMs: job.timeoutMs,
      nextRunAt: job.schedule.next(now),
    }));
  }

  has(name: string): boolean {
    return this.jobs.has(name);
  }

  /**
   * Runs one occurrence of `name` now (trigger `manual`) through the same claim, overlap policy,
   * lease and timeout as a scheduled one. Throws AMT_JOB_UNKNOWN for an unknown job.
   */
  async trigger(name: string, options: { onProgress?: (items: number) => void } = {}): Promise<StartedRun> {
    const job = this.jobs.get(name);
    if (!job) throw new AmtError('AMT_JOB_UNKNOWN', `no job is named ${name}`);
    const now = this.clock.now();
    const claim = await this.store.claimJobOccurrence(name, now, this.owner, this.leaseMs, now, 'manual');
    if (!claim)
      throw new AmtError('AMT_JOB_OVERLAP', `an occurrence of ${name} at this instant is already taken`);
    const skipped = await this.skipForOverlap(job, claim);
    if (skipped) return { run: skipped, finished: Promise.resolve(skipped) };
    const finished = this.carryOut(job, claim, options.onProgress);
    this.track(finished);
    return { run: claim.run, finished };
  }

  private tick(job: ScheduledJob): void {
    this.timers.get(job.name)?.();
    this.timers.delete(job.name);
    if (this.stopping) return;
    const now = this.clock.now();
    const handled = this.handledUpTo.get(job.name) ?? now;
    const latest = job.schedule.previous(now);
    if (latest !== undefined && latest > handled) {
      const onTime = now - latest <= this.lateToleranceMs;
      const missed = onTime ? job.schedule.previous(latest - 1) : latest;
      this.handledUpTo.set(job.name, latest);
      if (missed !== undefined && missed > handled) {
        this.track(this.handleMissed(job, missed, onTime ? latest : undefined));
      }
      if (onTime) this.track(this.runOccurrence(job, latest, 'schedule'));
    }
    const next = job.schedule.next(Math.max(now, this.handledUpTo.get(job.name) ?? now));
    if (next !== undefined)
      this.timers.set(
        job.name,
        this.clock.setTimer(next, () => this.tick(job)),
      );
  }

  /** The latest missed occurrence: run it once now, or record it skipped (also when an on-time run covers it). */
  private async handleMissed(
    job: ScheduledJob,
    scheduledAt: number,
    coveredBy: number | undefined,
  ): Promise<void> {
    if (job.missed === 'run-once' && coveredBy === undefined) {
      await this.runOccurrence(job, scheduledAt, 'missed');
      return;
    }
    const now = this.clock.now();
    const claim = await this.store.claimJobOccurrence(
      job.name,
      scheduledAt,
      this.owner,
      this.leaseMs,
      now,
      'missed',
    );
    if (!claim) return;
    const message =
      coveredBy === undefined
        ? 'missed while no gateway instance ran the scheduler; policy skip'
        : `missed; the on-time run of ${new Date(coveredBy).toISOString()} catches up`;
    await this.record(job, claim.run, {
      status: 'skipped',
      itemsProcessed: 0,
      error: { code: 'AMT_JOB_MISSED', message },
    });
  }

  private async runOccurrence(job: ScheduledJob, scheduledAt: number, trigger: JobTrigger): Promise<void> {
    const now = this.clock.now();
    const claim = await this.store.claimJobOccurrence(
      job.name,
      scheduledAt,
      this.owner,
      this.leaseMs,
      now,
      trigger,
    );
    if (!claim) return;
    if (await this.skipForOverlap(job, claim)) return;
    await this.carryOut(job, claim);
  }

  /** Overlap `skip`: records a first attempt skipped while earlier runs hold live leases. */
  private async skipForOverlap(job: ScheduledJob, claim: JobClaim): Promise<JobRun | undefined> {
    if (claim.running.length === 0 || job.overlap !== 'skip' || claim.run.attempt > 1) return undefined;
    const running = claim.running.map((r) => ({
      id: r.id,
      scheduledAt: new Date(r.scheduledAt).toISOString(),
    }));
    const skipped = await this.record(job, claim.run, {
      status: 'skipped',
      itemsProcessed: 0,
      error: {
        code: 'AMT_JOB_OVERLAP',
        message: 'an earlier run of the job was still running',
        details: { running },
      },
    });
    return skipped ?? { ...claim.run, status: 'skipped' };
  }

  /** Waits for earlier runs (queue), runs the task with lease renewal and timeout, records the outcome. */
  private async carryOut(
    job: ScheduledJob,
    claim: JobClaim,
    onProgress?: (items: number) => void,
  ): Promise<JobRun | undefined> {
    const active = this.begin(job, claim.run);
    const signal = active.controller.signal;
    let startedAt: number | undefined;
    let cancelTimeout = (): void => {};
    try {
      if (claim.running.length > 0) await this.waitFor(job, claim.running, signal);
      startedAt = this.clock.now();
      cancelTimeout = this.clock.setTimer(startedAt + job.timeoutMs, () =>
        active.controller.abort(
          new AmtError('AMT_JOB_TIMEOUT', `the run did not finish within ${job.timeoutMs} ms`, {
            details: { timeoutMs: job.timeoutMs },
          }),
        ),
      );
      const result = await untilAborted(
        job.task({
          signal,
          run: active.run,
          progress: (items) => {
            active.items = items;
            onProgress?.(items);
          },
        }),
        signal,
        () => this.logger.debug('job task settled after its abort', { job: job.name, runId: claim.run.id }),
      );
      active.items = result.items;
      return await this.record(
        job,
        active.run,
        { status: 'succeeded', itemsProcessed: result.items },
        startedAt,
      );
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : err;
      if (isAmtError(reason) && reason.code === 'AMT_JOB_LEASE_EXPIRED') {
        this.metrics?.runs.inc({ job: job.name, status: 'lease-lost' });
        this.logger.warn('job run lost its lease; another instance took the occurrence over', {
          job: job.name,
          runId: claim.run.id,
        });
        return undefined;
      }
      const timedOut = isAmtError(reason) && reason.code === 'AMT_JOB_TIMEOUT';
      return await this.record(
        job,
        active.run,
        { status: timedOut ? 'timed-out' : 'failed', itemsProcessed: active.items, error: errorInfo(reason) },
        startedAt,
      );
    } finally {
      cancelTimeout();
      this.end(active);
    }
  }

  private begin(job: ScheduledJob, run: JobRun): ActiveRun {
    const active: ActiveRun = {
      job,
      run,
      controller: new AbortController(),
      items: 0,
      finishing: false,
      stopHeartbeat: () => {},
    };
    let cancel = (): void => {};
    let stopped = false;
    const beat = async (): Promise<void> => {
      try {
        const held = await this.store.heartbeatJobRun(run.id, this.owner, this.leaseMs, this.clock.now());
        if (!held && !active.finishing) {
          active.controller.abort(
            new AmtError('AMT_JOB_LEASE_EXPIRED', 'another instance took the occurrence over'),
          );
          return;
        }
      } catch (err) {
        this.logger.warn('job lease renewal failed', { job: job.name, runId: run.id, error: errorInfo(err) });
      }
      if (!stopped) arm();
    };
    const arm = (): void => {
      cancel = this.clock.setTimer(this.clock.now() + this.heartbeatMs, () => this.track(beat()));
    };
    active.stopHeartbeat = () => {
      stopped = true;
      cancel();
    };
    arm();
    this.active.add(active);
    return active;
  }

  private end(active: ActiveRun): void {
    active.stopHeartbeat();
    this.active.delete(active);
    for (const listener of [...this.finishListeners]) listener();
  }

  /** Queue: waits until none of `earlier` holds a live lease any more. */
  private async waitFor(job: ScheduledJob, earlier: readonly JobRun[], signal: AbortSignal): Promise<void> {
    const ids = new Set(earlier.map((r) => r.id));
    for (;;) {
      const now = this.clock.now();
      const running = await this.store.runningJobRuns(job.name);
      if (!running.some((r) => ids.has(r.id) && (r.leaseExpiresAt ?? 0) > now)) return;
      await this.nap(signal);
    }
  }

  /** Sleeps one heartbeat, or less when a run of this instance ends; rejects when `signal` aborts. */
  private nap(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        cancel();
        this.finishListeners.delete(done);
        signal.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = (): void => {
        cancel();
        this.finishListeners.delete(done);
        reject(signal.reason);
      };
      const cancel = this.clock.setTimer(this.clock.now() + this.heartbeatMs, done);
      this.finishListeners.add(done);
      if (signal.aborted) aborted();
      else signal.addEventListener('abort', aborted, { once: true });
    });
  }

  /** Writes a run's outcome; undefined (nothing written) when another instance took it over. */
  private async record(
    job: ScheduledJob,
    run: JobRun,
    outcome: JobRunOutcome,
    executedSince?: number,
  ): Promise<JobRun | undefined> {
    for (const active of this.active) if (active.run.id === run.id) active.finishing = true;
    const now = this.clock.now();
    const applied = await this.store.finishJobRun(run.id, this.owner, outcome, now);
    if (!applied) {
      this.metrics?.runs.inc({ job: job.name, status: 'lease-lost' });
      this.logger.warn('job run finished after another instance took it over; outcome not recorded', {
        job: job.name,
        runId: run.id,
        status: outcome.status,
      });
      return undefined;
    }
    const labels = { job: job.name };
    this.metrics?.runs.inc({ ...labels, status: outcome.status });
    if (executedSince !== undefined) {
      this.metrics?.duration.observe(labels, (now - executedSince) / 1000);
      this.metrics?.items.inc(labels, outcome.itemsProcessed);
    }
    if (outcome.status === 'succeeded') this.metrics?.lastSuccess.set(labels, now / 1000);
    const meta = {
      job: job.name,
      runId: run.id,
      scheduledAt: new Date(run.scheduledAt).toISOString(),
      attempt: run.attempt,
      trigger: run.trigger,
      status: outcome.status,
      items: outcome.itemsProcessed,
      ...(outcome.error ? { error: outcome.error.code, reason: outcome.error.message } : {}),
    };
    if (outcome.status === 'failed' || outcome.status === 'timed-out')
      this.logger.warn('job run ended', meta);
    else this.logger.info('job run ended', meta);
    return {
      ...run,
      status: outcome.status,
      finishedAt: now,
      leaseExpiresAt: undefined,
      itemsProcessed: outcome.itemsProcessed,
      error: outcome.error,
    };
  }

  private armSweep(): void {
    if (this.stopping || this.jobs.size === 0) return;
    this.cancelSweep = this.clock.setTimer(this.clock.now() + this.heartbeatMs, () =>
      this.track(this.sweep()),
    );
  }

  /** Takes over runs whose lease expired: their instance died or stalled. */
  private async sweep(): Promise<void> {
    for (const job of this.jobs.values()) {
      if (this.stopping) return;
      let running: JobRun[];
      try {
        running = await this.store.runningJobRuns(job.name);
      } catch (err) {
        this.logger.warn('job sweep could not read running runs', { job: job.name, error: errorInfo(err) });
        continue;
      }
      const now = this.clock.now();
      for (const run of running) {
        if (run.leaseExpiresAt !== undefined && run.leaseExpiresAt <= now)
          this.track(this.takeOver(job, run));
      }
    }
    this.armSweep();
  }

  private async takeOver(job: ScheduledJob, expired: JobRun): Promise<void> {
    if (this.stopping) return;
    const now = this.clock.now();
    const claim = await this.store.claimJobOccurrence(
      job.name,
      expired.scheduledAt,
      this.owner,
      this.leaseMs,
      now,
      expired.trigger,
    );
    if (!claim) return;
    this.logger.warn('job run taken over after its lease expired', {
      job: job.name,
      scheduledAt: new Date(expired.scheduledAt).toISOString(),
      previousOwner: expired.owner,
      attempt: claim.run.attempt,
    });
    if (claim.run.attempt > this.maxAttempts) {
      await this.record(job, claim.run, {
        status: 'failed',
        itemsProcessed: 0,
        error: {
          code: 'AMT_JOB_GIVEN_UP',
          message: `${claim.run.attempt - 1} runs of this occurrence were abandoned; it is not taken over again`,
        },
      });
      return;
    }
    await this.carryOut(job, claim);
  }

  /** Keeps a background promise from rejecting unhandled and lets `idle()` wait for it. */
  private track(promise: Promise<unknown>): void {
    const tracked = promise.catch((err: unknown) =>
      this.logger.error('scheduler bookkeeping failed', { error: errorInfo(err) }),
    );
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }
}

/** Races a task with its abort signal; a task that ignores the signal is left behind (and logged). */
function untilAborted<T>(task: Promise<T>, signal: AbortSignal, onLateEnd: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const aborted = (): void => {
      reject(signal.reason);
      void task.then(onLateEnd, onLateEnd);
    };
    if (signal.aborted) {
      aborted();
      return;
    }
    signal.addEventListener('abort', aborted, { once: true });
    task.then(
      (value) => {
        signal.removeEventListener('abort', aborted);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', aborted);
        reject(err);
      },
    );
  });
}

export function errorInfo(err: unknown): ErrorInfo {
  if (isAmtError(err)) {
    return err.details === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, details: err.details };
  }
  return { code: 'AMT_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}
