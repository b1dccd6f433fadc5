/**
 * Operator commands for scheduled jobs. They open the configured store directly, so they work
 * whether or not a gateway runs, and a run started here goes through the same claim as one the
 * gateway starts — it cannot double a run of the cluster.
 *
 *   amtsbote jobs list [--json]
 *   amtsbote jobs run NAME [--json]
 *   amtsbote jobs history NAME [--limit N] [--json]
 */
import path from 'node:path';
import { Option, type Command } from 'commander';
import type { AdapterInstance } from '../adapter-contract.js';
import { AttachmentStore } from '../attachments.js';
import type { GatewayConfig, JobConfig } from '../config/types.js';
import { AmtError } from '../errors.js';
import { openStore } from '../store/open.js';
import type { JobRun, Store } from '../store/types.js';
import { scheduledJobs } from './builtin/index.js';
import { CronSchedule } from './cron.js';
import { Scheduler, type JobStatus } from './scheduler.js';
import { jobRunView, jobView } from './views.js';

export interface JobCommandDeps {
  /** Loads and validates the configuration (`-c FILE`, else $AMTSBOTE_CONFIG or ./gateway.yaml). */
  readonly loadConfig: (option: string | undefined) => GatewayConfig;
  /**
   * Creates the adapter instances adapter jobs poll, as the gateway does. Without it, adapter
   * jobs can only be run inside the gateway (admin API `POST /api/v1/admin/jobs/NAME/run`).
   */
  readonly createAdapters?: (
    config: GatewayConfig,
    store: Store,
  ) => Promise<ReadonlyMap<string, AdapterInstance>>;
  /** Where output goes (default: the console; progress only on a TTY). */
  readonly output?: JobCommandOutput;
}

export interface JobCommandOutput {
  line(text: string): void;
  /** Rewrites one progress line, when the output is a terminal. */
  progress?(text: string): void;
}

const consoleOutput: JobCommandOutput = {
  line: (text) => console.log(text),
  progress: process.stderr.isTTY ? (text) => process.stderr.write(`\r\x1b[2K${text}`) : undefined,
};

interface CommonOptions {
  config?: string;
  json?: boolean;
}

