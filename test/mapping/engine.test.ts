import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { isAmtError } from '../../src/errors.js';
import type { AmtError } from '../../src/errors.js';
import {
  clearMappingCache,
  compileMappingText,
  loadMapping,
  loadMappingStep,
  toCompiledMapping,
} from '../../src/mapping/index.js';
import type { MappingResult } from '../../src/mapping/index.js';
import type { MappingInput } from '../../src/pipeline/mapping-step.js';
import { canonicalForm } from '../../src/xml/canonical.js';
import { readXml } from '../../src/xml/read.js';

function input(application: unknown, attachments: MappingInput['attachments'] = []): MappingInput {
  return {
    application,
    message: {
      id: 'a1b2c3d4-0000-4000-8000-000000000001',
      deliveryId: 'd1e2f3a4-0000-4000-8000-000000000002',
      tenant: { id: 'dortmund', name: 'Stadt Dortmund', ars: '059130000000' },
      service: '99058013001000',
      reference: 'R-1',
      receivedAt: Date.parse('2024-05-02T08:15:00Z'),
    },
    attachments,
  };
}

function compile(text: string) {
  return toCompiledMapping(compileMappingText(text, '/mappings/test/engine.mapping.yaml'));
}

async function mapJson(text: string, application: unknown, attachments: MappingInput['attachments'] = []) {
  const result = await compile(text).map(input(application, attachments));
  return result.json;
}

