import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import type { AdapterInstance } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import { GEWERBE_APPLICATION, makeDelivery } from '../../test/peers/soap/deliveries.js';
import { createFakeContext, type FakeContext } from '../../test/peers/soap/fake-context.js';
import {
  GEWERBE_NS,
  GEWERBE_WSDL,
  startGewerbePeer,
  type GewerbePeer,
} from '../../test/peers/soap/gewerbe-peer.js';
import type { SoapAdapterConfig } from './config.js';
import { soapAdapter } from './manifest.js';
import { createGewerbeInstance, failureOf } from './test-support.js';

const USERS = { amtsbote: 'Geheim-2026!' };

const valueOf = (node: unknown): unknown =>
  node !== null && typeof node === 'object' && '$value' in node ? (node as { $value: unknown }).$value : node;

describe('soap adapter against a SOAP 1.1 Fachverfahren (Gewerbeanmeldung)', () => {
  let peer: GewerbePeer;
  let context: FakeContext;
  const instances: AdapterInstance[] = [];
  const make = (config: Partial<SoapAdapterConfig> = {}): AdapterInstance => {
    const instance = createGewerbeInstance(context, { endpoint: peer.url, ...config });
    instances.push(instance);
    return instance;
  };

  before(async () => {
    peer = await startGewerbePeer({ users: USERS });
  });
  after(async () => {
    await peer.close();
  });
  beforeEach(() => {
    context = createFakeContext('gewerbe');
    peer.behaviour = { kind: 'ok' };
    peer.calls.length = 0;
  });
  afterEach(async () => {
    for (const instance of instances.splice(0)) await instance.close?.();
    context.cleanup();
  });

  const digestToken = { usernameToken: { username: 'amtsbote', password: USERS.amtsbote } } as const;

  it('delivers a JSON body with a digest UsernameToken and returns the vorgangsnummer as remote reference', async () => {
    const instance = make({ ...digestToken, remoteReference: 'vorgangsnummer' });
    const delivery = makeDelivery();
    const result = await instance.deliver!(delivery, new AbortController().signal);
    expect(result.remoteReference).to.match(/^GEW-2026-\d{5}$/);
    expect(peer.calls).to.have.length(1);
    const call = peer.calls[0]!;
    expect(call.username).to.equal('amtsbote');
    expect(call.passwordType).to.equal('PasswordDigest');
    expect(call.args.betriebsbezeichnung).to.equal(GEWERBE_APPLICATION.betriebsbezeichnung);
    expect((call.args.betriebsstaette as Record<string, unknown>).plz).to.equal('01067');
    expect(call.args.ars).to.equal('055150000000');
  });

  it('sends the delivery id as WS-Addressing MessageID with Action and To, the same in every attempt', async () => {
    const instance = make(digestToken);
    const delivery = makeDelivery();
    await instance.deliver!(delivery, new AbortController().signal);
    await instance.deliver!({ ...delivery, attempt: 2 }, new AbortController().signal);
    const ids = peer.calls.map((c) => valueOf(c.headers.MessageID));
    expect(ids).to.deep.equal([`urn:uuid:${delivery.deliveryId}`, `urn:uuid:${delivery.deliveryId}`]);
    expect(valueOf(peer.calls[0]!.headers.Action)).to.equal(`${GEWERBE_NS}/importGewerbeanmeldung`);
    expect(valueOf(peer.calls[0]!.headers.To)).to.equal(peer.url);
  });

  it('sends the delivery id in a configured header element instead', async () => {
    const instance = make({
      ...digestToken,
      deliveryIdHeader: { kind: 'element', name: 'ZustellungsId', namespace: GEWERBE_NS },
    });
    const delivery = makeDelivery({ deliveryId: 'd-2026-000042' });
    await instance.deliver!(delivery, new AbortController().signal);
    expect(valueOf(peer.calls[0]!.headers.ZustellungsId)).to.equal('d-2026-000042');
    expect(peer.calls[0]!.headers.MessageID).to.equal(undefined);
  });

  it('authenticates with a PasswordText UsernameToken', async () => {
    const instance = make({
      usernameToken: { username: 'amtsbote', password: USERS.amtsbote, passwordType: 'PasswordText' },
    });
    await instance.deliver!(makeDelivery(), new AbortController().signal);
    expect(peer.calls[0]!.passwordType).to.equal('PasswordText');
  });

  it('rejects permanently when the server refuses the credentials', async () => {
    const instance = make({ usernameToken: { username: 'amtsbote', password: 'falsch' } });
    const error = await failureOf(instance, makeDelivery());
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(error.message)
      .to.match(/Client/)
      .and.to.match(/Invalid username or password/);
    expect(peer.calls).to.have.length(0);
  });

  it('sends an XML body that is the request element as it is', async () => {
    const instance = make({ ...digestToken, remoteReference: 'vorgangsnummer' });
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?>\n<g:importGewerbeanmeldung xmlns:g="${GEWERBE_NS}">` +
      '<g:ars>055150000000</g:ars><g:leistungsschluessel>99050012104000</g:leistungsschluessel>' +
      '<g:betriebsbezeichnung>Kiosk am Hafen</g:betriebsbezeichnung><g:taetigkeit>Einzelhandel</g:taetigkeit>' +
      '<g:beginn>2026-04-01</g:beginn><g:inhaber><g:vorname>Max</g:vorname><g:nachname>Muster</g:nachname></g:inhaber>' +
      '<g:betriebsstaette><g:strasse>Hafenweg</g:strasse><g:hausnummer>7</g:hausnummer><g:plz>48155</g:plz>' +
      '<g:ort>Münster</g:ort></g:betriebsstaette></g:importGewerbeanmeldung>';
    const result = await instance.deliver!(
      makeDelivery({ body: { contentType: 'application/xml', content: xml } }),
      new AbortController().signal,
    );
    expect(result.remoteReference).to.match(/^GEW-/);
    expect(peer.calls[0]!.args.betriebsbezeichnung).to.equal('Kiosk am Hafen');
    expect(peer.calls[0]!.args.ars).to.equal('055150000000');
  });

  it('wraps an XML body that is only the content of the request element (xmlBody: content)', async () => {
    const instance = make({ ...digestToken, xmlBody: 'content' });
    const xml = `<g:ars xmlns:g="${GEWERBE_NS}">055150000000</g:ars><g:betriebsbezeichnung xmlns:g="${GEWERBE_NS}">Kiosk</g:betriebsbezeichnung>`;
    await instance.deliver!(
      makeDelivery({ body: { contentType: 'text/xml', content: xml } }),
      new AbortController().signal,
    );
    expect(peer.calls[0]!.args.betriebsbezeichnung).to.equal('Kiosk');
  });

  it('rejects bodies it cannot send: broken JSON, a DOCTYPE, the wrong root element, another media type', async () => {
    const instance = make(digestToken);
    const bodies = [
      { body: { contentType: 'application/json', content: '{"ars": "05' }, reason: 'not valid JSON' },
      { body: { contentType: 'application/json', content: '["a"]' }, reason: 'must be an object' },
      {
        body: {
          contentType: 'application/xml',
          content: '<!DOCTYPE x [<!ENTITY e "x">]><importGewerbeanmeldung/>',
        },
        reason: 'DOCTYPE',
      },
      {
        body: { contentType: 'application/xml', content: `<g:andereOperation xmlns:g="${GEWERBE_NS}"/>` },
        reason: 'andereOperation',
      },
      {
        body: { contentType: 'application/pdf', content: Buffer.from('%PDF-1.7') },
        reason: 'application/pdf',
      },
    ];
    for (const { body, reason } of bodies) {
      const error = await failureOf(instance, makeDelivery({ body }));
      expect(error.code, reason).to.equal('AMT_DELIVERY_REJECTED');
      expect(error.message).to.contain(reason);
    }
    expect(peer.calls).to.have.length(0);
  });

  describe('fault classification', () => {
    const faults = {
      retry: ['soap:Server', 'Busy*'],
      permanent: ['importFehler', 'gew:Ungueltig'],
      default: 'permanent',
    } as const;

    it('retries a soap:Server fault', async () => {
      peer.behaviour = {
        kind: 'fault',
        fault: { faultcode: 'soap:Server', faultstring: 'Datenbank nicht erreichbar' },
      };
      const error = await failureOf(make({ ...digestToken, faults }), makeDelivery());
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(error.retryable).to.equal(true);
      expect(error.message).to.contain('Datenbank nicht erreichbar').and.to.contain('"soap:Server"');
    });

    it('retries a client fault whose fault string matches a retry pattern', async () => {
      peer.behaviour = {
        kind: 'fault',
        fault: { faultcode: 'soap:Client', faultstring: 'Busy: Wartungsfenster bis 06:00' },
      };
      const error = await failureOf(make({ ...digestToken, faults }), makeDelivery());
      expect(error.retryable).to.equal(true);
      expect(error.message).to.contain('"Busy*"');
    });

    it('rejects permanently when a permanent pattern matches, even on a server fault', async () => {
      peer.behaviour = {
        kind: 'fault',
        fault: {
          faultcode: 'soap:Server',
          faultstring: 'Import abgelehnt',
          detail: {
            $xml: `<g:importFehler xmlns:g="${GEWERBE_NS}"><g:fehlercode>E-117</g:fehlercode><g:meldung>Beginn liegt zu weit in der Vergangenheit</g:meldung></g:importFehler>`,
          },
        },
      };
      const error = await failureOf(make({ ...digestToken, faults }), makeDelivery());
      expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
      expect(error.message).to.contain('importFehler').and.to.contain('"importFehler"');
    });

    it('matches application fault codes as written', async () => {
      peer.behaviour = { kind: 'fault', fault: { faultcode: 'gew:Ungueltig', faultstring: 'PLZ unbekannt' } };
      const error = await failureOf(make({ ...digestToken, faults }), makeDelivery());
      expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
      expect(error.message).to.contain('"gew:Ungueltig"');
    });

    it('applies the default to faults no pattern matches', async () => {
      peer.behaviour = { kind: 'fault', fault: { faultcode: 'gew:Unbekannt', faultstring: 'Etwas anderes' } };
      const permanent = await failureOf(make({ ...digestToken, faults }), makeDelivery());
      expect(permanent.code).to.equal('AMT_DELIVERY_REJECTED');
      expect(permanent.message).to.contain('default: permanent');
      const retried = await failureOf(
        make({ ...digestToken, faults: { ...faults, default: 'retry' } }),
        makeDelivery(),
      );
      expect(retried.code).to.equal('AMT_DELIVERY_RETRYABLE');
    });
  });

  describe('SOAP 1.2', () => {
    const SOAP12 = 'http://www.w3.org/2003/05/soap-envelope';
    let server: http.Server;
    let url: string;
    const requests: { contentType: string; body: string }[] = [];
    let answer: { status: number; body: string };

    before(async () => {
      server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          requests.push({
            contentType: req.headers['content-type'] ?? '',
            body: Buffer.concat(chunks).toString('utf8'),
          });
          res.writeHead(answer.status, { 'content-type': 'application/soap+xml; charset=utf-8' });
          res.end(answer.body);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gewerbe`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    it('sends a SOAP 1.2 envelope with the action in the Content-Type and reads the answer', async () => {
      answer = {
        status: 200,
        body:
          `<env:Envelope xmlns:env="${SOAP12}"><env:Body><g:importGewerbeanmeldungResponse xmlns:g="${GEWERBE_NS}">` +
          '<g:vorgangsnummer>GEW-12-1</g:vorgangsnummer><g:eingangsdatum>2026-03-01T10:00:00Z</g:eingangsdatum>' +
          '</g:importGewerbeanmeldungResponse></env:Body></env:Envelope>',
      };
      const instance = make({ endpoint: url, soapVersion: '1.2', remoteReference: 'vorgangsnummer' });
      const result = await instance.deliver!(makeDelivery(), new AbortController().signal);
      expect(result.remoteReference).to.equal('GEW-12-1');
      const request = requests.at(-1)!;
      expect(request.contentType)
        .to.match(/^application\/soap\+xml/)
        .and.to.contain(`action="${GEWERBE_NS}/importGewerbeanmeldung"`);
      expect(request.body).to.contain(`xmlns:soap="${SOAP12}"`);
    });

    it('classifies SOAP 1.2 faults: Receiver is retried, Sender rejected', async () => {
      const fault = (code: string, reason: string): string =>
        `<env:Envelope xmlns:env="${SOAP12}"><env:Body><env:Fault><env:Code><env:Value>env:${code}</env:Value></env:Code>` +
        `<env:Reason><env:Text xml:lang="de">${reason}</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`;
      const instance = make({ endpoint: url, soapVersion: '1.2' });
      answer = { status: 500, body: fault('Receiver', 'Datenbank nicht erreichbar') };
      expect((await failureOf(instance, makeDelivery())).code).to.equal('AMT_DELIVERY_RETRYABLE');
      answer = { status: 400, body: fault('Sender', 'Pflichtfeld taetigkeit fehlt') };
      const rejected = await failureOf(instance, makeDelivery());
      expect(rejected.code).to.equal('AMT_DELIVERY_REJECTED');
      expect(rejected.message).to.contain('Pflichtfeld taetigkeit fehlt');
    });
  });

  describe('transport failures', () => {
    it('retries an HTTP 503 without a fault and passes Retry-After on', async () => {
      const server = http.createServer((req, res) => {
        req.resume();
        res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '120' });
        res.end('<html><body>Service Unavailable</body></html>');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gewerbe`;
        const error = await failureOf(make({ endpoint: url }), makeDelivery());
        expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
        expect(error.retryAfterSeconds).to.equal(120);
        expect(error.message).to.contain('HTTP 503');
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('rejects an HTTP 404 without a fault permanently', async () => {
      peer.behaviour = { kind: 'garbage', status: 404, body: '<html><body>Not Found</body></html>' };
      const error = await failureOf(make(digestToken), makeDelivery());
      expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
      expect(error.message).to.contain('HTTP 404');
    });

    it('retries a malformed answer (HTTP 200 that is no SOAP envelope) and says what came back', async () => {
      peer.behaviour = { kind: 'garbage', status: 200, body: '<html><body>Wartungsarbeiten</body></html>' };
      const html = await failureOf(make(digestToken), makeDelivery());
      expect(html.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(html.message).to.contain('not a SOAP envelope').and.to.contain('Wartungsarbeiten');
      peer.behaviour = { kind: 'garbage', status: 200, body: 'OK', contentType: 'text/plain' };
      const text = await failureOf(make(digestToken), makeDelivery());
      expect(text.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(text.message).to.contain('not a SOAP envelope');
    });

    it('retries when the receiver does not answer in time', async () => {
      peer.behaviour = { kind: 'hang' };
      const error = await failureOf(make({ ...digestToken, timeout: '300ms' }), makeDelivery());
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(error.message).to.contain('did not answer within 300 ms');
    });

    it('retries when the delivery is aborted', async () => {
      peer.behaviour = { kind: 'hang' };
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const error = await failureOf(make(digestToken), makeDelivery(), controller.signal);
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(error.message).to.contain('aborted');
    });

    it('retries when the connection is refused', async () => {
      const server = http.createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      await new Promise((resolve) => server.close(resolve));
      const error = await failureOf(make({ endpoint: `http://127.0.0.1:${port}/gewerbe` }), makeDelivery());
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(error.message).to.contain('ECONNREFUSED');
    });
  });

  describe('configuration problems', () => {
    it('reports a missing operation as a WSDL problem that waits for a fix', async () => {
      const error = await failureOf(make({ operation: 'importBauantrag' }), makeDelivery());
      expect(error.code).to.equal('AMT_SOAP_WSDL_INVALID');
      expect(error.retryable).to.equal(true);
      expect(error.message).to.contain('importGewerbeanmeldung');
    });

    it('reads the WSDL from a path relative to the configuration file', async () => {
      const relative = {
        ...context,
        resolvePath: (configured: string) => path.resolve(path.dirname(GEWERBE_WSDL), configured),
      };
      const instance = soapAdapter.create(relative, {
        wsdl: 'gewerbeanmeldung.wsdl',
        operation: 'importGewerbeanmeldung',
        endpoint: peer.url,
        ...digestToken,
        remoteReference: 'vorgangsnummer',
      } satisfies SoapAdapterConfig);
      instances.push(instance);
      const result = await instance.deliver!(makeDelivery(), new AbortController().signal);
      expect(result.remoteReference).to.match(/^GEW-/);
    });

    it('refuses unreadable TLS files when the instance is created', () => {
      expect(() =>
        createGewerbeInstance(context, {
          endpoint: peer.url,
          tls: { cert: '/nonexistent/client.crt', key: '/nonexistent/client.key' },
        }),
      ).to.throw(AmtError, /cannot read the TLS certificate/);
    });
  });
});
