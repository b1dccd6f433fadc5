import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { AttachmentStore } from '../../src/attachments.js';
import { validateConfig } from '../../src/config/load.js';
import { ManualClock } from '../../src/scheduler/clock.js';
import { startScheduler } from '../../src/scheduler/start.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { instantWalFlush } from '../support/instant-flush.js';

describe('startScheduler', () => {
  let dir: string;

  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-start-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs the configured jobs on the gateway’s store, records metrics and stops', async () => {
    const config = validateConfig(
      {
        dataDir: dir,
        tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: '055150000000' }],
        clients: [],
        adapters: {},
        routes: [],
        jobs: [
          { name: 'digest', schedule: '*/10 * * * *', run: { builtin: 'dead-letter-digest' } },
          {
            name: 'purge',
            schedule: '30 2 * * *',
            run: { builtin: 'retention-purge' },
            options: { days: 7 },
          },
        ],
      },
      { manifests: [], baseDir: dir, source: undefined },
    );
    const store = SqliteStore.open(path.join(dir, 'amtsbote.db'), { walSync: instantWalFlush });
    await store.migrate();
    const clock = new ManualClock(Date.parse('2026-05-04T09:55:00Z'));
    const registry = new Registry();
    const logged: string[] = [];
    const running = await startScheduler({
      config,
      store,
      adapters: new Map(),
      attachments: new AttachmentStore(path.join(dir, 'attachments')),
      logger: { debug() {}, info: (m) => logged.push(m), warn: (m) => logged.push(m), error() {} },
      registry,
      clock,
      owner: 'gw-1',
    });
    expect(running.scheduler.list().map((j) => [j.name, new Date(j.nextRunAt!).toISOString()])).to.deep.equal(
      [
        ['digest', '2026-05-04T10:00:00.000Z'],
        ['purge', '2026-05-05T00:30:00.000Z'],
      ],
    );
    await clock.advanceTo(Date.parse('2026-05-04T10:25:00Z'));
    const runs = (await store.jobRuns('digest', 10)).items;
    expect(runs.map((r) => [new Date(r.scheduledAt).toISOString(), r.status, r.owner])).to.deep.equal([
      ['2026-05-04T10:20:00.000Z', 'succeeded', 'gw-1'],
      ['2026-05-04T10:10:00.000Z', 'succeeded', 'gw-1'],
      ['2026-05-04T10:00:00.000Z', 'succeeded', 'gw-1'],
    ]);
    expect(logged).to.include('scheduler started');
    expect(await registry.metrics()).to.match(/amtsbote_job_runs_total\{job="digest",status="succeeded"\} 3/);
    await running.stop();
    await clock.advanceTo(Date.parse('2026-05-04T11:00:00Z'));
    expect((await store.jobRuns('digest', 10)).items).to.have.length(3);
    await store.close();
  });
});
