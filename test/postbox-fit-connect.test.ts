/**
 * Citizen postbox notices through FIT-Connect, end to end in process: a portal submits (with and
 * without a verified BundID login), the application is delivered to a Fachverfahren, the
 * Fachverfahren reports a status, and the German notice arrives at the postbox's destination on
 * the FIT-Connect emulator as an encrypted submission — decrypted here with the destination's
 * private key only. Real gateway, SQLite store, pipeline, adapters and loopback servers.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { compactDecrypt, importJWK } from 'jose';
import { fitConnectAdapter } from '../adapters/fit-connect/manifest.js';
import { UNCONFIRMED_POSTBOX_SCHEMA_URI } from '../adapters/fit-connect/postbox.js';
import { httpAdapter } from '../adapters/http/manifest.js';
import { postboxAdapter } from '../adapters/postbox/manifest.js';
import { parseConfig, validateConfig } from '../src/config/load.js';
import type { GatewayConfig } from '../src/config/types.js';
import { AmtError } from '../src/errors.js';
import { hashApiKey } from '../src/http/auth.js';
import type { MessageRecord } from '../src/store/types.js';
import {
  ACS_URL,
  BUNDID_ENTITY_ID,
  REQUEST_ID,
  SP_ENTITY_ID,
  buildAssertion,
  buildResponse,
  eidAttributes,
  idpMetadataXml,
  signXml,
  testPki,
  type TestPki,
} from './identity/saml-fixtures.js';
import { fitConnectFixture, type FitConnectFixture } from './peers/fit-connect/fixture.js';
import { decryptionJwk, encryptionJwk, rsaKeyPair, type RsaKeyPair } from './peers/fit-connect/keys.js';
import type { EmulatedDestination, EmulatedSubmission } from './peers/fit-connect/state.js';
import { startPeer, startStatusGateway, type Json, type Peer, type StatusGateway } from './status/harness.js';

const MUENSTER = '055150000000';
const GEWERBE = '99050012104000';
const PSEUDONYM = 'UkVGRVJFTlpQU0VVRE9OWU0tR0VXRVJCRS0wMDE=';
const KEYS = { portal: 'portal-ms-key-7d21', fachverfahren: 'fv-gewerbe-key-3a90' } as const;
const manifests = [httpAdapter, postboxAdapter, fitConnectAdapter];

describe('postbox notices through FIT-Connect end to end', function () {
  this.timeout(120_000);
  let world: FitConnectFixture;
  let postboxKey: RsaKeyPair;
  let postboxDestination: EmulatedDestination;
  let pki: TestPki;
  let dir: string;
  let fachverfahren: Peer;
  let gw: StatusGateway;

  before(async () => {
    world = await fitConnectFixture();
    // The postbox's own destination with its own key, certified like every destination key.
    postboxKey = await rsaKeyPair(4096);
    postboxDestination = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(
        postboxKey,
        world.keys.trustedCa.issue(postboxKey, 'Postfach Zustellpunkt'),
      ),
      services: [GEWERBE],
    });
    pki = testPki();
  });

  after(async () => world.close());

  function buildConfig(postbox: Record<string, unknown>): GatewayConfig {
    writeFileSync(
      path.join(dir, 'gewerbe.status.yaml'),
      `service: Gewerbeanmeldung
statuses:
  IN_BEARBEITUNG: PROCESSING
  ABGELEHNT: REJECTED
`,
    );
    writeFileSync(path.join(dir, 'bundid.xml'), idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]));
    writeFileSync(path.join(dir, 'sp-key.pem'), pki.sp.keyPem);
    return validateConfig(
      {
        dataDir: dir,
        tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: MUENSTER }],
        clients: [
          { id: 'portal-ms', keyHash: hashApiKey(KEYS.portal), tenants: ['muenster'] },
          {
            id: 'fv-gewerbe',
            keyHash: hashApiKey(KEYS.fachverfahren),
            tenants: ['muenster'],
            statusReporter: ['gewerbe'],
          },
        ],
        adapters: {
          gewerbe: {
            type: 'http',
            config: {
              url: `${fachverfahren.url}/antraege`,
              remoteReference: { jsonPointer: '/vorgangsnummer' },
            },
          },
          postfach: {
            type: 'fit-connect',
            config: {
              submissionApiUrl: world.emulator.url,
              tokenUrl: world.emulator.tokenUrl,
              clientId: world.client.clientId,
              clientSecret: world.client.clientSecret,
              jwksUrl: world.emulator.jwksUrl,
              requestTimeout: '10s',
              sending: {
                destinationId: postboxDestination.destinationId,
                trustAnchorFile: world.trustAnchorFile,
                postbox,
              },
            },
          },
        },
        routes: [
          {
            id: 'gewerbe',
            ars: '05515',
            service: GEWERBE,
            adapter: 'gewerbe',
            statusMapping: 'gewerbe.status.yaml',
            postbox: { adapter: 'postfach' },
          },
        ],
        identity: {
          idps: [{ metadata: 'bundid.xml' }],
          audience: SP_ENTITY_ID,
          recipient: ACS_URL,
          spDecryptionKey: 'sp-key.pem',
        },
        retry: { maxAttempts: 4, initialDelay: 30, maxDelay: 200, jitter: 0 },
        pipeline: {
          concurrency: 4,
          batchSize: 10,
          lease: 5000,
          pollInterval: 20,
          deliveryTimeout: 15_000,
          drainTimeout: 1000,
        },
      },
      { manifests, baseDir: dir, source: undefined },
    );
  }

  async function start(postbox: Record<string, unknown> = {}): Promise<void> {
    gw = await startStatusGateway(buildConfig(postbox), manifests);
  }

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-postbox-fit-'));
    fachverfahren = await startPeer([
      { status: 201, body: JSON.stringify({ vorgangsnummer: 'GEW-2026-4711' }) },
    ]);
  });

  afterEach(async () => {
    await gw?.stop();
    await fachverfahren.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A BundID login of now, signed by the IdP the configuration trusts. */
  function samlLogin(id: string): string {
    const now = Date.now();
    const assertion = buildAssertion({
      id,
      notBefore: now - 60_000,
      notOnOrAfter: now + 5 * 60_000,
      authnInstant: now - 2000,
      attributes: eidAttributes({ 'urn:oid:1.3.6.1.4.1.25484.494450.3': [PSEUDONYM] }),
    });
    const response = buildResponse({ assertions: [signXml(assertion, 'Assertion', pki.bundId)] });
    return Buffer.from(response, 'utf8').toString('base64');
  }

  async function submit(reference: string, login?: string): Promise<MessageRecord> {
    const res = await gw.request('POST', '/api/v1/applications', {
      key: KEYS.portal,
      json: {
        tenant: MUENSTER,
        service: GEWERBE,
        reference,
        applicant: { givenName: 'Erika', familyName: 'Mustermann' },
        data: { betrieb: 'Café am Dom' },
        ...(login === undefined ? {} : { identity: { samlResponse: login, inResponseTo: REQUEST_ID } }),
      },
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    return gw.messageWithStatus(res.body.id, 'delivered');
  }

  const report = async (messageId: string, status: string): Promise<Json> => {
    const res = await gw.request('POST', '/api/v1/status', {
      key: KEYS.fachverfahren,
      json: { messageId, status },
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body;
  };

  const submissionsToPostbox = (): EmulatedSubmission[] =>
    [...world.emulator.state.submissions.values()].filter(
      (s) => s.destinationId === postboxDestination.destinationId && s.status === 'submitted',
    );

  /** Waits for the notice message to be delivered and returns the submission it became. */
  async function noticeSubmission(
    count: number,
  ): Promise<{ notice: MessageRecord; submission: EmulatedSubmission }> {
    const notice = await gw.until(async () => {
      const found = (await gw.store.listMessages({ limit: 100 })).items.filter(
        (m) => m.target === 'postfach',
      );
      return found.length === count && found.every((m) => m.status === 'delivered')
        ? found.sort((a, b) => a.createdAt - b.createdAt).at(-1)
        : undefined;
    }, `${count} delivered postbox notices`);
    const [submissionId] = (notice.remoteReference ?? '').split(':');
    const submission = world.emulator.state.submissions.get(submissionId!);
    expect(submission, 'the notice submission at the emulator').to.not.equal(undefined);
    return { notice, submission: submission! };
  }

  /** Decrypts with the postbox destination's private key only, as the postbox would. */
  async function open(
    submission: EmulatedSubmission,
  ): Promise<{ metadata: Json; data: Buffer; cty: unknown }> {
    const key = await importJWK({ ...decryptionJwk(postboxKey), key_ops: undefined }, 'RSA-OAEP-256');
    const metadata = await compactDecrypt(submission.encryptedMetadata!, key);
    const data = await compactDecrypt(submission.encryptedData!, key);
    return {
      metadata: JSON.parse(Buffer.from(metadata.plaintext).toString('utf8')),
      data: Buffer.from(data.plaintext),
      cty: data.protectedHeader.cty,
    };
  }

  const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');

  it('sends the German notice, addressed by the bPK2 of a verified login, as encrypted Fachdaten', async () => {
    await start({ sender: 'Stadt Münster' });
    const before = submissionsToPostbox().length;
    const message = await submit('GEW-PORTAL-7', samlLogin('_postbox-fit-login-1'));
    expect(fachverfahren.requests).to.have.length(1);

    const body = await report(message.id, 'IN_BEARBEITUNG');
    expect(body).to.include({ citizenStatus: 'PROCESSING', notifications: 1 });
    const { notice, submission } = await noticeSubmission(1);
    expect(submissionsToPostbox()).to.have.length(before + 1);
    expect(submission.destinationId).to.equal(postboxDestination.destinationId);
    expect(submission.announcedAttachments).to.deep.equal([]);
    expect(submission.serviceType).to.deep.equal({
      identifier: `urn:de:fim:leika:leistung:${GEWERBE}`,
      name: 'Mitteilung zum Stand eines Antrags',
    });
    expect(notice.remoteReference).to.equal(`${submission.submissionId}:${submission.caseId}`);

    const { metadata, data, cty } = await open(submission);
    expect(cty).to.equal('application/json');
    expect(JSON.parse(data.toString('utf8'))).to.deep.equal({
      recipient: { pseudonym: PSEUDONYM },
      subject: 'Ihr Antrag „Gewerbeanmeldung“: In Bearbeitung',
      text: 'Ihr Antrag „Gewerbeanmeldung“ (Vorgangsnummer GEW-PORTAL-7) wird bearbeitet. Aktenzeichen der Behörde: GEW-2026-4711.',
      status: 'PROCESSING',
      service: GEWERBE,
      reference: 'GEW-PORTAL-7',
      sender: 'Stadt Münster',
    });
    expect(metadata.contentStructure.data).to.deep.equal({
      hash: { type: 'sha512', content: sha512(data) },
      // The emulated destination declares a JSON schema for the service: that one is named.
      submissionSchema: {
        schemaUri: `https://schema.example.org/fachdaten/${GEWERBE}.schema.json`,
        mimeType: 'application/json',
      },
    });
    expect(metadata.contentStructure.attachments).to.deep.equal([]);
    expect(metadata).to.not.have.property('authenticationInformation');
  });

  it('addresses a notice without a verified login by the portal reference, and sends REJECTED as COMPLETED', async () => {
    await start({
      schemaUri: 'https://postfach.example/schema/statusmitteilung.json',
      serviceName: 'Statusmitteilung',
    });
    const message = await submit('GEW-PORTAL-8');
    const body = await report(message.id, 'ABGELEHNT');
    expect(body).to.include({ citizenStatus: 'REJECTED', notifications: 1 });
    const { submission } = await noticeSubmission(1);
    expect(submission.serviceType.name).to.equal('Statusmitteilung');
    const { metadata, data } = await open(submission);
    const fachdaten = JSON.parse(data.toString('utf8'));
    expect(fachdaten).to.deep.equal({
      recipient: { reference: 'GEW-PORTAL-8' },
      subject: 'Ihr Antrag „Gewerbeanmeldung“: Abgelehnt',
      text: 'Ihr Antrag „Gewerbeanmeldung“ (Vorgangsnummer GEW-PORTAL-8) konnte nicht angenommen werden.',
      status: 'COMPLETED',
      service: GEWERBE,
      reference: 'GEW-PORTAL-8',
    });
    expect(metadata.contentStructure.data).to.deep.equal({
      hash: { type: 'sha512', content: sha512(data) },
      submissionSchema: {
        schemaUri: 'https://postfach.example/schema/statusmitteilung.json',
        mimeType: 'application/json',
      },
    });
  });

  it('follows a configured status vocabulary and falls back to the unconfirmed schema URI', async () => {
    // A postbox service the destination does not declare a schema for.
    postboxDestination.services.push({
      identifier: 'urn:de:fim:leika:leistung:99000000000001',
      submissionSchemas: [],
    });
    await start({
      serviceIdentifier: 'urn:de:fim:leika:leistung:99000000000001',
      statusValues: { REJECTED: 'ACTION_REQUIRED' },
      requirePseudonym: true,
    });
    const withLogin = await submit('GEW-PORTAL-9', samlLogin('_postbox-fit-login-2'));
    await report(withLogin.id, 'ABGELEHNT');
    const { submission } = await noticeSubmission(1);
    expect(submission.serviceType.identifier).to.equal('urn:de:fim:leika:leistung:99000000000001');
    const { metadata, data } = await open(submission);
    expect(JSON.parse(data.toString('utf8'))).to.include({ status: 'ACTION_REQUIRED' });
    expect(metadata.contentStructure.data.submissionSchema).to.deep.equal({
      schemaUri: UNCONFIRMED_POSTBOX_SCHEMA_URI,
      mimeType: 'application/json',
    });

    // Without a verified login there is no one to address: a dead letter, nothing sent.
    const sent = submissionsToPostbox().length;
    const anonymous = await submit('GEW-PORTAL-10');
    await report(anonymous.id, 'IN_BEARBEITUNG');
    const dead = await gw.until(async () => {
      const found = (await gw.store.listMessages({ limit: 100 })).items.filter(
        (m) => m.target === 'postfach' && m.status === 'dead',
      );
      return found[0];
    }, 'a dead postbox notice');
    expect(dead.lastError?.message).to.match(/no verified citizen identity/);
    expect(submissionsToPostbox()).to.have.length(sent);
  });
});

describe('postbox notices: configuration check', () => {
  const yaml = (instance: string) => `
tenants:
  - { id: muenster, name: Stadt Münster, ars: '055150000000' }
clients:
  - { id: portal, keyHash: sha256:${'a'.repeat(64)}, tenants: [muenster] }
adapters:
  gewerbe: { type: http, config: { url: 'https://fachverfahren.example/antraege' } }
${instance}
routes:
  - id: gewerbe
    ars: '05515'
    service: '${GEWERBE}'
    adapter: gewerbe
    postbox: { adapter: postfach }
`;
  const fitConnect = (sending: string) => `  postfach:
    type: fit-connect
    config:
      submissionApiUrl: https://submission-api-testing.fit-connect.fitko.dev
      tokenUrl: https://auth-testing.fit-connect.fitko.dev/token
      clientId: a8f0a2f3-6c1e-4b8e-9d55-1c2b3d4e5f60
      clientSecret: a-client-secret
      sending: ${sending}`;

  function problems(text: string): string[] {
    try {
      parseConfig(text, { manifests, env: {}, source: '/etc/amtsbote/gateway.yaml' });
    } catch (err) {
      expect(err).to.be.instanceOf(AmtError);
      return (err as AmtError).problems.map((p) => `${p.path}: ${p.message}`);
    }
    return [];
  }

  it('refuses a postbox adapter instance of a type that cannot carry notices', () => {
    expect(
      problems(yaml(`  postfach: { type: http, config: { url: 'https://postfach.example/api' } }`)),
    ).to.deep.equal([
      '/routes/0/postbox/adapter: the instance postfach has type http, which cannot carry postbox notices (postbox, fit-connect)',
    ]);
  });

  it('refuses a fit-connect instance without sending.postbox, and sending.postbox without a destination', () => {
    expect(
      problems(yaml(fitConnect('{ destinationId: 3fa85f64-5717-4562-b3fc-2c963f66afa6 }'))),
    ).to.deep.equal([
      "/routes/0/postbox/adapter: the fit-connect instance postfach carries postbox notices only with sending.postbox and the postbox's sending.destinationId",
    ]);
    const found = problems(yaml(fitConnect('{ postbox: {} }')));
    expect(found.join('\n')).to.match(/\/adapters\/postfach\/config\/sending.*destinationId/);
  });

  it('accepts a postbox or a fit-connect instance with sending.postbox', () => {
    expect(
      problems(yaml(`  postfach: { type: postbox, config: { url: 'https://postfach.example/api' } }`)),
    ).to.deep.equal([]);
    expect(
      problems(
        yaml(
          fitConnect(
            '{ destinationId: 3fa85f64-5717-4562-b3fc-2c963f66afa6, postbox: { statusValues: { REJECTED: COMPLETED } } }',
          ),
        ),
      ),
    ).to.deep.equal([]);
    expect(
      problems(
        yaml(
          fitConnect(
            '{ destinationId: 3fa85f64-5717-4562-b3fc-2c963f66afa6, postbox: { statusValues: { REJECTED: ABGELEHNT } } }',
          ),
        ),
      ).join('\n'),
    ).to.include('/adapters/postfach/config/sending/postbox/statusValues/REJECTED');
  });
});
