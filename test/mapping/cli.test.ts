import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Command, CommanderError } from 'commander';
import { registerMappingCommands } from '../../src/mapping/cli.js';

interface Run {
  readonly out: string;
  readonly err: string;
  readonly exitCode: number;
}

async function amtsbote(...args: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const program = new Command('amtsbote');
  program.exitOverride();
  program.configureOutput({
    writeOut: (s) => {
      out += s;
    },
    writeErr: (s) => {
      err += s;
    },
  });
  registerMappingCommands(program);
  try {
    await program.parseAsync(args, { from: 'user' });
    return { out, err, exitCode: 0 };
  } catch (error) {
    if (error instanceof CommanderError) return { out, err, exitCode: error.exitCode };
    throw error;
  }
}

const EXAMPLE = 'test/fixtures/xdomea/xx_Aussonderung.AnbietungEmpfangBestaetigen.0504.xml';

describe('amtsbote validate / mapping commands', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('validate: a real xdomea example is valid (exit 0)', async () => {
    const run = await amtsbote('validate', EXAMPLE);
    expect(run.exitCode).to.equal(0);
    expect(run.out).to.equal(`${EXAMPLE}: valid against xdomea-3.0.0\n`);
  });

  it('validate: prints every error with file:line and XPath, exit 1', async () => {
    const original = readFileSync(EXAMPLE, 'utf8');
    const corrupted = original
      .replace('2018-07-24T17:21:25', 'gestern')
      .replace('<code>0501</code>', '<code>0501</code><x/>');
    const file = path.join(dir, 'corrupted.xml');
    writeFileSync(file, corrupted);
    const run = await amtsbote('validate', file, '--schema', 'xdomea-3.0.0');
    expect(run.exitCode).to.equal(1);
    const lines = corrupted.split('\n');
    const lineOf = (needle: string) => lines.findIndex((l) => l.includes(needle)) + 1;
    expect(run.out).to.contain(`${file}:${lineOf('<x/>')}: Element 'x': This element is not expected.`);
    expect(run.out).to.contain(
      `${file}:${lineOf('gestern')}: Element '{urn:xoev-de:xdomea:schema:3.0.0}Erstellungszeitpunkt'`,
    );
    expect(run.out).to.contain(
      'at /xdomea:Aussonderung.AnbietungEmpfangBestaetigen.0504/xdomea:Kopf/xdomea:Erstellungszeitpunkt',
    );
    expect(run.err).to.contain('2 error(s) against xdomea-3.0.0');
  });

  it('validate: a refused document names its code, exit 1', async () => {
    const file = path.join(dir, 'doctype.xml');
    writeFileSync(file, '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>');
    const run = await amtsbote('validate', file);
    expect(run.exitCode).to.equal(1);
    expect(run.err).to.contain('AMT_XML_DOCTYPE_FORBIDDEN');
  });

  it('mapping test: runs the shipped mappings and passes', async () => {
    const run = await amtsbote('mapping', 'test', 'mappings');
    expect(run.exitCode).to.equal(0);
    expect(run.out).to.match(
      /✔ mappings\/bewohnerparken\/bewohnerparken\.test\.yaml › a complete application/,
    );
    expect(run.out).to.match(/\n\d+ passed, 0 failed\n$/);
  });

  it('mapping test: shows a readable diff and exits 1 when a case fails', async () => {
    const mapping = path.join(dir, 'mini.mapping.yaml');
    writeFileSync(
      mapping,
      `source: { format: json }
target: { format: xml, root: 'm:Antrag', namespaces: { m: 'urn:mini' } }
rules:
  - { to: m:Name, from: application.name }
  - { to: m:Ort, from: application.city }
`,
    );
    writeFileSync(
      path.join(dir, 'mini.test.yaml'),
      `cases:
  - name: maps name and city
    input: { application: { name: Erika, city: Dortmund } }
    expect:
      xml: '<x:Antrag xmlns:x="urn:mini"><x:Name>Erika</x:Name><x:Ort>Bochum</x:Ort></x:Antrag>'
`,
    );
    const run = await amtsbote('mapping', 'test', path.join(dir, 'mini.test.yaml'));
    expect(run.exitCode).to.equal(1);
    expect(run.out).to.contain('✘');
    expect(run.out).to.match(/\n +- +m:Ort = "Bochum"\n +\+ +m:Ort = "Dortmund"\n/);
    expect(run.out).to.contain('0 passed, 1 failed');
  });

  it('mapping run: maps the sample application and prints valid XML', async () => {
    const run = await amtsbote(
      'mapping',
      'run',
      'mappings/bewohnerparken/bewohnerparken.mapping.yaml',
      'mappings/bewohnerparken/sample-application.json',
    );
    expect(run.exitCode).to.equal(0);
    expect(run.out).to.contain('<xdomea:FVDaten.SGOErstellen.0604');
    expect(run.out).to.contain('<xdomea:DateinameOriginal>Meldebescheinigung.jpg</xdomea:DateinameOriginal>');
  });

  it('mapping run: an inbound XML message prints JSON', async () => {
    const run = await amtsbote(
      'mapping',
      'run',
      'mappings/xbeteiligung-inbound/xbeteiligung-inbound.mapping.yaml',
      'mappings/xbeteiligung-inbound/sample-kommunal-initiieren-0401.xml',
    );
    expect(run.exitCode).to.equal(0);
    expect(JSON.parse(run.out).procedure.planId).to.equal('0591300000000815');
  });

  it('mapping coverage: the shipped xdomea mapping fills everything required', async () => {
    const run = await amtsbote('mapping', 'coverage', 'mappings/bewohnerparken/bewohnerparken.mapping.yaml');
    expect(run.exitCode).to.equal(0);
    expect(run.out).to.contain('fills every required element of xdomea:FVDaten.SGOErstellen.0604');
  });

  it('mapping coverage: lists what a partial mapping never fills, exit 1', async () => {
    const file = path.join(dir, 'partial.mapping.yaml');
    writeFileSync(
      file,
      `source: { format: json }
target:
  format: xml
  root: xdomea:FVDaten.SGOErstellen.0604
  namespaces: { xdomea: 'urn:xoev-de:xdomea:schema:3.0.0' }
  schemaSet: xdomea-3.0.0
rules:
  - to: xdomea:Kopf/xdomea:ProzessID
    uuid: random
  - to: xdomea:SchriftgutobjektZumErstellen/xdomea:FachverfahrenObjektID
    from: message.id
  - to: xdomea:SchriftgutobjektZumErstellen/xdomea:Schriftgutobjekt/xdomea:Dokument/xdomea:Version/xdomea:Nummer
    value: '1'
`,
    );
    const run = await amtsbote('mapping', 'coverage', file);
    expect(run.exitCode).to.equal(1);
    const gaps = run.out
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => l.trim().replace(/ \(below.*$/, ''));
    expect(gaps).to.deep.equal([
      'xdomea:Kopf/xdomea:Nachrichtentyp',
      'xdomea:Kopf/xdomea:Erstellungszeitpunkt',
      'xdomea:Kopf/xdomea:Absender',
      'xdomea:Kopf/xdomea:Empfaenger',
      'xdomea:Kopf/xdomea:Empfangsbestaetigung',
      'xdomea:Kopf/xdomea:Importbestaetigung',
      'xdomea:Kopf/xdomea:Erstellerkennung',
      'xdomea:Kopf/xdomea:Stapel',
      'xdomea:SchriftgutobjektZumErstellen/xdomea:Schriftgutobjekt/xdomea:Dokument/xdomea:Identifikation',
      'xdomea:SchriftgutobjektZumErstellen/xdomea:Schriftgutobjekt/xdomea:Dokument/xdomea:Version/xdomea:Format',
    ]);
    expect(run.err).to.contain('10 required part(s) not filled');
  });

  it('mapping coverage: names a required choice none of whose alternatives is filled', async () => {
    const file = path.join(dir, 'choice.mapping.yaml');
    writeFileSync(
      file,
      `source: { format: json }
target:
  format: xml
  root: b:allgemein.stellungnahme.Neuabgegeben.0701
  namespaces: { b: 'https://www.xleitstelle.de/xbeteiligung/12' }
  schemaSet: xbeteiligung-1.2
rules:
  - to: b:nachrichteninhalt/b:stellungnahme/b:titel
    from: application.subject
`,
    );
    const run = await amtsbote('mapping', 'coverage', file);
    expect(run.exitCode).to.equal(1);
    expect(run.out).to.contain('  @produkt\n');
    expect(run.out).to.contain('  {http://xoev.de/schemata/basisnachricht/g2g/1_1}nachrichtenkopf.g2g\n');
    expect(run.out).to.contain(
      '  one of b:nachrichteninhalt/b:stellungnahme/(b:verfahrensschrittPlanfeststellung | b:verfahrensschrittKommunal | b:verfahrensschrittRaumordnung)',
    );
  });
});
