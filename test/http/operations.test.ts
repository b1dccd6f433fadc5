import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { application, KEYS, startHarness, type Harness } from './harness.js';

describe('http: health, metrics, document, unknown routes', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('live is 200 without a key', async () => {
    const res = await h.request('GET', '/health/live');
    expect(res.status).to.equal(200);
    expect(res.body.status).to.equal('live');
  });

  it('ready follows the readiness check: 200, then 503 with the failing check', async () => {
    const ok = await h.request('GET', '/health/ready');
    expect(ok.status).to.equal(200);
    expect(ok.body).to.deep.equal({ status: 'ready', checks: { store: 'ok', config: 'ok' } });
    h.state.ready = false;
    const down = await h.request('GET', '/health/ready');
    expect(down.status).to.equal(503);
    expect(down.body).to.deep.equal({ status: 'not-ready', checks: { store: 'unreachable', config: 'ok' } });
    // Liveness does not depend on readiness.
    expect((await h.request('GET', '/health/live')).status).to.equal(200);
  });

  it('metrics count intake by tenant and outcome and sample the queue depth', async () => {
    await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, json: application() });
    await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: application(),
      headers: { 'idempotency-key': 'm-1' },
    });
    await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: application(),
      headers: { 'idempotency-key': 'm-1' },
    });
    await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, json: application({ tenant: 1 }) });
    const res = await h.request('GET', '/metrics');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    expect(res.text).to.include('amtsbote_intake_total{tenant="muenster",outcome="accepted"} 2');
    expect(res.text).to.include('amtsbote_intake_total{tenant="muenster",outcome="duplicate"} 1');
    expect(res.text).to.include('amtsbote_intake_total{tenant="unknown",outcome="rejected"} 1');
    expect(res.text).to.match(/amtsbote_intake_duration_seconds_count\{outcome="accepted"\} 2/);
    expect(res.text).to.include('amtsbote_messages{status="received"} 2');
    expect(res.text).to.include('amtsbote_messages{status="dead"} 0');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(res.text).to.include(
      `amtsbote_build_info{version="${pkg.version}",node="${process.versions.node}"} 1`,
    );
  });

  it('serves the OpenAPI document as JSON, equal to api/openapi.yaml', async () => {
    const res = await h.request('GET', '/api/v1/openapi.json');
    expect(res.status).to.equal(200);
    const source: unknown = parse(readFileSync(new URL('../../api/openapi.yaml', import.meta.url), 'utf8'));
    expect(res.body).to.deep.equal(source);
    expect(res.body.openapi).to.match(/^3\.1\./);
    const paths = Object.keys(res.body.paths);
    expect(paths).to.include.members([
      '/api/v1/applications',
      '/api/v1/applications/{id}',
      '/api/v1/admin/messages',
      '/api/v1/admin/messages/{id}',
      '/api/v1/admin/dead-letters',
      '/api/v1/admin/replay',
      '/health/live',
      '/health/ready',
      '/metrics',
      '/api/v1/openapi.json',
    ]);
  });

  it('an unknown path is 404 problem+json', async () => {
    const res = await h.request('GET', '/api/v2/applications', { key: KEYS.muenster });
    expect(res.status).to.equal(404);
    expect(res.body.code).to.equal('AMT_NOT_FOUND');
    expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
  });

  it('a wrong method is 405 with Allow', async () => {
    const get = await h.request('GET', '/api/v1/applications', { key: KEYS.muenster });
    expect(get.status).to.equal(405);
    expect(get.body.code).to.equal('AMT_METHOD_NOT_ALLOWED');
    expect(get.headers.get('allow')).to.equal('POST');
    const del = await h.request('DELETE', '/api/v1/applications/00000000-0000-4000-8000-000000000000', {
      key: KEYS.muenster,
    });
    expect(del.status).to.equal(405);
    expect(del.headers.get('allow')).to.equal('GET, HEAD');
    const post = await h.request('POST', '/health/live');
    expect(post.status).to.equal(405);
  });

  it('a path with broken percent-encoding is 404, not a crash', async () => {
    const res = await h.request('GET', '/api/v1/applications/%E0%A4%A', { key: KEYS.muenster });
    expect(res.status).to.equal(404);
    expect(res.body.code).to.equal('AMT_NOT_FOUND');
  });

  it('API answers are not cacheable', async () => {
    const res = await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, json: application() });
    expect(res.headers.get('cache-control')).to.equal('no-store');
    expect(res.headers.has('x-powered-by')).to.equal(false);
  });
});
