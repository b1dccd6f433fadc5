import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { fileDropAdapter } from '../../adapters/file-drop/manifest.js';
import { fitConnectAdapter } from '../../adapters/fit-connect/manifest.js';
import type { AdapterInstance } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import { adapterTask } from '../../src/scheduler/builtin/adapter-task.js';
import type { JobContext } from '../../src/scheduler/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

function context(): JobContext {
  const now = Date.now();
  return {
    signal: new AbortController().signal,
    run: {
      id: 'run-1',
      job: 'destinations',
      scheduledAt: now,
      attempt: 1,
      trigger: 'schedule',
      owner: 'test',
      status: 'running',
      startedAt: now,
      leaseExpiresAt: now + 30_000,
      finishedAt: undefined,
      itemsProcessed: undefined,
      error: undefined,
      takeoverOf: undefined,
    },
    progress: () => undefined,
  };
}

async function thrownBy(promise: Promise<unknown>): Promise<AmtError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(AmtError);
    return err as AmtError;
  }
  throw new Error('expected the task to fail');
}

describe('adapter refresh jobs', function () {
  this.timeout(60_000);

  it('runs the instance’s refresh (not its poll) with the run’s signal and reports its items', async () => {
    const calls: string[] = [];
    const signals: AbortSignal[] = [];
    const adapters = new Map<string, AdapterInstance>([
      [
        'fit',
        {
          poll: async () => (calls.push('poll'), { items: 7 }),
          refresh: async (signal) => (calls.push('refresh'), signals.push(signal), { items: 2 }),
        },
      ],
      ['inbox', { poll: async () => ({ items: 1 }) }],
    ]);
    const ctx = context();
    expect(await adapterTask('fit', 'refresh', adapters)(ctx)).to.deep.equal({ items: 2 });
    expect(calls).to.deep.equal(['refresh']);
    expect(signals).to.deep.equal([ctx.signal]);
    for (const id of ['inbox', 'missing']) {
      const err = await thrownBy(adapterTask(id, 'refresh', adapters)(ctx));
      expect([err.code, err.message]).to.deep.equal([
        'AMT_ADAPTER_UNKNOWN',
        `adapter instance ${id} is not running or cannot refresh`,
      ]);
    }
  });

  it('fails the run with the error the refresh raised', async () => {
    const revoked = new AmtError('AMT_DELIVERY_REJECTED', 'encryption key is not usable');
    const adapters = new Map<string, AdapterInstance>([['fit', { refresh: () => Promise.reject(revoked) }]]);
    expect(await thrownBy(adapterTask('fit', 'refresh', adapters)(context()))).to.equal(revoked);
  });

  describe('amtsbote check', () => {
    let dir: string;
    before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'amt-refresh-'))));
    after(() => rmSync(dir, { recursive: true, force: true }));

    async function check(type: string, config: unknown): Promise<{ code: number; stderr: string }> {
      const file = path.join(dir, `${type}.yaml`);
      writeFileSync(
        file,
        stringify({
          dataDir: dir,
          tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: '055150000000' }],
          clients: [],
          adapters: { outbox: { type, config } },
          routes: [{ id: 'r', ars: '05515', service: '99123456760610', adapter: 'outbox' }],
          jobs: [
            { name: 'destinations', schedule: '*/15 * * * *', run: { adapter: 'outbox', task: 'refresh' } },
          ],
        }),
      );
      try {
        const { stderr } = await run(
          process.execPath,
          ['--import', 'tsx', path.join(ROOT, 'src/main.ts'), 'check', '-c', file],
          {
            cwd: ROOT,
            env: {
              ...process.env,
              AMTSBOTE_CONFIG: '',
              FIT_CONNECT_CLIENT_SECRET: 'client-secret',
              FIT_CONNECT_CALLBACK_SECRET: 'callback-secret-of-the-city',
            },
          },
        );
        return { code: 0, stderr };
      } catch (err) {
        const e = err as { code: number; stderr: string };
        return { code: e.code, stderr: e.stderr };
      }
    }

    it('accepts task: refresh on a fit-connect instance and refuses it on file-drop, naming the path', async () => {
      const fit = await check('fit-connect', fitConnectAdapter.example);
      expect(fit.stderr).to.equal('');
      expect(fit.code).to.equal(0);

      const drop = await check('file-drop', fileDropAdapter.example);
      expect(drop.code).to.equal(1);
      expect(drop.stderr).to.include('AMT_CONFIG_INVALID');
      expect(drop.stderr).to.include(
        '/jobs/0/run/task: adapter instance outbox (type file-drop) has no routing or destination data to refresh',
      );
    });
  });
});