export function registerJobCommands(program: Command, deps: JobCommandDeps): void {
  const out = deps.output ?? consoleOutput;
  const jobs = program
    .command('jobs')
    .description('scheduled jobs: list them, run one now, read their history');
  const common = (command: Command): Command =>
    command
      .option('-c, --config <file>', 'configuration file (default: $AMTSBOTE_CONFIG or ./gateway.yaml)')
      .option('--json', 'print JSON');

  common(jobs.command('list').description('configured jobs with schedule, next run and last run')).action(
    async (opts: CommonOptions) => {
      const config = deps.loadConfig(opts.config);
      await withStore(config, async (store) => {
        const now = Date.now();
        const views = await Promise.all(
          config.jobs.map(async (job) =>
            jobView(statusOf(job, now), (await store.jobRuns(job.name, 1)).items[0]),
          ),
        );
        if (opts.json) {
          out.line(JSON.stringify(views, null, 2));
          return;
        }
        if (views.length === 0) {
          out.line('no jobs configured');
          return;
        }
        const widths = [20, 16, 15, 26];
        out.line(row(widths, ['NAME', 'SCHEDULE', 'TIMEZONE', 'NEXT RUN', 'LAST RUN']));
        for (const v of views) {
          const last = v.lastRun
            ? `${v.lastRun.status} ${v.lastRun.scheduledAt}${v.lastRun.itemsProcessed === null ? '' : ` (${v.lastRun.itemsProcessed} items)`}`
            : 'never';
          out.line(row(widths, [v.name, v.schedule, v.timezone, v.nextRunAt ?? 'none', last]));
        }
      });
    },
  );

  common(
    jobs.command('run').description('run one occurrence of a job now, through the same claim as the gateway'),
  )
    .argument('<name>', 'job name')
    .action(async (name: string, opts: CommonOptions) => {
      const config = deps.loadConfig(opts.config);
      const job = jobNamed(config, name);
      await withStore(config, async (store) => {
        const adapters = await adaptersFor(job, config, store, deps);
        const scheduler = new Scheduler({
          store,
          owner: `cli:${process.pid}`,
          jobs: scheduledJobs([job], {
            store,
            adapters,
            attachments: new AttachmentStore(path.join(config.dataDir, 'attachments')),
            logger: quietLogger,
          }),
        });
        const interrupt = (): void => void scheduler.stop(0);
        process.once('SIGINT', interrupt);
        try {
          const started = await scheduler.trigger(name, {
            onProgress: (items) => out.progress?.(`${name}: running, ${items} items`),
          });
          if (started.run.status === 'running') out.progress?.(`${name}: running (run ${started.run.id})`);
          const finished = await started.finished;
          out.progress?.('');
          report(out, name, finished ?? started.run, opts.json === true);
          if (finished?.status !== 'succeeded') {
            const run = finished ?? started.run;
            const reason = finished
              ? run.error
              : { code: 'AMT_JOB_LEASE_EXPIRED', message: 'another instance took it over' };
            throw new Error(
              `job ${name} did not succeed (${run.status})${reason ? `: ${reason.code}: ${reason.message}` : ''}`,
            );
          }
        } finally {
          process.removeListener('SIGINT', interrupt);
          for (const adapter of adapters.values()) await adapter.close?.();
        }
      });
    });

  common(jobs.command('history').description('runs of a job, newest first'))
    .argument('<name>', 'job name')
    .addOption(
      new Option('-n, --limit <n>', 'how many runs').default(20).argParser((v) => {
        const n = Number.parseInt(v, 10);
        if (!(n >= 1 && n <= 1000)) throw new Error('--limit must be from 1 to 1000');
        return n;
      }),
    )
    .action(async (name: string, opts: CommonOptions & { limit: number }) => {
      const config = deps.loadConfig(opts.config);
      jobNamed(config, name);
      await withStore(config, async (store) => {
        const runs = (await store.jobRuns(name, opts.limit)).items;
        if (opts.json) {
          out.line(JSON.stringify(runs.map(jobRunView), null, 2));
          return;
        }
        if (runs.length === 0) {
          out.line(`job ${name} has not run yet`);
          return;
        }
        const widths = [26, 8, 9, 10, 7, 24];
        out.line(row(widths, ['SCHEDULED', 'ATTEMPT', 'TRIGGER', 'STATUS', 'ITEMS', 'OWNER', 'ERROR']));
        for (const r of runs) {
          out.line(
            row(widths, [
              new Date(r.scheduledAt).toISOString(),
              String(r.attempt),
              r.trigger,
              r.status,
              r.itemsProcessed === undefined ? '-' : String(r.itemsProcessed),
              r.owner,
              r.error ? `${r.error.code}: ${r.error.message}` : '',
            ]),
          );
        }
      });
    });
}

const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

function statusOf(job: JobConfig, now: number): JobStatus {
  return {
    name: job.name,
    schedule: job.schedule,
    timezone: job.timezone,
    overlap: job.overlap,
    missed: job.missed,
    timeoutMs: job.timeoutMs,
    nextRunAt: new CronSchedule(job.schedule, job.timezone).next(now),
  };
}

function jobNamed(config: GatewayConfig, name: string): JobConfig {
  const job = config.jobs.find((j) => j.name === name);
  if (!job) throw new AmtError('AMT_JOB_UNKNOWN', `no job is named ${name} in the configuration`);
  return job;
}

async function adaptersFor(
  job: JobConfig,
  config: GatewayConfig,
  store: Store,
  deps: JobCommandDeps,
): Promise<ReadonlyMap<string, AdapterInstance>> {
  if (!('adapter' in job.run)) return new Map();
  if (!deps.createAdapters) {
    throw new Error(
      `job ${job.name} runs a task of adapter ${job.run.adapter}, which runs inside the gateway: ` +
        `use POST /api/v1/admin/jobs/${job.name}/run`,
    );
  }
  return deps.createAdapters(config, store);
}

async function withStore(config: GatewayConfig, work: (store: Store) => Promise<void>): Promise<void> {
  const { store } = await openStore(config.store);
  try {
    await work(store);
  } finally {
    await store.close();
  }
}

function report(out: JobCommandOutput, name: string, run: JobRun, json: boolean): void {
  if (json) {
    out.line(JSON.stringify(jobRunView(run), null, 2));
    return;
  }
  const items = run.itemsProcessed === undefined ? '' : `, ${run.itemsProcessed} items`;
  const error = run.error ? ` — ${run.error.code}: ${run.error.message}` : '';
  out.line(`${name}: ${run.status}${items} (run ${run.id}, attempt ${run.attempt})${error}`);
}

/** One table row: every cell but the last padded to its column's width. */
function row(widths: readonly number[], cells: readonly string[]): string {
  return cells
    .map((c, i) => c.padEnd(widths[i] ?? 0))
    .join(' ')
    .trimEnd();
}
