import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { ParseOption, XmlDocument } from 'libxml2-wasm';
import { isAmtError } from '../../src/errors.js';
import type { AmtError } from '../../src/errors.js';
import { collectXml } from '../../src/xml/collect.js';
import { readXml } from '../../src/xml/read.js';
import { DOCUMENT_PARSE_OPTIONS, validateXml } from '../../src/xml/validate.js';

const SECRET_MARKER = 'GEHEIM-7f3a9c-NICHT-AUSGEBEN';

function rejection(fn: () => unknown): AmtError {
  try {
    fn();
  } catch (err) {
    if (isAmtError(err)) return err;
    throw err;
  }
  throw new Error('expected the document to be rejected');
}

/** Everything an error could leak: message, problems, cause chain, JSON form. */
function everythingSaid(err: AmtError): string {
  const causes: string[] = [];
  for (let cause: unknown = err.cause; cause instanceof Error; cause = cause.cause)
    causes.push(cause.message);
  return [err.message, JSON.stringify(err.problems), JSON.stringify(err), err.stack ?? '', ...causes].join(
    '\n',
  );
}

describe('hostile XML is rejected with a clear code', () => {
  let dir: string;
  let secretFile: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-hostile-'));
    secretFile = path.join(dir, 'secret.txt');
    writeFileSync(secretFile, SECRET_MARKER);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  function corpus(): Record<string, { xml: string | Buffer; code: string }> {
    const secretUrl = `file://${secretFile}`;
    const laughs = [
      '<!ENTITY lol "lol">',
      ...Array.from(
        { length: 9 },
        (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`,
      ),
    ].join('\n');
    return {
      'XXE to a local file': {
        xml: `<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "${secretUrl}">]>\n<r>&xxe;</r>`,
        code: 'AMT_XML_DOCTYPE_FORBIDDEN',
      },
      'XXE through a parameter entity': {
        xml: `<!DOCTYPE r [<!ENTITY % p SYSTEM "${secretUrl}"> %p;]><r/>`,
        code: 'AMT_XML_DOCTYPE_FORBIDDEN',
      },
      'billion laughs': {
        xml: `<!DOCTYPE lolz [\n${laughs}\n]>\n<lolz>&lol9;</lolz>`,
        code: 'AMT_XML_DOCTYPE_FORBIDDEN',
      },
      'a plain DOCTYPE': { xml: '<!DOCTYPE r SYSTEM "r.dtd"><r/>', code: 'AMT_XML_DOCTYPE_FORBIDDEN' },
      'a DOCTYPE hidden behind a processing instruction holding "<!--"': {
        xml: '<?pi <!-- ?><!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>',
        code: 'AMT_XML_DOCTYPE_FORBIDDEN',
      },
      '10,000-deep nesting': { xml: '<a>'.repeat(10_000) + '</a>'.repeat(10_000), code: 'AMT_XML_TOO_DEEP' },
      'an unbound prefix': { xml: '<r><p:x/></r>', code: 'AMT_XML_MALFORMED' },
      'invalid UTF-8': {
        xml: Buffer.concat([
          Buffer.from('<r>\n<name>M'),
          Buffer.from([0xc3, 0x28]),
          Buffer.from('ller</name></r>'),
        ]),
        code: 'AMT_XML_ENCODING_INVALID',
      },
      'an overlong UTF-8 encoding of "<"': {
        xml: Buffer.concat([Buffer.from('<r>'), Buffer.from([0xc0, 0xbc]), Buffer.from('x/></r>')]),
        code: 'AMT_XML_ENCODING_INVALID',
      },
      'a UTF-16 document': { xml: Buffer.from('\ufeff<r/>', 'utf16le'), code: 'AMT_XML_ENCODING_INVALID' },
      'a non-UTF-8 encoding declaration': {
        xml: '<?xml version="1.0" encoding="ISO-8859-1"?><r/>',
        code: 'AMT_XML_ENCODING_INVALID',
      },
      'an undefined entity': { xml: '<r>&nbsp;</r>', code: 'AMT_XML_MALFORMED' },
    };
  }

  it('rejects every corpus document in the reader (saxes) with its code', () => {
    for (const [name, { xml, code }] of Object.entries(corpus())) {
      const err = rejection(() => readXml(xml));
      expect(err.code, name).to.equal(code);
      expect(everythingSaid(err), name).to.not.contain(SECRET_MARKER);
    }
  });

  it('rejects every corpus document in the validator (libxml2) with its code', () => {
    for (const [name, { xml, code }] of Object.entries(corpus())) {
      const err = rejection(() => validateXml(xml, 'xdomea-3.0.0'));
      expect(err.code, name).to.equal(code);
      expect(everythingSaid(err), name).to.not.contain(SECRET_MARKER);
    }
  });

  it('reports the line of invalid UTF-8 and of a DOCTYPE', () => {
    expect(rejection(() => readXml(corpus()['invalid UTF-8']!.xml)).problems[0]!.path).to.equal('line 2');
    expect(rejection(() => readXml(corpus()['XXE to a local file']!.xml)).problems[0]!.path).to.equal(
      'line 2',
    );
  });

  it('never substitutes entities even if a DOCTYPE got past the guard (parse options without NOENT)', () => {
    expect(DOCUMENT_PARSE_OPTIONS & ParseOption.XML_PARSE_NOENT).to.equal(0);
    expect(DOCUMENT_PARSE_OPTIONS & ParseOption.XML_PARSE_DTDLOAD).to.equal(0);
    expect(DOCUMENT_PARSE_OPTIONS & ParseOption.XML_PARSE_NO_XXE).to.not.equal(0);
    const xxe = corpus()['XXE to a local file']!.xml as string;
    const doc = XmlDocument.fromString(xxe, { option: DOCUMENT_PARSE_OPTIONS });
    try {
      expect(doc.toString()).to.not.contain(SECRET_MARKER);
      expect(doc.root.content).to.not.contain(SECRET_MARKER);
    } finally {
      doc.dispose();
    }
  });

  it('hands libxml2 no DOCTYPE-bearing document and never NOENT', () => {
    const calls: { source: string; option: number }[] = [];
    const fromBuffer = XmlDocument.fromBuffer;
    const fromString = XmlDocument.fromString;
    XmlDocument.fromBuffer = (source, options = {}) => {
      calls.push({ source: Buffer.from(source).toString('utf8'), option: options.option ?? 0 });
      return fromBuffer.call(XmlDocument, source, options);
    };
    XmlDocument.fromString = (source, options = {}) => {
      calls.push({ source, option: options.option ?? 0 });
      return fromString.call(XmlDocument, source, options);
    };
    try {
      for (const { xml } of Object.values(corpus())) {
        for (const set of ['xdomea-3.0.0', 'xbeteiligung-1.2', 'xta-2']) {
          try {
            validateXml(xml, set);
          } catch {
            // rejected — what matters is what reached libxml2
          }
        }
      }
      const fixtures = path.resolve('test/fixtures/xdomea');
      for (const file of readdirSync(fixtures)) validateXml(readFileSync(path.join(fixtures, file)));
    } finally {
      XmlDocument.fromBuffer = fromBuffer;
      XmlDocument.fromString = fromString;
    }
    expect(calls.length).to.be.greaterThan(4);
    for (const call of calls) {
      expect(call.option & ParseOption.XML_PARSE_NOENT).to.equal(0);
      expect(call.option & ParseOption.XML_PARSE_DTDLOAD).to.equal(0);
      expect(call.option & ParseOption.XML_PARSE_NO_XXE).to.not.equal(0);
      const outsideComments = call.source.replace(/<!--[\s\S]*?-->/g, '');
      expect(outsideComments).to.not.match(/<!DOCTYPE|<!ENTITY/i);
    }
  });

  describe('a 100 MB document', () => {
    const HUNDRED_MB = 100 * 1024 * 1024;

    it('is rejected by the size limit before any parser sees it', () => {
      const calls: number[] = [];
      const fromBuffer = XmlDocument.fromBuffer;
      XmlDocument.fromBuffer = (source, options) => {
        calls.push(source.byteLength);
        return fromBuffer.call(XmlDocument, source, options);
      };
      // One buffer, filled in place: '<r>' + text + '</r>' — never copied by the test.
      const huge = Buffer.alloc(HUNDRED_MB, 0x61);
      huge.write('<r>', 0);
      huge.write('</r>', HUNDRED_MB - 4);
      try {
        expect(rejection(() => readXml(huge)).code).to.equal('AMT_XML_TOO_LARGE');
        expect(rejection(() => validateXml(huge, 'xdomea-3.0.0')).code).to.equal('AMT_XML_TOO_LARGE');
      } finally {
        XmlDocument.fromBuffer = fromBuffer;
      }
      expect(calls).to.deep.equal([]);
    });

    it('arriving as a stream is refused once the limit is passed, without reading the rest', async () => {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const totalChunks = HUNDRED_MB / chunk.length;
      let produced = 0;
      const stream = Readable.from(
        (function* () {
          yield Buffer.from('<r>');
          for (; produced < totalChunks; produced++) yield chunk;
          yield Buffer.from('</r>');
        })(),
      );
      const limit = 8 * 1024 * 1024;
      try {
        await collectXml(stream, limit);
        expect.fail('should be rejected');
      } catch (err) {
        expect(isAmtError(err) && err.code).to.equal('AMT_XML_TOO_LARGE');
      }
      expect(produced).to.be.lessThan(totalChunks / 4);
    });
  });
});
