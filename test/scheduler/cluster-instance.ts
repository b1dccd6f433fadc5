/**
 * One gateway instance's scheduler for the cluster test, run as its own process:
 * `node --import tsx test/scheduler/cluster-instance.ts` with AMTSBOTE_CLUSTER_URL (PostgreSQL,
 * search path set to the test's schema) and AMTSBOTE_CLUSTER_OWNER. Every second the job
 * `cluster-tick` records that it started, works 100 ms and records that it is done (the side
 * effect the test counts). The occurrence named in `cluster_plan.kill_at` works for a minute on
 * its first attempt instead, so the test can kill its process in the middle of it.
 * Prints `ready` once the scheduler runs; SIGTERM stops it gracefully.
 */
import pg from 'pg';
import { sleep, systemClock } from '../../src/scheduler/clock.js';
import { CronSchedule } from '../../src/scheduler/cron.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import { PostgresStore } from '../../src/store/postgres.js';

const url = process.env.AMTSBOTE_CLUSTER_URL;
const owner = process.env.AMTSBOTE_CLUSTER_OWNER;
if (!url || !owner) throw new Error('AMTSBOTE_CLUSTER_URL and AMTSBOTE_CLUSTER_OWNER are required');
const LEASE_MS = 2000;

const store = await PostgresStore.open(url, { poolSize: 3 });
await store.migrate();
const effects = new pg.Pool({ connectionString: url, max: 2 });
effects.on('error', () => undefined);

let killAt: number | undefined;
async function plannedKill(): Promise<number | undefined> {
  if (killAt === undefined) {
    const { rows } = await effects.query<{ kill_at: string }>('SELECT kill_at FROM cluster_plan');
    if (rows[0]) killAt = Number(rows[0].kill_at);
  }
  return killAt;
}

const scheduler = new Scheduler({
  store,
  owner,
  leaseMs: LEASE_MS,
  heartbeatMs: LEASE_MS / 4,
  lateToleranceMs: 2000,
  jobs: [
    {
      name: 'cluster-tick',
      schedule: new CronSchedule('* * * * * *', 'Europe/Berlin'),
      overlap: 'queue',
      missed: 'skip',
      timeoutMs: 120_000,
      task: async ({ run, signal }) => {
        const from = Date.now();
        await effects.query(
          'INSERT INTO effects_started (scheduled_at, attempt, owner, pid) VALUES ($1, $2, $3, $4)',
          [run.scheduledAt, run.attempt, owner, process.pid],
        );
        const long = run.attempt === 1 && run.scheduledAt === (await plannedKill());
        await sleep(systemClock, long ? 60_000 : 100, signal);
        await effects.query(
          'INSERT INTO effects_done (scheduled_at, attempt, owner, from_ms, to_ms) VALUES ($1, $2, $3, $4, $5)',
          [run.scheduledAt, run.attempt, owner, from, Date.now()],
        );
        return { items: 1 };
      },
    },
  ],
});
await scheduler.start();
process.stdout.write('ready\n');

process.once('SIGTERM', () => {
  void (async () => {
    await scheduler.stop(5000);
    await effects.end();
    await store.close();
    process.exit(0);
  })();
});
