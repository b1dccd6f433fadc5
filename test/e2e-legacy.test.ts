/**
 * Legacy Fachverfahren end to end, through the real gateway in process (real SQLite store,
 * pipeline, adapters and HTTP app on loopback): a portal application goes out over SOAP or XTA 2
 * and the Fachverfahren's status comes back — over the soap adapter's SOAP status callback (a
 * real `soap` client with WS-Security) or the XTA transport report — to the status API and the
 * portal's signed webhook.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { createClientAsync, WSSecurity, type Client } from 'soap';
import { soapAdapter } from '../adapters/soap/manifest.js';
import { xta2Adapter } from '../adapters/xta2/manifest.js';
import { parseConfig } from '../src/config/load.js';
import type { GatewayConfig } from '../src/config/types.js';
import { hashApiKey } from '../src/http/auth.js';
import { verifyWebhookSignature } from '../src/status/webhook.js';
import type { MessageRecord } from '../src/store/types.js';
import { GEWERBE_WSDL, startGewerbePeer, type GewerbePeer } from './peers/soap/gewerbe-peer.js';
import { createTlsFixtures, type TlsFixtures } from './peers/soap/tls-fixtures.js';
import { startXtaEmulator, type XtaEmulator } from './peers/xta2/emulator.js';
import { startPeer, startStatusGateway, type Peer, type StatusGateway } from './status/harness.js';

const STATUS_WSDL = fileURLToPath(new URL('../adapters/soap/fixtures/gewerbe-status.wsdl', import.meta.url));
const MUENSTER = '055150000000';
const GEWERBE = '99050012104000';
const PORTAL_KEY = 'portal-ms-key-1f3a';
const WEBHOOK_SECRET = 'whsec-7Qm2Lx9Vt4Rb8Kp1';
const FV_USER = 'gewerbe-fachverfahren';
const ENV = {
  GEWERBE_STATUS_PASSWORD: 'st4tus-Rückruf-9XqL2v',
  GEWERBE_IMPORT_PASSWORD: 'imp0rt-Kennwort-77aB',
};
const manifests = [soapAdapter, xta2Adapter];

interface SoapFaultError {
  readonly response?: { readonly status?: number };
  readonly body?: string;
}

describe('legacy Fachverfahren end to end (SOAP status callback, XTA 2 transport report)', function () {
  this.timeout(30_000);
  let dir: string;
  let certs: TlsFixtures;
  let fachverfahren: GewerbePeer;
  let emulator: XtaEmulator;
  let webhook: Peer;
  let gw: StatusGateway;

  function gatewayConfig(): GatewayConfig {
    writeFileSync(
      path.join(dir, 'gewerbe.status.yaml'),
      `service: Gewerbeanmeldung
statuses:
  IN_BEARBEITUNG: PROCESSING
  NACHFORDERUNG: ACTION_REQUIRED
  ERLEDIGT: COMPLETED
`,
    );
    // XTA transport reports say where the message is: with the server (open) or fetched by the
    // Fachverfahren (delivered); a red light means it never arrived.
    writeFileSync(
      path.join(dir, 'xta.status.yaml'),
      `service: Gewerbeanmeldung
defaults: false
statuses:
  open: RECEIVED
  delivered: PROCESSING
  delivered-with-warnings: PROCESSING
  failed: REJECTED
`,
    );
    const config = {
      dataDir: dir,
      tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: MUENSTER }],
      clients: [
        {
          id: 'portal-ms',
          keyHash: hashApiKey(PORTAL_KEY),
          tenants: ['muenster'],
          webhook: { url: `${webhook.url}/hooks/amtsbote`, secret: WEBHOOK_SECRET },
        },
      ],
      adapters: {
        gewerbe: {
          type: 'soap',
          config: {
            wsdl: GEWERBE_WSDL,
            operation: 'importGewerbeanmeldung',
            endpoint: fachverfahren.url,
            usernameToken: { username: 'amtsbote', password: '${GEWERBE_IMPORT_PASSWORD}' },
            remoteReference: 'vorgangsnummer',
            statusCallback: {
              wsdl: STATUS_WSDL,
              operation: 'statusMelden',
              usernameToken: { username: FV_USER, password: '${GEWERBE_STATUS_PASSWORD}' },
            },
          },
        },
        'xta-gewerbe': {
          type: 'xta2',
          config: {
            endpoints: emulator.endpoints,
            tls: {
              cert: certs.clientCert,
              key: certs.clientKey,
              ca: certs.caCert,
              passphrase: '${XTA_KEY_PASSPHRASE}',
            },
            author: { identifier: 'dvdv:055150000000-ozg', name: 'Stadt Münster, Online-Dienste' },
            reader: { identifier: 'dvdv:055150000000-gewerbe', name: 'Stadt Münster, Gewerbeamt' },
            service: 'urn:xoev-de:bmwk:standard:xgewerbeanzeige',
            businessScenario: {
              code: 'XGEWERBEANZEIGE_DATA',
              listURI: 'urn:de:dataport:codeliste:business.scenario',
              listVersionID: '1',
            },
            messageType: {
              code: 'gewerbeanzeige.anmeldung.0100',
              listURI: 'urn:de:xgewerbeanzeige:codeliste:nachrichtentyp',
              listVersionID: '1.3',
              payloadSchema: 'http://www.xgewerbeanzeige.de/spezifikation/1.3',
            },
            payloadFilename: 'gewerbeanmeldung.json',
            timeout: '5s',
          },
        },
      },
      routes: [
        {
          id: 'gewerbe-soap',
          ars: '05515',
          service: GEWERBE,
          adapter: 'gewerbe',
          statusMapping: 'gewerbe.status.yaml',
        },
        {
          id: 'gewerbe-xta',
          ars: '05515',
          service: GEWERBE,
          channel: 'xta',
          adapter: 'xta-gewerbe',
          statusMapping: 'xta.status.yaml',
        },
      ],
      retry: { maxAttempts: 3, initialDelay: 30, maxDelay: 200, jitter: 0 },
      pipeline: {
        concurrency: 4,
        batchSize: 10,
        lease: 5000,
        pollInterval: 20,
        deliveryTimeout: 5000,
        drainTimeout: 1000,
      },
    };
    // YAML is a superset of JSON: the file goes through the real loader, `${ENV}` secrets included.
    return parseConfig(JSON.stringify(config), {
      manifests,
      source: path.join(dir, 'gateway.yaml'),
      env: { ...ENV, XTA_KEY_PASSPHRASE: certs.clientKeyPassphrase },
    });
  }

  async function submit(reference: string, channel?: string): Promise<MessageRecord> {
    const res = await gw.request('POST', '/api/v1/applications', {
      key: PORTAL_KEY,
      json: {
        tenant: MUENSTER,
        service: GEWERBE,
        reference,
        ...(channel === undefined ? {} : { channel }),
        applicant: { givenName: 'Erika', familyName: 'Mustermann' },
        data: { betriebsbezeichnung: 'Café am Dom', beginn: '2026-03-01' },
      },
    });
    expect(res.status).to.equal(202);
    return gw.messageWithStatus(res.body.id, 'delivered');
  }

  const remoteEvents = async (id: string) =>
    (await gw.store.history(id)).filter((h) => h.event === 'remote-status').map((h) => h.detail);
  const webhookNotices = async () =>
    (await gw.store.listMessages({ limit: 100 })).items.filter((m) => m.target === 'webhook:portal-ms');
  const hooksUntil = (n: number) =>
    gw.until(async () => (webhook.requests.length >= n ? webhook.requests : undefined), `${n} webhooks`);
  const view = async (id: string) =>
    (await gw.request('GET', `/api/v1/applications/${id}`, { key: PORTAL_KEY })).body;

  /** The Fachverfahren's side of the status service: a `soap` client built from the status WSDL. */
  async function statusClient(security: WSSecurity): Promise<Client> {
    const client = await createClientAsync(STATUS_WSDL, {
      endpoint: `${gw.url}/api/v1/callbacks/gewerbe`,
      disableCache: true,
    });
    client.setSecurity(security);
    return client;
  }
  const digestToken = (password = ENV.GEWERBE_STATUS_PASSWORD) =>
    new WSSecurity(FV_USER, password, { passwordType: 'PasswordDigest', hasTimeStamp: true });

  async function faultOf(call: Promise<unknown>): Promise<{ status: number | undefined; body: string }> {
    try {
      await call;
    } catch (err) {
      const fault = err as SoapFaultError;
      return { status: fault.response?.status, body: String(fault.body ?? '') };
    }
    throw new Error('expected a SOAP fault');
  }

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-e2e-legacy-'));
    certs = createTlsFixtures();
    fachverfahren = await startGewerbePeer({ users: { amtsbote: ENV.GEWERBE_IMPORT_PASSWORD } });
    emulator = await startXtaEmulator({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert });
    webhook = await startPeer([{ status: 204, body: '' }]);
    gw = await startStatusGateway(gatewayConfig(), manifests);
  });

  afterEach(async () => {
    await gw.stop();
    await Promise.all([fachverfahren.close(), emulator.close(), webhook.close()]);
    certs.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('SOAP: delivery to the Fachverfahren, status back over the SOAP status callback', () => {
    it('carries the status the Fachverfahren reports by its Vorgangsnummer to the status API and the signed webhook', async () => {
      const message = await submit('GEW-PORTAL-100');
      expect(fachverfahren.calls).to.have.length(1);
      expect(fachverfahren.calls[0]!.username).to.equal('amtsbote');
      const vorgangsnummer = message.remoteReference!;
      expect(vorgangsnummer).to.match(/^GEW-2026-\d{5}$/);

      const client = await statusClient(digestToken());
      const [answer] = (await client.statusMeldenAsync({
        vorgangsnummer,
        status: 'IN_BEARBEITUNG',
        zeitpunkt: '2026-03-02T09:15:00+01:00',
      })) as [{ quittung: string }];
      expect(answer.quittung).to.equal(message.id);

      const text =
        'Ihr Antrag „Gewerbeanmeldung“ (Vorgangsnummer GEW-PORTAL-100) wird bearbeitet. ' +
        `Aktenzeichen der Behörde: ${vorgangsnummer}.`;
      expect(await view(message.id)).to.include({
        status: 'delivered',
        remoteStatus: 'IN_BEARBEITUNG',
        citizenStatus: 'PROCESSING',
        citizenText: text,
      });
      expect(await remoteEvents(message.id)).to.deep.equal([
        {
          reportedAt: '2026-03-02T09:15:00+01:00',
          status: 'IN_BEARBEITUNG',
          citizenStatus: 'PROCESSING',
          citizenText: text,
        },
      ]);

      const [hook] = await hooksUntil(1);
      const signature = String(hook!.headers['x-amtsbote-signature']);
      expect(verifyWebhookSignature(signature, hook!.body, WEBHOOK_SECRET)).to.equal(true);
      expect(verifyWebhookSignature(signature, hook!.body, 'another-secret-xyz')).to.equal(false);
      expect(JSON.parse(hook!.body)).to.deep.include({
        event: 'application.status',
        applicationId: message.id,
        reference: 'GEW-PORTAL-100',
        citizenStatus: 'PROCESSING',
        remoteStatus: 'IN_BEARBEITUNG',
        remoteReference: vorgangsnummer,
        change: 1,
      });

      // PasswordText with a nonce, naming the application by the delivery id the import carried
      // as WS-Addressing MessageID.
      const messageIdHeader = fachverfahren.calls[0]!.headers.MessageID;
      expect(messageIdHeader).to.equal(`urn:uuid:${message.deliveryId}`);
      const textClient = await statusClient(
        new WSSecurity(FV_USER, ENV.GEWERBE_STATUS_PASSWORD, {
          passwordType: 'PasswordText',
          hasNonce: true,
        }),
      );
      await textClient.statusMeldenAsync({
        referenz: messageIdHeader,
        status: 'ERLEDIGT',
        text: 'Die Gewerbeanmeldung ist eingetragen.',
      });
      const done = await view(message.id);
      expect(done).to.include({ remoteStatus: 'ERLEDIGT', citizenStatus: 'COMPLETED' });
      expect(done.citizenText).to.equal(
        'Die Bearbeitung Ihres Antrags „Gewerbeanmeldung“ (Vorgangsnummer GEW-PORTAL-100) ist abgeschlossen. Die Gewerbeanmeldung ist eingetragen.',
      );
      const hooks = await hooksUntil(2);
      expect(
        verifyWebhookSignature(
          String(hooks[1]!.headers['x-amtsbote-signature']),
          hooks[1]!.body,
          WEBHOOK_SECRET,
        ),
      ).to.equal(true);
      expect(JSON.parse(hooks[1]!.body)).to.include({ citizenStatus: 'COMPLETED', change: 2 });
    });

    it('answers wrong credentials with a Client fault and records nothing', async () => {
      const message = await submit('GEW-PORTAL-101');
      for (const security of [
        digestToken('wrong-password-123456'),
        new WSSecurity('someone-else', ENV.GEWERBE_STATUS_PASSWORD, { passwordType: 'PasswordDigest' }),
        new WSSecurity(FV_USER, 'wrong-password-123456', { passwordType: 'PasswordText', hasNonce: true }),
      ]) {
        const client = await statusClient(security);
        const fault = await faultOf(
          client.statusMeldenAsync({ vorgangsnummer: message.remoteReference, status: 'ERLEDIGT' }),
        );
        expect(fault.status).to.equal(500);
        expect(fault.body).to.include('<faultcode>soap:Client</faultcode>');
        expect(fault.body).to.include('authentication failed');
      }
      // Without any WS-Security header.
      const bare = await createClientAsync(STATUS_WSDL, {
        endpoint: `${gw.url}/api/v1/callbacks/gewerbe`,
        disableCache: true,
      });
      const missing = await faultOf(
        bare.statusMeldenAsync({ vorgangsnummer: message.remoteReference, status: 'ERLEDIGT' }),
      );
      expect(missing.body).to.include('no WS-Security header');

      expect(await remoteEvents(message.id)).to.deep.equal([]);
      expect((await view(message.id)).citizenStatus).to.equal(null);
      expect(await webhookNotices()).to.deep.equal([]);
    });

    it('refuses a replayed UsernameToken, and an application it does not know', async () => {
      const message = await submit('GEW-PORTAL-102');
      const client = await statusClient(digestToken());
      await client.statusMeldenAsync({ vorgangsnummer: message.remoteReference, status: 'IN_BEARBEITUNG' });
      const captured = client.lastRequest!;
      expect(await remoteEvents(message.id)).to.have.length(1);

      // The same envelope again (same nonce), now with another status: refused before it is read.
      const replay = await fetch(`${gw.url}/api/v1/callbacks/gewerbe`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8' },
        body: captured.replace('IN_BEARBEITUNG', 'ERLEDIGT'),
      });
      expect(replay.status).to.equal(500);
      expect(replay.headers.get('content-type')).to.match(/^text\/xml/);
      const replayBody = await replay.text();
      expect(replayBody).to.include('<faultcode>soap:Client</faultcode>');
      expect(replayBody).to.include('nonce was used before');
      expect(await remoteEvents(message.id)).to.have.length(1);
      expect((await view(message.id)).citizenStatus).to.equal('PROCESSING');

      const unknown = await faultOf(
        client.statusMeldenAsync({ vorgangsnummer: 'GEW-1999-99999', status: 'ERLEDIGT' }),
      );
      expect(unknown.status).to.equal(500);
      expect(unknown.body).to.include('<faultcode>soap:Client</faultcode>');
      expect(unknown.body).to.include('<amt:code>AMT_NOT_FOUND</amt:code>');
      expect(await webhookNotices()).to.have.length(1);
    });
  });

  describe('XTA 2: delivery through the XTA server, status from its transport report', () => {
    it('reports open and delivered transport reports as RECEIVED and PROCESSING, each with a signed webhook', async () => {
      const message = await submit('GEW-PORTAL-200', 'xta');
      const xtaMessageId = message.remoteReference!;
      const [sent] = emulator.sent;
      expect(sent?.messageId).to.equal(xtaMessageId);
      expect(sent!.meta.deliveryId).to.equal(message.deliveryId);
      expect(JSON.parse(sent!.message.content.toString('utf8'))).to.deep.include({
        reference: 'GEW-PORTAL-200',
      });
      const xta = gw.adapters.get('xta-gewerbe')!;
      const poll = () => xta.poll!(new AbortController().signal);

      // The reader has not fetched it yet: the server holds it (open).
      expect(await poll()).to.deep.equal({ items: 1 });
      expect(await view(message.id)).to.include({ remoteStatus: 'open', citizenStatus: 'RECEIVED' });
      expect(await poll()).to.deep.equal({ items: 0 }); // unchanged: nothing reported again

      // The Fachverfahren fetched it: green light.
      emulator.transportStatus.set(xtaMessageId, { status: 1 });
      expect(await poll()).to.deep.equal({ items: 1 });
      const processing = await view(message.id);
      expect(processing).to.include({ remoteStatus: 'delivered', citizenStatus: 'PROCESSING' });
      expect(processing.history.at(-1).detail).to.deep.include({ xtaMessageId, xtaStatus: 1 });
      expect(await poll()).to.deep.equal({ items: 0 }); // final: not asked again

      const hooks = await hooksUntil(2);
      const notices = hooks.map((hook) => {
        expect(
          verifyWebhookSignature(String(hook.headers['x-amtsbote-signature']), hook.body, WEBHOOK_SECRET),
        ).to.equal(true);
        return JSON.parse(hook.body);
      });
      notices.sort((a, b) => a.change - b.change);
      expect(notices.map((n) => [n.citizenStatus, n.remoteStatus, n.remoteReference])).to.deep.equal([
        ['RECEIVED', 'open', xtaMessageId],
        ['PROCESSING', 'delivered', xtaMessageId],
      ]);
      const getTransportReports = emulator.calls.filter((c) => c.operation === 'getTransportReport');
      // One right after sending, then one per poll until the status was final.
      expect(getTransportReports).to.have.length(4);
    });
  });
});
