import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { compactDecrypt, decodeProtectedHeader, importJWK } from 'jose';
import { isAmtError, type AmtError } from '../../src/errors.js';
import { encryptionJwk, decryptionJwk } from '../../test/peers/fit-connect/keys.js';
import { fakeContext, makeDelivery } from '../../test/peers/fit-connect/fake-context.js';
import {
  fitConnectFixture,
  SCHEMA_URI,
  SERVICE_KEY,
  type FitConnectFixture,
} from '../../test/peers/fit-connect/fixture.js';
import { createFitConnectInstance } from './manifest.js';
import { attachmentIdFor, parseRemoteReference } from './send.js';

const signal = new AbortController().signal;
const application = JSON.stringify({ antragsteller: { familienname: 'Mustermann' }, zuzug: '2026-01-15' });
const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(300_000, 7)]);

async function deliveryError(promise: Promise<unknown>): Promise<AmtError> {
  try {
    await promise;
  } catch (err) {
    if (isAmtError(err)) return err;
    throw err;
  }
  throw new Error('the delivery succeeded, an error was expected');
}

describe('FIT-Connect sending', function () {
  let world: FitConnectFixture;

  before(async function () {
    this.timeout(180_000);
    world = await fitConnectFixture();
  });
  after(async () => world.close());

  it('announces, uploads and submits what only the destination can decrypt, with hashes that match', async () => {
    const instance = createFitConnectInstance(fakeContext(), world.sendingConfig());
    const delivery = makeDelivery({
      service: SERVICE_KEY,
      body: application,
      attachments: [
        {
          filename: 'meldebescheinigung.pdf',
          mediaType: 'application/pdf',
          content: pdf,
          purpose: 'Nachweis',
        },
      ],
    });
    const result = await instance.deliver!(delivery, signal);

    const ref = parseRemoteReference(result.remoteReference);
    expect(ref, 'remote reference').to.not.equal(undefined);
    const stored = world.emulator.state.submissions.get(ref!.submissionId)!;
    expect(stored.status).to.equal('submitted');
    expect(stored.caseId).to.equal(ref!.caseId);
    expect(result.detail).to.include({ submissionId: stored.submissionId, caseId: stored.caseId });
    expect(stored.serviceType.identifier).to.equal(`urn:de:fim:leika:leistung:${SERVICE_KEY}`);
    expect(stored.announcedAttachments).to.deep.equal([attachmentIdFor(delivery.deliveryId, 0)]);
    expect(world.emulator.state.requestedScopes, 'no scope requested').to.deep.equal([]);

    // Decrypt independently, with the destination's private key only.
    const key = await importJWK(
      { ...decryptionJwk(world.keys.destinationEncryption), key_ops: undefined },
      'RSA-OAEP-256',
    );
    const open = async (jwe: string) => {
      const { plaintext, protectedHeader } = await compactDecrypt(jwe, key);
      return { plaintext: Buffer.from(plaintext), header: protectedHeader };
    };
    const metadataJwe = await open(stored.encryptedMetadata!);
    expect(metadataJwe.header).to.include({
      alg: 'RSA-OAEP-256',
      enc: 'A256GCM',
      kid: world.keys.destinationEncryption.kid,
      cty: 'application/json',
    });
    const metadata = JSON.parse(metadataJwe.plaintext.toString('utf8'));
    expect(metadata.$schema).to.match(
      /^https:\/\/schema\.fitko\.de\/fit-connect\/metadata\/1\.\d+\.\d+\/metadata\.schema\.json$/,
    );

    const data = await open(stored.encryptedData!);
    expect(data.header.cty).to.equal('application/json');
    expect(data.plaintext.toString('utf8')).to.equal(application);
    const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');
    expect(metadata.contentStructure.data.hash).to.deep.equal({
      type: 'sha512',
      content: sha512(data.plaintext),
    });
    expect(metadata.contentStructure.data.submissionSchema).to.deep.equal({
      schemaUri: SCHEMA_URI,
      mimeType: 'application/json',
    });

    const [described] = metadata.contentStructure.attachments;
    expect(described).to.include({
      attachmentId: stored.announcedAttachments[0],
      mimeType: 'application/pdf',
      filename: 'meldebescheinigung.pdf',
      purpose: 'attachment',
    });
    const attachment = await open(stored.attachments.get(described.attachmentId)!);
    expect(attachment.header.cty).to.equal('application/pdf');
    expect(attachment.plaintext.equals(pdf)).to.equal(true);
    expect(described.hash).to.deep.equal({ type: 'sha512', content: sha512(attachment.plaintext) });
  });

  it('cannot have its JWE altered unnoticed: a flipped ciphertext byte fails decryption', async () => {
    const instance = createFitConnectInstance(fakeContext(), world.sendingConfig());
    const result = await instance.deliver!(makeDelivery({ service: SERVICE_KEY, body: application }), signal);
    const { submissionId } = parseRemoteReference(result.remoteReference)!;
    world.emulator.state.tamper(submissionId, 'data');
    const key = await importJWK(
      { ...decryptionJwk(world.keys.destinationEncryption), key_ops: undefined },
      'RSA-OAEP-256',
    );
    let failure: unknown;
    try {
      await compactDecrypt(world.emulator.state.submissions.get(submissionId)!.encryptedData!, key);
    } catch (err) {
      failure = err;
    }
    expect((failure as { code?: string } | undefined)?.code).to.equal('ERR_JWE_DECRYPTION_FAILED');
  });

  it('uses the same attachment ids for every attempt of one delivery', async () => {
    const instance = createFitConnectInstance(fakeContext(), world.sendingConfig());
    const attachments = [
      { filename: 'a.pdf', mediaType: 'application/pdf', content: Buffer.from('%PDF a') },
      { filename: 'b.png', mediaType: 'image/png', content: Buffer.from('png b') },
    ];
    const first = makeDelivery({ service: SERVICE_KEY, body: application, attachments });
    const retry = { ...first, attempt: 2 };
    const a = parseRemoteReference((await instance.deliver!(first, signal)).remoteReference)!;
    const b = parseRemoteReference((await instance.deliver!(retry, signal)).remoteReference)!;
    const ids = (id: string) => world.emulator.state.submissions.get(id)!.announcedAttachments;
    expect(ids(a.submissionId)).to.have.length(2);
    expect(ids(b.submissionId)).to.deep.equal(ids(a.submissionId));
    expect(new Set(ids(a.submissionId)).size).to.equal(2);
  });

  it('refuses a destination key shorter than 4096 bits permanently, before announcing anything', async () => {
    const short = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.short),
      services: [SERVICE_KEY],
    });
    const before = world.emulator.state.submissions.size;
    const instance = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({ sending: { destinationId: short.destinationId } }),
    );
    const err = await deliveryError(
      instance.deliver!(makeDelivery({ service: SERVICE_KEY, body: application }), signal),
    );
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain('2048 bits');
    expect(world.emulator.state.submissions.size).to.equal(before);
  });

  it('refuses a destination key that is not for wrapping keys permanently', async () => {
    const wrongOps = world.emulator.state.addDestination({
      // A 4096-bit key published for signature verification, not for wrapping keys.
      encryptionKey: { ...encryptionJwk(world.keys.destinationSigning), key_ops: ['verify'] },
      services: [SERVICE_KEY],
    });
    const instance = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({ sending: { destinationId: wrongOps.destinationId } }),
    );
    const err = await deliveryError(
      instance.deliver!(makeDelivery({ service: SERVICE_KEY, body: application }), signal),
    );
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain('wrapKey');
  });

  it('refuses a key whose certificate chain does not lead to the trust anchor', async () => {
    const rogue = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(
        world.keys.destinationSigning,
        world.keys.untrustedCa.issue(world.keys.destinationSigning, 'rogue'),
      ),
      services: [SERVICE_KEY],
    });
    const withAnchor = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({
        sending: { destinationId: rogue.destinationId, trustAnchorFile: world.trustAnchorFile },
      }),
    );
    const err = await deliveryError(
      withAnchor.deliver!(makeDelivery({ service: SERVICE_KEY, body: application }), signal),
    );
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain('trust anchor');

    // Without a configured anchor the chain is not checked and the same key is used.
    const withoutAnchor = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({ sending: { destinationId: rogue.destinationId } }),
    );
    const ok = await withoutAnchor.deliver!(
      makeDelivery({ service: SERVICE_KEY, body: application }),
      signal,
    );
    expect(parseRemoteReference(ok.remoteReference)).to.not.equal(undefined);
  });

  it('fetches one new token when the API refuses an expired one, then succeeds', async () => {
    const instance = createFitConnectInstance(fakeContext(), world.sendingConfig());
    await instance.deliver!(makeDelivery({ service: SERVICE_KEY, body: application }), signal);
    const tokensBefore = world.emulator.state.tokenRequests;
    world.emulator.state.expireTokens();
    const result = await instance.deliver!(makeDelivery({ service: SERVICE_KEY, body: application }), signal);
    expect(parseRemoteReference(result.remoteReference)).to.not.equal(undefined);
    expect(world.emulator.state.tokenRequests - tokensBefore).to.equal(1);
    const refused = world.emulator.state.requests.filter((r) => r.status === 401);
    expect(refused.length).to.be.greaterThan(0);
  });

  for (const [status, retryAfter] of [
    [429, '7'],
    [503, '120'],
  ] as const) {
    it(`turns HTTP ${status} with Retry-After into retryLater with retryAfterSeconds`, async () => {
      const instance = createFitConnectInstance(fakeContext(), world.sendingConfig());
      world.emulator.state.failNext(1, status, { retryAfter, pathPrefix: '/v1/submissions' });
      const err = await deliveryError(
        instance.deliver!(makeDelivery({ service: SERVICE_KEY, body: application }), signal),
      );
      expect(err.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(err.retryable).to.equal(true);
      expect(err.retryAfterSeconds).to.equal(Number(retryAfter));
      expect(err.message).to.contain(String(status));
    });
  }

  it('turns an unreachable Zustelldienst into retryLater', async () => {
    const instance = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({ submissionApiUrl: 'http://127.0.0.1:9' }),
    );
    const err = await deliveryError(
      instance.deliver!(makeDelivery({ service: SERVICE_KEY, body: application }), signal),
    );
    expect(err.code).to.equal('AMT_DELIVERY_RETRYABLE');
  });

  it('rejects permanently with the problem title when the Zustelldienst refuses the content (4xx)', async () => {
    const instance = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({
        sending: {
          destinationId: world.destination.destinationId,
          services: { '99000000000001': { schemaUri: SCHEMA_URI } },
        },
      }),
    );
    const err = await deliveryError(
      instance.deliver!(makeDelivery({ service: '99000000000001', body: application }), signal),
    );
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain('The destination does not offer this service');
    expect(err.message).to.contain('422');
  });

  it('refuses an attachment over the configured maximum permanently, before announcing anything', async () => {
    const instance = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({
        sending: { destinationId: world.destination.destinationId, maxAttachmentSize: '100kb' },
      }),
    );
    const before = world.emulator.state.submissions.size;
    const err = await deliveryError(
      instance.deliver!(
        makeDelivery({
          service: SERVICE_KEY,
          body: application,
          attachments: [{ filename: 'scan.pdf', mediaType: 'application/pdf', content: pdf }],
        }),
        signal,
      ),
    );
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain('scan.pdf');
    expect(world.emulator.state.submissions.size).to.equal(before);
  });

  it('sends XML Fachdaten as application/xml and refuses other body types', async () => {
    const instance = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({
        sending: {
          destinationId: world.destination.destinationId,
          services: {
            [SERVICE_KEY]: { schemaUri: 'urn:xoev-de:xmeld:standard:xmeld_3.3', name: 'Anmeldung' },
          },
        },
      }),
    );
    const xml = '<?xml version="1.0" encoding="UTF-8"?><meldung xmlns="urn:example"/>';
    const result = await instance.deliver!(
      makeDelivery({ service: SERVICE_KEY, body: xml, contentType: 'text/xml; charset=utf-8' }),
      signal,
    );
    const stored = world.emulator.state.submissions.get(
      parseRemoteReference(result.remoteReference)!.submissionId,
    )!;
    expect(decodeProtectedHeader(stored.encryptedData!).cty).to.equal('application/xml');
    expect(stored.serviceType.name).to.equal('Anmeldung');

    const err = await deliveryError(
      instance.deliver!(makeDelivery({ service: SERVICE_KEY, body: 'x', contentType: 'text/plain' }), signal),
    );
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
  });
});
