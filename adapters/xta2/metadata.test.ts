import { expect } from 'chai';
import { xsdProblemsOf } from '../../test/peers/xta2/xsd.js';
import { genericContentContainerXml, readGenericContentContainer, textOfContent } from './content.js';
import { messageMetaDataXml, readMessageMetaData, XTA, type OutgoingMetadata } from './metadata.js';
import { readTransportReport } from './status.js';
import { parseXml } from '../../src/xml/element-tree.js';

const full: OutgoingMetadata = {
  messageId: 'urn:de:xta:messageid:test:1',
  author: {
    identifier: 'dvdv:055150000000-ozg',
    type: 'xoev',
    name: 'Stadt Münster & Co',
    category: 'Online-Dienste',
  },
  reader: { identifier: 'psw:05515000', type: 'xoev' },
  service: 'urn:xoev-de:xdomea:schema:3.0.0',
  businessScenario: {
    code: 'XDOMEA_DATA',
    listURI: 'urn:de:dataport:codeliste:business.scenario',
    listVersionID: '1',
    name: 'xdomea',
  },
  messageType: {
    code: '0503',
    listURI: 'urn:xoev-de:xdomea:codeliste:nachrichtentyp',
    listVersionID: '3.0',
    payloadSchema: 'urn:xoev-de:xdomea:schema:3.0.0',
  },
  subject: 'Aussonderung <Akten> 2026',
  testMessage: true,
  processReference: 'AZ 32.1-2026/17',
  properties: [
    {
      key: { code: 'deliveryId', listURI: 'urn:amtsbote:xta:message-property', listVersionID: '1' },
      value: 'd-1',
    },
  ],
  createdAt: new Date('2026-03-01T10:00:00Z'),
  payloadSize: 1234,
};

describe('XTA MessageMetaData and GenericContentContainer', () => {
  it('writes MessageMetaData that the real OSCI schema accepts, with every optional part', () => {
    expect(xsdProblemsOf(messageMetaDataXml(full))).to.deep.equal([]);
    const minimal = {
      ...full,
      subject: undefined,
      testMessage: false,
      processReference: undefined,
      properties: [],
    };
    expect(xsdProblemsOf(messageMetaDataXml(minimal))).to.deep.equal([]);
    const undefinedScenario = { ...full, businessScenario: { undefined: 'Bilateral vereinbart' } };
    expect(xsdProblemsOf(messageMetaDataXml(undefinedScenario))).to.deep.equal([]);
  });

  it('is checked by a validator that does find mistakes', () => {
    const qualifiedCode = messageMetaDataXml(full).replace(
      '<code>0503</code>',
      '<oscimeta:code>0503</oscimeta:code>',
    );
    expect(xsdProblemsOf(qualifiedCode).join(' ')).to.contain('code');
    const withoutPayloadSchema = messageMetaDataXml(full).replace(/ payloadSchema="[^"]*"/, '');
    expect(xsdProblemsOf(withoutPayloadSchema).join(' ')).to.contain('payloadSchema');
  });

  it('reads back what it wrote, as plain JSON', () => {
    const metadata = readMessageMetaData(parseXml(messageMetaDataXml(full)));
    expect(metadata).to.deep.include({
      messageId: full.messageId,
      testMessage: true,
      service: full.service,
      subject: 'Aussonderung <Akten> 2026',
      processReference: { requester: 'AZ 32.1-2026/17' },
      properties: [{ key: 'deliveryId', value: 'd-1' }],
      size: 1234,
    });
    expect(metadata.author).to.deep.equal(full.author);
    expect(metadata.messageType).to.deep.equal({ ...full.messageType });
    expect(metadata.businessScenario).to.deep.equal(full.businessScenario);
    expect(metadata.deliveryAttributes).to.deep.equal({
      Origin: '2026-03-01T10:00:00.000Z',
      InitialSend: '2026-03-01T10:00:00.000Z',
    });
  });

  it('writes a content container the XTA schema accepts and reads it back byte for byte', () => {
    const message = {
      content: Buffer.from('<a>Grüße</a>', 'utf8'),
      contentType: 'application/xml',
      encoding: 'UTF-8',
      filename: 'n.xml',
    };
    const attachment = {
      content: Buffer.from([0, 1, 2, 255]),
      contentType: 'application/pdf',
      filename: 'a.pdf',
      description: 'Nachweis',
    };
    const xml = genericContentContainerXml(message, [attachment]);
    expect(xsdProblemsOf(xml)).to.deep.equal([]);
    const read = readGenericContentContainer(parseXml(xml));
    expect(textOfContent(read.message)).to.equal('<a>Grüße</a>');
    expect(read.attachments[0]!.content.equals(attachment.content)).to.equal(true);
    expect(read.attachments[0]).to.deep.include({
      filename: 'a.pdf',
      description: 'Nachweis',
      contentType: 'application/pdf',
    });
  });

  it('resolves MTOM-optimised content and refuses end-to-end encrypted content', () => {
    const bytes = Buffer.from('<x>mtom</x>');
    const xml =
      `<xta:GenericContentContainer xmlns:xta="${XTA}"><xta:ContentContainer><xta:Message contentType="text/xml">` +
      '<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:part-1%40xta"/></xta:Message>' +
      '</xta:ContentContainer></xta:GenericContentContainer>';
    const read = readGenericContentContainer(parseXml(xml), new Map([['part-1@xta', bytes]]));
    expect(read.message.content.equals(bytes)).to.equal(true);
    const encrypted = `<xta:GenericContentContainer xmlns:xta="${XTA}"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/></xta:GenericContentContainer>`;
    expect(() => readGenericContentContainer(parseXml(encrypted))).to.throw(/end-to-end encrypted/);
  });

  it('reads a TransportReport into a status name', () => {
    const report = parseXml(
      `<xta:TransportReport xmlns:xta="${XTA}">${messageMetaDataXml(full)}<xta:ReportTime>2026-03-01T10:05:00Z</xta:ReportTime>` +
        '<xta:XTAServerIdentity>xta.example</xta:XTAServerIdentity><xta:MessageStatus><xta:Status>2</xta:Status><xta:WarnList><xta:Warning>' +
        '<xta:Timestamp>2026-03-01T10:04:00Z</xta:Timestamp><xta:Code listURI="urn:x" listVersionID="1"><code>W1</code></xta:Code>' +
        '<xta:Reason>Zertifikat läuft bald ab</xta:Reason></xta:Warning></xta:WarnList></xta:MessageStatus></xta:TransportReport>',
    );
    const read = readTransportReport(report);
    expect(read).to.deep.include({
      messageId: full.messageId,
      statusCode: 2,
      status: 'delivered-with-warnings',
    });
    expect(read.warnings).to.deep.equal([
      { timestamp: '2026-03-01T10:04:00Z', code: 'W1', reason: 'Zertifikat läuft bald ab' },
    ]);
  });
});
