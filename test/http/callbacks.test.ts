import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AdapterInstance, CallbackRequest } from '../../src/adapter-contract.js';
import { AttachmentStore } from '../../src/attachments.js';
import { validateConfig } from '../../src/config/load.js';
import { createApp } from '../../src/http/app.js';
import { createLogger } from '../../src/observability/log.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRouter } from '../../src/routing.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { assertMatchesOpenApi } from './openapi-check.js';

describe('adapter callbacks', () => {
  let dir: string;
  let server: Server;
  let base: string;
  let store: SqliteStore;
  const received: CallbackRequest[] = [];
  const SECRET = 'callback-secret';

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-callbacks-'));
    store = SqliteStore.open(path.join(dir, 'store.db'));
    await store.migrate();
    const config = validateConfig(
      {
        dataDir: dir,
        tenants: [{ id: 't', name: 'T', ars: '055150000000' }],
        clients: [],
        adapters: {},
        routes: [],
      },
      { manifests: [], baseDir: dir, source: undefined },
    );
    const signed: AdapterInstance = {
      handleCallback: async (request) => {
        received.push(request);
        const mac = createHmac('sha512', SECRET).update(request.rawBody).digest('hex');
        return mac === request.headers['callback-authentication']
          ? { status: 200, contentType: 'application/json', body: { ok: true } }
          : {
              status: 401,
              contentType: 'application/problem+json',
              body: { title: 'bad signature', status: 401 },
            };
      },
    };
    const app = createApp({
      config,
      store,
      router: createRouter(config),
      attachments: new AttachmentStore(path.join(dir, 'attachments')),
      logger: createLogger({ silent: true }),
      metrics: createMetrics({ defaultMetrics: false }),
      readiness: async () => ({ ready: true, checks: {} }),
      shuttingDown: () => false,
      onAccepted: () => undefined,
      adapters: new Map<string, AdapterInstance>([
        ['efa-inbox', signed],
        ['no-callbacks', {}],
      ]),
    });
    server = createServer(app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function post(instance: string, body: string, mac?: string) {
    const res = await fetch(`${base}/api/v1/callbacks/${instance}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(mac ? { 'callback-authentication': mac } : {}) },
      body,
    });
    const text = await res.text();
    assertMatchesOpenApi({
      method: 'POST',
      path: '/api/v1/callbacks/{instanceId}',
      status: res.status,
      headers: res.headers,
      text,
    });
    return { status: res.status, text };
  }

  it('hands the raw body and headers to the adapter, which authenticates the peer', async () => {
    const body =
      '{"type":"https://schema.fitko.de/fit-connect/callbacks/new-submissions","submissionIds":["a"]}';
    const mac = createHmac('sha512', SECRET).update(body).digest('hex');
    const ok = await post('efa-inbox', body, mac);
    expect(ok.status).to.equal(200);
    expect(received.at(-1)?.rawBody.toString()).to.equal(body);
    expect(received.at(-1)?.headers['callback-authentication']).to.equal(mac);
    const bad = await post('efa-inbox', body, 'f'.repeat(128));
    expect(bad.status).to.equal(401);
  });

  it('answers 404 for unknown instances and instances that take no callbacks', async () => {
    expect((await post('nobody', '{}')).status).to.equal(404);
    expect((await post('no-callbacks', '{}')).status).to.equal(404);
  });
});
