import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { compactDecrypt, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { IDENTITY_ATTRIBUTES, identityFromAssertion } from '../../src/identity/identity.js';
import { fakeContext, makeDelivery } from '../../test/peers/fit-connect/fake-context.js';
import {
  fitConnectFixture,
  SERVICE_KEY,
  type FitConnectFixture,
} from '../../test/peers/fit-connect/fixture.js';
import { decryptionJwk, rsaKeyPair, type RsaKeyPair } from '../../test/peers/fit-connect/keys.js';
import type { FitConnectConfig } from './config.js';
import { createFitConnectInstance } from './manifest.js';
import { metadataProblems } from './metadata.js';
import { parseRemoteReference } from './send.js';

const signal = new AbortController().signal;
const REPORT_ISSUER = 'https://amtsbote.stadt-muenster.de';

/** What Servicekonto.NRW confirmed (substantiell) — a different name than the one typed below. */
const identity = identityFromAssertion({
  issuer: 'https://idp.servicekonto.nrw/idp',
  assertionId: '_4c1f9e0a-2b6d-4a8e-9f3c-7d5b1e8a2c64',
  subjectNameId: 'ZmFrZS1wZXJzaXN0ZW50LWlk',
  subjectNameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  authnContextClassRef: 'STORK-QAA-Level-3',
  authenticatedAt: Date.parse('2026-03-02T09:14:07Z'),
  expiresAt: Date.parse('2026-03-02T09:19:07Z'),
  attributes: new Map([
    [IDENTITY_ATTRIBUTES.givenName, ['Erika']],
    [IDENTITY_ATTRIBUTES.familyName, ['Mustermann']],
    [IDENTITY_ATTRIBUTES.birthDate, ['1964-08-12']],
    [IDENTITY_ATTRIBUTES.postalCode, ['48143']],
    [IDENTITY_ATTRIBUTES.pseudonym, ['bPK2:5f0c9a7e31']],
  ]),
});
const application = JSON.stringify({ antragsteller: { vorname: 'Eri', familienname: 'Muster' } });

describe('FIT-Connect sending: authenticationInformation from the verified identity', function () {
  let world: FitConnectFixture;
  let reportKey: RsaKeyPair;
  let reportKeyFile: string;

  before(async function () {
    this.timeout(180_000);
    world = await fitConnectFixture();
    reportKey = await rsaKeyPair(3072);
    reportKeyFile = path.join(world.dir, 'report-signing.jwk.json');
    writeFileSync(reportKeyFile, JSON.stringify({ ...reportKey.privateJwk, alg: 'PS512', use: 'sig' }));
  });
  after(async () => world.close());

  const config = (
    report?: NonNullable<FitConnectConfig['sending']>['identificationReport'],
  ): FitConnectConfig =>
    world.sendingConfig({
      sending: {
        destinationId: world.destination.destinationId,
        trustAnchorFile: world.trustAnchorFile,
        ...(report ? { identificationReport: report } : {}),
      },
    });

  /** Sends one delivery and decrypts its metadata with the destination's private key only. */
  async function sentMetadata(
    instance: ReturnType<typeof createFitConnectInstance>,
    delivery: ReturnType<typeof makeDelivery>,
  ): Promise<Record<string, unknown>> {
    const result = await instance.deliver!(delivery, signal);
    const stored = world.emulator.state.submissions.get(
      parseRemoteReference(result.remoteReference)!.submissionId,
    )!;
    const key = await importJWK(
      { ...decryptionJwk(world.keys.destinationEncryption), key_ops: undefined },
      'RSA-OAEP-256',
    );
    const { plaintext } = await compactDecrypt(stored.encryptedMetadata!, key);
    return JSON.parse(Buffer.from(plaintext).toString('utf8')) as Record<string, unknown>;
  }

  it('a delivery with a verified identity carries one signed identification report; one without carries none', async () => {
    const instance = createFitConnectInstance(
      fakeContext(),
      config({ signingKeyFile: reportKeyFile, issuer: REPORT_ISSUER }),
    );
    const delivery = makeDelivery({ service: SERVICE_KEY, body: application, identity });
    const metadata = await sentMetadata(instance, delivery);

    expect(metadataProblems(metadata), 'metadata 1.x structure').to.deep.equal([]);
    const entries = metadata.authenticationInformation as {
      type: string;
      version: string;
      content: string;
    }[];
    expect(entries).to.have.length(1);
    const [entry] = entries;
    expect(entry!.type).to.equal('identificationReport');
    expect(entry!.version).to.match(/^\d+\.\d+\.\d+$/);
    expect(entry!.content).to.match(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);

    // The JWT verifies with the public half of the configured key, and only with it.
    expect(decodeProtectedHeader(entry!.content)).to.include({
      alg: 'PS512',
      typ: 'JWT',
      kid: reportKey.kid,
    });
    const publicKey = await importJWK({ ...(reportKey.publicJwk as JWK), alg: 'PS512' }, 'PS512');
    const { payload } = await jwtVerify(entry!.content, publicKey, { issuer: REPORT_ISSUER });
    const otherKey = await importJWK({ ...world.keys.destinationSigning.publicJwk, alg: 'PS512' }, 'PS512');
    const forged = await jwtVerify(entry!.content, otherKey).then(
      () => 'verified',
      (err: { code?: string }) => err.code,
    );
    expect(forged).to.equal('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    expect(payload).to.include({
      $schema:
        'https://raw.githubusercontent.com/Governikus/IdentificationReport/2.0.0/schema/identification-report.json',
      serverIdentity: 'https://idp.servicekonto.nrw/idp',
      identificationTime: '2026-03-02T09:14:07Z',
      idStatus: 'success',
      levelOfAssurance: 'http://bsi.bund.de/eID/LoA/substantiell',
    });
    for (const required of [
      'reportId',
      'serverIdentity',
      'reportTime',
      'identificationTime',
      'levelOfAssurance',
    ]) {
      expect(payload[required], required).to.be.a('string').with.length.above(0);
    }
    expect(Date.parse(payload.reportTime as string)).to.be.closeTo(Date.now(), 60_000);
    // The verified name, never the one typed into the form; nothing beyond what it needs.
    expect(payload.subjectRef).to.deep.equal({ firstName: 'Erika', lastName: 'Mustermann' });
    expect(JSON.stringify(payload))
      .to.not.include('"Muster"')
      .and.not.include('"Eri"')
      .and.not.include('1964')
      .and.not.include('bPK2');
    expect(payload.contextInformation).to.deep.equal([
      `urn:de:fim:leika:leistung:${SERVICE_KEY}`,
      `urn:uuid:${delivery.deliveryId}`,
    ]);

    const anonymous = await sentMetadata(instance, makeDelivery({ service: SERVICE_KEY, body: application }));
    expect(metadataProblems(anonymous)).to.deep.equal([]);
    expect(anonymous).to.not.have.property('authenticationInformation');
  });

  it('names no one with subject: none, and maps each trust level to its BSI level of assurance', async () => {
    const instance = createFitConnectInstance(
      fakeContext(),
      config({ signingKeyFile: reportKeyFile, issuer: REPORT_ISSUER, subject: 'none' }),
    );
    const publicKey = await importJWK({ ...(reportKey.publicJwk as JWK), alg: 'PS512' }, 'PS512');
    const expected = { basis: 'normal', substantiell: 'substantiell', hoch: 'hoch' } as const;
    for (const [trustLevel, loa] of Object.entries(expected)) {
      const metadata = await sentMetadata(
        instance,
        makeDelivery({
          service: SERVICE_KEY,
          body: application,
          identity: { ...identity, trustLevel: trustLevel as keyof typeof expected },
        }),
      );
      const [entry] = metadata.authenticationInformation as { content: string }[];
      const { payload } = await jwtVerify(entry!.content, publicKey);
      expect(payload.levelOfAssurance, trustLevel).to.equal(`http://bsi.bund.de/eID/LoA/${loa}`);
      expect(payload, trustLevel).to.not.have.property('subjectRef');
      expect(payload, trustLevel).to.not.have.property('subjectRefType');
    }
  });

  it('without a report key the metadata carries no authenticationInformation, and the operator is told once', async () => {
    const context = fakeContext();
    const instance = createFitConnectInstance(context, config());
    for (let i = 0; i < 2; i++) {
      const metadata = await sentMetadata(
        instance,
        makeDelivery({ service: SERVICE_KEY, body: application, identity }),
      );
      expect(metadataProblems(metadata)).to.deep.equal([]);
      expect(metadata).to.not.have.property('authenticationInformation');
    }
    const warnings = context.logs.filter((l) => l.message.includes('identificationReport'));
    expect(warnings.map((w) => w.level)).to.deep.equal(['warn']);
    expect(JSON.stringify(context.logs)).to.not.include('Mustermann');
  });
});
