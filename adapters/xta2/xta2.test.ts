import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { AdapterInstance, Delivery } from '../../src/adapter-contract.js';
import { AmtError, isAmtError } from '../../src/errors.js';
import { makeAttachment, makeDelivery } from '../../test/peers/soap/deliveries.js';
import { createFakeContext, type FakeContext } from '../../test/peers/soap/fake-context.js';
import { createTlsFixtures, type TlsFixtures } from '../../test/peers/soap/tls-fixtures.js';
import { startXtaEmulator, type XtaEmulator } from '../../test/peers/xta2/emulator.js';
import type { Xta2Config } from './config.js';
import { xta2Adapter } from './manifest.js';

const XDOMEA_0504 = readFileSync(
  fileURLToPath(
    new URL(
      '../../test/fixtures/xdomea/xx_Aussonderung.AnbietungEmpfangBestaetigen.0504.xml',
      import.meta.url,
    ),
  ),
  'utf8',
);

const SERVICE = 'urn:xoev-de:xdomea:schema:3.0.0';
const AUTHOR = 'dvdv:055150000000-ozg';
const READER = 'dvdv:055150000000-archiv';

function baseConfig(emulator: XtaEmulator, certs: TlsFixtures): Xta2Config {
  return {
    endpoints: emulator.endpoints,
    tls: {
      cert: certs.clientCert,
      key: certs.clientKey,
      ca: certs.caCert,
      passphrase: certs.clientKeyPassphrase,
    },
    author: { identifier: AUTHOR, name: 'Stadt Münster, Online-Dienste' },
    reader: { identifier: READER, name: 'Stadtarchiv Münster', category: 'Archiv' },
    service: SERVICE,
    businessScenario: {
      code: 'XDOMEA_DATA',
      listURI: 'urn:de:dataport:codeliste:business.scenario',
      listVersionID: '1',
    },
    messageType: {
      code: '0504',
      listURI: 'urn:xoev-de:xdomea:codeliste:nachrichtentyp',
      listVersionID: '3.0',
      payloadSchema: 'urn:xoev-de:xdomea:schema:3.0.0',
      name: 'Aussonderung.AnbietungEmpfangBestaetigen',
    },
    payloadFilename: 'xx_Aussonderung.AnbietungEmpfangBestaetigen.0504.xml',
    timeout: '5s',
    inbound: {
      routes: [
        { service: SERVICE, messageType: '0503', ars: '055150000000', leistungsschluessel: '99001001000000' },
        {
          service: 'urn:xoev-de:bmwk:standard:xgewerbeanzeige',
          ars: '055150000000',
          leistungsschluessel: '99050012104000',
          channel: 'xta',
        },
      ],
    },
  };
}

async function failureOf(promise: Promise<unknown>): Promise<AmtError> {
  try {
    await promise;
  } catch (err) {
    if (isAmtError(err)) return err;
    throw new Error(`expected an AmtError, got ${String((err as Error).stack ?? err)}`);
  }
  throw new Error('expected a failure');
}