async function failure(run: () => unknown): Promise<AmtError> {
  try {
    await run();
  } catch (err) {
    if (isAmtError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

const JSON_HEAD = 'source: { format: json }\ntarget: { format: json }\n';

describe('mapping engine', () => {
  describe('JSON → JSON', () => {
    it('maps paths, constants, templates and defaults; leaves out what is empty', async () => {
      const json = await mapJson(
        `${JSON_HEAD}rules:
  - { to: person.name, template: '{application.familyName}, {application.givenName}' }
  - { to: person.title, from: application.title }
  - { to: person.country, from: application.country, default: DE }
  - { to: kind, value: Bewohnerparken }
  - { to: tenant, from: message.tenant.ars }
  - { to: hint, template: 'Hinweis: {application.hint}' }
`,
        { familyName: 'Mustermann', givenName: 'Erika', title: '' },
      );
      expect(json).to.deep.equal({
        person: { name: 'Mustermann, Erika', country: 'DE' },
        kind: 'Bewohnerparken',
        tenant: '059130000000',
      });
    });

    it('evaluates conditions: exists, equals, in, matches, not, all, any', async () => {
      const text = `${JSON_HEAD}rules:
  - { to: a, value: x, when: application.plate }
  - { to: b, value: x, when: { path: application.kind, equals: PKW } }
  - { to: c, value: x, when: { path: application.kind, in: [LKW, KRAD] } }
  - { to: d, value: x, when: { path: application.email, matches: '^[^@]+@[^@]+$' } }
  - { to: e, value: x, when: { not: application.plate } }
  - { to: f, value: x, when: { all: [application.plate, { path: application.kind, equals: PKW }] } }
  - { to: g, value: x, when: { any: [{ path: application.kind, equals: LKW }, { path: application.plate, exists: false }] } }
`;
      expect(await mapJson(text, { plate: 'DO-EM 1', kind: 'PKW', email: 'e@example.org' })).to.deep.equal({
        a: 'x',
        b: 'x',
        d: 'x',
        f: 'x',
      });
      expect(await mapJson(text, { kind: 'KRAD', email: 'kaputt' })).to.deep.equal({
        c: 'x',
        e: 'x',
        g: 'x',
      });
    });

    it('repeats groups over lists with $, $index, $position and root paths; filters items by when', async () => {
      const json = await mapJson(
        `${JSON_HEAD}rules:
  - to: documents
    each: attachments
    when: { path: mediaType, equals: application/pdf }
    rules:
      - { to: position, from: $position, transform: number }
      - { to: index, from: $index }
      - { to: name, from: filename }
      - { to: case, from: $.application.reference }
      - { to: delivery, from: $message.deliveryId }
  - to: tags
    each: application.tags
    rules:
      - { to: tag, from: $, transform: upper }
`,
        { reference: 'R-7', tags: ['a', 'b'] },
        [
          { sha256: '1', size: 1, filename: 'a.pdf', mediaType: 'application/pdf' },
          { sha256: '2', size: 1, filename: 'b.png', mediaType: 'image/png' },
          { sha256: '3', size: 1, filename: 'c.pdf', mediaType: 'application/pdf' },
        ],
      );
      expect(json).to.deep.equal({
        documents: [
          {
            position: 1,
            index: 0,
            name: 'a.pdf',
            case: 'R-7',
            delivery: 'd1e2f3a4-0000-4000-8000-000000000002',
          },
          {
            position: 3,
            index: 2,
            name: 'c.pdf',
            case: 'R-7',
            delivery: 'd1e2f3a4-0000-4000-8000-000000000002',
          },
        ],
        tags: [{ tag: 'A' }, { tag: 'B' }],
      });
    });

    it('uses at: groups as a source base and [n] to fill sibling instances', async () => {
      const json = await mapJson(
        `${JSON_HEAD}rules:
  - to: address
    at: application.applicant.address
    rules:
      - { to: line, template: '{street} {houseNumber}' }
      - { to: city, from: city }
  - { to: 'phones[1].number', from: application.applicant.phone }
  - { to: 'phones[2].number', from: application.applicant.mobile }
`,
        {
          applicant: {
            address: { street: 'Burgwall', houseNumber: '14', city: 'Dortmund' },
            phone: '1',
            mobile: '2',
          },
        },
      );
      expect(json).to.deep.equal({
        address: { line: 'Burgwall 14', city: 'Dortmund' },
        phones: [{ number: '1' }, { number: '2' }],
      });
    });

    it('collects every failed rule with target, source, item and file:line', async () => {
      const text = `${JSON_HEAD}rules:
  - { to: name, from: application.familyName, required: true }
  - { to: born, from: application.birthDate, transform: dateDeToIso }
  - to: files
    each: attachments
    rules:
      - { to: type, from: mediaType, transform: { lookup: types } }
lookups:
  types: { application/pdf: PDF }
`;
      const err = await failure(() =>
        compile(text).map(
          input({ birthDate: '30.02.2000' }, [
            { sha256: '1', size: 1, filename: 'a.pdf', mediaType: 'application/pdf' },
            { sha256: '2', size: 1, filename: 'b.exe', mediaType: 'application/x-msdownload' },
          ]),
        ),
      );
      expect(err.code).to.equal('AMT_MAPPING_FAILED');
      expect(err.problems.map((p) => `${p.path}: ${p.message}`)).to.deep.equal([
        'name: required value missing at application.familyName — rules[0] at /mappings/test/engine.mapping.yaml:4',
        'born: "30.02.2000" is not a calendar date — rules[1] at /mappings/test/engine.mapping.yaml:5',
        'files.type: "application/x-msdownload" is not in lookup table "types" (attachments[1]) — rules[2].rules[0] at /mappings/test/engine.mapping.yaml:9',
      ]);
    });
  });

  describe('JSON → XML', () => {
    const XML_HEAD = `source: { format: json }
target:
  format: xml
  root: p:Antrag
  namespaces: { p: 'urn:example:antrag' }
codelists:
  art:
    listURI: urn:example:codeliste:art
    listVersionID: '2'
    codes: { '01': Erstantrag, '02': Verlängerung }
`;

    it('writes namespaces, attributes, code-typed values, repeated and instance elements in rule order', async () => {
      const result = (await compile(
        `${XML_HEAD}rules:
  - { to: '@version', value: '1.0' }
  - { to: p:Kopf/p:ID, from: message.id }
  - { to: p:Art, from: application.art, code: art, codeName: true }
  - { to: 'p:Telefon[1]', from: application.phone }
  - { to: 'p:Telefon[2]', from: application.mobile }
  - to: p:Anlage
    each: attachments
    rules:
      - { to: '@nr', from: $position }
      - { to: p:Name, from: filename }
  - { to: p:Ort, from: application.city }
`,
      ).map(
        input({ art: '02', phone: '0231 1', mobile: '0170 2', city: 'Dortmund & Umgebung' }, [
          { sha256: '1', size: 1, filename: 'a.pdf', mediaType: 'application/pdf' },
          { sha256: '2', size: 1, filename: 'b.pdf', mediaType: 'application/pdf' },
        ]),
      )) as MappingResult;
      expect(result.contentType).to.equal('application/xml; charset=utf-8');
      const expected = readXml(`<x:Antrag xmlns:x="urn:example:antrag" version="1.0">
  <x:Kopf><x:ID>a1b2c3d4-0000-4000-8000-000000000001</x:ID></x:Kopf>
  <x:Art listURI="urn:example:codeliste:art" listVersionID="2"><code>02</code><name>Verlängerung</name></x:Art>
  <x:Telefon>0231 1</x:Telefon>
  <x:Telefon>0170 2</x:Telefon>
  <x:Anlage nr="1"><x:Name>a.pdf</x:Name></x:Anlage>
  <x:Anlage nr="2"><x:Name>b.pdf</x:Name></x:Anlage>
  <x:Ort>Dortmund &amp; Umgebung</x:Ort>
</x:Antrag>`);
      expect(canonicalForm(readXml(result.content))).to.equal(canonicalForm(expected));
      expect(result.content).to.contain('<p:Antrag xmlns:p="urn:example:antrag"');
    });

    it('refuses a code that is not in its list', async () => {
      const err = await failure(() =>
        compile(`${XML_HEAD}rules:\n  - { to: p:Art, from: application.art, code: art }\n`).map(
          input({ art: '03' }),
        ),
      );
      expect(err.code).to.equal('AMT_MAPPING_FAILED');
      expect(err.problems[0]!.message).to.contain(
        'code "03" is not in code list art (urn:example:codeliste:art)',
      );
    });

    it('refuses a list where XML needs text', async () => {
      const err = await failure(() =>
        compile(`${XML_HEAD}rules:\n  - { to: p:Name, from: [application.a, application.b] }\n`).map(
          input({ a: 'x', b: 'y' }),
        ),
      );
      expect(err.problems[0]!.message).to.contain(
        'a list, which is no XML text (use a transform such as join)',
      );
    });
  });

  describe('XML → JSON', () => {
    const XML_SOURCE = `source:
  format: xml
  root: a:Antrag
  namespaces: { a: 'urn:example:antrag', k: 'urn:example:kopf' }
target: { format: json }
rules:
  - { to: id, from: k:Kopf/k:ID }
  - { to: ars, from: '@ars' }
  - { to: type, from: a:Art/code }
  - { to: typeList, from: a:Art/@listURI }
  - to: files
    each: a:Anlage
    rules:
      - { to: nr, from: '@nr', transform: number }
      - { to: name, from: a:Name }
`;

    it('reads by namespace URI, whatever prefixes the sender used; text stays text', async () => {
      const documents = [
        `<a:Antrag xmlns:a="urn:example:antrag" xmlns:k="urn:example:kopf" ars="059130000000"><k:Kopf><k:ID>7</k:ID></k:Kopf><a:Art listURI="urn:l"><code>01</code></a:Art><a:Anlage nr="1"><a:Name>x.pdf</a:Name></a:Anlage><a:Anlage nr="2"><a:Name>y.pdf</a:Name></a:Anlage></a:Antrag>`,
        `<Antrag xmlns="urn:example:antrag" ars="059130000000"><q:Kopf xmlns:q="urn:example:kopf"><q:ID>7</q:ID></q:Kopf><Art listURI="urn:l"><code xmlns="">01</code></Art><Anlage nr="1"><Name>x.pdf</Name></Anlage><Anlage nr="2"><Name>y.pdf</Name></Anlage></Antrag>`,
      ];
      for (const xml of documents) {
        const result = await compile(XML_SOURCE).map(input(xml));
        expect(result.json).to.deep.equal({
          id: '7',
          ars: '059130000000',
          type: '01',
          typeList: 'urn:l',
          files: [
            { nr: 1, name: 'x.pdf' },
            { nr: 2, name: 'y.pdf' },
          ],
        });
      }
    });

    it('does not match an element in another namespace with the same prefix-less name', async () => {
      const result = await compile(XML_SOURCE).map(
        input('<a:Antrag xmlns:a="urn:example:antrag"><Kopf><ID>7</ID></Kopf></a:Antrag>'),
      );
      expect(result.json).to.deep.equal({});
    });

    it('refuses the wrong root element and non-XML input', async () => {
      const wrongRoot = await failure(() =>
        compile(XML_SOURCE).map(input('<a:Anderes xmlns:a="urn:example:antrag"/>')),
      );
      expect(wrongRoot.code).to.equal('AMT_MAPPING_FAILED');
      const notXml = await failure(() => compile(XML_SOURCE).map(input({ kein: 'xml' })));
      expect(notXml.problems[0]!.message).to.contain('expected the XML document as text');
    });
  });

  describe('JSONata for the rare complex field', () => {
    const text = `${JSON_HEAD}rules:
  - { to: total, jsonata: '$sum(application.items.price)' }
  - { to: first, from: 'application.items[0].name' }
  - to: lines
    each: application.items
    rules:
      - { to: label, jsonata: 'name & " (" & $string($index + 1) & ")"' }
`;

    it('evaluates asynchronously and mixes with ordinary rules', async () => {
      const mapping = compile(text);
      expect(mapping.definition.async).to.equal(true);
      const pending = mapping.map(
        input({
          items: [
            { name: 'A', price: 2 },
            { name: 'B', price: 3.5 },
          ],
        }),
      );
      expect(pending).to.be.instanceOf(Promise);
      expect((await pending).json).to.deep.equal({
        total: 5.5,
        first: 'A',
        lines: [{ label: 'A (1)' }, { label: 'B (2)' }],
      });
    });

    it('reports a JSONata runtime error as a mapping failure', async () => {
      const err = await failure(() =>
        compile(`${JSON_HEAD}rules:\n  - { to: x, jsonata: '$number("abc")' }\n`).map(input({})),
      );
      expect(err.code).to.equal('AMT_MAPPING_FAILED');
      expect(err.problems[0]!.message).to.contain('jsonata');
    });

    it('refuses a JSONata syntax error at compile time', async () => {
      const err = await failure(() => compile(`${JSON_HEAD}rules:\n  - { to: x, jsonata: 'a.(' }\n`));
      expect(err.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
      expect(err.problems[0]!.message).to.contain('jsonata: ');
    });
  });

  describe('the pipeline step (loadMappingStep)', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-step-'));
    });
    after(() => {
      clearMappingCache();
      rmSync(dir, { recursive: true, force: true });
    });

    const XDOMEA = `source: { format: json }
target:
  format: xml
  root: xdomea:Aussonderung.AnbietungEmpfangBestaetigen.0504
  namespaces: { xdomea: 'urn:xoev-de:xdomea:schema:3.0.0' }
  schemaSet: xdomea-3.0.0
rules:
  - xdomeaKopf:
      nachrichtentyp: '0504'
      erstellungszeitpunkt: { from: application.created }
      absender: { institution: Portal }
      empfaenger: { institution: { from: message.tenant.name } }
`;

    it('compiles once per path: the same step, working after the file is gone', async () => {
      const file = path.join(dir, 'once.mapping.yaml');
      writeFileSync(file, XDOMEA);
      const first = await loadMappingStep(file);
      const second = await loadMappingStep(path.join(dir, '.', 'once.mapping.yaml'));
      expect(second).to.equal(first);
      unlinkSync(file);
      const body = await first(input({ created: '2024-05-02T08:15:00Z' }));
      expect(String(body.content)).to.contain('<xdomea:Aussonderung.AnbietungEmpfangBestaetigen.0504');
      expect((await loadMapping(file)).definition.name).to.equal('once');
    });

    it('does not compile a broken file again until it changes, then picks up the fix at once', async () => {
      const file = path.join(dir, 'broken-then-fixed.mapping.yaml');
      writeFileSync(file, XDOMEA.replace('erstellungszeitpunkt: { from:', 'erstellungszeitpunkt: { frm:'));
      const first = await failure(() => loadMapping(file));
      expect(first.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
      // Unchanged, so the same failure: compiling costs the main thread tens of milliseconds,
      // which every claim of the route's applications and every readiness probe would pay.
      expect(await failure(() => loadMapping(file))).to.equal(first);
      expect(await failure(() => loadMapping(file))).to.equal(first);
      writeFileSync(file, XDOMEA);
      expect((await loadMapping(file)).definition.name).to.equal('broken-then-fixed');
    });

    it('throws AMT_XML_INVALID with line and XPath when the output is not valid', async () => {
      const file = path.join(dir, 'invalid.mapping.yaml');
      writeFileSync(file, XDOMEA);
      const step = await loadMappingStep(file);
      const err = await failure(() => step(input({ created: 'gestern' })));
      expect(err.code).to.equal('AMT_XML_INVALID');
      expect(err.retryable).to.equal(false);
      expect(err.problems).to.deep.include({
        path: '/xdomea:Aussonderung.AnbietungEmpfangBestaetigen.0504/xdomea:Kopf/xdomea:Erstellungszeitpunkt',
        message:
          "line 1: Element '{urn:xoev-de:xdomea:schema:3.0.0}Erstellungszeitpunkt': 'gestern' is not a valid value of the atomic type 'xs:dateTime'.",
      });
    });

    it('throws AMT_MAPPING_FAILED rather than passing anything on when a rule fails', async () => {
      const file = path.join(dir, 'failing.mapping.yaml');
      writeFileSync(
        file,
        XDOMEA.replace(
          'absender: { institution: Portal }',
          'absender: { institution: { from: application.portal, required: true } }',
        ),
      );
      const step = await loadMappingStep(file);
      const err = await failure(() => step(input({ created: '2024-05-02T08:15:00Z' })));
      expect(err.code).to.equal('AMT_MAPPING_FAILED');
      expect(err.problems[0]!.path).to.equal('xdomea:Kopf/xdomea:Absender/xdomea:Institution/xdomea:Name');
    });
  });
});
