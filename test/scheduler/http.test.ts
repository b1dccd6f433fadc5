import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import express from 'express';
import { createAuthenticator, hashApiKey, requireAdmin, requireClient } from '../../src/http/auth.js';
import { problemHandler } from '../../src/http/problem.js';
import { createLogger } from '../../src/observability/log.js';
import { CronSchedule } from '../../src/scheduler/cron.js';
import { jobsRouter } from '../../src/scheduler/http.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import type { ScheduledJob } from '../../src/scheduler/types.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { assertMatchesOpenApi } from '../http/openapi-check.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers of varying shape, checked field by field
type Json = Record<string, any>;

const ADMIN_KEY = 'admin-key-0123456789';
const PORTAL_KEY = 'portal-key-0123456789';

describe('jobs admin API', () => {
  let dir: string;
  let store: SqliteStore;
  let scheduler: Scheduler;
  let server: Server;
  let base: string;
  let release: () => void;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-jobs-http-'));
    store = SqliteStore.open(path.join(dir, 'amtsbote.db'));
    await store.migrate();
    let gate = Promise.resolve();
    release = () => undefined;
    const job = (name: string, schedule: string): ScheduledJob => ({
      name,
      schedule: new CronSchedule(schedule, 'Europe/Berlin'),
      overlap: 'skip',
      missed: 'skip',
      timeoutMs: 60_000,
      task: async () => {
        await gate;
        return { items: 2 };
      },
    });
    scheduler = new Scheduler({
      store,
      jobs: [job('purge', '30 2 * * *'), job('digest', '0 8 * * 1-5')],
      owner: 'gw-1',
    });
    gate = new Promise((resolve) => (release = resolve));
    const authenticate = createAuthenticator([
      { id: 'ops', name: 'ops', keyHash: hashApiKey(ADMIN_KEY), tenants: [], admin: true },
      { id: 'portal', name: 'portal', keyHash: hashApiKey(PORTAL_KEY), tenants: [], admin: false },
    ]);
    const app = express();
    app.use(
      '/api/v1/admin',
      jobsRouter({ scheduler, store, guards: [requireClient(authenticate), requireAdmin] }),
    );
    app.use(problemHandler(createLogger({ silent: true })));
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/admin`;
  });

  afterEach(async () => {
    release();
    await scheduler.idle();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function call(method: string, pathAndQuery: string, key = ADMIN_KEY) {
    const response = await fetch(`${base}${pathAndQuery}`, {
      method,
      headers: { authorization: `Bearer ${key}` },
    });
    const text = await response.text();
    assertMatchesOpenApi({
      method,
      path: new URL(`${base}${pathAndQuery}`).pathname,
      status: response.status,
      headers: response.headers,
      text,
    });
    return {
      status: response.status,
      headers: response.headers,
      body: (text ? JSON.parse(text) : {}) as Json,
    };
  }

  it('lists the jobs with schedule, next run and last run, for admin clients only', async () => {
    expect((await fetch(`${base}/jobs`)).status).to.equal(401);
    expect((await call('GET', '/jobs', PORTAL_KEY)).body.code).to.equal('AMT_FORBIDDEN');
    const { status, body } = await call('GET', '/jobs');
    expect(status).to.equal(200);
    expect(body.items.map((j: { name: string }) => j.name)).to.deep.equal(['purge', 'digest']);
    expect(body.items[0]).to.deep.include({
      schedule: '30 2 * * *',
      timezone: 'Europe/Berlin',
      overlap: 'skip',
      missed: 'skip',
      timeoutMs: 60_000,
      lastRun: null,
    });
    const next = Date.parse(body.items[0].nextRunAt as string);
    expect(next).to.be.greaterThan(Date.now());
    expect(new CronSchedule('30 2 * * *', 'Europe/Berlin').previous(next)).to.equal(next);
  });

  it('runs a job now (202), refuses a second run while it runs (409), and shows both in the history', async () => {
    const started = await call('POST', '/jobs/purge/run');
    expect(started.status).to.equal(202);
    expect(started.headers.get('location')).to.equal('/api/v1/admin/jobs/purge/runs');
    expect(started.body.run).to.deep.include({
      job: 'purge',
      status: 'running',
      trigger: 'manual',
      owner: 'gw-1',
      attempt: 1,
    });

    const second = await call('POST', '/jobs/purge/run');
    expect([second.status, second.body.code]).to.deep.equal([409, 'AMT_JOB_OVERLAP']);
    release();
    await scheduler.idle();

    const history = await call('GET', '/jobs/purge/runs');
    expect(history.body.items.map((r: { status: string }) => r.status)).to.deep.equal([
      'skipped',
      'succeeded',
    ]);
    expect(history.body.items[1]).to.deep.include({
      id: started.body.run.id,
      itemsProcessed: 2,
      error: null,
    });
    expect(history.body.items[0].error.code).to.equal('AMT_JOB_OVERLAP');
    const jobs = await call('GET', '/jobs');
    expect(jobs.body.items[0].lastRun.status).to.equal('skipped');
  });

  it('pages the history and checks its query', async () => {
    release();
    for (let i = 0; i < 3; i++) {
      await call('POST', '/jobs/digest/run');
      await scheduler.idle();
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const first = await call('GET', '/jobs/digest/runs?limit=2');
    expect(first.body.items).to.have.length(2);
    const second = await call('GET', `/jobs/digest/runs?limit=2&cursor=${first.body.nextCursor as string}`);
    expect([second.body.items.length, second.body.nextCursor]).to.deep.equal([1, null]);
    expect(second.body.items[0].scheduledAt < first.body.items[1].scheduledAt).to.equal(true);
    for (const query of ['?limit=0', '?limit=501', '?limit=x', '?cursor=nonsense', '?status=failed']) {
      const { status, body } = await call('GET', `/jobs/digest/runs${query}`);
      expect([status, body.code], query).to.deep.equal([422, 'AMT_VALIDATION_FAILED']);
    }
  });

  it('answers 404 for an unknown job and 405 for a method a resource does not have', async () => {
    for (const [method, p] of [
      ['GET', '/jobs/nope/runs'],
      ['POST', '/jobs/nope/run'],
    ] as const) {
      const { status, body } = await call(method, p);
      expect([status, body.code]).to.deep.equal([404, 'AMT_JOB_UNKNOWN']);
    }
    const wrong = await call('DELETE', '/jobs');
    expect([wrong.status, wrong.body.code, wrong.headers.get('allow')]).to.deep.equal([
      405,
      'AMT_METHOD_NOT_ALLOWED',
      'GET, HEAD',
    ]);
  });
});
