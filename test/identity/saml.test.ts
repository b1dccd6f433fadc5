import { expect } from 'chai';
import { AmtError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { parseIdpMetadata, verifySamlResponse } from '../../src/identity/index.js';
import type { IdpMetadata, VerifySamlOptions } from '../../src/identity/index.js';
import {
  ACS_URL,
  BUNDID_ENTITY_ID,
  NOW,
  REQUEST_ID,
  RSA_SHA1,
  SERVICEKONTO_ENTITY_ID,
  SP_ENTITY_ID,
  buildAssertion,
  buildResponse,
  eidAttributes,
  encryptAssertion,
  idpMetadataXml,
  memoryReplayCache,
  signXml,
  testPki,
} from './saml-fixtures.js';
import type { TestPki } from './saml-fixtures.js';

async function rejection(promise: Promise<unknown>): Promise<AmtError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(AmtError);
    return err as AmtError;
  }
  expect.fail('expected the SAML response to be rejected');
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<AmtError> {
  const err = await rejection(promise);
  expect(err.code, err.message).to.equal(code);
  return err;
}

const base64 = (xml: string): string => Buffer.from(xml, 'utf8').toString('base64');

describe('identity: verifySamlResponse', () => {
  let pki: TestPki;
  let bundId: IdpMetadata;
  let servicekonto: IdpMetadata;

  before(function () {
    this.timeout(120_000);
    pki = testPki();
    bundId = parseIdpMetadata(idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]));
    servicekonto = parseIdpMetadata(idpMetadataXml(SERVICEKONTO_ENTITY_ID, [pki.servicekonto.certBase64]));
  });

  function options(overrides: Partial<VerifySamlOptions> = {}): VerifySamlOptions {
    const cache = memoryReplayCache(() => overrides.now ?? NOW);
    return {
      idp: [bundId, servicekonto],
      audience: SP_ENTITY_ID,
      recipient: ACS_URL,
      expectedInResponseTo: REQUEST_ID,
      now: NOW,
      spDecryptionKey: pki.sp.keyPem,
      replay: cache.replay,
      ...overrides,
    };
  }

  const signedAssertionResponse = (spec: Parameters<typeof buildAssertion>[0] = {}): string =>
    buildResponse({ assertions: [signXml(buildAssertion(spec), 'Assertion', pki.bundId)] });

  describe('valid logins', () => {
    it('accepts a Response with a signed assertion, sent base64-encoded, and normalises the identity', async () => {
      const identity = await verifySamlResponse(
        base64(signedAssertionResponse({ id: '_assertion-1' })),
        options(),
      );
      expect(identity).to.deep.equal({
        issuer: BUNDID_ENTITY_ID,
        subjectNameId: '_b81c5e0f7d2a4a3c9e1f0a2b3c4d5e6f',
        subjectNameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
        pseudonym: 'UkVGRVJFTlpQU0VVRE9OWU0tMTIzNDU2Nzg5MA==',
        trustLevel: 'hoch',
        givenName: 'Erika',
        familyName: 'Mustermann',
        birthDate: '1964-08-12',
        email: 'erika.mustermann@example.org',
        address: { street: 'Heidestraße 17', postalCode: '51147', locality: 'Köln' },
        assertionId: '_assertion-1',
        authenticatedAt: NOW - 2000,
        expiresAt: NOW + 5 * 60_000,
      });
      expect(Object.isFrozen(identity)).to.equal(true);
    });

    it('accepts a signed Response whose assertion is not signed itself', async () => {
      const xml = signXml(
        buildResponse({ assertions: [buildAssertion({ classRef: 'STORK-QAA-Level-3' })] }),
        'Response',
        pki.bundId,
      );
      const identity = await verifySamlResponse(
        xml,
        options({ replay: memoryReplayCache(() => NOW).replay }),
      );
      expect(identity.familyName).to.equal('Mustermann');
      // The attribute says level 4, the AuthnContextClassRef level 3: the lower one counts.
      expect(identity.trustLevel).to.equal('substantiell');
    });

    it('accepts a Response where both the Response and the assertion are signed', async () => {
      const inner = signXml(buildAssertion(), 'Assertion', pki.bundId);
      const xml = signXml(buildResponse({ assertions: [inner] }), 'Response', pki.bundId);
      expect((await verifySamlResponse(xml, options())).givenName).to.equal('Erika');
    });

    it('accepts a bare signed Assertion', async () => {
      const xml = signXml(buildAssertion(), 'Assertion', pki.bundId);
      expect((await verifySamlResponse(xml, options())).issuer).to.equal(BUNDID_ENTITY_ID);
    });

    it('reads by namespace, whatever prefixes the IdP uses', async () => {
      const assertion = buildAssertion()
        .replace(/saml2:/g, '')
        .replace('xmlns:saml2=', 'xmlns=');
      expect(assertion).to.not.contain('saml2:');
      const identity = await verifySamlResponse(signXml(assertion, 'Assertion', pki.bundId), options());
      expect(identity.address?.locality).to.equal('Köln');
    });

    it('accepts logins of each configured IdP and names the issuer', async () => {
      const xml = signXml(buildAssertion({ issuer: SERVICEKONTO_ENTITY_ID }), 'Assertion', pki.servicekonto);
      expect((await verifySamlResponse(xml, options())).issuer).to.equal(SERVICEKONTO_ENTITY_ID);
    });

    it('does not insist on InResponseTo when the portal passes no request ID (IdP-initiated login)', async () => {
      const xml = signedAssertionResponse({ inResponseTo: undefined });
      const identity = await verifySamlResponse(xml, options({ expectedInResponseTo: undefined }));
      expect(identity.familyName).to.equal('Mustermann');
    });
  });

  describe('signatures', () => {
    it('rejects an assertion whose attribute was changed after signing', async () => {
      const tampered = signedAssertionResponse().replace('>Mustermann<', '>Musterfrau<');
      expect(tampered).to.contain('Musterfrau');
      await expectCode(verifySamlResponse(tampered, options()), 'AMT_SAML_SIGNATURE_INVALID');
    });

    it('rejects a signed Response whose assertion was changed after signing', async () => {
      const xml = signXml(buildResponse({ assertions: [buildAssertion()] }), 'Response', pki.bundId);
      const tampered = xml.replace(
        'STORK-QAA-Level-4</saml2:AuthnContextClassRef>',
        'STORK-QAA-Level-1</saml2:AuthnContextClassRef>',
      );
      expect(tampered).to.not.equal(xml);
      await expectCode(verifySamlResponse(tampered, options()), 'AMT_SAML_SIGNATURE_INVALID');
    });

    it('rejects a Response where nothing is signed', async () => {
      const xml = buildResponse({ assertions: [buildAssertion()] });
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_UNSIGNED');
    });

    it('rejects a signature made with a certificate that is not in the metadata', async () => {
      const xml = buildResponse({ assertions: [signXml(buildAssertion(), 'Assertion', pki.attacker)] });
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_CERT_UNTRUSTED');
    });

    it('never trusts KeyInfo: a foreign key with the IdP certificate pasted into KeyInfo fails', async () => {
      const signed = signXml(buildAssertion(), 'Assertion', pki.attacker);
      const lying = signed.replace(pki.attacker.certBase64, pki.bundId.certBase64);
      expect(lying).to.contain(pki.bundId.certBase64);
      await expectCode(
        verifySamlResponse(buildResponse({ assertions: [lying] }), options()),
        'AMT_SAML_SIGNATURE_INVALID',
      );
    });

    it('binds certificates to their IdP: a BundID-signed assertion cannot claim Servicekonto as issuer', async () => {
      const xml = signXml(buildAssertion({ issuer: SERVICEKONTO_ENTITY_ID }), 'Assertion', pki.bundId);
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_CERT_UNTRUSTED');
    });

    it('accepts either certificate during a key rollover', async () => {
      const rollover = parseIdpMetadata(
        idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64, pki.bundIdNext.certBase64]),
      );
      expect(rollover.signingCertificates).to.have.length(2);
      for (const signer of [pki.bundId, pki.bundIdNext]) {
        const xml = signXml(buildAssertion(), 'Assertion', signer);
        const identity = await verifySamlResponse(xml, options({ idp: [rollover] }));
        expect(identity.issuer).to.equal(BUNDID_ENTITY_ID);
      }
      // The old metadata without the new certificate does not accept the new key.
      const withoutNext = signXml(buildAssertion(), 'Assertion', pki.bundIdNext);
      await expectCode(verifySamlResponse(withoutNext, options()), 'AMT_SAML_CERT_UNTRUSTED');
    });

    it('accepts a signature without KeyInfo by trying the metadata certificates', async () => {
      const signed = signXml(buildAssertion(), 'Assertion', pki.bundIdNext).replace(
        /<ds:KeyInfo>[\s\S]*?<\/ds:KeyInfo>/,
        '',
      );
      expect(signed).to.not.contain('KeyInfo');
      const rollover = parseIdpMetadata(
        idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64, pki.bundIdNext.certBase64]),
      );
      expect((await verifySamlResponse(signed, options({ idp: [rollover] }))).issuer).to.equal(
        BUNDID_ENTITY_ID,
      );
    });

    it('refuses RSA-SHA1 signatures', async () => {
      const xml = signXml(buildAssertion(), 'Assertion', pki.bundId, {
        signatureAlgorithm: RSA_SHA1,
        digestAlgorithm: 'http://www.w3.org/2000/09/xmldsig#sha1',
      });
      const err = await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_SIGNATURE_INVALID');
      expect(err.message).to.contain('rsa-sha1');
    });

    it('rejects an issuer that is not configured', async () => {
      const xml = signXml(
        buildAssertion({ issuer: 'https://idp.elsewhere.example/idp' }),
        'Assertion',
        pki.bundId,
      );
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_ISSUER_UNKNOWN');
    });
  });

  describe('signature wrapping', () => {
    it('rejects a second, unsigned assertion injected next to the signed one', async () => {
      const signed = signXml(buildAssertion(), 'Assertion', pki.bundId);
      const evil = buildAssertion({
        nameId: '_evil',
        attributes: eidAttributes({ 'urn:oid:2.5.4.4': ['Angreifer'] }),
      });
      for (const order of [
        [evil, signed],
        [signed, evil],
      ]) {
        await expectCode(
          verifySamlResponse(buildResponse({ assertions: order }), options()),
          'AMT_SAML_MULTIPLE_ASSERTIONS',
        );
      }
    });

    it('rejects a signed Response moved into Extensions of a forged Response', async () => {
      const original = signXml(
        buildResponse({ assertions: [buildAssertion()] }),
        'Response',
        pki.bundId,
      ).replace(/^<\?xml[^>]*\?>\s*/, '');
      const forged = buildResponse({ assertions: [buildAssertion({ nameId: '_evil' })] }).replace(
        '<saml2p:Status>',
        `<saml2p:Extensions>${original}</saml2p:Extensions><saml2p:Status>`,
      );
      await expectCode(verifySamlResponse(forged, options()), 'AMT_SAML_MULTIPLE_ASSERTIONS');
    });

    it('rejects a document where another element carries the signed assertion ID', async () => {
      const signed = signXml(buildAssertion({ id: '_signed' }), 'Assertion', pki.bundId);
      const xml = buildResponse({ assertions: [signed] }).replace(
        '<saml2p:Status>',
        '<saml2p:Extensions><x:Note xmlns:x="urn:example" ID="_signed">decoy</x:Note></saml2p:Extensions><saml2p:Status>',
      );
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_SIGNATURE_INVALID');
    });

    it('rejects an assertion signature whose reference points at another element', async () => {
      // Cryptographically fine, but it signs the Response, not the assertion it sits in.
      const response = buildResponse({ id: '_outer', assertions: [buildAssertion()] });
      const xml = signXml(response, 'Assertion', pki.bundId, {
        referenceXpath: "//*[local-name(.)='Response']",
      });
      const err = await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_SIGNATURE_INVALID');
      expect(err.message).to.contain('#_outer');
    });
  });

  describe('time, audience and recipient', () => {
    it('rejects an expired assertion, allowing the clock skew', async () => {
      const xml = signedAssertionResponse({ notOnOrAfter: NOW - 60_000 });
      // One minute past NotOnOrAfter lies within the default skew of two minutes.
      expect((await verifySamlResponse(xml, options())).familyName).to.equal('Mustermann');
      await expectCode(verifySamlResponse(xml, options({ now: NOW + 2 * 60_000 })), 'AMT_SAML_EXPIRED');
      await expectCode(verifySamlResponse(xml, options({ clockSkewMs: 0 })), 'AMT_SAML_EXPIRED');
    });

    it('rejects an expired subject confirmation', async () => {
      const xml = signedAssertionResponse({ confirmationNotOnOrAfter: NOW - 10 * 60_000 });
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_EXPIRED');
    });

    it('rejects an assertion that is not yet valid', async () => {
      const xml = signedAssertionResponse({ notBefore: NOW + 10 * 60_000, notOnOrAfter: NOW + 20 * 60_000 });
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_NOT_YET_VALID');
    });

    it('rejects an assertion for another audience', async () => {
      const xml = signedAssertionResponse({ audience: 'https://other-sp.example/saml' });
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_AUDIENCE_MISMATCH');
    });

    it('rejects an assertion for another recipient', async () => {
      const xml = signXml(
        buildAssertion({ recipient: 'https://other-portal.example/acs' }),
        'Assertion',
        pki.bundId,
      );
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_RECIPIENT_MISMATCH');
    });

    it('rejects a Response addressed to another Destination', async () => {
      const xml = buildResponse({
        destination: 'https://other-portal.example/acs',
        assertions: [signXml(buildAssertion(), 'Assertion', pki.bundId)],
      });
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_RECIPIENT_MISMATCH');
    });

    it('rejects an answer to another authentication request', async () => {
      const xml = signXml(buildAssertion({ inResponseTo: '_some-other-request' }), 'Assertion', pki.bundId);
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_IN_RESPONSE_TO_MISMATCH');
    });

    it('reports a failed login from the IdP', async () => {
      const xml = buildResponse({
        statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Responder',
        subStatusCode: 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed',
        assertions: [],
      });
      const err = await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_STATUS');
      expect(err.message).to.contain('Responder / AuthnFailed');
    });
  });

  describe('replay', () => {
    it('accepts an assertion once, rejects it while remembered and accepts the ID again once the entry expired', async () => {
      let clock = NOW;
      const cache = memoryReplayCache(() => clock);
      const first = signedAssertionResponse({ id: '_once' });
      const opts = (): VerifySamlOptions => options({ now: clock, replay: cache.replay });

      await verifySamlResponse(first, opts());
      expect(cache.calls[0]).to.deep.equal({
        assertionId: '_once',
        expiresAt: NOW + 5 * 60_000 + 2 * 60_000,
      });
      await expectCode(verifySamlResponse(first, opts()), 'AMT_SAML_REPLAYED');

      // After the remembered entry expired, an assertion with that ID (and a later validity) passes.
      clock = NOW + 8 * 60_000;
      const later = signedAssertionResponse({
        id: '_once',
        notBefore: clock - 60_000,
        notOnOrAfter: clock + 5 * 60_000,
        authnInstant: clock - 2000,
      });
      const identity = await verifySamlResponse(later, opts());
      expect(identity.assertionId).to.equal('_once');
    });

    it('does not use up the ID of a rejected assertion', async () => {
      const cache = memoryReplayCache(() => NOW);
      const xml = signedAssertionResponse({ audience: 'https://other-sp.example/saml' });
      await expectCode(
        verifySamlResponse(xml, options({ replay: cache.replay })),
        'AMT_SAML_AUDIENCE_MISMATCH',
      );
      expect(cache.calls).to.have.length(0);
    });
  });

  describe('encrypted assertions', () => {
    const cases = [
      { data: 'aes256-gcm', keyTransport: 'rsa-oaep-mgf1p' },
      { data: 'aes128-gcm', keyTransport: 'rsa-oaep-sha256' },
      { data: 'aes256-cbc', keyTransport: 'rsa-oaep-mgf1p' },
      { data: 'aes128-cbc', keyTransport: 'rsa-1_5' },
    ] as const;
    for (const { data, keyTransport } of cases) {
      it(`decrypts ${data} with ${keyTransport} key transport`, async () => {
        const signed = signXml(buildAssertion(), 'Assertion', pki.bundId);
        const xml = buildResponse({
          assertions: [encryptAssertion(signed, pki.sp.publicKeyPem, { data, keyTransport })],
        });
        const identity = await verifySamlResponse(base64(xml), options());
        expect(identity.familyName).to.equal('Mustermann');
        expect(identity.pseudonym).to.equal('UkVGRVJFTlpQU0VVRE9OWU0tMTIzNDU2Nzg5MA==');
      });
    }

    it('finds the EncryptedKey next to the EncryptedData and tries every configured SP key', async () => {
      const signed = signXml(buildAssertion(), 'Assertion', pki.bundId);
      const encrypted = encryptAssertion(signed, pki.sp.publicKeyPem, { keyOutside: true });
      const xml = buildResponse({ assertions: [encrypted] });
      const identity = await verifySamlResponse(
        xml,
        options({ spDecryptionKey: [pki.otherSp.keyPem, pki.sp.keyPem] }),
      );
      expect(identity.givenName).to.equal('Erika');
    });

    it('keeps namespace prefixes the encrypted assertion inherited from its context', async () => {
      const signed = signXml(buildAssertion(), 'Assertion', pki.bundId);
      const withoutDeclaration = signed.replace(' xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion"', '');
      expect(withoutDeclaration).to.not.equal(signed);
      const xml = buildResponse({ assertions: [encryptAssertion(withoutDeclaration, pki.sp.publicKeyPem)] });
      expect((await verifySamlResponse(xml, options())).familyName).to.equal('Mustermann');
    });

    it('accepts an unsigned assertion inside a signed Response (the signature covers the ciphertext)', async () => {
      const encrypted = encryptAssertion(buildAssertion(), pki.sp.publicKeyPem);
      const xml = signXml(buildResponse({ assertions: [encrypted] }), 'Response', pki.bundId);
      expect((await verifySamlResponse(xml, options())).familyName).to.equal('Mustermann');
    });

    it('rejects an unsigned encrypted assertion in an unsigned Response', async () => {
      const xml = buildResponse({ assertions: [encryptAssertion(buildAssertion(), pki.sp.publicKeyPem)] });
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_UNSIGNED');
    });

    it('rejects a signed-then-encrypted assertion that was tampered with before encryption', async () => {
      const tampered = signXml(buildAssertion(), 'Assertion', pki.bundId).replace('>Erika<', '>Eve<');
      const xml = buildResponse({ assertions: [encryptAssertion(tampered, pki.sp.publicKeyPem)] });
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_SIGNATURE_INVALID');
    });

    it('fails to decrypt an assertion encrypted for another SP, with one message for every cause', async () => {
      const signed = signXml(buildAssertion(), 'Assertion', pki.bundId);
      const messages = new Set<string>();
      for (const keyTransport of ['rsa-oaep-mgf1p', 'rsa-1_5'] as const) {
        const forOther = buildResponse({
          assertions: [
            encryptAssertion(signed, pki.otherSp.publicKeyPem, { keyTransport, data: 'aes128-cbc' }),
          ],
        });
        messages.add(
          (await expectCode(verifySamlResponse(forOther, options()), 'AMT_SAML_DECRYPTION_FAILED')).message,
        );
      }
      const tampered = buildResponse({
        assertions: [encryptAssertion(signed, pki.sp.publicKeyPem, { tamper: true })],
      });
      messages.add(
        (await expectCode(verifySamlResponse(tampered, options()), 'AMT_SAML_DECRYPTION_FAILED')).message,
      );
      // Decrypts fine but is no XML: indistinguishable from a padding error (CBC oracle attacks).
      const notXml = buildResponse({
        assertions: [
          encryptAssertion('<saml2:Assertion xmlns:saml2="x">unclosed', pki.sp.publicKeyPem, {
            data: 'aes128-cbc',
          }),
        ],
      });
      messages.add(
        (await expectCode(verifySamlResponse(notXml, options()), 'AMT_SAML_DECRYPTION_FAILED')).message,
      );
      expect([...messages]).to.have.length(1);
    });

    it('rejects an encrypted assertion when no SP key is configured', async () => {
      const xml = buildResponse({ assertions: [encryptAssertion(buildAssertion(), pki.sp.publicKeyPem)] });
      await expectCode(
        verifySamlResponse(xml, options({ spDecryptionKey: undefined })),
        'AMT_SAML_DECRYPTION_FAILED',
      );
    });
  });

  describe('malformed input', () => {
    it('rejects a DOCTYPE (XXE) in XML and in base64', async () => {
      const xxe = signedAssertionResponse().replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
      );
      expect(xxe).to.contain('<!DOCTYPE');
      await expectCode(verifySamlResponse(xxe, options()), 'AMT_SAML_DOCTYPE_FORBIDDEN');
      await expectCode(verifySamlResponse(base64(xxe), options()), 'AMT_SAML_DOCTYPE_FORBIDDEN');
    });

    it('rejects input that is neither XML nor base64, and XML that is not well-formed', async () => {
      await expectCode(verifySamlResponse('not a saml response!', options()), 'AMT_SAML_MALFORMED');
      await expectCode(verifySamlResponse(base64('plain text'), options()), 'AMT_SAML_MALFORMED');
      await expectCode(
        verifySamlResponse('<saml2p:Response xmlns:saml2p="x">', options()),
        'AMT_SAML_MALFORMED',
      );
    });

    it('rejects absurdly deep nesting as malformed', async () => {
      const deep = signedAssertionResponse().replace(
        '<saml2p:Status>',
        `<saml2p:Extensions>${'<x:e xmlns:x="urn:x">'.repeat(5000)}${'</x:e>'.repeat(5000)}</saml2p:Extensions><saml2p:Status>`,
      );
      await expectCode(verifySamlResponse(deep, options()), 'AMT_SAML_MALFORMED');
    });

    it('rejects a document larger than the limit', async () => {
      const xml = signedAssertionResponse();
      await expectCode(verifySamlResponse(xml, options({ maxInputBytes: 1024 })), 'AMT_SAML_MALFORMED');
    });

    it('rejects an assertion without a trust level it can read', async () => {
      const xml = signXml(
        buildAssertion({
          classRef: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
          attributes: eidAttributes({ 'urn:oid:1.2.40.0.10.2.1.1.261.94': [] }),
        }),
        'Assertion',
        pki.bundId,
      );
      await expectCode(verifySamlResponse(xml, options()), 'AMT_SAML_TRUST_LEVEL_UNKNOWN');
    });
  });
});
