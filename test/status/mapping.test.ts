import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AmtError } from '../../src/errors.js';
import { compileStatusMapping, DEFAULT_STATUS_MAPPING, loadStatusMapping } from '../../src/status/mapping.js';
import { compileTemplate, DEFAULT_TEXTS, CITIZEN_STATUSES } from '../../src/status/model.js';

const values = { reference: 'PORTAL-2026-000123', remoteReference: 'AZ 32-4711/26', tenant: 'Stadt Münster' };

function compileError(text: string): AmtError {
  try {
    compileStatusMapping(text, 'gewerbe.status.yaml');
  } catch (err) {
    expect(err).to.be.instanceOf(AmtError);
    expect((err as AmtError).code).to.equal('AMT_MAPPING_COMPILE_FAILED');
    return err as AmtError;
  }
  throw new Error('the mapping compiled');
}

describe('status: text templates', () => {
  it('fills placeholders and drops an optional part whose value is missing', () => {
    const template = compileTemplate('Antrag {reference}[ (Aktenzeichen {remoteReference})] ist da.', 't');
    expect(template.render(values)).to.equal(
      'Antrag PORTAL-2026-000123 (Aktenzeichen AZ 32-4711/26) ist da.',
    );
    expect(template.render({ reference: 'R-1' })).to.equal('Antrag R-1 ist da.');
    expect(template.render({ reference: 'R-1', remoteReference: '  ' })).to.equal('Antrag R-1 ist da.');
  });

  it('writes doubled brackets and braces as themselves', () => {
    expect(compileTemplate('{{x}} [[y]] {reference}', 't').render(values)).to.equal(
      '{x} [y] PORTAL-2026-000123',
    );
  });

  it('keeps peer values on one line and bounded', () => {
    const text = compileTemplate('Hinweis: {text}', 't').render({
      text: 'Zeile 1\r\nZeile 2\u0007' + 'x'.repeat(5000),
    });
    expect(text).to.match(/^Hinweis: Zeile 1 Zeile 2 x+$/);
    expect(text.length).to.be.at.most(1010);
  });

  it('rejects unknown placeholders and broken brackets with the place', () => {
    for (const [source, message] of [
      ['Antrag {antragsteller}', 'unknown placeholder {antragsteller}'],
      ['Antrag [ohne Ende', 'is not closed'],
      ['Antrag ohne Anfang]', 'has no opening ['],
      ['[a [b] c]', 'cannot be nested'],
      ['Antrag {reference', 'unknown placeholder'],
      ['Antrag }', 'has no opening {'],
    ] as const) {
      try {
        compileTemplate(source, '/routes/0/postbox/subject');
        expect.fail(`${source} compiled`);
      } catch (err) {
        expect((err as AmtError).code, source).to.equal('AMT_MAPPING_COMPILE_FAILED');
        expect((err as AmtError).problems[0]).to.deep.include({ path: '/routes/0/postbox/subject' });
        expect((err as AmtError).problems[0]?.message, source).to.include(message);
      }
    }
  });

  it('has a German default text for every citizen status that reads well without optional values', () => {
    for (const status of CITIZEN_STATUSES) {
      const template = compileTemplate(DEFAULT_TEXTS[status], status);
      const bare = template.render({});
      expect(bare, status).to.match(/^[A-ZÄÖÜ][^{}[\]]+\.$/);
      expect(bare, status).not.to.match(/\(\s*\)|„“|\s{2}/);
      expect(template.render({ ...values, service: 'Bewohnerparkausweis' })).to.include('PORTAL-2026-000123');
    }
  });
});

