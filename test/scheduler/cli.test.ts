import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Command } from 'commander';
import { defineAdapter, type AdapterInstance } from '../../src/adapter-contract.js';
import { validateConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { registerJobCommands, type JobCommandDeps } from '../../src/scheduler/cli.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { PURGED_PAYLOAD } from '../../src/store/types.js';

const DAY = 24 * 60 * 60 * 1000;

const inbox = defineAdapter<Record<string, never>>({
  type: 'test-inbox',
  version: '1.0.0',
  description: 'polls an inbox',
  capabilities: { outbound: true, inbound: true, poll: true },
  configSchema: { type: 'object', additionalProperties: false },
  secrets: [],
  example: {},
  create: () => ({}),
});

describe('amtsbote jobs', function () {
  this.timeout(20_000);
  let dir: string;
  let config: GatewayConfig;
  let lines: string[];
  let progress: string[];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-jobs-cli-'));
    config = validateConfig(
      {
        dataDir: dir,
        tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: '055150000000' }],
        clients: [],
        adapters: { inbox: { type: 'test-inbox' } },
        routes: [{ id: 'parken', ars: '05515', service: '99058012104000', adapter: 'inbox' }],
        jobs: [
          {
            name: 'purge',
            schedule: '30 2 * * *',
            run: { builtin: 'retention-purge' },
            options: { days: 30 },
          },
          {
            name: 'inbox-poll',
            schedule: '*/5 * * * *',
            timezone: 'UTC',
            run: { adapter: 'inbox', task: 'poll' },
          },
        ],
      },
      { manifests: [inbox], baseDir: dir, source: undefined },
    );
    lines = [];
    progress = [];
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function jobs(args: string[], extra: Partial<JobCommandDeps> = {}): Promise<string[]> {
    lines = [];
    const program = new Command('amtsbote').exitOverride();
    registerJobCommands(program, {
      loadConfig: () => config,
      output: { line: (t) => lines.push(t), progress: (t) => progress.push(t) },
      ...extra,
    });
    await program.parseAsync(['jobs', ...args], { from: 'user' });
    return lines;
  }

  async function failure(args: string[], extra: Partial<JobCommandDeps> = {}): Promise<string> {
    try {
      await jobs(args, extra);
    } catch (err) {
      return err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}` : String(err);
    }
    throw new Error('expected the command to fail');
  }

  /** A message delivered 40 days ago, written straight into the configured SQLite store. */
  async function oldDeliveredMessage(): Promise<string> {
    if (config.store.type !== 'sqlite') throw new Error('sqlite expected');
    const store = SqliteStore.open(config.store.path);
    await store.migrate();
    const at = Date.now() - 40 * DAY;
    await store.accept([
      {
        id: 'm1',
        deliveryId: 'd1',
        direction: 'outbound',
        tenantId: 'muenster',
        ars: '055150000000',
        service: '99058012104000',
        reference: undefined,
        clientId: 'portal',
        routeId: 'parken',
        target: 'inbox',
        payload: '{"name":"Erika Mustermann"}',
        attachments: [],
        idempotency: undefined,
        receivedAt: at,
      },
    ]);
    await store.claimDue('w', 1, 1000, at);
    await store.complete(
      [
        {
          kind: 'delivered',
          messageId: 'm1',
          leaseOwner: 'w',
          attempt: { startedAt: at, endedAt: at, target: 'inbox' },
          remoteReference: undefined,
        },
      ],
      at,
    );
    await store.close();
    return 'm1';
  }

  it('lists the jobs with schedule, time zone, next and last run', async () => {
    const table = await jobs(['list']);
    expect(table[0]).to.match(/^NAME\s+SCHEDULE\s+TIMEZONE\s+NEXT RUN\s+LAST RUN$/);
    expect(table.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).to.deep.equal([
      ['purge', '30'],
      ['inbox-poll', '*/5'],
    ]);
    expect(table[1]).to.match(/Europe\/Berlin\s+\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z\s+never$/);
    const json = JSON.parse((await jobs(['list', '--json'])).join('\n')) as {
      name: string;
      nextRunAt: string;
    }[];
    expect(json.map((j) => j.name)).to.deep.equal(['purge', 'inbox-poll']);
    expect(Date.parse(json[1]!.nextRunAt) % (5 * 60_000)).to.equal(0);
  });

  it('runs a built-in job now, with progress, and shows it in the history', async () => {
    await oldDeliveredMessage();
    const out = await jobs(['run', 'purge']);
    expect(out).to.have.length(1);
    expect(out[0]).to.match(/^purge: succeeded, 1 items \(run [0-9a-f-]{36}, attempt 1\)$/);
    expect(progress).to.include('purge: running, 1 items');
    const store = SqliteStore.open(path.join(dir, 'amtsbote.db'));
    expect((await store.getMessage('m1'))?.payload).to.equal(PURGED_PAYLOAD);
    await store.close();

    const history = await jobs(['history', 'purge']);
    expect(history[0]).to.match(/^SCHEDULED\s+ATTEMPT\s+TRIGGER\s+STATUS\s+ITEMS\s+OWNER\s+ERROR$/);
    expect(history[1]).to.match(/^\S+Z\s+1\s+manual\s+succeeded\s+1\s+cli:\d+$/);
    const [run] = JSON.parse((await jobs(['history', 'purge', '--json'])).join('\n')) as Record<
      string,
      unknown
    >[];
    expect(run).to.deep.include({ job: 'purge', status: 'succeeded', trigger: 'manual', itemsProcessed: 1 });
    expect((await jobs(['list']))[1]).to.match(/succeeded \S+ \(1 items\)$/);
  });

  it('is skipped while another instance runs the job, and says so', async () => {
    const store = SqliteStore.open(path.join(dir, 'amtsbote.db'));
    await store.migrate();
    await store.claimJobOccurrence('purge', Date.now() - 1000, 'gateway-1', 60_000, Date.now());
    await store.close();
    expect(await failure(['run', 'purge'])).to.include(
      'job purge did not succeed (skipped): AMT_JOB_OVERLAP',
    );
    expect(lines[0]).to.match(/^purge: skipped, 0 items/);
  });

  it('runs an adapter job with the adapters it is given, and explains where to run it otherwise', async () => {
    expect(await failure(['run', 'inbox-poll'])).to.include('use POST /api/v1/admin/jobs/inbox-poll/run');
    let closed = false;
    const adapter: AdapterInstance = {
      poll: async () => ({ items: 4 }),
      close: async () => {
        closed = true;
      },
    };
    const out = await jobs(['run', 'inbox-poll'], {
      createAdapters: async () => new Map([['inbox', adapter]]),
    });
    expect(out[0]).to.match(/^inbox-poll: succeeded, 4 items/);
    expect(closed).to.equal(true);
  });

  it('refuses a job that is not configured', async () => {
    for (const args of [
      ['run', 'coffee'],
      ['history', 'coffee'],
    ]) {
      expect(await failure(args)).to.equal('AMT_JOB_UNKNOWN no job is named coffee in the configuration');
    }
  });
});
