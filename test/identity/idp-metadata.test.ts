import { expect } from 'chai';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AmtError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { loadIdpMetadataFile, parseIdpMetadata } from '../../src/identity/index.js';
import { BUNDID_ENTITY_ID, NOW, idpMetadataXml, signXml, testPki } from './saml-fixtures.js';
import type { TestPki } from './saml-fixtures.js';

function expectCode(run: () => unknown, code: ErrorCode): AmtError {
  try {
    run();
  } catch (err) {
    expect(err).to.be.instanceOf(AmtError);
    expect((err as AmtError).code, (err as Error).message).to.equal(code);
    return err as AmtError;
  }
  expect.fail(`expected ${code}`);
}

const fingerprint = (pem: string): string =>
  createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');

describe('identity: IdP metadata', () => {
  let pki: TestPki;
  let dir: string;

  before(function () {
    this.timeout(120_000);
    pki = testPki();
    dir = mkdtempSync(join(tmpdir(), 'amtsbote-idp-metadata-'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the entityID and the signing certificates, leaving out encryption keys', () => {
    const xml = idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64, pki.bundIdNext.certBase64], {
      encryptionCert: pki.servicekonto.certBase64,
      validUntil: NOW + 86_400_000,
    });
    const metadata = parseIdpMetadata(xml);
    expect(metadata.entityId).to.equal(BUNDID_ENTITY_ID);
    expect(metadata.signingCertificates.map((c) => c.fingerprintSha256)).to.deep.equal([
      fingerprint(pki.bundId.certPem),
      fingerprint(pki.bundIdNext.certPem),
    ]);
    expect(metadata.signingCertificates[0]?.pem).to.contain('-----BEGIN CERTIFICATE-----');
    expect(metadata.validUntil).to.equal(NOW + 86_400_000);
    expect(metadata.signatureVerified).to.equal(false);
  });

  it('takes a KeyDescriptor without use as a signing key', () => {
    const metadata = parseIdpMetadata(
      idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64], { unqualifiedUse: true }),
    );
    expect(metadata.signingCertificates.map((c) => c.fingerprintSha256)).to.deep.equal([
      fingerprint(pki.bundId.certPem),
    ]);
  });

  it('refuses a DOCTYPE before parsing', () => {
    const xml = idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]).replace(
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<?xml version="1.0"?><!DOCTYPE md [<!ENTITY e SYSTEM "file:///etc/hostname">]>',
    );
    const err = expectCode(() => parseIdpMetadata(xml), 'AMT_SAML_METADATA_INVALID');
    expect(err.message).to.contain('DOCTYPE');
  });

  it('refuses metadata without an IdP role, without signing keys, or with a broken certificate', () => {
    const base = idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]);
    expectCode(
      () => parseIdpMetadata(base.replace(/IDPSSODescriptor/g, 'SPSSODescriptor')),
      'AMT_SAML_METADATA_INVALID',
    );
    expectCode(
      () => parseIdpMetadata(idpMetadataXml(BUNDID_ENTITY_ID, [], { encryptionCert: pki.bundId.certBase64 })),
      'AMT_SAML_METADATA_INVALID',
    );
    expectCode(
      () => parseIdpMetadata(base.replace(pki.bundId.certBase64, 'bm90IGEgY2VydA==')),
      'AMT_SAML_METADATA_INVALID',
    );
    expectCode(() => parseIdpMetadata('<md:EntityDescriptor'), 'AMT_SAML_METADATA_INVALID');
  });

  it('refuses expired metadata when a time is given', () => {
    const xml = idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64], { validUntil: NOW - 1000 });
    expect(parseIdpMetadata(xml).validUntil).to.equal(NOW - 1000);
    expectCode(() => parseIdpMetadata(xml, { now: NOW }), 'AMT_SAML_METADATA_INVALID');
  });

  describe('signed metadata (refresh from a URL)', () => {
    const signedMetadata = (): string =>
      signXml(
        idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]),
        'EntityDescriptor',
        pki.metadataSigner,
      );

    it('verifies the enveloped signature against the configured certificate', () => {
      const metadata = parseIdpMetadata(signedMetadata(), { verifyWith: [pki.metadataSigner.certPem] });
      expect(metadata.signatureVerified).to.equal(true);
      expect(metadata.entityId).to.equal(BUNDID_ENTITY_ID);
      expect(metadata.signingCertificates.map((c) => c.fingerprintSha256)).to.deep.equal([
        fingerprint(pki.bundId.certPem),
      ]);
    });

    it('refuses metadata whose signing certificate was swapped after signing', () => {
      const swapped = signedMetadata().replace(pki.bundId.certBase64, pki.attacker.certBase64);
      expect(swapped).to.contain(pki.attacker.certBase64);
      expectCode(
        () => parseIdpMetadata(swapped, { verifyWith: [pki.metadataSigner.certPem] }),
        'AMT_SAML_METADATA_SIGNATURE_INVALID',
      );
    });

    it('refuses metadata signed by someone else, and unsigned metadata', () => {
      const foreign = signXml(
        idpMetadataXml(BUNDID_ENTITY_ID, [pki.attacker.certBase64]),
        'EntityDescriptor',
        pki.attacker,
      );
      expectCode(
        () => parseIdpMetadata(foreign, { verifyWith: [pki.metadataSigner.certPem] }),
        'AMT_SAML_METADATA_SIGNATURE_INVALID',
      );
      expectCode(
        () =>
          parseIdpMetadata(idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]), {
            verifyWith: [pki.metadataSigner.certPem],
          }),
        'AMT_SAML_METADATA_SIGNATURE_INVALID',
      );
    });
  });

  it('loads metadata from a file, with a byte order mark', async () => {
    const path = join(dir, 'bundid-idp.xml');
    writeFileSync(path, '\uFEFF' + idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]), 'utf8');
    const metadata = await loadIdpMetadataFile(path);
    expect(metadata.entityId).to.equal(BUNDID_ENTITY_ID);
    try {
      await loadIdpMetadataFile(join(dir, 'missing.xml'));
      expect.fail('expected a missing file to be reported');
    } catch (err) {
      expect((err as AmtError).code).to.equal('AMT_SAML_METADATA_INVALID');
    }
  });
});
