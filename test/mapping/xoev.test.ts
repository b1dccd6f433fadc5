import { expect } from 'chai';
import {
  codeElement,
  compileMappingText,
  g2gHeaderElement,
  toCompiledMapping,
} from '../../src/mapping/index.js';
import type { MappingInput } from '../../src/pipeline/mapping-step.js';
import { canonicalForm } from '../../src/xml/canonical.js';
import { readXml } from '../../src/xml/read.js';
import { validateXml } from '../../src/xml/validate.js';
import { writeXml } from '../../src/xml/write.js';

const input: MappingInput = {
  application: { sender: 'psw' },
  message: {
    id: 'm-1',
    deliveryId: '0c1d2e3f-4a5b-4c6d-8e7f-901234567890',
    tenant: { id: 'dortmund', name: 'Stadt Dortmund', ars: '059130000000' },
    service: '99000000000000',
    reference: undefined,
    receivedAt: 0,
  },
  attachments: [],
};
const now = () => new Date('2024-05-02T08:15:03Z');

describe('XÖV helpers', () => {
  it('fills the older generation header: nachrichtenkopf with behoerdenkennung {praefix, kennung}', async () => {
    const mapping = toCompiledMapping(
      compileMappingText(
        `source: { format: json }
target:
  format: xml
  root: xmeld:datenabruf.anfrage.1300
  namespaces: { xmeld: 'http://www.osci.de/xmeld2514a' }
rules:
  - xoevRootAttributes: { standard: XMeld, version: '25.14' }
  - legacyHeader:
      to: xmeld:nachrichtenkopf
      nachrichtentyp: { code: '1300', listURI: 'urn:de:xmeld:codeliste:nachrichtentyp', listVersionID: '2.0' }
      leser:
        praefix: { code: psw, listURI: 'urn:de:xoev:codeliste:behoerdenkennung.praefix', listVersionID: '1' }
        kennung: { code: { from: message.tenant.ars }, listURI: 'urn:de:xoev:codeliste:ags', listVersionID: '1' }
      autor:
        praefix: { code: { from: application.sender } }
        kennung: { code: '05315000' }
`,
        '/mappings/test/legacy.mapping.yaml',
      ),
    );
    const result = await mapping.map(input, { now });
    const expected = `<x:datenabruf.anfrage.1300 xmlns:x="http://www.osci.de/xmeld2514a"
        produkt="amtsbote" produkthersteller="amtsbote" produktversion="${/produktversion="([^"]+)"/.exec(result.content)?.[1]}"
        standard="XMeld" version="25.14">
  <x:nachrichtenkopf>
    <x:identifikation.nachricht>
      <x:nachrichtenUUID>${/nachrichtenUUID>([^<]+)</.exec(result.content)?.[1]}</x:nachrichtenUUID>
      <x:nachrichtentyp listURI="urn:de:xmeld:codeliste:nachrichtentyp" listVersionID="2.0"><code>1300</code></x:nachrichtentyp>
      <x:erstellungszeitpunkt>2024-05-02T08:15:03Z</x:erstellungszeitpunkt>
    </x:identifikation.nachricht>
    <x:leser><x:behoerdenkennung>
      <x:praefix listURI="urn:de:xoev:codeliste:behoerdenkennung.praefix" listVersionID="1"><code>psw</code></x:praefix>
      <x:kennung listURI="urn:de:xoev:codeliste:ags" listVersionID="1"><code>059130000000</code></x:kennung>
    </x:behoerdenkennung></x:leser>
    <x:autor><x:behoerdenkennung>
      <x:praefix><code>psw</code></x:praefix>
      <x:kennung><code>05315000</code></x:kennung>
    </x:behoerdenkennung></x:autor>
  </x:nachrichtenkopf>
</x:datenabruf.anfrage.1300>`;
    expect(canonicalForm(readXml(result.content))).to.equal(canonicalForm(readXml(expected)));
    expect(result.content).to.match(/nachrichtenUUID>[0-9a-f-]{36}</);
    expect(result.content).to.match(/produktversion="\d+\.\d+\.\d+"/);
  });

  it('derives the message UUID from the delivery id, so a re-delivery repeats it', async () => {
    const text = `source: { format: json }
target: { format: xml, root: 'x:n', namespaces: { x: 'urn:x' } }
rules:
  - legacyHeader: { to: x:nachrichtenkopf, nachrichtentyp: '0001' }
`;
    const mapping = toCompiledMapping(compileMappingText(text, '/mappings/test/uuid.mapping.yaml'));
    const a = (await mapping.map(input, { now })).content;
    const b = (await mapping.map(input, { now: () => new Date() })).content;
    expect(/nachrichtenUUID>([^<]+)</.exec(a)?.[1]).to.equal(/nachrichtenUUID>([^<]+)</.exec(b)?.[1]);
  });

  it('builds a g2g 1.1 header in code that the real XSD accepts', () => {
    const header = g2gHeaderElement({
      nachrichtenUUID: '6b1e0c55-1f0d-4a4e-9b7a-0c8f2d3e4a51',
      nachrichtentyp: {
        code: '0701',
        listURI: 'urn:xoev-de:xleitstelle:codeliste:xbeteiligung-nachrichten',
        listVersionID: '1.2',
      },
      erstellungszeitpunkt: '2024-05-06T09:30:00+02:00',
      leser: { verzeichnisdienst: { code: 'DVDV', listVersionID: '2' }, kennung: 'a:1', name: 'Leser' },
      autor: { verzeichnisdienst: { code: 'DVDV', listVersionID: '2' }, kennung: 'b:2', name: 'Autor' },
    });
    const root = {
      ...header,
      declarations: {
        g2g: 'http://xoev.de/schemata/basisnachricht/g2g/1_1',
        beh: 'http://xoev.de/schemata/basisnachricht/behoerde/1_1',
      },
    };
    const result = validateXml(writeXml(root), 'xbeteiligung-1.2');
    expect(result.errors).to.deep.equal([]);
    expect(result.valid).to.equal(true);
    // and a header missing its verzeichnisdienst version is refused by that XSD
    const broken = writeXml({
      ...root,
      children: root.children.map((child) =>
        child.kind === 'element' && child.local === 'leser'
          ? {
              ...child,
              children: [
                codeElement('beh:verzeichnisdienst', 'http://xoev.de/schemata/basisnachricht/behoerde/1_1', {
                  code: 'DVDV',
                }),
                ...child.children.slice(1),
              ],
            }
          : child,
      ),
    });
    const invalid = validateXml(broken, 'xbeteiligung-1.2');
    expect(invalid.valid).to.equal(false);
    expect(invalid.errors[0]!.message).to.contain("attribute 'listVersionID' is required");
  });
});
