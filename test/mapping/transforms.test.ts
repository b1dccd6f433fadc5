import { expect } from 'chai';
import {
  compileTransform,
  germanDateToIso,
  isoDateToGerman,
  MappingValueError,
  toBerlinDate,
  toXsDateTime,
  TransformSpecError,
} from '../../src/mapping/transforms.js';
import type { TransformEnvironment } from '../../src/mapping/transforms.js';
import { nameBasedUuid } from '../../src/mapping/uuid.js';

const env: TransformEnvironment = {
  lookups: new Map([['kfz', new Map([['PKW', 'Personenkraftwagen']])]]),
  codelists: new Map([
    ['art', { name: 'art', listURI: 'urn:x', listVersionID: '1', codes: new Map([['1000', 'Einwendung']]) }],
  ]),
};

const t = (spec: unknown) => compileTransform(spec, env);

function valueError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof MappingValueError) return err.message;
    throw err;
  }
  throw new Error('expected a MappingValueError');
}

describe('mapping transforms', () => {
  describe('German dates ↔ ISO', () => {
    it('converts TT.MM.JJJJ (also with one-digit day and month) to ISO', () => {
      expect(germanDateToIso('12.08.1984')).to.equal('1984-08-12');
      expect(germanDateToIso('1.2.2024')).to.equal('2024-02-01');
      expect(germanDateToIso(' 29.02.2024 ')).to.equal('2024-02-29');
      expect(germanDateToIso('2024-02-29')).to.equal('2024-02-29');
    });

    it('refuses impossible and malformed dates', () => {
      expect(valueError(() => germanDateToIso('31.02.1984'))).to.contain('not a calendar date');
      expect(valueError(() => germanDateToIso('29.02.2023'))).to.contain('not a calendar date');
      expect(valueError(() => germanDateToIso('12/08/1984'))).to.contain('TT.MM.JJJJ');
      expect(valueError(() => germanDateToIso('2023-02-29'))).to.contain('TT.MM.JJJJ');
    });

    it('converts ISO dates and timestamps back to TT.MM.JJJJ (timestamps as Berlin days)', () => {
      expect(isoDateToGerman('2024-05-21')).to.equal('21.05.2024');
      expect(isoDateToGerman('2024-05-01T23:30:00Z')).to.equal('02.05.2024');
      expect(valueError(() => isoDateToGerman('21.05.2024'))).to.contain('JJJJ-MM-TT');
    });

    it('passes missing values through for default and required to handle', () => {
      for (const missing of [undefined, null, '']) {
        expect(germanDateToIso(missing)).to.equal(missing);
        expect(isoDateToGerman(missing)).to.equal(missing);
      }
    });
  });

  describe('timestamps', () => {
    it('writes xs:dateTime in UTC without fractions, from epoch milliseconds or ISO text', () => {
      expect(toXsDateTime(1714637700123)).to.equal('2024-05-02T08:15:00Z');
      expect(toXsDateTime('2024-05-06T09:30:00+02:00')).to.equal('2024-05-06T07:30:00Z');
      expect(valueError(() => toXsDateTime('morgen'))).to.contain('point in time');
    });

    it('gives the calendar day in Berlin (22:30 UTC in summer is the next day)', () => {
      expect(toBerlinDate(Date.parse('2024-07-01T22:30:00Z'))).to.equal('2024-07-02');
      expect(toBerlinDate(Date.parse('2024-01-01T22:30:00Z'))).to.equal('2024-01-01');
    });
  });

  it('trims, changes case (German rules) and collapses spaces', () => {
    expect(t('trim')('  Erika ')).to.equal('Erika');
    expect(t('upper')('straße')).to.equal('STRASSE');
    expect(t('lower')('ÄRGER')).to.equal('ärger');
    expect(t('collapseSpaces')(' do-em   1984 ')).to.equal('do-em 1984');
  });

  it('joins the parts that have a value and splits names', () => {
    expect(t({ join: ', ' })(['Heiliger Weg 12a', '', null, '44135 Dortmund'])).to.equal(
      'Heiliger Weg 12a, 44135 Dortmund',
    );
    expect(t('join')([undefined, ''])).to.equal(undefined);
    const name = 'Erika  Maria Mustermann';
    expect(t({ split: { part: 'last' } })(name)).to.equal('Mustermann');
    expect(t({ split: { part: 'allButLast' } })(name)).to.equal('Erika Maria');
    expect(t({ split: { part: 'first' } })(name)).to.equal('Erika');
    expect(t({ split: { separator: ',', part: 1 } })('Mustermann, Erika')).to.equal('Erika');
    expect(t({ split: { part: 'rest' } })('Mustermann')).to.equal(undefined);
  });

  it('looks values up strictly, or with a fallback', () => {
    expect(t({ lookup: 'kfz' })('PKW')).to.equal('Personenkraftwagen');
    expect(valueError(() => t({ lookup: 'kfz' })('Panzer'))).to.equal(
      '"Panzer" is not in lookup table "kfz"',
    );
    expect(t({ lookup: { table: 'kfz', otherwise: 'keep' } })('Panzer')).to.equal('Panzer');
    expect(t({ lookup: { table: 'kfz', otherwise: 'sonstiges' } })('Panzer')).to.equal('sonstiges');
  });

  it('names codes from a code list', () => {
    expect(t({ codeName: 'art' })('1000')).to.equal('Einwendung');
    expect(valueError(() => t({ codeName: 'art' })('9999'))).to.contain('not in code list art');
  });

  it('replaces, truncates by characters, prefixes and picks the first value', () => {
    expect(t({ replace: { pattern: '[^0-9]', with: '' } })('+49 (231) 12-34')).to.equal('492311234');
    expect(t({ truncate: 3 })('Größe')).to.equal('Grö');
    expect(t({ prefix: 'DE-' })('44135')).to.equal('DE-44135');
    expect(t('first')([undefined, '', 'b', 'c'])).to.equal('b');
  });

  it('turns yes/no and numbers into JSON values, and rejects what is neither', () => {
    expect(t('boolean')('ja')).to.equal(true);
    expect(t('boolean')('false')).to.equal(false);
    expect(valueError(() => t('boolean')('vielleicht'))).to.contain('yes/no');
    expect(t('number')('12,5')).to.equal(12.5);
    expect(valueError(() => t('number')('zwölf'))).to.contain('number');
    expect(t('string')(42)).to.equal('42');
  });

  it('derives stable name-based UUIDs (version 5)', () => {
    const a = t({ uuid: 'anlage' })('abc');
    expect(a).to.equal(t({ uuid: 'anlage' })('abc'));
    expect(a).to.not.equal(t({ uuid: 'datei' })('abc'));
    expect(a).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(nameBasedUuid('x')).to.equal(nameBasedUuid('x'));
  });

  it('explains unknown transforms with a suggestion', () => {
    try {
      t('trimm');
      expect.fail('should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(TransformSpecError);
      expect((err as Error).message).to.equal('unknown transform "trimm" (did you mean trim?)');
    }
    expect(() => t({ lookup: 'fehlt' })).to.throw(TransformSpecError, 'lookup table "fehlt" is not defined');
    expect(() => t({ trim: true })).to.throw(TransformSpecError, 'takes no argument');
  });
});
