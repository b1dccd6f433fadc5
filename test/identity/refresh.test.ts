/**
 * IdP metadata refresh against a real local HTTP server serving signed, tampered, foreign,
 * expired, oversized and slow metadata; and a running verifier picking up the refreshed file.
 */
import { expect } from 'chai';
import express from 'express';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineAdapter } from '../../src/adapter-contract.js';
import { validateConfig } from '../../src/config/load.js';
import { AmtError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { loadIdpMetadataFile } from '../../src/identity/index.js';
import { createIdentityVerifier } from '../../src/identity/intake.js';
import type { IdentityVerifier } from '../../src/identity/intake.js';
import { refreshIdpMetadata } from '../../src/identity/refresh.js';
import { AttachmentStore } from '../../src/attachments.js';
import { startScheduler } from '../../src/scheduler/start.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { RefreshIdpMetadataOptions } from '../../src/identity/refresh.js';
import type { Store } from '../../src/store/types.js';
import {
  ACS_URL,
  BUNDID_ENTITY_ID,
  NOW,
  REQUEST_ID,
  SERVICEKONTO_ENTITY_ID,
  SP_ENTITY_ID,
  buildAssertion,
  idpMetadataXml,
  signXml,
  testPki,
} from './saml-fixtures.js';
import type { TestPki } from './saml-fixtures.js';

async function refusal(run: Promise<unknown>, code: ErrorCode): Promise<AmtError> {
  try {
    await run;
  } catch (err) {
    expect(err).to.be.instanceOf(AmtError);
    expect((err as AmtError).code, (err as Error).message).to.equal(code);
    return err as AmtError;
  }
  expect.fail(`expected ${code}`);
}

describe('identity: IdP metadata refresh', () => {
  let pki: TestPki;
  let server: Server;
  let base: string;
  let dir: string;
  let target: string;
  const documents = new Map<string, string | Buffer>();
  const requests: string[] = [];

  const signedMetadata = (
    certs: string[],
    options: { entityId?: string; validUntil?: number } = {},
  ): string =>
    signXml(
      idpMetadataXml(options.entityId ?? BUNDID_ENTITY_ID, certs, { validUntil: options.validUntil }),
      'EntityDescriptor',
      pki.metadataSigner,
    );

  before(async function () {
    this.timeout(120_000);
    pki = testPki();
    const app = express();
    app.get('/slow.xml', () => {
      // never answers: the refresh must give up on its own
    });
    app.get('/moved.xml', (_req, res) => res.redirect(302, '/rollover.xml'));
    app.get('/:name', (req, res) => {
      requests.push(req.params.name);
      const document = documents.get(req.params.name);
      if (document === undefined) return void res.status(404).send('not here');
      res.type('application/samlmetadata+xml').send(document);
    });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const rollover = signedMetadata([pki.bundId.certBase64, pki.bundIdNext.certBase64], {
      validUntil: Date.now() + 7 * 86_400_000,
    });
    documents.set('rollover.xml', rollover);
    documents.set('tampered.xml', rollover.replace(pki.bundIdNext.certBase64, pki.attacker.certBase64));
    documents.set('unsigned.xml', idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]));
    documents.set(
      'foreign.xml',
      signXml(idpMetadataXml(BUNDID_ENTITY_ID, [pki.attacker.certBase64]), 'EntityDescriptor', pki.attacker),
    );
    documents.set(
      'expired.xml',
      signedMetadata([pki.bundId.certBase64], { validUntil: Date.now() - 60_000 }),
    );
    documents.set(
      'servicekonto.xml',
      signedMetadata([pki.servicekonto.certBase64], { entityId: SERVICEKONTO_ENTITY_ID }),
    );
    documents.set(
      'huge.xml',
      rollover.replace('<md:Organization>', `<!--${'x'.repeat(300_000)}--><md:Organization>`),
    );
    documents.set('latin1.xml', Buffer.from([0x3c, 0x61, 0xe4, 0x3e]));
  });

  after(async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'amtsbote-metadata-refresh-'));
    target = join(dir, 'bundid-metadata.xml');
    // What the operator installed first: the current key only, unsigned.
    writeFileSync(target, idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const refresh = (
    name: string,
    overrides: Partial<RefreshIdpMetadataOptions> = {},
  ): ReturnType<typeof refreshIdpMetadata> =>
    refreshIdpMetadata({
      url: `${base}/${name}`,
      verifyWith: [pki.metadataSigner.certPem],
      targetFile: target,
      ...overrides,
    });

  const leftovers = (): string[] => readdirSync(dir).filter((f) => f !== 'bundid-metadata.xml');

  it('replaces the file with valid signed metadata, atomically, and the file then lists the new key', async () => {
    const before = statSync(target).ino;
    const result = await refresh('rollover.xml');
    expect(result).to.include({ changed: true, entityId: BUNDID_ENTITY_ID, signingCertificates: 2 });
    expect(readFileSync(target, 'utf8')).to.equal(documents.get('rollover.xml'));
    // Renamed into place, not rewritten in place.
    expect(statSync(target).ino).to.not.equal(before);
    expect(leftovers()).to.deep.equal([]);
    const installed = await loadIdpMetadataFile(target);
    expect(installed.signingCertificates).to.have.length(2);
  });

  it('leaves an unchanged file alone', async () => {
    await refresh('rollover.xml');
    const installed = statSync(target).ino;
    const again = await refresh('rollover.xml');
    expect(again.changed).to.equal(false);
    expect(statSync(target).ino).to.equal(installed);
  });

  it('creates the file when there is none yet, and follows a redirect', async () => {
    rmSync(target);
    expect((await refresh('moved.xml')).changed).to.equal(true);
    expect(readFileSync(target, 'utf8')).to.equal(documents.get('rollover.xml'));
  });

  const refused: { name: string; document: string; code: ErrorCode; message: RegExp; options?: object }[] = [
    {
      name: 'a certificate swapped after signing',
      document: 'tampered.xml',
      code: 'AMT_SAML_METADATA_SIGNATURE_INVALID',
      message: /signed content|signature|digest/i,
    },
    {
      name: 'unsigned metadata',
      document: 'unsigned.xml',
      code: 'AMT_SAML_METADATA_SIGNATURE_INVALID',
      message: /not signed/,
    },
    {
      name: 'metadata signed by someone else',
      document: 'foreign.xml',
      code: 'AMT_SAML_METADATA_SIGNATURE_INVALID',
      message: /./,
    },
    {
      name: 'expired metadata',
      document: 'expired.xml',
      code: 'AMT_SAML_METADATA_INVALID',
      message: /expired/,
    },
    {
      name: 'signed metadata of another IdP',
      document: 'servicekonto.xml',
      code: 'AMT_SAML_METADATA_INVALID',
      message: /describes https:\/\/servicekonto/,
    },
    {
      name: 'a document over the size limit',
      document: 'huge.xml',
      code: 'AMT_SAML_METADATA_INVALID',
      message: /too large/,
      options: { maxBytes: 256 * 1024 },
    },
    {
      name: 'a document that is not UTF-8',
      document: 'latin1.xml',
      code: 'AMT_SAML_METADATA_INVALID',
      message: /UTF-8/,
    },
    { name: 'a 404', document: 'gone.xml', code: 'AMT_SAML_METADATA_INVALID', message: /HTTP 404/ },
    {
      name: 'a server that does not answer',
      document: 'slow.xml',
      code: 'AMT_SAML_METADATA_INVALID',
      message: /timed out/,
      options: { timeoutMs: 300 },
    },
  ];
  for (const { name, document, code, message, options } of refused) {
    it(`refuses ${name} and keeps the file as it was`, async () => {
      const original = readFileSync(target);
      const err = await refusal(refresh(document, options), code);
      expect(err.message).to.match(message);
      expect(readFileSync(target).equals(original)).to.equal(true);
      expect(leftovers()).to.deep.equal([]);
    });
  }

  it('marks a failed fetch as retryable, a bad document not', async () => {
    expect((await refusal(refresh('gone.xml'), 'AMT_SAML_METADATA_INVALID')).retryable).to.equal(true);
    expect(
      (await refusal(refresh('tampered.xml'), 'AMT_SAML_METADATA_SIGNATURE_INVALID')).retryable,
    ).to.equal(false);
  });

  describe('a running verifier', () => {
    const memoryStore = (): Store => {
      const seen = new Map<string, number>();
      return {
        rememberOnce: async (namespace: string, key: string, expiresAt: number, now: number) => {
          const entry = `${namespace}\u0000${key}`;
          const until = seen.get(entry);
          if (until !== undefined && until > now) return false;
          seen.set(entry, expiresAt);
          return true;
        },
      } as unknown as Store;
    };

    const verifierFor = async (logs: unknown[] = []): Promise<IdentityVerifier> => {
      const config = validateConfig(
        {
          dataDir: dir,
          tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: '055150000000' }],
          clients: [],
          adapters: { dms: { type: 'test' } },
          routes: [],
          identity: {
            idps: [{ metadata: 'bundid-metadata.xml' }],
            audience: SP_ENTITY_ID,
            recipient: ACS_URL,
          },
        },
        {
          manifests: [
            defineAdapter({
              type: 'test',
              version: '1.0.0',
              description: 'no-op',
              capabilities: { outbound: true, inbound: false, poll: false },
              configSchema: { type: 'object' },
              secrets: [],
              example: {},
              create: () => ({}),
            }),
          ],
          baseDir: dir,
          source: undefined,
        },
      );
      const verifier = await createIdentityVerifier(config, memoryStore(), {
        logger: { warn: (...args: unknown[]) => void logs.push(args) } as never,
      });
      return verifier!;
    };

    const signedByNextKey = (): string =>
      signXml(buildAssertion({ classRef: 'STORK-QAA-Level-4' }), 'Assertion', pki.bundIdNext);
    const request = (now: number) => ({
      clientId: 'portal',
      idempotencyKey: undefined,
      requestHash: 'h',
      now,
    });

    it('accepts the IdP’s next key after the refreshed file is reloaded', async () => {
      const verifier = await verifierFor();
      await refusal(
        verifier.verify({ samlResponse: signedByNextKey(), inResponseTo: REQUEST_ID }, request(NOW)),
        'AMT_SAML_CERT_UNTRUSTED',
      );
      await refresh('rollover.xml');
      await verifier.reload();
      const identity = await verifier.verify(
        { samlResponse: signedByNextKey(), inResponseTo: REQUEST_ID },
        request(NOW),
      );
      expect(identity.issuer).to.equal(BUNDID_ENTITY_ID);
    });

    it('notices a replaced file by itself within a minute', async () => {
      const verifier = await verifierFor();
      const assertion = signedByNextKey();
      await refusal(verifier.verify({ samlResponse: assertion }, request(NOW)), 'AMT_SAML_CERT_UNTRUSTED');
      await refresh('rollover.xml');
      await refusal(
        verifier.verify({ samlResponse: assertion }, request(NOW + 1_000)),
        'AMT_SAML_CERT_UNTRUSTED',
      );
      const identity = await verifier.verify({ samlResponse: assertion }, request(NOW + 61_000));
      expect(identity.trustLevel).to.equal('hoch');
    });

    it('keeps the metadata it has when a replaced file cannot be used, and says so', async () => {
      const logs: unknown[] = [];
      const verifier = await verifierFor(logs);
      const signedByCurrentKey = (): string => signXml(buildAssertion(), 'Assertion', pki.bundId);
      await verifier.verify({ samlResponse: signedByCurrentKey() }, request(NOW));
      writeFileSync(target, '<md:EntityDescriptor broken');
      await refusal(verifier.reload(), 'AMT_SAML_METADATA_INVALID');
      const identity = await verifier.verify({ samlResponse: signedByCurrentKey() }, request(NOW + 61_000));
      expect(identity.issuer).to.equal(BUNDID_ENTITY_ID);
      expect(logs).to.have.length(1);
      expect(JSON.stringify(logs[0])).to.include('AMT_SAML_METADATA_INVALID');
    });
  });
  describe('as a scheduled job (built-in idp-metadata-refresh)', () => {
    const testManifest = defineAdapter({
      type: 'test',
      version: '1.0.0',
      description: 'no-op',
      capabilities: { outbound: true, inbound: false, poll: false },
      configSchema: { type: 'object' },
      secrets: [],
      example: {},
      create: () => ({}),
    });

    const configWith = (jobOptions: Record<string, unknown>) =>
      validateConfig(
        {
          dataDir: dir,
          tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: '055150000000' }],
          clients: [],
          adapters: { dms: { type: 'test' } },
          routes: [],
          identity: { idps: [{ metadata: 'bundid-metadata.xml' }], audience: SP_ENTITY_ID },
          jobs: [
            {
              name: 'idp-metadata',
              schedule: '0 */6 * * *',
              run: { builtin: 'idp-metadata-refresh' },
              options: jobOptions,
            },
          ],
        },
        { manifests: [testManifest], baseDir: dir, source: undefined },
      );

    async function runJob(jobOptions: Record<string, unknown>) {
      const config = configWith(jobOptions);
      const store = SqliteStore.open(join(dir, 'amtsbote.db'));
      await store.migrate();
      const running = await startScheduler({
        config,
        store,
        adapters: new Map(),
        attachments: new AttachmentStore(join(dir, 'attachments')),
        logger: { debug() {}, info() {}, warn() {}, error() {} },
      });
      try {
        const { finished } = await running.scheduler.trigger('idp-metadata');
        await finished;
        return (await store.jobRuns('idp-metadata', 1)).items[0]!;
      } finally {
        await running.stop();
        await store.close();
      }
    }

    beforeEach(() => writeFileSync(join(dir, 'federation.pem'), pki.metadataSigner.certPem));

    it('installs signed metadata with paths relative to the configuration, and records the run', async () => {
      const run = await runJob({
        url: `${base}/rollover.xml`,
        signedBy: ['federation.pem'],
        metadata: 'bundid-metadata.xml',
      });
      expect(run).to.include({ status: 'succeeded', itemsProcessed: 1 });
      expect(readFileSync(target, 'utf8')).to.equal(documents.get('rollover.xml'));
    });

    it('fails the run on tampered metadata and keeps the file', async () => {
      const before = readFileSync(target, 'utf8');
      const run = await runJob({
        url: `${base}/tampered.xml`,
        signedBy: ['federation.pem'],
        metadata: 'bundid-metadata.xml',
      });
      expect(run.status).to.equal('failed');
      expect(run.error?.code).to.equal('AMT_SAML_METADATA_SIGNATURE_INVALID');
      expect(readFileSync(target, 'utf8')).to.equal(before);
    });

    it('is refused by the configuration check for a file that is no IdP’s metadata or an unreadable certificate', async () => {
      const err = await refusal(
        Promise.resolve().then(() =>
          configWith({
            url: `${base}/rollover.xml`,
            signedBy: ['missing.pem'],
            metadata: 'other.xml',
            timeout: 'soon',
          }),
        ),
        'AMT_CONFIG_INVALID',
      );
      expect(err.problems.map((p) => p.path)).to.deep.equal([
        '/jobs/0/options/metadata',
        '/jobs/0/options/signedBy/0',
        '/jobs/0/options/timeout',
      ]);
    });
  });
});
