import { expect } from 'chai';
import type { AdapterInstance } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import { makeDelivery } from '../../test/peers/soap/deliveries.js';
import { createFakeContext, type FakeContext } from '../../test/peers/soap/fake-context.js';
import { startGewerbePeer, type GewerbePeer } from '../../test/peers/soap/gewerbe-peer.js';
import { createTlsFixtures, type TlsFixtures } from '../../test/peers/soap/tls-fixtures.js';
import type { SoapAdapterConfig } from './config.js';
import { createGewerbeInstance, failureOf } from './test-support.js';

describe('soap adapter over TLS with a client certificate', () => {
  let certs: TlsFixtures;
  let peer: GewerbePeer;
  let context: FakeContext;
  const instances: AdapterInstance[] = [];
  const make = (tls: SoapAdapterConfig['tls'], extra: Partial<SoapAdapterConfig> = {}): AdapterInstance => {
    const instance = createGewerbeInstance(context, {
      endpoint: peer.url,
      tls,
      remoteReference: 'vorgangsnummer',
      ...extra,
    });
    instances.push(instance);
    return instance;
  };

  before(async () => {
    certs = createTlsFixtures();
    peer = await startGewerbePeer({
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert },
    });
  });
  after(async () => {
    await peer.close();
    certs.cleanup();
  });
  beforeEach(() => {
    context = createFakeContext('gewerbe-tls');
  });
  afterEach(async () => {
    for (const instance of instances.splice(0)) await instance.close?.();
    context.cleanup();
  });

  it('delivers with a client certificate whose key is protected by a passphrase', async () => {
    const instance = make({
      cert: certs.clientCert,
      key: certs.clientKey,
      ca: certs.caCert,
      passphrase: certs.clientKeyPassphrase,
    });
    const result = await instance.deliver!(makeDelivery(), new AbortController().signal);
    expect(result.remoteReference).to.match(/^GEW-/);
  });

  it('retries when the server drops a client certificate it does not trust', async () => {
    // A Node server closes such a connection without a TLS alert, so the client sees a reset:
    // indistinguishable from a network failure, hence retried whatever tlsFailure says.
    const rogue = { cert: certs.rogueClientCert, key: certs.rogueClientKey, ca: certs.caCert };
    const error = await failureOf(make(rogue, { tlsFailure: 'permanent' }), makeDelivery());
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.message).to.match(/ECONNRESET|TLS handshake failed/);
  });

  it('classifies a TLS alert (no client certificate sent) as tlsFailure says', async () => {
    const retried = await failureOf(make({ ca: certs.caCert }), makeDelivery());
    expect(retried.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(retried.message).to.contain('TLS handshake failed');
    const rejected = await failureOf(make({ ca: certs.caCert }, { tlsFailure: 'permanent' }), makeDelivery());
    expect(rejected.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(rejected.message).to.contain('TLS handshake failed');
  });

  it('classifies a server certificate it cannot verify as tlsFailure says', async () => {
    const wrongCa = {
      cert: certs.clientCert,
      key: certs.clientKey,
      passphrase: certs.clientKeyPassphrase,
      ca: certs.rogueClientCert,
    };
    const rejected = await failureOf(make(wrongCa, { tlsFailure: 'permanent' }), makeDelivery());
    expect(rejected.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(rejected.message).to.contain('TLS handshake failed');
  });

  it('refuses a wrong key passphrase when the instance is created', () => {
    expect(() =>
      make({ cert: certs.clientCert, key: certs.clientKey, ca: certs.caCert, passphrase: 'falsch' }),
    ).to.throw(AmtError, /TLS client certificate cannot be used/);
  });
});
