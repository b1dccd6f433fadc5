import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { expect } from 'chai';
import type { AdapterInstance } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import { httpAdapter, type HttpAdapterConfig } from './manifest.js';
import {
  fakeContext,
  fixture,
  makeDelivery,
  settle,
  startServer,
  type RecordingContext,
  type RunningServer,
} from './test-support.js';

// The fixtures are a test-only CA with a server certificate for 127.0.0.1 and a client
// certificate, made by fixtures/generate.sh.
describe('http adapter: TLS', () => {
  let dir: string;
  let context: RecordingContext;
  let server: RunningServer;
  let mutualServer: RunningServer;
  let clientNames: (string | undefined)[];
  const instances: AdapterInstance[] = [];

  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    const commonName = peer && 'subject' in peer ? peer.subject?.CN : undefined;
    clientNames.push(Array.isArray(commonName) ? commonName.join(', ') : commonName);
    res.statusCode = 201;
    res.setHeader('Location', '/tls/1');
    res.end();
  };

  function adapter(base: string, tls?: HttpAdapterConfig['tls']): AdapterInstance {
    const instance = httpAdapter.create(context, { url: `${base}/antraege`, ...(tls ? { tls } : {}) });
    instances.push(instance);
    return instance;
  }

  const deliver = (instance: AdapterInstance) =>
    instance.deliver!(makeDelivery(), new AbortController().signal);

  before(async () => {
    const serverTls = { cert: readFileSync(fixture('server.pem')), key: readFileSync(fixture('server.key')) };
    server = await startServer(answer, serverTls);
    mutualServer = await startServer(answer, {
      ...serverTls,
      ca: readFileSync(fixture('ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
    });
  });

  after(async () => {
    await server.close();
    await mutualServer.close();
  });

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-http-tls-'));
    context = fakeContext(dir);
    clientNames = [];
  });

  afterEach(async () => {
    await Promise.all(instances.splice(0).map((i) => i.close?.()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('trusts a receiver whose certificate chains to the configured CA', async () => {
    const result = await deliver(adapter(server.url, { ca: fixture('ca.pem') }));
    expect(result.remoteReference).to.equal('/tls/1');
  });

  it('refuses a receiver certificate it cannot verify, as a retryable failure', async () => {
    const error = (await settle(deliver(adapter(server.url)))).error as AmtError;
    expect(error).to.be.instanceOf(AmtError);
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.message).to.match(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|CERT/);
    expect(clientNames).to.have.length(0);
  });

  it('skips verification only when told, and warns about it', async () => {
    const result = await deliver(adapter(server.url, { rejectUnauthorized: false }));
    expect(result.remoteReference).to.equal('/tls/1');
    expect(
      context.lines.some((l) => l.level === 'warn' && /verification is turned off/.test(l.message)),
    ).to.equal(true);
  });

  it('presents the client certificate to a receiver that demands mutual TLS', async () => {
    const result = await deliver(
      adapter(mutualServer.url, {
        ca: fixture('ca.pem'),
        cert: fixture('client.pem'),
        key: fixture('client.key'),
      }),
    );
    expect(result.remoteReference).to.equal('/tls/1');
    expect(clientNames).to.deep.equal(['amtsbote test client']);
  });

  it('fails retryably without a client certificate where mutual TLS is demanded', async () => {
    const error = (await settle(deliver(adapter(mutualServer.url, { ca: fixture('ca.pem') }))))
      .error as AmtError;
    expect(error).to.be.instanceOf(AmtError);
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(clientNames).to.have.length(0);
  });

  it('reports an unreadable certificate file as a configuration error at creation', () => {
    expect(() => adapter(server.url, { ca: path.join(dir, 'missing-ca.pem') }))
      .to.throw(AmtError)
      .with.property('code', 'AMT_CONFIG_INVALID');
  });
});
