import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { isAmtError } from '../../src/errors.js';
import { canonicalForm } from '../../src/xml/canonical.js';
import { readXml } from '../../src/xml/read.js';
import { attributeOf, findChild, findChildren, textOf } from '../../src/xml/tree.js';
import type { XmlElement } from '../../src/xml/tree.js';
import { writeXml, writeXmlWithBuilder } from '../../src/xml/write.js';

const FIXTURES = path.resolve('test/fixtures/xdomea');
const XDOMEA = 'urn:xoev-de:xdomea:schema:3.0.0';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isAmtError(err)) return err.code;
    throw err;
  }
  throw new Error('expected an AmtError');
}

describe('xml reading and writing', () => {
  it('matches elements by namespace URI, whatever prefix the sender chose', () => {
    const a = readXml(
      '<x:Kopf xmlns:x="urn:xoev-de:xdomea:schema:3.0.0"><x:ProzessID>1</x:ProzessID></x:Kopf>',
    );
    const b = readXml('<Kopf xmlns="urn:xoev-de:xdomea:schema:3.0.0"><ProzessID>1</ProzessID></Kopf>');
    for (const root of [a, b]) {
      expect(root.ns).to.equal(XDOMEA);
      expect(textOf(findChild(root, XDOMEA, 'ProzessID')!)).to.equal('1');
      expect(findChild(root, '', 'ProzessID')).to.equal(undefined);
    }
    expect(canonicalForm(a)).to.equal(canonicalForm(b));
  });

  it('keeps text as text: an ARS keeps its leading zero, true stays a string', () => {
    const root = readXml('<r><ars>059130000000</ars><flag>true</flag><n>01067</n></r>');
    expect(textOf(findChild(root, '', 'ars')!)).to.equal('059130000000');
    expect(textOf(findChild(root, '', 'flag')!)).to.equal('true');
    expect(textOf(findChild(root, '', 'n')!)).to.equal('01067');
  });

  it('reads attributes with their namespace, entities and CDATA as text, and line numbers', () => {
    const root = readXml(
      '<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n  <c listURI="urn:a" xsi:nil="false">A &amp; B</c>\n  <d><![CDATA[<kein> Tag]]></d>\n</r>',
    );
    const c = findChild(root, '', 'c')!;
    expect(attributeOf(c, '', 'listURI')).to.equal('urn:a');
    expect(attributeOf(c, 'http://www.w3.org/2001/XMLSchema-instance', 'nil')).to.equal('false');
    expect(textOf(c)).to.equal('A & B');
    expect(c.line).to.equal(2);
    expect(textOf(findChild(root, '', 'd')!)).to.equal('<kein> Tag');
  });

  it('writes escaped text and attributes that read back identically', () => {
    const tree: XmlElement = {
      kind: 'element',
      name: 'p:r',
      ns: 'urn:p',
      local: 'r',
      declarations: { p: 'urn:p' },
      attributes: [{ name: 'note', ns: '', local: 'note', value: 'a "quoted" <b> & \'c\'' }],
      children: [
        {
          kind: 'element',
          name: 'p:name',
          ns: 'urn:p',
          local: 'name',
          declarations: {},
          attributes: [],
          children: [{ kind: 'text', value: 'Müller & Söhne <GmbH> ]]>' }],
          line: 0,
        },
      ],
      line: 0,
    };
    const xml = writeXml(tree);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).to.equal(true);
    const back = readXml(xml);
    expect(canonicalForm(back)).to.equal(canonicalForm(tree));
  });

  it('refuses to write characters XML 1.0 cannot carry', () => {
    const tree: XmlElement = {
      kind: 'element',
      name: 'r',
      ns: '',
      local: 'r',
      declarations: {},
      attributes: [],
      children: [{ kind: 'text', value: 'bell \u0007' }],
      line: 0,
    };
    expect(codeOf(() => writeXml(tree))).to.equal('AMT_XML_MALFORMED');
  });

  for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.xml'))) {
    it(`round-trips the xdomea example ${file} (read → write → read) without change`, () => {
      const original = readXml(readFileSync(path.join(FIXTURES, file)));
      const written = writeXml(original, { indent: true });
      const again = readXml(written);
      expect(canonicalForm(again)).to.equal(canonicalForm(original));
      const objects = findChildren(again, XDOMEA, 'Kopf');
      expect(objects).to.have.length(1);
    });
  }

  it('writes the same XML directly as through fast-xml-parser’s XMLBuilder', () => {
    for (const file of readdirSync(FIXTURES)) {
      const tree = readXml(readFileSync(path.join(FIXTURES, file)));
      expect(canonicalForm(readXml(writeXml(tree)))).to.equal(
        canonicalForm(readXml(writeXmlWithBuilder(tree))),
      );
    }
  });

  it('keeps tabs, newlines and carriage returns in attributes and text', () => {
    const tree = readXml('<r a="x&#9;y&#10;z&#13;"><t>eins\r\nzwei</t></r>');
    expect(attributeOf(tree, '', 'a')).to.equal('x\ty\nz\r');
    const again = readXml(writeXml(tree));
    expect(attributeOf(again, '', 'a')).to.equal('x\ty\nz\r');
    expect(textOf(findChild(again, '', 't')!)).to.equal(textOf(findChild(tree, '', 't')!));
  });

  it('indents only between elements, never inside text or mixed content', () => {
    const tree = readXml('<r><a><b>1</b></a><p>Text <i>kursiv</i> mehr</p></r>');
    const indented = writeXml(tree, { indent: true });
    expect(indented).to.equal(
      '<?xml version="1.0" encoding="UTF-8"?>\n<r>\n  <a>\n    <b>1</b>\n  </a>\n  <p>Text <i>kursiv</i> mehr</p>\n</r>',
    );
    expect(canonicalForm(readXml(indented))).to.equal(canonicalForm(tree));
  });

  it('canonical form ignores prefixes, attribute order and indentation but not values', () => {
    const a = readXml('<a:r xmlns:a="urn:x" k="1" j="2">\n  <a:v>1</a:v>\n</a:r>');
    const b = readXml('<r xmlns="urn:x" j="2" k="1"><v>1</v></r>');
    const c = readXml('<r xmlns="urn:x" j="2" k="1"><v>2</v></r>');
    expect(canonicalForm(a)).to.equal(canonicalForm(b));
    expect(canonicalForm(a)).to.not.equal(canonicalForm(c));
  });
});
