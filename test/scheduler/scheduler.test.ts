import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { AmtError } from '../../src/errors.js';
import { ManualClock, settle, sleep } from '../../src/scheduler/clock.js';
import { CronSchedule } from '../../src/scheduler/cron.js';
import { jobMetrics } from '../../src/scheduler/metrics.js';
import { Scheduler, type SchedulerOptions } from '../../src/scheduler/scheduler.js';
import type { JobContext, ScheduledJob } from '../../src/scheduler/types.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { instantWalFlush } from '../support/instant-flush.js';
import type { JobRun } from '../../src/store/types.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-05-04T10:00:30Z');

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('scheduler', () => {
  let dir: string;
  let store: SqliteStore;
  let clock: ManualClock;
  let schedulers: Scheduler[];
  let calls: { scheduledAt: number; trigger: string; attempt: number; at: number }[];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-scheduler-'));
    store = SqliteStore.open(path.join(dir, 'amtsbote.db'), { walSync: instantWalFlush });
    await store.migrate();
    clock = new ManualClock(T0);
    schedulers = [];
    calls = [];
  });

  afterEach(async () => {
    for (const s of schedulers) {
      const stopping = s.stop(0);
      await clock.advance(1);
      await stopping;
    }
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function job(
    overrides: Partial<ScheduledJob> & { work?: (ctx: JobContext) => Promise<number> } = {},
  ): ScheduledJob {
    const { work, ...rest } = overrides;
    return {
      name: 'purge',
      schedule: new CronSchedule('* * * * *', 'Europe/Berlin'),
      overlap: 'skip',
      missed: 'skip',
      timeoutMs: 5 * MINUTE,
      task: async (ctx) => {
        calls.push({
          scheduledAt: ctx.run.scheduledAt,
          trigger: ctx.run.trigger,
          attempt: ctx.run.attempt,
          at: clock.now(),
        });
        return { items: work ? await work(ctx) : 1 };
      },
      ...rest,
    };
  }

  function scheduler(jobs: ScheduledJob[], options: Partial<SchedulerOptions> = {}): Scheduler {
    const s = new Scheduler({ store, jobs, clock, owner: `instance-${schedulers.length + 1}`, ...options });
    schedulers.push(s);
    return s;
  }

  async function runs(name = 'purge'): Promise<JobRun[]> {
    return [...(await store.jobRuns(name, 1000)).items].reverse();
  }

  const minute = (n: number) => Date.parse('2026-05-04T10:00:00Z') + n * MINUTE;

  it('runs each occurrence once, at its time, and records it', async () => {
    const registry = new Registry();
    const s = scheduler([job()], { metrics: jobMetrics(registry) });
    await s.start();
    expect(calls).to.deep.equal([]);
    await clock.advanceTo(minute(3) + 10_000);
    expect(calls.map((c) => [c.scheduledAt, c.at])).to.deep.equal([
      [minute(1), minute(1)],
      [minute(2), minute(2)],
      [minute(3), minute(3)],
    ]);
    const recorded = await runs();
    expect(
      recorded.map((r) => [r.scheduledAt, r.status, r.itemsProcessed, r.trigger, r.owner]),
    ).to.deep.equal([
      [minute(1), 'succeeded', 1, 'schedule', 'instance-1'],
      [minute(2), 'succeeded', 1, 'schedule', 'instance-1'],
      [minute(3), 'succeeded', 1, 'schedule', 'instance-1'],
    ]);
    expect(s.list()[0]?.nextRunAt).to.equal(minute(4));
    const text = await registry.metrics();
    expect(text).to.match(/amtsbote_job_runs_total\{job="purge",status="succeeded"\} 3/);
    expect(text).to.match(/amtsbote_job_items_processed_total\{job="purge"\} 3/);
  });

  it('has several instances on one store run each occurrence exactly once', async () => {
    for (let i = 0; i < 3; i++) await scheduler([job()]).start();
    await clock.advanceTo(minute(5) + 1);
    expect(calls.map((c) => c.scheduledAt)).to.deep.equal([1, 2, 3, 4, 5].map(minute));
    expect((await runs()).every((r) => r.status === 'succeeded' && r.attempt === 1)).to.equal(true);
  });

  describe('time zones and daylight saving time', () => {
    async function dailyAt0230(from: string, to: string): Promise<string[]> {
      clock = new ManualClock(Date.parse(from));
      const s = scheduler([job({ schedule: new CronSchedule('30 2 * * *', 'Europe/Berlin') })], {
        leaseMs: 3 * HOUR,
        heartbeatMs: HOUR,
      });
      await s.start();
      await clock.advanceTo(Date.parse(to));
      return calls.map((c) => new Date(c.at).toISOString());
    }

    it('runs a daily 02:30 job once on 2026-03-29 (02:00 → 03:00)', async () => {
      expect(await dailyAt0230('2026-03-27T12:00:00Z', '2026-03-31T12:00:00Z')).to.deep.equal([
        '2026-03-28T01:30:00.000Z',
        '2026-03-29T01:00:00.000Z',
        '2026-03-30T00:30:00.000Z',
        '2026-03-31T00:30:00.000Z',
      ]);
    });

    it('runs a daily 02:30 job once on 2026-10-25 (03:00 → 02:00)', async () => {
      expect(await dailyAt0230('2026-10-23T12:00:00Z', '2026-10-27T12:00:00Z')).to.deep.equal([
        '2026-10-24T00:30:00.000Z',
        '2026-10-25T00:30:00.000Z',
        '2026-10-26T01:30:00.000Z',
        '2026-10-27T01:30:00.000Z',
      ]);
    });

    it('runs in the job’s own time zone', async () => {
      clock = new ManualClock(Date.parse('2026-07-01T00:00:00Z'));
      const s = scheduler([job({ schedule: new CronSchedule('0 9 * * *', 'America/New_York') })], {
        leaseMs: 3 * HOUR,
        heartbeatMs: HOUR,
      });
      await s.start();
      await clock.advanceTo(Date.parse('2026-07-02T00:00:00Z'));
      expect(calls.map((c) => new Date(c.at).toISOString())).to.deep.equal(['2026-07-01T13:00:00.000Z']);
    });
  });

  describe('overlap', () => {
    it('skip: records an occurrence skipped while the previous run still runs', async () => {
      const first = deferred();
      const s = scheduler([
        job({ work: async (ctx) => (ctx.run.scheduledAt === minute(1) ? (await first.promise, 5) : 1) }),
      ]);
      await s.start();
      await clock.advanceTo(minute(2) + 1);
      first.resolve();
      await clock.advanceTo(minute(3) + 1);
      const recorded = await runs();
      expect(recorded.map((r) => [r.scheduledAt, r.status, r.error?.code])).to.deep.equal([
        [minute(1), 'succeeded', undefined],
        [minute(2), 'skipped', 'AMT_JOB_OVERLAP'],
        [minute(3), 'succeeded', undefined],
      ]);
      expect(calls.map((c) => c.scheduledAt)).to.deep.equal([minute(1), minute(3)]);
    });

    it('skip: applies across instances', async () => {
      const first = deferred();
      const work = async (ctx: JobContext) =>
        ctx.run.scheduledAt === minute(1) ? (await first.promise, 1) : 1;
      await scheduler([job({ work })]).start();
      await scheduler([job({ work })]).start();
      await clock.advanceTo(minute(2) + 1);
      first.resolve();
      await settle();
      expect((await runs()).map((r) => r.status)).to.deep.equal(['succeeded', 'skipped']);
    });

    it('queue: runs the next occurrence after the previous run ends', async () => {
      const first = deferred();
      const ended: number[] = [];
      const s = scheduler([
        job({
          overlap: 'queue',
          work: async (ctx) => {
            if (ctx.run.scheduledAt === minute(1)) await first.promise;
            ended.push(ctx.run.scheduledAt);
            return 1;
          },
        }),
      ]);
      await s.start();
      await clock.advanceTo(minute(2) + 30_000);
      expect(calls.map((c) => c.scheduledAt)).to.deep.equal([minute(1)]);
      expect((await store.runningJobRuns('purge')).map((r) => r.scheduledAt)).to.deep.equal([
        minute(1),
        minute(2),
      ]);
      first.resolve();
      await clock.advance(1);
      expect(ended).to.deep.equal([minute(1), minute(2)]);
      expect(calls[1]?.at).to.equal(minute(2) + 30_000);
      expect((await runs()).map((r) => [r.scheduledAt, r.status])).to.deep.equal([
        [minute(1), 'succeeded'],
        [minute(2), 'succeeded'],
      ]);
    });
  });

  describe('missed runs after downtime', () => {
    const at = (iso: string) => Date.parse(iso);
    /** A daily 03:00 (Berlin) job runs on 4 May, then no instance runs until 7 May, 15:00. */
    async function downtime(policy: ScheduledJob['missed']): Promise<void> {
      clock = new ManualClock(at('2026-05-04T00:00:00Z'));
      const daily = () => job({ schedule: new CronSchedule('0 3 * * *', 'Europe/Berlin'), missed: policy });
      const slow = { leaseMs: 3 * HOUR, heartbeatMs: HOUR };
      const before = scheduler([daily()], slow);
      await before.start();
      await clock.advanceTo(at('2026-05-04T02:00:00Z'));
      const stopping = before.stop(0);
      await clock.advance(1);
      await stopping;
      schedulers.splice(schedulers.indexOf(before), 1);
      clock = new ManualClock(at('2026-05-07T13:00:00Z'));
      calls = [];
      await scheduler([daily()], slow).start();
      await settle();
    }

    it('skip: records only the latest missed occurrence, as skipped, and carries on', async () => {
      await downtime('skip');
      expect(calls).to.deep.equal([]);
      expect(
        (await runs()).map((r) => [
          new Date(r.scheduledAt).toISOString(),
          r.status,
          r.trigger,
          r.error?.code,
        ]),
      ).to.deep.equal([
        ['2026-05-04T01:00:00.000Z', 'succeeded', 'schedule', undefined],
        ['2026-05-07T01:00:00.000Z', 'skipped', 'missed', 'AMT_JOB_MISSED'],
      ]);
      await clock.advanceTo(at('2026-05-08T12:00:00Z'));
      expect(calls.map((c) => [new Date(c.scheduledAt).toISOString(), c.trigger])).to.deep.equal([
        ['2026-05-08T01:00:00.000Z', 'schedule'],
      ]);
    });

    it('run-once: runs the latest missed occurrence once, at start, not once per missed day', async () => {
      await downtime('run-once');
      expect(
        calls.map((c) => [new Date(c.scheduledAt).toISOString(), c.trigger, new Date(c.at).toISOString()]),
      ).to.deep.equal([['2026-05-07T01:00:00.000Z', 'missed', '2026-05-07T13:00:00.000Z']]);
      expect((await runs()).map((r) => [r.trigger, r.status])).to.deep.equal([
        ['schedule', 'succeeded'],
        ['missed', 'succeeded'],
      ]);
    });

    it('does not count a new job as missed', async () => {
      const s = scheduler([
        job({ schedule: new CronSchedule('0 3 * * *', 'Europe/Berlin'), missed: 'run-once' }),
      ]);
      await s.start();
      await settle();
      expect(calls).to.deep.equal([]);
      expect(await runs()).to.deep.equal([]);
    });

    it('treats an occurrence noticed later than the tolerance as missed', async () => {
      const s = scheduler([job({ missed: 'skip' })], { lateToleranceMs: 5_000 });
      await s.start();
      await clock.advanceTo(minute(2) - 1);
      // The event loop stalls: the 10:02 occurrence is noticed only at 10:02:50.
      clock.stall(50_001);
      await clock.advanceTo(minute(3));
      expect(calls.map((c) => c.scheduledAt)).to.deep.equal([minute(1), minute(3)]);
      expect((await runs()).map((r) => [r.scheduledAt, r.status, r.trigger])).to.deep.equal([
        [minute(1), 'succeeded', 'schedule'],
        [minute(2), 'skipped', 'missed'],
        [minute(3), 'succeeded', 'schedule'],
      ]);
    });
  });

  describe('timeouts and failures', () => {
    it('aborts a run at its timeout and records it timed-out', async () => {
      let reason: unknown;
      const s = scheduler([
        job({
          timeoutMs: 20_000,
          work: async (ctx) => {
            ctx.progress(4);
            try {
              await sleep(clock, HOUR, ctx.signal);
            } catch (err) {
              reason = err;
              throw err;
            }
            return 1;
          },
        }),
      ]);
      await s.start();
      await clock.advanceTo(minute(1) + 19_999);
      expect((await runs())[0]?.status).to.equal('running');
      await clock.advance(1);
      const [run] = await runs();
      expect([run?.status, run?.itemsProcessed, run?.error?.code, run?.finishedAt]).to.deep.equal([
        'timed-out',
        4,
        'AMT_JOB_TIMEOUT',
        minute(1) + 20_000,
      ]);
      expect((reason as AmtError).code).to.equal('AMT_JOB_TIMEOUT');
    });

    it('records a timed-out run even when the task ignores the abort', async () => {
      const never = deferred<number>();
      const s = scheduler([job({ timeoutMs: 1000, work: () => never.promise })]);
      await s.start();
      await clock.advanceTo(minute(1) + 1000);
      expect((await runs()).map((r) => r.status)).to.deep.equal(['timed-out']);
      never.resolve(1);
    });

    it('records a failing task with its error code', async () => {
      const s = scheduler([
        job({
          work: async () => {
            throw new AmtError('AMT_STORE_UNAVAILABLE', 'database gone');
          },
        }),
      ]);
      await s.start();
      await clock.advanceTo(minute(1));
      expect((await runs()).map((r) => [r.status, r.error?.code, r.error?.message])).to.deep.equal([
        ['failed', 'AMT_STORE_UNAVAILABLE', 'database gone'],
      ]);
    });
  });

  describe('when an instance dies mid-run', () => {
    /** Instance 1 runs on its own clock, which stops: its heartbeats stop as a dead process's would. */
    async function deadHolder(options: Partial<SchedulerOptions> = {}) {
      const frozen = new ManualClock(T0);
      const started = deferred();
      const aborted: unknown[] = [];
      const work = async (ctx: JobContext) => {
        if (ctx.run.owner === 'holder') {
          started.resolve();
          try {
            await sleep(frozen, DAY, ctx.signal);
          } catch (err) {
            aborted.push(err);
            throw err;
          }
        }
        return 7;
      };
      const holder = new Scheduler({
        store,
        jobs: [job({ work })],
        clock: frozen,
        owner: 'holder',
        leaseMs: 30_000,
      });
      const heir = scheduler([job({ work })], { leaseMs: 30_000, ...options });
      await holder.start();
      await heir.start();
      await frozen.advanceTo(minute(1));
      await started.promise;
      return { holder, frozen, aborted };
    }

    it('lets another instance take the occurrence over once the lease expired, and records both runs', async () => {
      const { frozen, aborted, holder } = await deadHolder();
      await clock.advanceTo(minute(1) + 29_000);
      expect((await runs()).map((r) => [r.owner, r.status])).to.deep.equal([['holder', 'running']]);
      await clock.advanceTo(minute(1) + 40_000);
      const recorded = await runs();
      expect(
        recorded.map((r) => [r.scheduledAt, r.attempt, r.owner, r.status, r.itemsProcessed]),
      ).to.deep.equal([
        [minute(1), 1, 'holder', 'abandoned', undefined],
        [minute(1), 2, 'instance-1', 'succeeded', 7],
      ]);
      expect(recorded[1]?.takeoverOf).to.equal(recorded[0]?.id);
      expect(recorded[0]?.error?.code).to.equal('AMT_JOB_LEASE_EXPIRED');
      // The holder wakes up: its heartbeat finds the run taken over and aborts its task, which
      // writes nothing.
      await frozen.advanceTo(minute(1) + 20_000);
      expect((aborted[0] as AmtError).code).to.equal('AMT_JOB_LEASE_EXPIRED');
      expect((await runs()).map((r) => r.status)).to.deep.equal(['abandoned', 'succeeded']);
      await holder.stop(0);
    });

    it('gives an occurrence up after too many abandoned runs', async () => {
      const { holder, frozen } = await deadHolder({ maxAttempts: 1 });
      await clock.advanceTo(minute(1) + 40_000);
      const recorded = await runs();
      expect(recorded.map((r) => [r.attempt, r.status, r.error?.code])).to.deep.equal([
        [1, 'abandoned', 'AMT_JOB_LEASE_EXPIRED'],
        [2, 'failed', 'AMT_JOB_GIVEN_UP'],
      ]);
      expect(calls.filter((c) => c.attempt === 2)).to.deep.equal([]);
      const stopping = holder.stop(0);
      await frozen.advance(1);
      await stopping;
    });
  });

  describe('manual runs', () => {
    it('runs an occurrence now through the same claim, with progress', async () => {
      const progress: number[] = [];
      const s = scheduler([
        job({
          work: async (ctx) => {
            ctx.progress(1);
            ctx.progress(2);
            return 2;
          },
        }),
      ]);
      const started = await s.trigger('purge', { onProgress: (n) => progress.push(n) });
      expect([started.run.status, started.run.trigger, started.run.scheduledAt]).to.deep.equal([
        'running',
        'manual',
        T0,
      ]);
      const finished = await started.finished;
      expect([finished?.status, finished?.itemsProcessed]).to.deep.equal(['succeeded', 2]);
      expect(progress).to.deep.equal([1, 2]);
      expect((await runs()).map((r) => r.trigger)).to.deep.equal(['manual']);
    });

    it('is skipped by the overlap policy while a run is going on, and refuses unknown jobs', async () => {
      const first = deferred();
      const s = scheduler([job({ work: async () => (await first.promise, 1) })]);
      const running = await s.trigger('purge');
      await clock.advance(1);
      const second = await s.trigger('purge');
      expect([second.run.status, second.run.error?.code]).to.deep.equal(['skipped', 'AMT_JOB_OVERLAP']);
      first.resolve();
      expect((await running.finished)?.status).to.equal('succeeded');
      let unknown: unknown;
      try {
        await s.trigger('nope');
      } catch (err) {
        unknown = err;
      }
      expect((unknown as AmtError).code).to.equal('AMT_JOB_UNKNOWN');
    });
  });

  it('on stop, gives running jobs their grace time, then aborts and records them', async () => {
    const s = scheduler([job({ work: (ctx) => sleep(clock, DAY, ctx.signal).then(() => 1) })]);
    await s.start();
    await clock.advanceTo(minute(1));
    const stopping = s.stop(5000);
    await clock.advance(4999);
    expect((await runs())[0]?.status).to.equal('running');
    await clock.advance(1);
    await stopping;
    expect((await runs()).map((r) => [r.status, r.error?.code])).to.deep.equal([
      ['failed', 'AMT_SHUTTING_DOWN'],
    ]);
    expect(clock.pending()).to.deep.equal([]);
  });
});
