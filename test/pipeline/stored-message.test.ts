/**
 * Reading the document of a stored message: the `document` field the inbound hand-over writes,
 * and the shapes inbound payloads had in `data` before that field existed.
 */
import { expect } from 'chai';
import { canonicalJson } from '../../src/canonical-json.js';
import { AmtError } from '../../src/errors.js';
import { isPlainApplication, readStoredMessage } from '../../src/pipeline/stored-message.js';

const XML = '<antrag xmlns="urn:example"><name>Müller</name></antrag>';

function read(payload: unknown, direction: 'inbound' | 'outbound' = 'inbound') {
  return readStoredMessage({ id: 'm-1', direction, payload: canonicalJson(payload) });
}

describe('stored message', () => {
  it('reads the document field of an inbound payload, and none where it is null', () => {
    const withDocument = read({
      reference: 'xta-1',
      data: { metadata: { service: 'urn:example' } },
      document: { mediaType: 'text/xml', content: XML },
    });
    expect(withDocument.document).to.deep.equal({ mediaType: 'text/xml', text: XML });
    expect(withDocument.application).to.have.deep.property('data', { metadata: { service: 'urn:example' } });

    const json = read({ reference: 'fit-1', data: { antrag: 'x' }, document: null });
    expect(json.document).to.equal(undefined);
    expect(json.application).to.deep.equal({ reference: 'fit-1', data: { antrag: 'x' }, document: null });
  });

  it('reads the document of inbound payloads stored before the field existed, by their old shapes', () => {
    expect(
      read({ reference: 'fit-1', data: { mimeType: 'application/xml', content: XML } }).document,
    ).to.deep.equal({
      mediaType: 'application/xml',
      text: XML,
    });
    expect(
      read({ reference: 'xta-1', data: { xml: XML, metadata: { service: 'urn:example' } } }).document,
    ).to.deep.equal({ mediaType: 'application/xml', text: XML });
    expect(read({ reference: 'fit-2', data: { antrag: 'x' } }).document).to.equal(undefined);
  });

  it('never reads a document from an outbound (portal) payload', () => {
    const portal = read(
      { reference: 'P-1', data: { xml: XML }, document: { mediaType: 'application/xml', content: XML } },
      'outbound',
    );
    expect(portal.document).to.equal(undefined);
  });

  it('tells a plain outbound application from the text alone, and says "parse" when in doubt', () => {
    const plain = (payload: unknown, direction: 'inbound' | 'outbound' = 'outbound') =>
      isPlainApplication({ direction, payload: canonicalJson(payload) });
    expect(plain({ reference: 'P-1', applicant: { familyName: 'Müller' }, data: { zone: 'A' } })).to.equal(
      true,
    );
    const identity = { verifiedIdentity: { trustLevel: 'substantial', familyName: 'Müller' } };
    expect(plain({ reference: 'P-1', ...identity })).to.equal(false);
    // The name as a key deeper down is no identity, but the text cannot tell: parsed, to be sure.
    expect(plain({ reference: 'P-1', data: { verifiedIdentity: 'no' } })).to.equal(false);
    // Inside a string value it is escaped and cannot be mistaken for a key.
    expect(plain({ reference: 'P-1', data: { note: '"verifiedIdentity": {}' } })).to.equal(true);
    expect(plain({ reference: 'P-1', data: { zone: 'A' } }, 'inbound')).to.equal(false);
  });

  it('holds a message whose stored document is unreadable instead of guessing', () => {
    for (const document of [{ mediaType: '', content: XML }, { mediaType: 'application/xml' }, 'text', 7]) {
      let error: unknown;
      try {
        read({ reference: 'xta-1', data: { xml: XML }, document });
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(document)).to.be.instanceOf(AmtError);
      expect((error as AmtError).code).to.equal('AMT_INTERNAL');
      expect((error as AmtError).message).to.equal('the document stored with message m-1 is unreadable');
    }
  });
});
