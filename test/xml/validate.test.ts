import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { isAmtError } from '../../src/errors.js';
import { readXml } from '../../src/xml/read.js';
import { validateXml } from '../../src/xml/validate.js';
import { writeXml } from '../../src/xml/write.js';

const FIXTURES = path.resolve('test/fixtures/xdomea');
const EXAMPLES = readdirSync(FIXTURES).filter((f) => f.endsWith('.xml'));
const EXAMPLE_0504 = path.join(FIXTURES, 'xx_Aussonderung.AnbietungEmpfangBestaetigen.0504.xml');

function lineOf(text: string, needle: string): number {
  const index = text.indexOf(needle);
  if (index < 0) throw new Error(`fixture does not contain ${needle}`);
  return text.slice(0, index).split('\n').length;
}

describe('XSD validation (libxml2-wasm, schemas/ catalog)', () => {
  it('knows the four real xdomea examples', () => {
    expect(EXAMPLES).to.have.length(4);
  });

  for (const file of EXAMPLES) {
    it(`validates ${file} against xdomea 3.0.0, picked by its root namespace`, () => {
      const result = validateXml(readFileSync(path.join(FIXTURES, file)));
      expect(result.errors).to.deep.equal([]);
      expect(result.valid).to.equal(true);
      expect(result.schemaSet).to.equal('xdomea-3.0.0');
    });

    it(`${file} stays valid after a parse → write round trip`, () => {
      const written = writeXml(readXml(readFileSync(path.join(FIXTURES, file))));
      expect(written).to.not.equal(readFileSync(path.join(FIXTURES, file), 'utf8'));
      const result = validateXml(written, 'xdomea-3.0.0');
      expect(result.errors).to.deep.equal([]);
      expect(result.valid).to.equal(true);
    });
  }

  it('reports every error of a corrupted copy with its line and XPath', () => {
    const original = readFileSync(EXAMPLE_0504, 'utf8');
    const corrupted = original
      .replace('<xdomea:Erstellungszeitpunkt>2018-07-24T17:21:25', '<xdomea:Erstellungszeitpunkt>24.07.2018')
      .replace('<code>0501</code>', '<code>0501</code><unerwartet/>');
    const result = validateXml(corrupted, 'xdomea-3.0.0', { source: 'corrupted.xml' });
    expect(result.valid).to.equal(false);
    expect(result.errors).to.have.length(2);
    const [unexpected, badDate] = result.errors;
    expect(unexpected!.line).to.equal(lineOf(corrupted, '<unerwartet/>'));
    expect(unexpected!.path).to.equal(
      '/xdomea:Aussonderung.AnbietungEmpfangBestaetigen.0504/xdomea:Kopf/xdomea:Nachrichtentyp/unerwartet',
    );
    expect(badDate!.line).to.equal(lineOf(corrupted, '24.07.2018'));
    expect(badDate!.message).to.contain('dateTime');
    expect(badDate!.path).to.match(/xdomea:Kopf\/xdomea:Erstellungszeitpunkt$/);
  });

  it('reports a missing required element', () => {
    const original = readFileSync(EXAMPLE_0504, 'utf8');
    const withoutId = original.replace(/<xdomea:ProzessID>[^<]*<\/xdomea:ProzessID>/, '');
    const result = validateXml(withoutId);
    expect(result.valid).to.equal(false);
    expect(result.errors[0]!.message).to.contain('Nachrichtentyp');
    expect(result.errors[0]!.message).to.contain('ProzessID');
  });

  it('compiles the XBeteiligung 1.2 set and the XTA 2 set offline', () => {
    const xbeteiligung = validateXml(
      '<b:kommunal.Initiieren.0401 xmlns:b="https://www.xleitstelle.de/xbeteiligung/12"/>',
    );
    expect(xbeteiligung.schemaSet).to.equal('xbeteiligung-1.2');
    expect(xbeteiligung.errors.map((e) => e.message).join('\n')).to.contain(
      "attribute 'produkt' is required",
    );
    const xta = validateXml('<x:PermissionDeniedException xmlns:x="http://xoev.de/transport/xta/211"/>');
    expect(xta.schemaSet).to.equal('xta-2');
    expect(xta.errors[0]!.message).to.contain('errorCode');
    const osci = validateXml(
      '<x:GenericContentContainer xmlns:x="http://xoev.de/transport/xta/211"/>',
      'xta-2',
    );
    expect(osci.errors[0]!.message).to.contain('ContentContainer');
  });

  it('refuses an unknown schema set and a namespace no set covers', () => {
    for (const run of [
      () => validateXml('<a/>', 'xmeld-9'),
      () => validateXml('<a xmlns="urn:unbekannt"/>'),
    ]) {
      try {
        run();
        expect.fail('should throw');
      } catch (err) {
        expect(isAmtError(err) && err.code).to.equal('AMT_SCHEMA_SET_UNKNOWN');
      }
    }
  });

  it('reports a document that is not well-formed as AMT_XML_MALFORMED with its line', () => {
    try {
      validateXml('<a xmlns="urn:xoev-de:xdomea:schema:3.0.0">\n<b>\n</a>');
      expect.fail('should throw');
    } catch (err) {
      expect(isAmtError(err) && err.code).to.equal('AMT_XML_MALFORMED');
      expect(isAmtError(err) && err.problems[0]!.path).to.equal('line 3');
    }
  });
});