describe('status: mapping files', () => {
  it('maps the FIT-Connect delivery states without a file', () => {
    expect(DEFAULT_STATUS_MAPPING.map('forwarded', values)?.status).to.equal('RECEIVED');
    expect(DEFAULT_STATUS_MAPPING.map('accepted', values)?.status).to.equal('RECEIVED');
    const rejected = DEFAULT_STATUS_MAPPING.map('rejected', values);
    expect(rejected?.status).to.equal('REJECTED');
    expect(rejected?.text).to.equal(
      'Ihr Antrag (Vorgangsnummer PORTAL-2026-000123) konnte nicht angenommen werden.',
    );
    // Delivery states only: nothing says the authority works on it.
    expect(DEFAULT_STATUS_MAPPING.map('submitted', values)).to.equal(undefined);
    expect(DEFAULT_STATUS_MAPPING.map('Accepted', values)).to.equal(undefined);
  });

  it('maps raw values exactly as written, keeps leading zeros, and renders the German text', () => {
    const mapping = compileStatusMapping(
      `
service: Gewerbeanmeldung
statuses:
  EINGANG: RECEIVED
  0100: PROCESSING
  '0200': COMPLETED
  true: ACTION_REQUIRED
  NACHFORDERUNG:
    status: ACTION_REQUIRED
    text: 'Für Ihre Gewerbeanmeldung {reference} fehlen Unterlagen.[ {text}]'
`,
      'gewerbe.status.yaml',
    );
    expect(mapping.serviceName).to.equal('Gewerbeanmeldung');
    expect(mapping.map('0100', values)).to.deep.equal({
      status: 'PROCESSING',
      text: 'Ihr Antrag „Gewerbeanmeldung“ (Vorgangsnummer PORTAL-2026-000123) wird bearbeitet. Aktenzeichen der Behörde: AZ 32-4711/26.',
    });
    expect(mapping.map('100', values)).to.equal(undefined);
    expect(mapping.map(' 0200 ', values)?.status).to.equal('COMPLETED');
    expect(mapping.map('true', values)?.status).to.equal('ACTION_REQUIRED');
    expect(
      mapping.map('NACHFORDERUNG', { ...values, text: 'Es fehlt die Gewerbeerlaubnis.' })?.text,
    ).to.equal(
      'Für Ihre Gewerbeanmeldung PORTAL-2026-000123 fehlen Unterlagen. Es fehlt die Gewerbeerlaubnis.',
    );
    expect(mapping.map('NACHFORDERUNG', values)?.text).to.equal(
      'Für Ihre Gewerbeanmeldung PORTAL-2026-000123 fehlen Unterlagen.',
    );
    // The FIT-Connect defaults stay unless the file says otherwise.
    expect(mapping.map('accepted', values)?.status).to.equal('RECEIVED');
    expect(mapping.map('UNBEKANNT', values)).to.equal(undefined);
  });

  it('replaces built-in texts per citizen status, overrides and can drop the defaults', () => {
    const mapping = compileStatusMapping(
      `
defaults: false
texts:
  COMPLETED: 'Erledigt: {reference} ({status}).'
statuses:
  ERLEDIGT: COMPLETED
  rejected: PROCESSING
`,
      'f.yaml',
    );
    expect(mapping.map('ERLEDIGT', values)?.text).to.equal('Erledigt: PORTAL-2026-000123 (Abgeschlossen).');
    expect(mapping.textFor('COMPLETED', { reference: 'R-2' })).to.equal('Erledigt: R-2 (Abgeschlossen).');
    expect(mapping.map('rejected', values)?.status).to.equal('PROCESSING');
    expect(mapping.map('forwarded', values)).to.equal(undefined);
  });

  it('reports every problem with file and line', () => {
    const err = compileError(`service: Gewerbe
defaults: maybe
unknown: 1
texts:
  DONE: 'x'
  COMPLETED: 'Fertig {wer}'
statuses:
  EINGANG: ANGEKOMMEN
  NACH:
    status: ACTION_REQUIRED
    hint: x
  LEER:
    text: ohne Status
`);
    const problems = err.problems.map((p) => `${p.path} ${p.message}`);
    expect(problems).to.have.length(7);
    expect(problems[0]).to.match(/^gewerbe\.status\.yaml:3 unknown key unknown/);
    expect(problems.join('\n')).to.include('gewerbe.status.yaml:2 must be true or false');
    expect(problems.join('\n')).to.include('gewerbe.status.yaml:5 DONE is not a citizen status');
    expect(problems.join('\n')).to.include('gewerbe.status.yaml:6 unknown placeholder {wer}');
    expect(problems.join('\n')).to.include('gewerbe.status.yaml:8 ANGEKOMMEN is not a citizen status');
    expect(problems.join('\n')).to.include('gewerbe.status.yaml:9 unknown key hint');
    expect(problems.join('\n')).to.include('gewerbe.status.yaml:12 status must be one of');
  });

  it('needs statuses, refuses invalid YAML and aliases', () => {
    expect(compileError('service: x\n').problems[0]?.message).to.include('statuses');
    expect(compileError('- a\n- b\n').problems[0]?.message).to.include('statuses');
    expect(compileError('statuses: {a: RECEIVED\n').message).to.include('not valid YAML');
    expect(compileError('statuses:\n  a: &s RECEIVED\n  b: *s\n').message).to.include('aliases');
    expect(compileError('statuses:\n  a: RECEIVED\n  a: PROCESSING\n').message).to.include('not valid YAML');
  });

  it('loads a file and names it in errors', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-status-mapping-'));
    try {
      const file = path.join(dir, 'meldewesen.status.yaml');
      writeFileSync(file, 'statuses:\n  ANGEMELDET: COMPLETED\n');
      const mapping = loadStatusMapping(file);
      expect(mapping.file).to.equal(file);
      expect(mapping.map('ANGEMELDET', values)?.status).to.equal('COMPLETED');
      expect(() => loadStatusMapping(path.join(dir, 'missing.yaml')))
        .to.throw(AmtError)
        .with.property('message')
        .that.includes('missing.yaml');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
