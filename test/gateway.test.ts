/**
 * The gateway as `amtsbote start` assembles it: the scheduler's jobs in the admin API and in
 * the metrics, and a manual run recorded in the store.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { manifests } from '../adapters/index.js';
import { validateConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { hashApiKey } from '../src/http/auth.js';
import { loadMappingStep } from '../src/mapping/index.js';
import { createLogger } from '../src/observability/log.js';
import { assertMatchesOpenApi } from './http/openapi-check.js';

const ADMIN_KEY = 'gateway-test-admin-key';
const PORTAL_KEY = 'gateway-test-portal-key';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are checked against the OpenAPI document first
type Json = any;

describe('gateway assembly', function () {
  this.timeout(30_000);
  let dir: string;
  let gateway: Gateway;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-gateway-'));
    const config = validateConfig(
      {
        dataDir: dir,
        server: { host: '127.0.0.1', port: 0 },
        tenants: [{ id: 'dortmund', name: 'Stadt Dortmund', ars: '059130000000' }],
        clients: [
          { id: 'portal', keyHash: hashApiKey(PORTAL_KEY), tenants: ['dortmund'] },
          { id: 'ops', keyHash: hashApiKey(ADMIN_KEY), admin: true },
        ],
        adapters: { outbox: { type: 'file-drop', config: { directory: path.join(dir, 'outbox') } } },
        routes: [{ id: 'parken', ars: '05913', service: '99058013001000', adapter: 'outbox' }],
        jobs: [
          { name: 'dead-letters', schedule: '0 7 * * 1-5', run: { builtin: 'dead-letter-digest' } },
          {
            name: 'retention',
            schedule: '30 2 * * *',
            run: { builtin: 'retention-purge' },
            options: { days: 90 },
          },
        ],
      },
      { manifests, baseDir: dir, source: undefined },
    );
    gateway = await startGateway(config, {
      manifests,
      loadMapping: loadMappingStep,
      logger: createLogger({ silent: true }),
      port: 0,
    });
  });

  after(async () => {
    await gateway?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function call(
    method: string,
    target: string,
    key = ADMIN_KEY,
  ): Promise<{ status: number; body: Json }> {
    const response = await fetch(gateway.url + target, {
      method,
      headers: { authorization: `Bearer ${key}` },
    });
    const text = await response.text();
    assertMatchesOpenApi({ method, path: target, status: response.status, headers: response.headers, text });
    return { status: response.status, body: JSON.parse(text) };
  }

  it('hands an application straight to a free delivery slot; a repeated request gets the same message', async () => {
    const submit = async (reference: string, key: string): Promise<{ status: number; body: Json }> => {
      const response = await fetch(`${gateway.url}/api/v1/applications`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${PORTAL_KEY}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body: JSON.stringify({
          tenant: '059130000000',
          service: '99058013001000',
          reference,
          applicant: { familyName: 'Mustermann' },
          data: { zone: 'A' },
        }),
      });
      return { status: response.status, body: (await response.json()) as Json };
    };
    // The pipeline is idle: its first claim found nothing due, so a slot is offered.
    let first = await submit('HAND-1', 'hand-1');
    for (let i = 0; i < 50 && first.body.status !== 'delivering'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      first = await submit(`HAND-1-${i}`, `hand-1-${i}`);
    }
    expect([first.status, first.body.status]).to.deep.equal([202, 'delivering']);
    const again = await submit('HAND-1', 'hand-1');
    expect([again.status, again.body.id]).to.deep.equal([202, first.body.id]);
    let history: Json[] = [];
    for (let i = 0; i < 100; i++) {
      history = (await call('GET', `/api/v1/applications/${first.body.id}`, PORTAL_KEY)).body.history;
      if (history.some((h: Json) => h.event === 'delivered')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(history.map((h: Json) => h.event)).to.deep.equal(['received', 'claimed', 'delivered']);
  });

  it('counts its group commits in the metrics: how long applications waited, how long commits took, what they carried', async () => {
    // A series that has seen nothing yet is not printed: 0 before, required after.
    const sample = (text: string, name: string): number | undefined => {
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.slice(name.length + 1));
    };
    const before = await (await fetch(`${gateway.url}/metrics`)).text();
    const response = await fetch(`${gateway.url}/api/v1/applications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PORTAL_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        tenant: '059130000000',
        service: '99058013001000',
        reference: 'COMMITS-1',
        applicant: { familyName: 'Mustermann' },
        data: { zone: 'B' },
      }),
    });
    expect(response.status).to.equal(202);
    const { id } = (await response.json()) as Json;
    for (let i = 0; i < 100; i++) {
      const history: Json[] = (await call('GET', `/api/v1/applications/${id}`, PORTAL_KEY)).body.history;
      if (history.some((h: Json) => h.event === 'delivered')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = await (await fetch(`${gateway.url}/metrics`)).text();
    const grew = (name: string): number => {
      const now = sample(after, name);
      expect(now, name).to.be.a('number');
      return now! - (sample(before, name) ?? 0);
    };
    expect(grew('amtsbote_store_commit_items_sum{kind="accept"}'), 'one application accepted').to.equal(1);
    expect(grew('amtsbote_store_commit_items_sum{kind="outcome"}'), 'one outcome recorded').to.equal(1);
    expect(grew('amtsbote_store_commit_wait_seconds_count'), 'the commit with the application').to.equal(1);
    const commits = grew('amtsbote_store_commit_duration_seconds_count');
    expect(commits, 'the application and its outcome in one or two commits').to.be.within(1, 2);
    expect(grew('amtsbote_store_commit_duration_seconds_sum')).to.be.greaterThan(0);
  });

  it('lists the configured jobs under the admin API, for admin clients only', async () => {
    expect((await call('GET', '/api/v1/admin/jobs', PORTAL_KEY)).status).to.equal(403);
    const { status, body } = await call('GET', '/api/v1/admin/jobs');
    expect(status).to.equal(200);
    expect(body.items.map((j: Json) => [j.name, j.schedule, j.timezone])).to.deep.equal([
      ['dead-letters', '0 7 * * 1-5', 'Europe/Berlin'],
      ['retention', '30 2 * * *', 'Europe/Berlin'],
    ]);
  });

  it('runs a job now, records the run in the store and counts it in the metrics', async () => {
    const started = await call('POST', '/api/v1/admin/jobs/retention/run');
    expect(started.status).to.equal(202);
    expect(started.body.run).to.include({ job: 'retention', trigger: 'manual' });
    let runs: Json;
    for (let i = 0; i < 100; i++) {
      runs = (await call('GET', '/api/v1/admin/jobs/retention/runs')).body;
      if (runs.items[0]?.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(runs.items[0]).to.include({ id: started.body.run.id, status: 'succeeded', itemsProcessed: 0 });
    expect((await gateway.store.jobRuns('retention', 5)).items[0]?.id).to.equal(started.body.run.id);
    // The run reads as succeeded once its commit is visible; it is counted once that commit is
    // on disk, a moment later.
    const counted = /amtsbote_job_runs_total\{job="retention",status="succeeded"\} 1/;
    let metrics = '';
    for (let i = 0; i < 100; i++) {
      metrics = await (await fetch(`${gateway.url}/metrics`)).text();
      if (counted.test(metrics)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(metrics).to.match(counted);
    expect((await call('GET', '/api/v1/admin/jobs/nope/runs')).body.code).to.equal('AMT_JOB_UNKNOWN');
  });
});

describe('gateway start with a mapping that does not compile', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'amt-gateway-broken-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('starts, and logs an error naming the routes, the file and the compile error', async () => {
    const broken = path.join(dir, 'broken.mapping.yaml');
    writeFileSync(
      broken,
      'source: { format: json }\ntarget: { format: json }\nrules:\n  - { to: name, frm: x }\n',
    );
    const config = validateConfig(
      {
        dataDir: dir,
        server: { host: '127.0.0.1', port: 0 },
        tenants: [{ id: 'dortmund', name: 'Stadt Dortmund', ars: '059130000000' }],
        clients: [],
        adapters: { outbox: { type: 'file-drop', config: { directory: path.join(dir, 'outbox') } } },
        routes: [
          { id: 'parken', ars: '05913', service: '99058013001000', adapter: 'outbox', mapping: broken },
          { id: 'plain', ars: '05913', service: '99058013001001', adapter: 'outbox' },
        ],
        pipeline: { mappingThreads: 1 },
      },
      { manifests, baseDir: dir, source: undefined },
    );
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const gateway = await startGateway(config, { manifests, logger: createLogger({ stream }), port: 0 });
    try {
      expect((await fetch(`${gateway.url}/health/ready`)).status).to.equal(200);
      const entries = lines.map((line) => JSON.parse(line) as Json);
      const logged = entries.filter((e) => e.mapping === broken);
      expect(logged).to.have.length(1);
      expect(logged[0]).to.include({ level: 'error' });
      expect(logged[0].routes).to.deep.equal(['parken']);
      expect(logged[0].message).to.match(/does not compile/);
      expect(logged[0].error).to.include({ code: 'AMT_MAPPING_COMPILE_FAILED' });
      expect(logged[0].problems).to.deep.include({
        path: `${broken}:4`,
        message: 'rules[0] (to: name): unknown key "frm" (did you mean from?)',
      });

      // Ready (the other route works), but readiness and a gauge name the route, until the file is fixed.
      const readiness = async () => {
        const response = await fetch(`${gateway.url}/health/ready`);
        const text = await response.text();
        assertMatchesOpenApi({
          method: 'GET',
          path: '/health/ready',
          status: response.status,
          headers: response.headers,
          text,
        });
        const body = JSON.parse(text) as Json;
        return { status: response.status, mappings: body.checks.mappings as string };
      };
      const gauge = async () =>
        (await (await fetch(`${gateway.url}/metrics`)).text())
          .split('\n')
          .filter((line) => line.startsWith('amtsbote_route_mapping_broken{'));
      expect(await readiness()).to.deep.equal({
        status: 200,
        mappings:
          'the mapping of route parken does not compile: its applications wait until it is fixed (amtsbote check names the problems)',
      });
      expect(await gauge()).to.deep.equal(['amtsbote_route_mapping_broken{route="parken"} 1']);
      writeFileSync(
        broken,
        'source: { format: json }\ntarget: { format: json }\nrules:\n  - { to: name, from: x }\n',
      );
      const fixedBy = Date.now() + 5_000;
      while ((await readiness()).mappings !== 'ok' && Date.now() < fixedBy) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await readiness()).to.deep.equal({ status: 200, mappings: 'ok' });
      expect(await gauge()).to.deep.equal(['amtsbote_route_mapping_broken{route="parken"} 0']);
    } finally {
      await gateway.stop();
    }
  });
});