describe('xta2 adapter against an XTA 2 server emulator (real XTA.wsdl, SOAP 1.2, client certificate)', () => {
  let certs: TlsFixtures;
  let emulator: XtaEmulator;
  let context: FakeContext;
  let dir: string;
  const instances: AdapterInstance[] = [];
  const make = (overrides: Partial<Xta2Config> = {}): AdapterInstance => {
    const instance = xta2Adapter.create(context, { ...baseConfig(emulator, certs), ...overrides });
    instances.push(instance);
    return instance;
  };
  const xdomeaDelivery = (overrides: Partial<Delivery> = {}): Delivery =>
    makeDelivery({ body: { contentType: 'application/xml', content: XDOMEA_0504 }, ...overrides });
  const poll = (instance: AdapterInstance): Promise<{ items: number }> =>
    instance.poll!(new AbortController().signal);

  before(async () => {
    certs = createTlsFixtures();
    emulator = await startXtaEmulator({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert });
  });
  after(async () => {
    await emulator.close();
    certs.cleanup();
  });
  beforeEach(() => {
    context = createFakeContext('xta-archiv');
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-xta-'));
    emulator.calls.length = 0;
  });
  afterEach(async () => {
    for (const instance of instances.splice(0)) await instance.close?.();
    context.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('sending', () => {
    it('creates a MessageID, sends metadata and content the XSDs accept, and returns the MessageID', async () => {
      const scan = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(30_000)]);
      const attachment = makeAttachment(dir, 'Abgabeverzeichnis.pdf', 'application/pdf', scan);
      const delivery = xdomeaDelivery({ attachments: [attachment] });
      const result = await make().deliver!(delivery, new AbortController().signal);

      expect(emulator.createdIds.has(result.remoteReference!)).to.equal(true);
      expect(result.detail).to.deep.include({
        xtaMessageId: result.remoteReference,
        transportStatus: 'open',
      });
      const sent = emulator.sent.find((m) => m.messageId === result.remoteReference)!;
      expect(sent, 'the emulator stored the message (it passed the XSD check)').to.not.equal(undefined);
      expect(sent.meta).to.deep.include({
        author: AUTHOR,
        authorType: 'xoev',
        reader: READER,
        service: SERVICE,
        businessScenario: 'XDOMEA_DATA',
        businessScenarioList: 'urn:de:dataport:codeliste:business.scenario',
        messageType: '0504',
        payloadSchema: 'urn:xoev-de:xdomea:schema:3.0.0',
        processRef: delivery.reference,
        deliveryId: delivery.deliveryId,
        msgSize: String(Buffer.byteLength(XDOMEA_0504)),
      });
      expect(sent.message.content.toString('utf8')).to.equal(XDOMEA_0504);
      expect(sent.message).to.deep.include({
        contentType: 'application/xml',
        encoding: 'UTF-8',
        filename: 'xx_Aussonderung.AnbietungEmpfangBestaetigen.0504.xml',
      });
      expect(sent.attachments).to.have.length(1);
      expect(sent.attachments[0]!.content.equals(scan)).to.equal(true);
      expect(sent.attachments[0]).to.deep.include({
        filename: 'Abgabeverzeichnis.pdf',
        contentType: 'application/pdf',
      });
    });

    it('speaks WS-Addressing as the WSDL demands, names the account and presents the client certificate', async () => {
      await make().deliver!(xdomeaDelivery(), new AbortController().signal);
      expect(emulator.calls.map((c) => c.operation)).to.deep.equal([
        'createMessageId',
        'sendMessage',
        'getTransportReport',
      ]);
      expect(emulator.calls.map((c) => c.wsaAction)).to.deep.equal([
        'http://www.xta.de/XTA/CreateMessageID',
        'http://www.xta.de/XTA/SendMessage',
        'http://www.xta.de/XTA/GetTransportReport',
      ]);
      expect(emulator.calls.map((c) => c.wsaTo)).to.deep.equal([
        emulator.endpoints.management,
        emulator.endpoints.send,
        emulator.endpoints.management,
      ]);
      const ids = emulator.calls.map((c) => c.wsaMessageId);
      expect(new Set(ids).size).to.equal(3);
      for (const call of emulator.calls) {
        expect(call.account).to.equal(AUTHOR);
        expect(call.clientCertificate).to.equal('client');
      }
    });

    it('classifies XTA exceptions: permission and content problems are permanent, technical problems retried', async () => {
      const cases = [
        {
          operation: 'createMessageId',
          name: 'PermissionDeniedException',
          code: '9011',
          expected: 'AMT_DELIVERY_REJECTED',
        },
        {
          operation: 'sendMessage',
          name: 'XTAWSTechnicalProblemException',
          code: '9030',
          expected: 'AMT_DELIVERY_RETRYABLE',
        },
        {
          operation: 'sendMessage',
          name: 'MessageSchemaViolationException',
          code: '9050',
          expected: 'AMT_DELIVERY_REJECTED',
        },
        {
          operation: 'sendMessage',
          name: 'ParameterIsNotValidException',
          code: '9023',
          expected: 'AMT_DELIVERY_REJECTED',
        },
        {
          operation: 'sendMessage',
          name: 'MessageVirusDetectionException',
          code: '9060',
          expected: 'AMT_DELIVERY_REJECTED',
        },
        {
          operation: 'createMessageId',
          name: 'XTAWSTechnicalProblemException',
          code: '9031',
          expected: 'AMT_DELIVERY_RETRYABLE',
        },
      ] as const;
      const instance = make();
      for (const c of cases) {
        emulator.inject(c.operation, {
          kind: 'exception',
          exception: { name: c.name, code: c.code, codeName: 'Testfehler' },
        });
        const error = await failureOf(instance.deliver!(xdomeaDelivery(), new AbortController().signal));
        expect(error.code, `${c.name} on ${c.operation}`).to.equal(c.expected);
        expect(error.message).to.contain(c.name).and.to.contain(c.code);
      }
    });

    it('retries when the XTA server answers HTTP 503 or not at all', async () => {
      const instance = make({ timeout: '300ms' });
      emulator.inject('sendMessage', { kind: 'http', status: 503, body: '<html>Wartung</html>' });
      const unavailable = await failureOf(instance.deliver!(xdomeaDelivery(), new AbortController().signal));
      expect(unavailable.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(unavailable.message).to.contain('HTTP 503');
      emulator.inject('createMessageId', { kind: 'hang' });
      const silent = await failureOf(instance.deliver!(xdomeaDelivery(), new AbortController().signal));
      expect(silent.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(silent.message).to.contain('did not answer within 300 ms');
    });

    it('with ids derived from the delivery id, recognises a repeat the server already has (9024)', async () => {
      const instance = make({ messageIdSource: 'deliveryId' });
      const delivery = xdomeaDelivery();
      const first = await instance.deliver!(delivery, new AbortController().signal);
      expect(first.remoteReference).to.equal(`urn:de:xta:messageid:amtsbote:${delivery.deliveryId}`);
      expect(emulator.calls.map((c) => c.operation)).to.not.include('createMessageId');
      // The answer to the first attempt was lost; the pipeline tries again.
      const second = await instance.deliver!({ ...delivery, attempt: 2 }, new AbortController().signal);
      expect(second.remoteReference).to.equal(first.remoteReference);
      expect(emulator.sent.filter((m) => m.messageId === first.remoteReference)).to.have.length(1);
    });
  });

  describe('transport reports', () => {
    it('reports status changes of delivered messages and stops at a final status', async () => {
      const instance = make({ inbound: undefined });
      const delivery = xdomeaDelivery();
      const { remoteReference } = await instance.deliver!(delivery, new AbortController().signal);
      context.awaiting = [
        {
          messageId: delivery.messageId,
          deliveryId: delivery.deliveryId,
          remoteReference,
          remoteStatus: 'open',
        },
      ];
      expect((await poll(instance)).items).to.equal(0);
      expect(context.statuses).to.have.length(0);

      emulator.transportStatus.set(remoteReference!, { status: 1 });
      expect((await poll(instance)).items).to.equal(1);
      expect(context.statuses[0]).to.deep.include({ messageId: delivery.messageId, status: 'delivered' });
      expect(context.statuses[0]!.detail).to.deep.include({ xtaMessageId: remoteReference, xtaStatus: 1 });

      context.awaiting = [{ ...context.awaiting[0]!, remoteStatus: 'delivered' }];
      expect((await poll(instance)).items).to.equal(0);
      expect(context.statuses).to.have.length(1);
    });

    it('reports a red transport report as failed, with the errors', async () => {
      const instance = make({ inbound: undefined });
      const delivery = xdomeaDelivery();
      const { remoteReference } = await instance.deliver!(delivery, new AbortController().signal);
      emulator.transportStatus.set(remoteReference!, {
        status: 3,
        errors: [{ code: 'ZUSTELLUNG', reason: 'Empfänger-Postfach existiert nicht' }],
      });
      context.awaiting = [
        {
          messageId: delivery.messageId,
          deliveryId: delivery.deliveryId,
          remoteReference,
          remoteStatus: undefined,
        },
      ];
      await poll(instance);
      expect(context.statuses[0]).to.deep.include({ status: 'failed' });
      expect(context.statuses[0]!.detail!.errors).to.deep.equal([
        {
          timestamp: (context.statuses[0]!.detail!.errors as { timestamp: string }[])[0]!.timestamp,
          code: 'ZUSTELLUNG',
          reason: 'Empfänger-Postfach existiert nicht',
        },
      ]);
    });

    it('gives a final status when the server no longer knows the message', async () => {
      const instance = make({ inbound: undefined });
      context.awaiting = [
        {
          messageId: 'm-old',
          deliveryId: 'd-old',
          remoteReference: 'urn:de:xta:messageid:emulator:vergessen',
          remoteStatus: 'open',
        },
      ];
      await poll(instance);
      expect(context.statuses).to.deep.equal([
        {
          messageId: 'm-old',
          status: 'unknown-to-server',
          detail: { reason: context.statuses[0]!.detail!.reason },
        },
      ]);
      expect(String(context.statuses[0]!.detail!.reason)).to.contain('InvalidMessageIDException');
    });
  });

  describe('receiving from the msgBox', () => {
    const deposit = (overrides: Partial<Parameters<XtaEmulator['deposit']>[0]> = {}): string =>
      emulator.deposit({
        reader: AUTHOR,
        author: 'dvdv:055150000000-archiv',
        service: SERVICE,
        messageType: { code: '0503', payloadSchema: 'urn:xoev-de:xdomea:schema:3.0.0' },
        businessScenario: 'XDOMEA_DATA',
        payloadXml: XDOMEA_0504,
        ...overrides,
      });

    it('hands each message to the pipeline, then closes it', async () => {
      const photo = randomBytes(10_000);
      const first = deposit();
      const second = deposit({
        service: 'urn:xoev-de:bmwk:standard:xgewerbeanzeige',
        messageType: {
          code: 'gewerbeanzeige.anmeldung.0100',
          payloadSchema: 'http://www.xgewerbeanzeige.de/spezifikation/1.3',
        },
        payloadXml:
          '<gw:anzeige xmlns:gw="http://www.xgewerbeanzeige.de/spezifikation/1.3"><gw:ort>Münster</gw:ort></gw:anzeige>',
        attachments: [{ filename: 'Foto.jpg', contentType: 'image/jpeg', content: photo }],
      });
      deposit({ reader: 'dvdv:andere-behoerde' });

      const { items } = await poll(make({ statusPolling: { enabled: false } }));
      expect(items).to.equal(2);
      expect(context.received.map((a) => a.reference)).to.deep.equal([first, second]);
      const [archive, trade] = context.received;
      expect(archive).to.deep.include({ ars: '055150000000', service: '99001001000000' });
      expect(archive!.document).to.deep.equal({ mediaType: 'application/xml', content: XDOMEA_0504 });
      expect(archive!.data).to.have.all.keys('metadata');
      const metadata = (archive!.data as { metadata: Record<string, unknown> }).metadata;
      expect(metadata).to.deep.include({ messageId: first, service: SERVICE });
      expect(metadata.author).to.deep.include({ identifier: 'dvdv:055150000000-archiv' });
      expect(metadata.messageType).to.deep.include({
        code: '0503',
        payloadSchema: 'urn:xoev-de:xdomea:schema:3.0.0',
      });
      expect(trade).to.deep.include({ service: '99050012104000', channel: 'xta' });
      expect(trade!.attachments).to.have.length(1);
      expect(trade!.attachments![0]!.content.equals(photo)).to.equal(true);
      expect(trade!.attachments![0]).to.deep.include({ filename: 'Foto.jpg', mediaType: 'image/jpeg' });

      expect(
        emulator.inbox.filter((m) => [first, second].includes(m.messageId)).every((m) => m.closed),
      ).to.equal(true);
      expect(emulator.calls.map((c) => c.operation)).to.deep.equal([
        'getStatusList',
        'getMessage',
        'close',
        'getMessage',
        'close',
      ]);
      expect(emulator.calls.every((c) => c.account === AUTHOR)).to.equal(true);
    });

    it('does not close a message the pipeline did not take; the next poll delivers it again', async () => {
      const id = deposit();
      let crash = true;
      context.beforeReceive = () => {
        if (crash) throw new Error('store unavailable');
      };
      const instance = make({ statusPolling: { enabled: false } });
      expect((await poll(instance)).items).to.equal(0);
      expect(context.receiveCalls.map((a) => a.reference)).to.deep.equal([id]);
      expect(emulator.inbox.find((m) => m.messageId === id)!.closed).to.equal(false);
      expect(emulator.calls.map((c) => c.operation)).to.not.include('close');

      crash = false;
      expect((await poll(instance)).items).to.equal(1);
      expect(context.received.map((a) => a.reference)).to.deep.equal([id]);
      expect(emulator.inbox.find((m) => m.messageId === id)!.closed).to.equal(true);
    });

    it('when close fails after receive, the message comes again and is recognised, not duplicated', async () => {
      const id = deposit();
      const instance = make({ statusPolling: { enabled: false } });
      emulator.inject('close', {
        kind: 'exception',
        exception: { name: 'XTAWSTechnicalProblemException', code: '9030', codeName: 'Interner Fehler' },
      });
      expect((await poll(instance)).items).to.equal(0);
      expect(emulator.inbox.find((m) => m.messageId === id)!.closed).to.equal(false);
      expect((await poll(instance)).items).to.equal(1);
      expect(context.receiveCalls.map((a) => a.reference)).to.deep.equal([id, id]);
      expect(context.received).to.have.length(1);
      expect(emulator.inbox.find((m) => m.messageId === id)!.closed).to.equal(true);
    });

    it('leaves a message no inbound route matches in the msgBox and says so', async () => {
      const id = deposit({
        service: 'urn:xoev-de:unbekannt',
        messageType: { code: '9999', payloadSchema: 'urn:x' },
      });
      const { items } = await poll(make({ statusPolling: { enabled: false } }));
      expect(items).to.equal(0);
      expect(context.receiveCalls).to.have.length(0);
      expect(emulator.inbox.find((m) => m.messageId === id)!.closed).to.equal(false);
      const warning = context.logs.find((l) => l.level === 'warn' && l.meta?.xtaMessageId === id);
      expect(warning?.meta).to.deep.include({
        code: 'AMT_XTA_INBOUND_UNROUTABLE',
        service: 'urn:xoev-de:unbekannt',
      });
      emulator.inbox.find((m) => m.messageId === id)!.closed = true;
    });

    it('fails the poll with a classified error when the account is refused or the server has a problem', async () => {
      const instance = make();
      emulator.inject('getStatusList', {
        kind: 'exception',
        exception: { name: 'PermissionDeniedException', code: '9011', codeName: 'Account ist gesperrt.' },
      });
      const denied = await failureOf(poll(instance));
      expect(denied.code).to.equal('AMT_XTA_EXCEPTION');
      expect(denied.retryable).to.equal(false);
      expect(denied.message).to.contain('9011');
      emulator.inject('getStatusList', {
        kind: 'exception',
        exception: { name: 'XTAWSTechnicalProblemException', code: '9030', codeName: 'Interner Fehler' },
      });
      const technical = await failureOf(poll(instance));
      expect(technical.code).to.equal('AMT_XTA_EXCEPTION');
      expect(technical.retryable).to.equal(true);
    });
  });

  it('refuses a client key it cannot open when the instance is created', () => {
    expect(() =>
      make({ tls: { cert: certs.clientCert, key: certs.clientKey, passphrase: 'falsch' } }),
    ).to.throw(AmtError, /client certificate cannot be used/);
  });
});
