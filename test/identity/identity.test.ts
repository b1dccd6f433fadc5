import { expect } from 'chai';
import { AmtError } from '../../src/errors.js';
import {
  TRUST_LEVELS,
  meetsTrustLevel,
  parseIdpMetadata,
  redactIdentity,
  requireTrustLevel,
  resolveTrustLevel,
  trustLevelFrom,
  verifySamlResponse,
} from '../../src/identity/index.js';
import type { TrustLevel, VerifiedIdentity } from '../../src/identity/index.js';
import {
  identityFromAssertion,
  normalizeAttributeName,
  normalizeBirthDate,
} from '../../src/identity/identity.js';
import {
  ACS_URL,
  BUNDID_ENTITY_ID,
  NOW,
  SP_ENTITY_ID,
  buildAssertion,
  eidAttributes,
  idpMetadataXml,
  memoryReplayCache,
  signXml,
  testPki,
} from './saml-fixtures.js';

const TRUST_ATTRIBUTE = 'urn:oid:1.2.40.0.10.2.1.1.261.94';

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (err) {
    expect(err).to.be.instanceOf(AmtError);
    return (err as AmtError).code;
  }
  return undefined;
}

describe('identity: trust levels and the normalised identity', () => {
  it('maps STORK-QAA levels and eIDAS levels of assurance', () => {
    const cases: Array<[string, TrustLevel | undefined]> = [
      ['STORK-QAA-Level-1', 'basis'],
      ['STORK-QAA-Level-2', 'basis'],
      ['STORK-QAA-Level-3', 'substantiell'],
      ['STORK-QAA-Level-4', 'hoch'],
      [' stork-qaa-level-4 ', 'hoch'],
      ['http://eidas.europa.eu/LoA/low', 'basis'],
      ['http://eidas.europa.eu/LoA/substantial', 'substantiell'],
      ['http://eidas.europa.eu/LoA/high', 'hoch'],
      ['urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport', undefined],
      ['STORK-QAA-Level-5', undefined],
    ];
    for (const [value, level] of cases) expect(trustLevelFrom(value), value).to.equal(level);
  });

  it('takes the lower level when AuthnContextClassRef and the attribute disagree, either way round', () => {
    expect(resolveTrustLevel('STORK-QAA-Level-4', ['STORK-QAA-Level-3'])).to.equal('substantiell');
    expect(resolveTrustLevel('STORK-QAA-Level-1', ['STORK-QAA-Level-4'])).to.equal('basis');
    expect(resolveTrustLevel('STORK-QAA-Level-3', ['STORK-QAA-Level-3'])).to.equal('substantiell');
    expect(resolveTrustLevel(undefined, ['STORK-QAA-Level-4'])).to.equal('hoch');
    expect(resolveTrustLevel('http://eidas.europa.eu/LoA/high', [])).to.equal('hoch');
    // An unreadable statement does not lower or raise the level; no readable one is an error.
    expect(resolveTrustLevel('urn:example:unknown', ['STORK-QAA-Level-3'])).to.equal('substantiell');
    expect(codeOf(() => resolveTrustLevel('urn:example:unknown', []))).to.equal(
      'AMT_SAML_TRUST_LEVEL_UNKNOWN',
    );
  });

  it('orders basis < substantiell < hoch', () => {
    expect(TRUST_LEVELS).to.deep.equal(['basis', 'substantiell', 'hoch']);
    const expected: Record<TrustLevel, TrustLevel[]> = {
      basis: ['basis'],
      substantiell: ['basis', 'substantiell'],
      hoch: ['basis', 'substantiell', 'hoch'],
    };
    for (const have of TRUST_LEVELS) {
      for (const required of TRUST_LEVELS) {
        expect(meetsTrustLevel({ trustLevel: have }, required), `${have} meets ${required}`).to.equal(
          expected[have].includes(required),
        );
      }
    }
  });

  it('requireTrustLevel answers 403 AMT_TRUST_LEVEL_TOO_LOW when the level is too low', () => {
    expect(() => requireTrustLevel({ trustLevel: 'hoch' }, 'substantiell')).to.not.throw();
    try {
      requireTrustLevel({ trustLevel: 'basis' }, 'substantiell');
      expect.fail('expected a rejection');
    } catch (err) {
      expect((err as AmtError).code).to.equal('AMT_TRUST_LEVEL_TOO_LOW');
      expect((err as AmtError).status).to.equal(403);
      expect((err as AmtError).message)
        .to.contain('substantiell')
        .and.to.contain('basis');
    }
  });

  it('normalises birth dates to ISO 8601, with reduced precision for unknown parts', () => {
    expect(normalizeBirthDate('1964-08-12')).to.equal('1964-08-12');
    expect(normalizeBirthDate('19640812')).to.equal('1964-08-12');
    expect(normalizeBirthDate('12.08.1964')).to.equal('1964-08-12');
    expect(normalizeBirthDate('1964-08-00')).to.equal('1964-08');
    expect(normalizeBirthDate('1964-00-00')).to.equal('1964');
    expect(normalizeBirthDate('1964')).to.equal('1964');
    for (const bad of ['1964-02-30', '1964-13-01', 'gestern', '']) {
      expect(
        codeOf(() => normalizeBirthDate(bad)),
        bad,
      ).to.equal('AMT_SAML_MALFORMED');
    }
  });

  it('builds the identity from the attributes present, and normalises attribute names', () => {
    expect(normalizeAttributeName(' urn:oid: 2.5.4.42')).to.equal('urn:oid:2.5.4.42');
    expect(normalizeAttributeName('2.5.4.42')).to.equal('urn:oid:2.5.4.42');
    expect(normalizeAttributeName('mail')).to.equal('mail');
    const identity = identityFromAssertion({
      issuer: BUNDID_ENTITY_ID,
      assertionId: '_a',
      subjectNameId: '_n',
      subjectNameIdFormat: undefined,
      authnContextClassRef: undefined,
      authenticatedAt: NOW,
      expiresAt: NOW + 1000,
      attributes: new Map([
        ['urn:oid:2.5.4.42', ['Erika']],
        [TRUST_ATTRIBUTE, ['STORK-QAA-Level-3']],
        ['urn:oid:2.5.4.17', ['51147']],
      ]),
    });
    expect(identity.givenName).to.equal('Erika');
    expect(identity.familyName).to.equal(undefined);
    expect(identity.trustLevel).to.equal('substantiell');
    expect(identity.address).to.deep.equal({ street: undefined, postalCode: '51147', locality: undefined });
  });

  describe('from a verified assertion', () => {
    async function verify(
      classRef: string,
      attributeLevel: string[],
      extra: Record<string, string[]> = {},
    ): Promise<VerifiedIdentity> {
      const pki = testPki();
      const idp = parseIdpMetadata(idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]));
      const attributes = eidAttributes({ [TRUST_ATTRIBUTE]: attributeLevel, ...extra });
      const xml = signXml(
        buildAssertion({ id: '_identity-test', classRef, attributes }),
        'Assertion',
        pki.bundId,
      );
      return verifySamlResponse(xml, {
        idp: [idp],
        audience: SP_ENTITY_ID,
        recipient: ACS_URL,
        now: NOW,
        replay: memoryReplayCache(() => NOW).replay,
      });
    }

    before(function () {
      this.timeout(120_000);
      testPki();
    });

    it('maps the login level end to end, the lower statement winning', async () => {
      expect((await verify('STORK-QAA-Level-4', ['STORK-QAA-Level-4'])).trustLevel).to.equal('hoch');
      expect((await verify('STORK-QAA-Level-4', ['STORK-QAA-Level-1'])).trustLevel).to.equal('basis');
      expect((await verify('STORK-QAA-Level-3', [])).trustLevel).to.equal('substantiell');
    });

    it('reads attributes whose names carry stray spaces (as simulators send them)', async () => {
      const identity = await verify('STORK-QAA-Level-1', [], {
        'urn:oid: 2.5.4.42': ['Erika'],
        'urn:oid:2.5.4.42': [],
      });
      expect(identity.givenName).to.equal('Erika');
    });

    it('redacts personal data for logs, keeping a correlatable hash of the subject', async () => {
      const identity = await verify('STORK-QAA-Level-4', ['STORK-QAA-Level-4']);
      const redacted = redactIdentity(identity);
      const text = JSON.stringify(redacted);
      for (const personal of [
        identity.givenName,
        identity.familyName,
        identity.birthDate,
        identity.email,
        identity.subjectNameId,
        identity.pseudonym,
        identity.address?.street,
        identity.address?.postalCode,
        identity.address?.locality,
      ]) {
        expect(personal).to.be.a('string');
        expect(text).to.not.contain(personal as string);
      }
      expect(redacted).to.include({
        issuer: BUNDID_ENTITY_ID,
        trustLevel: 'hoch',
        assertionId: identity.assertionId,
      });
      expect(redacted['pseudonym']).to.match(/^sha256:[0-9a-f]{12}$/);
      expect(redactIdentity(identity)['pseudonym']).to.equal(redacted['pseudonym']);
    });
  });
});
