import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { isAmtError } from '../../src/errors.js';
import type { AmtError } from '../../src/errors.js';
import { compileMappingText, loadMappingStep } from '../../src/mapping/index.js';

const FILE = '/mappings/test/example.mapping.yaml';

const XDOMEA_HEAD = `source:
  format: json
target:
  format: xml
  root: xdomea:FVDaten.SGOErstellen.0604
  namespaces:
    xdomea: urn:xoev-de:xdomea:schema:3.0.0
  schemaSet: xdomea-3.0.0
`;

function compileError(text: string): AmtError {
  try {
    compileMappingText(text, FILE);
  } catch (err) {
    if (isAmtError(err)) return err;
    throw err;
  }
  throw new Error('expected the mapping not to compile');
}

/** The 1-based line of the first line containing `needle`. */
function lineOf(text: string, needle: string): number {
  const index = text.split('\n').findIndex((line) => line.includes(needle));
  if (index < 0) throw new Error(`no line contains ${needle}`);
  return index + 1;
}

describe('mapping compile errors name file, line and rule', () => {
  it('reports every problem at once, each with file:line and the rule', () => {
    const text = `${XDOMEA_HEAD}rules:
  - to: xdomea:Kopf/xdomea:ProzessID
    uuid: random
  - to: xdomea:Kopf/xdomea:Hinweis
    from: application.note
    transform: trimm
  - to: xdomea:Kopf/xdomea:Nachrichtentyp
    value: '0604'
    code: nachrichtentypen
  - to: xbau:Kopf
    value: x
  - to: xdomea:Kopf/xdomea:Erstellerkennung
    form: application.user
`;
    const err = compileError(text);
    expect(err.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
    const problems = err.problems.map((p) => `${p.path} ${p.message}`);
    expect(problems).to.have.length(5);
    expect(problems[0]).to.equal(
      `${FILE}:${lineOf(text, 'transform: trimm')} rules[1] (to: xdomea:Kopf/xdomea:Hinweis): transform: unknown transform "trimm" (did you mean trim?)`,
    );
    expect(problems[1]).to.contain(`${FILE}:${lineOf(text, 'code: nachrichtentypen')} rules[2]`);
    expect(problems[1]).to.contain('code list "nachrichtentypen" is not declared');
    expect(problems[2]).to.contain(`${FILE}:${lineOf(text, 'to: xbau:Kopf')} rules[3]`);
    expect(problems[2]).to.contain('prefix "xbau"');
    expect(problems[3]).to.contain(`${FILE}:${lineOf(text, 'form: application.user')} rules[4]`);
    expect(problems[3]).to.contain('unknown key "form" (did you mean from?)');
    expect(problems[4]).to.contain('rules[4]');
    expect(problems[4]).to.contain('a rule needs a value');
  });

  it('checks target paths against the XSD: unknown elements, with the allowed ones', () => {
    const text = `${XDOMEA_HEAD}rules:
  - to: xdomea:Kopf/xdomea:ProzesID
    uuid: random
`;
    const [problem] = compileError(text).problems;
    expect(problem!.path).to.equal(`${FILE}:${lineOf(text, 'ProzesID')}`);
    expect(problem!.message).to.contain('xdomea:Kopf has no child xdomea:ProzesID (did you mean ProzessID?)');
  });

  it('checks the XSD sequence order of the rules', () => {
    const text = `${XDOMEA_HEAD}rules:
  - to: xdomea:Kopf/xdomea:Erstellungszeitpunkt
    now: dateTime
  - to: xdomea:Kopf/xdomea:ProzessID
    uuid: random
`;
    const [problem] = compileError(text).problems;
    expect(problem!.path).to.equal(`${FILE}:${lineOf(text, 'xdomea:ProzessID')}`);
    expect(problem!.message).to.contain('xdomea:ProzessID must come before xdomea:Erstellungszeitpunkt');
  });

  it('refuses children under an element with simple content and undeclared attributes', () => {
    const text = `${XDOMEA_HEAD}rules:
  - to: xdomea:Kopf/xdomea:ProzessID/xdomea:Teil
    value: x
  - to: xdomea:Kopf/xdomea:Nachrichtentyp/@version
    value: '1'
`;
    const messages = compileError(text).problems.map((p) => p.message);
    expect(messages.join('\n')).to.contain('has simple content');
    expect(messages.join('\n')).to.contain('xdomea:Nachrichtentyp has no attribute version');
  });

  it('reports YAML syntax errors with their line', () => {
    const text = `source:\n  format: json\ntarget:\n  format: json\nrules:\n  - to: a\n    from: [b\n`;
    const err = compileError(text);
    expect(err.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
    expect(err.problems[0]!.path).to.match(new RegExp(`^${FILE}:\\d+$`));
  });

  it('refuses an unknown schema set, a missing target root and bad code lists', () => {
    const text = `source:
  format: json
target:
  format: xml
  schemaSet: xmeld-2.0
codelists:
  kaputt:
    genericode: xdomea-3.0.0/code_lists/gibt-es-nicht.xml
rules:
  - to: a
    value: x
`;
    const messages = compileError(text).problems.map((p) => `${p.path} ${p.message}`);
    expect(messages.join('\n')).to.contain('no schema set "xmeld-2.0"');
    expect(messages.join('\n')).to.contain('target.root');
    expect(messages.join('\n')).to.contain(
      `${FILE}:${lineOf(text, 'kaputt:')} code list kaputt: cannot read genericode file`,
    );
  });

  it('explains a bad XÖV helper at its line', () => {
    const text = `${XDOMEA_HEAD}rules:
  - xdomeaKopf:
      nachrichtentyp: '0604'
      absender: { institution: Portal }
`;
    const [problem] = compileError(text).problems;
    expect(problem!.path).to.equal(`${FILE}:${lineOf(text, 'xdomeaKopf:')}`);
    expect(problem!.message).to.contain('xdomeaKopf.empfaenger needs');
  });

  it('refuses a mapping file that is not UTF-8, naming file and line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-mapping-'));
    try {
      const file = path.join(dir, 'latin1.mapping.yaml');
      const text =
        'source: { format: json }\ntarget: { format: json }\nrules:\n  - to: ort\n    value: Münster\n';
      writeFileSync(file, Buffer.from(text, 'latin1'));
      try {
        await loadMappingStep(file);
        expect.fail('should not compile');
      } catch (err) {
        expect(isAmtError(err) && err.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
        expect(isAmtError(err) && err.problems).to.deep.equal([
          { path: `${file}:5`, message: 'is not valid UTF-8' },
        ]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('throws the compile error from loadMappingStep, naming the file on disk', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-mapping-'));
    try {
      const file = path.join(dir, 'kaputt.mapping.yaml');
      writeFileSync(
        file,
        'source: { format: json }\ntarget: { format: json }\nrules:\n  - to: a\n    fromm: b\n',
      );
      try {
        await loadMappingStep(file);
        expect.fail('should not compile');
      } catch (err) {
        expect(isAmtError(err) && err.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
        expect(isAmtError(err) && err.problems[0]!.path).to.equal(`${file}:5`);
      }
      // fixed on disk: compiled afresh, not served from a cache of the failure
      writeFileSync(
        file,
        'source: { format: json }\ntarget: { format: json }\nrules:\n  - to: a\n    from: application.b\n',
      );
      const step = await loadMappingStep(file);
      const body = await step({
        application: { b: '059130000000' },
        message: {
          id: '1',
          deliveryId: '2',
          tenant: { id: 't', name: 'T', ars: '059130000000' },
          service: 's',
          reference: undefined,
          receivedAt: 0,
        },
        attachments: [],
      });
      expect(JSON.parse(String(body.content))).to.deep.equal({ a: '059130000000' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
