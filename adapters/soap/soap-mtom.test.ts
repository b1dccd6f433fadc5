import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { AdapterInstance } from '../../src/adapter-contract.js';
import { GEWERBE_APPLICATION, makeAttachment, makeDelivery } from '../../test/peers/soap/deliveries.js';
import { createFakeContext, type FakeContext } from '../../test/peers/soap/fake-context.js';
import { GEWERBE_NS } from '../../test/peers/soap/gewerbe-peer.js';
import { startMtomPeer, type MtomPeer } from '../../test/peers/soap/mtom-peer.js';
import { createGewerbeInstance, failureOf } from './test-support.js';

describe('soap adapter with MTOM attachments', () => {
  let peer: MtomPeer;
  let context: FakeContext;
  let dir: string;
  let instance: AdapterInstance;

  before(async () => {
    peer = await startMtomPeer();
  });
  after(async () => {
    await peer.close();
  });
  beforeEach(() => {
    context = createFakeContext('gewerbe-mtom');
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-mtom-'));
    instance = createGewerbeInstance(context, {
      endpoint: peer.url,
      attachments: 'mtom',
      remoteReference: 'vorgangsnummer',
    });
  });
  afterEach(async () => {
    await instance.close?.();
    context.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends attachment bytes as MIME parts referenced by xop:Include from a JSON body', async () => {
    const pdf = Buffer.concat([
      Buffer.from('%PDF-1.7\n'),
      randomBytes(200_000),
      Buffer.from([0, 13, 10, 45, 45, 255]),
    ]);
    const photo = randomBytes(50_000);
    const attachments = [
      makeAttachment(dir, 'Gewerbeanmeldung.pdf', 'application/pdf', pdf),
      makeAttachment(dir, 'Ausweis.jpg', 'image/jpeg', photo),
    ];
    const body = {
      ...GEWERBE_APPLICATION,
      anlage: attachments.map((a) => ({
        dateiname: a.ref.filename,
        mimeType: a.ref.mediaType,
        inhalt: { $attachment: a.ref.sha256 },
      })),
    };
    const result = await instance.deliver!(
      makeDelivery({ body: { contentType: 'application/json', content: JSON.stringify(body) }, attachments }),
      new AbortController().signal,
    );
    expect(result.remoteReference).to.equal('MTOM-1');
    const request = peer.requests[0]!;
    expect(request.contentType)
      .to.match(/^multipart\/related/)
      .and.to.contain('application/xop+xml');
    expect(request.includes).to.deep.equal(attachments.map((a) => `${a.ref.sha256}@amtsbote`));
    for (const attachment of attachments) {
      const part = request.parts.get(`${attachment.ref.sha256}@amtsbote`);
      expect(part, attachment.ref.filename).to.not.equal(undefined);
      expect(part!.headers['content-type']).to.equal(attachment.ref.mediaType);
      expect(part!.body.equals(attachment.ref.filename.endsWith('.pdf') ? pdf : photo)).to.equal(true);
    }
    expect(request.rootXml).to.contain('Gewerbeanmeldung.pdf');
  });

  it('sends attachments referenced from an XML body by their Content-ID', async () => {
    const scan = randomBytes(4096);
    const attachment = makeAttachment(dir, 'Vollmacht.png', 'image/png', scan);
    const xml =
      `<g:importGewerbeanmeldung xmlns:g="${GEWERBE_NS}"><g:ars>055150000000</g:ars>` +
      `<g:anlage><g:dateiname>Vollmacht.png</g:dateiname><g:mimeType>image/png</g:mimeType><g:inhalt>` +
      `<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:${attachment.ref.sha256}@amtsbote"/>` +
      `</g:inhalt></g:anlage></g:importGewerbeanmeldung>`;
    await instance.deliver!(
      makeDelivery({ body: { contentType: 'application/xml', content: xml }, attachments: [attachment] }),
      new AbortController().signal,
    );
    const request = peer.requests.at(-1)!;
    expect(request.includes).to.deep.equal([`${attachment.ref.sha256}@amtsbote`]);
    expect(request.parts.get(`${attachment.ref.sha256}@amtsbote`)!.body.equals(scan)).to.equal(true);
  });

  it('rejects a body that references an attachment the message does not have', async () => {
    const body = {
      ...GEWERBE_APPLICATION,
      anlage: [{ dateiname: 'x', mimeType: 'x', inhalt: { $attachment: 'a'.repeat(64) } }],
    };
    const error = await failureOf(
      instance,
      makeDelivery({ body: { contentType: 'application/json', content: JSON.stringify(body) } }),
    );
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(error.message).to.contain('a'.repeat(64));
  });
});
