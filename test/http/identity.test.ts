/**
 * Verified citizen identity at intake, end to end: real signed SAML responses (test IdPs of
 * saml-fixtures.ts) through the HTTP app into the store, the trust level of the route, the status
 * view, mappings reading the stored identity, and a log without SAML text or identity values.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmtError } from '../../src/errors.js';
import { compileMappingText, toCompiledMapping } from '../../src/mapping/index.js';
import type { MappingInput } from '../../src/pipeline/mapping-step.js';
import type { Store } from '../../src/store/types.js';
import {
  BUNDID_ENTITY_ID,
  NOW,
  REQUEST_ID,
  buildAssertion,
  buildResponse,
  eidAttributes,
  signXml,
  testPki,
} from '../identity/saml-fixtures.js';
import type { AssertionSpec, TestPki, TestSigner } from '../identity/saml-fixtures.js';
import { application, KEYS, messageCount, PARKING } from './harness.js';
import { OPEN_SERVICE, startIdentityHarness, type IdentityHarness } from './identity-harness.js';

/** What the IdP confirms about the citizen; distinct from what the applicant types (harness.ts). */
const CITIZEN = {
  givenName: 'Zebulonia',
  familyName: 'Quxleyhausen',
  birthDate: '1971-02-03',
  email: 'zebulonia.q@example.test',
  street: 'Zaunkönigweg 77',
  postalCode: '48149',
  locality: 'Gievenbeck',
  pseudonym: 'UFNFVURPTllNLVpRLTQ3MTEtYmVpc3BpZWw=',
  nameId: '_nameid-zq-4711-beispiel',
};

const LEVEL = { basis: 'STORK-QAA-Level-1', substantiell: 'STORK-QAA-Level-3', hoch: 'STORK-QAA-Level-4' };

const base64 = (xml: string): string => Buffer.from(xml, 'utf8').toString('base64');

describe('http: verified citizen identity at intake', () => {
  let pki: TestPki;
  let h: IdentityHarness;

  before(function () {
    this.timeout(120_000);
    pki = testPki();
  });
  afterEach(async () => {
    await h?.close();
  });

  /** An assertion about CITIZEN at `level`, signed by `signer`, inside a Response. */
  function responseXml(
    spec: AssertionSpec & { level?: keyof typeof LEVEL } = {},
    signer: TestSigner = pki.bundId,
  ): string {
    const level = LEVEL[spec.level ?? 'hoch'];
    const assertion = buildAssertion({
      nameId: CITIZEN.nameId,
      classRef: level,
      attributes: eidAttributes({
        'urn:oid:2.5.4.42': [CITIZEN.givenName],
        'urn:oid:2.5.4.4': [CITIZEN.familyName],
        'urn:oid:1.2.40.0.10.2.1.1.55': [CITIZEN.birthDate],
        'urn:oid:0.9.2342.19200300.100.1.3': [CITIZEN.email],
        'urn:oid:2.5.4.16': [CITIZEN.street],
        'urn:oid:2.5.4.17': [CITIZEN.postalCode],
        'urn:oid:2.5.4.7': [CITIZEN.locality],
        'urn:oid:1.3.6.1.4.1.25484.494450.3': [CITIZEN.pseudonym],
        'urn:oid:1.2.40.0.10.2.1.1.261.94': [level],
      }),
      ...spec,
    });
    return buildResponse({ assertions: [signXml(assertion, 'Assertion', signer)] });
  }

  const login = (spec: Parameters<typeof responseXml>[0] = {}): string => base64(responseXml(spec));

  const withLogin = (
    samlResponse: string,
    overrides: Record<string, unknown> = {},
    inResponseTo: string = REQUEST_ID,
  ): Record<string, unknown> => application({ identity: { samlResponse, inResponseTo }, ...overrides });

  const submit = (
    json: unknown,
    headers: Record<string, string> = {},
  ): ReturnType<IdentityHarness['request']> =>
    h.request('POST', '/api/v1/applications', { key: KEYS.muenster, json, headers });

  const storedPayload = async (id: string): Promise<Record<string, unknown>> =>
    JSON.parse((await h.store.getMessage(id))!.payload) as Record<string, unknown>;

  describe('a valid login', () => {
    beforeEach(async () => {
      h = await startIdentityHarness();
    });

    it('is stored as the verified identity, apart from what the applicant typed, without the SAML text', async () => {
      const samlResponse = login({ id: '_assertion-valid-1' });
      const res = await submit(withLogin(samlResponse));
      expect(res.status).to.equal(202);
      const stored = await h.store.getMessage(res.body.id);
      const payload = JSON.parse(stored!.payload) as Record<string, unknown>;
      expect(Object.keys(payload)).to.have.members(['applicant', 'data', 'reference', 'verifiedIdentity']);
      expect(payload.applicant).to.deep.equal(application().applicant);
      expect(payload.verifiedIdentity).to.deep.equal({
        issuer: BUNDID_ENTITY_ID,
        subjectNameId: CITIZEN.nameId,
        subjectNameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
        pseudonym: CITIZEN.pseudonym,
        trustLevel: 'hoch',
        givenName: CITIZEN.givenName,
        familyName: CITIZEN.familyName,
        birthDate: CITIZEN.birthDate,
        email: CITIZEN.email,
        address: { street: CITIZEN.street, postalCode: CITIZEN.postalCode, locality: CITIZEN.locality },
        assertionId: '_assertion-valid-1',
        authenticatedAt: NOW - 2000,
        expiresAt: NOW + 5 * 60_000,
      });
      expect(stored!.payload).to.not.include(samlResponse.slice(100, 160));
      expect(stored!.payload).to.not.include('samlResponse');
      expect(stored!.payload).to.not.include('SignatureValue');
    });

    it('arrives inside the application part of a multipart submission too', async () => {
      const form = new FormData();
      form.append('application', JSON.stringify(withLogin(login())));
      form.append('attachment', new Blob(['Lageplan'], { type: 'application/pdf' }), 'lageplan.pdf');
      const res = await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, body: form });
      expect(res.status).to.equal(202);
      const payload = await storedPayload(res.body.id);
      expect(payload.verifiedIdentity).to.include({ familyName: CITIZEN.familyName, trustLevel: 'hoch' });
      expect((payload.applicant as { familyName: string }).familyName).to.equal('Mustermann');
    });

    it('the status view shows that the identity was verified and its trust level, no personal data', async () => {
      const verified = await submit(withLogin(login({ level: 'substantiell' })));
      const status = await h.request('GET', `/api/v1/applications/${verified.body.id}`, {
        key: KEYS.muenster,
      });
      expect(status.status).to.equal(200);
      expect(status.body).to.include({ identityVerified: true, trustLevel: 'substantiell' });
      for (const value of Object.values(CITIZEN)) expect(status.text).to.not.include(value);

      const plain = await submit(application({ service: OPEN_SERVICE }));
      const plainStatus = await h.request('GET', `/api/v1/applications/${plain.body.id}`, {
        key: KEYS.muenster,
      });
      expect(plainStatus.body).to.include({ identityVerified: false, trustLevel: null });
    });

    it('the stored identity feeds the mapping: the documented example prefers verified names over typed ones', async () => {
      const rules = documentedExample('verified-names');
      const mapping = toCompiledMapping(
        compileMappingText(
          [
            'mapping: verified-names-example',
            'source: { format: json }',
            'target:',
            '  format: xml',
            '  root: xdomea:Absender',
            '  namespaces: { xdomea: urn:xoev-de:xdomea:schema:3.0.0 }',
            'rules:',
            ...rules.split('\n').map((line) => `  ${line}`),
          ].join('\n'),
          'docs/identity.md',
        ),
      );
      const verified = await submit(withLogin(login()));
      const typedOnly = await submit(application({ service: OPEN_SERVICE }));
      const mapped = async (id: string): Promise<string> => {
        const message = (await h.store.getMessage(id))!;
        const input: MappingInput = {
          application: JSON.parse(message.payload) as unknown,
          message: {
            id: message.id,
            deliveryId: message.deliveryId,
            tenant: { id: 'muenster', name: 'Stadt Münster', ars: message.ars },
            service: message.service,
            reference: message.reference,
            receivedAt: message.createdAt,
          },
          attachments: [],
        };
        return String((await mapping.map(input)).content);
      };
      const fromLogin = await mapped(verified.body.id);
      expect(fromLogin).to.include(`<xdomea:Familienname><xdomea:Name>${CITIZEN.familyName}</xdomea:Name>`);
      expect(fromLogin).to.include(`<xdomea:Vorname><xdomea:Name>${CITIZEN.givenName}</xdomea:Name>`);
      expect(fromLogin).to.include(`<xdomea:Geburt><xdomea:Datum>${CITIZEN.birthDate}</xdomea:Datum>`);
      expect(fromLogin).to.not.include('Mustermann');
      const fromForm = await mapped(typedOnly.body.id);
      expect(fromForm).to.include('<xdomea:Familienname><xdomea:Name>Mustermann</xdomea:Name>');
      expect(fromForm).to.include('<xdomea:Geburt><xdomea:Datum>1964-08-12</xdomea:Datum>');
    });
  });

  describe('a login that cannot be accepted', () => {
    beforeEach(async () => {
      h = await startIdentityHarness();
    });

    const proof = Buffer.from('%PDF-1.7\nNachweis, der nicht gespeichert werden darf\n');
    const proofSha = createHash('sha256').update(proof).digest('hex');
    const attachment = {
      filename: 'nachweis.pdf',
      mediaType: 'application/pdf',
      contentBase64: proof.toString('base64'),
    };

    const cases: { name: string; code: string; samlResponse: () => string; inResponseTo?: string }[] = [
      {
        name: 'changed after signing',
        code: 'AMT_SAML_SIGNATURE_INVALID',
        samlResponse: () => base64(responseXml().replace(CITIZEN.familyName, 'Quxleyhausen-Schmidt')),
      },
      {
        name: 'unsigned',
        code: 'AMT_SAML_UNSIGNED',
        samlResponse: () => base64(buildResponse({ assertions: [buildAssertion()] })),
      },
      {
        name: 'signed with a key that is not in the metadata',
        code: 'AMT_SAML_CERT_UNTRUSTED',
        samlResponse: () => base64(responseXml({}, pki.attacker)),
      },
      {
        name: 'expired',
        code: 'AMT_SAML_EXPIRED',
        samlResponse: () =>
          login({
            notBefore: NOW - 20 * 60_000,
            notOnOrAfter: NOW - 10 * 60_000,
            authnInstant: NOW - 21 * 60_000,
          }),
      },
      {
        name: 'meant for another SP',
        code: 'AMT_SAML_AUDIENCE_MISMATCH',
        samlResponse: () => login({ audience: 'https://other-sp.example/saml' }),
      },
      {
        name: 'issued for another ACS URL',
        code: 'AMT_SAML_RECIPIENT_MISMATCH',
        samlResponse: () => login({ recipient: 'https://other-portal.example/acs' }),
      },
      {
        name: 'an answer to another AuthnRequest',
        code: 'AMT_SAML_IN_RESPONSE_TO_MISMATCH',
        samlResponse: () => login(),
        inResponseTo: '_another-request-id',
      },
      {
        name: 'a failed login reported by the IdP',
        code: 'AMT_SAML_STATUS',
        samlResponse: () =>
          base64(
            buildResponse({
              statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Responder',
              subStatusCode: 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed',
              assertions: [],
            }),
          ),
      },
      {
        name: 'with a DOCTYPE',
        code: 'AMT_SAML_DOCTYPE_FORBIDDEN',
        samlResponse: () =>
          responseXml().replace(
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
          ),
      },
      { name: 'neither XML nor base64', code: 'AMT_SAML_MALFORMED', samlResponse: () => 'kein SAML!' },
    ];

    for (const { name, code, samlResponse, inResponseTo } of cases) {
      it(`${name}: 422 ${code} at /identity/samlResponse, nothing stored`, async () => {
        const res = await submit(
          withLogin(samlResponse(), { service: OPEN_SERVICE, attachments: [attachment] }, inResponseTo),
        );
        expect(res.status).to.equal(422);
        expect(res.body.code).to.equal(code);
        expect(res.body.problems).to.have.length(1);
        expect(res.body.problems[0].path).to.equal('/identity/samlResponse');
        expect(await messageCount(h.store)).to.equal(0);
        expect(existsSync(h.attachments.pathOf(proofSha))).to.equal(false);
      });
    }

    it('a replayed assertion: the second application with it is refused, the first stays the only one', async () => {
      const samlResponse = login();
      expect((await submit(withLogin(samlResponse, { service: OPEN_SERVICE }))).status).to.equal(202);
      const again = await submit(withLogin(samlResponse, { reference: 'PORTAL-2026-000999' }));
      expect(again.status).to.equal(422);
      expect(again.body.code).to.equal('AMT_SAML_REPLAYED');
      expect(again.body.problems[0].path).to.equal('/identity/samlResponse');
      // Under another Idempotency-Key it is the same replay.
      const keyed = await submit(withLogin(samlResponse, { service: OPEN_SERVICE }), {
        'idempotency-key': 'another-key',
      });
      expect(keyed.body.code).to.equal('AMT_SAML_REPLAYED');
      expect(await messageCount(h.store)).to.equal(1);
    });

    it('the identity member is checked by the schema: samlResponse is required, nothing else is allowed', async () => {
      const missing = await submit(application({ identity: { inResponseTo: REQUEST_ID } }));
      expect(missing.status).to.equal(422);
      expect(missing.body.code).to.equal('AMT_VALIDATION_FAILED');
      expect(missing.body.problems.map((p: { path: string }) => p.path)).to.include('/identity/samlResponse');
      const extra = await submit(application({ identity: { samlResponse: login(), givenName: 'Eve' } }));
      expect(extra.body.code).to.equal('AMT_VALIDATION_FAILED');
      expect(await messageCount(h.store)).to.equal(0);
    });
  });

  describe('a route that requires trust level substantiell', () => {
    beforeEach(async () => {
      h = await startIdentityHarness();
    });

    it('refuses basis with 403, accepts substantiell, refuses an application without a login', async () => {
      const basis = await submit(withLogin(login({ level: 'basis' })));
      expect(basis.status).to.equal(403);
      expect(basis.body.code).to.equal('AMT_TRUST_LEVEL_TOO_LOW');
      expect(await messageCount(h.store)).to.equal(0);

      const substantiell = await submit(withLogin(login({ level: 'substantiell' })));
      expect(substantiell.status).to.equal(202);
      expect((await storedPayload(substantiell.body.id)).verifiedIdentity).to.include({
        trustLevel: 'substantiell',
      });

      const none = await submit(application());
      expect(none.status).to.equal(403);
      expect(none.body.code).to.equal('AMT_TRUST_LEVEL_TOO_LOW');
      expect(await messageCount(h.store)).to.equal(1);
    });

    it('refuses a multipart application without a login before its files are stored', async () => {
      const content = Buffer.from('Grundriss, der nie gespeichert wird');
      const form = new FormData();
      form.append('application', JSON.stringify(application()));
      form.append('attachment', new Blob([content], { type: 'application/pdf' }), 'grundriss.pdf');
      const res = await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, body: form });
      expect(res.status).to.equal(403);
      expect(res.body.code).to.equal('AMT_TRUST_LEVEL_TOO_LOW');
      expect(existsSync(h.attachments.pathOf(createHash('sha256').update(content).digest('hex')))).to.equal(
        false,
      );
      expect(await messageCount(h.store)).to.equal(0);
    });
  });

  describe('retries with an Idempotency-Key', () => {
    it('the same key and login return the same message, also after the assertion has expired', async () => {
      h = await startIdentityHarness();
      const body = withLogin(login());
      const headers = { 'idempotency-key': 'portal-try-1' };
      const first = await submit(body, headers);
      const second = await submit(body, headers);
      h.clock.now = NOW + 60 * 60_000;
      const late = await submit(body, headers);
      expect([first.status, second.status, late.status]).to.deep.equal([202, 202, 202]);
      expect(second.body.id).to.equal(first.body.id);
      expect(late.body.id).to.equal(first.body.id);
      expect(await messageCount(h.store)).to.equal(1);
    });

    it('identical requests at once yield one message and no replay error', async () => {
      h = await startIdentityHarness();
      const body = withLogin(login());
      const results = await Promise.all(
        Array.from({ length: 8 }, () => submit(body, { 'idempotency-key': 'burst-identity' })),
      );
      expect(results.map((r) => r.status)).to.deep.equal(Array(8).fill(202));
      expect(new Set(results.map((r) => r.body.id)).size).to.equal(1);
      expect(await messageCount(h.store)).to.equal(1);
    });

    it('a first attempt that failed after using the assertion up can be retried under the same key', async () => {
      let failures = 1;
      h = await startIdentityHarness({ wrapStore: acceptFailingFirst(() => failures-- > 0) });
      const body = withLogin(login());
      const headers = { 'idempotency-key': 'after-503' };
      const failed = await submit(body, headers);
      expect(failed.status).to.equal(503);
      expect(failed.body.code).to.equal('AMT_STORE_UNAVAILABLE');
      const retried = await submit(body, headers);
      expect(retried.status).to.equal(202);
      expect(await messageCount(h.store)).to.equal(1);
      // The retry is bound to its key: the same login in a request without the key is a replay.
      const unkeyed = await submit(body);
      expect(unkeyed.body.code).to.equal('AMT_SAML_REPLAYED');
    });

    it('the same key with another login is a conflict (the hash covers the SAML response as sent)', async () => {
      h = await startIdentityHarness();
      const headers = { 'idempotency-key': 'portal-try-2' };
      expect((await submit(withLogin(login()), headers)).status).to.equal(202);
      const other = await submit(withLogin(login()), headers);
      expect(other.status).to.equal(409);
      expect(other.body.code).to.equal('AMT_IDEMPOTENCY_CONFLICT');
      expect(await messageCount(h.store)).to.equal(1);
    });
  });

  describe('a gateway without an identity section', () => {
    it('refuses an application that carries a login, and accepts one without', async () => {
      h = await startIdentityHarness({ withoutIdentity: true });
      expect(h.verifier).to.equal(undefined);
      const res = await submit(withLogin(login()));
      expect(res.status).to.equal(422);
      expect(res.body.code).to.equal('AMT_SAML_ISSUER_UNKNOWN');
      expect(res.body.problems[0].path).to.equal('/identity/samlResponse');
      expect(await messageCount(h.store)).to.equal(0);
      const plain = await submit(application({ service: PARKING }));
      expect(plain.status).to.equal(202);
      expect(Object.keys(await storedPayload(plain.body.id))).to.not.include('verifiedIdentity');
    });
  });

  describe('the log', () => {
    it('carries refusals by code, never the SAML response or what it says about the citizen', async () => {
      h = await startIdentityHarness();
      const accepted = login();
      const replayed = accepted;
      const tampered = base64(responseXml().replace(CITIZEN.familyName, 'Quxleyhausen-Schmidt'));
      const xml = responseXml({ level: 'basis' });
      const ok = await submit(withLogin(accepted), { 'idempotency-key': 'log-1' });
      expect(ok.status).to.equal(202);
      expect((await submit(withLogin(accepted), { 'idempotency-key': 'log-1' })).status).to.equal(202);
      expect((await submit(withLogin(replayed, { reference: 'PORTAL-2' }))).status).to.equal(422);
      expect((await submit(withLogin(tampered))).status).to.equal(422);
      expect((await submit(withLogin(xml))).status).to.equal(403);
      expect((await submit(application({ identity: { samlResponse: accepted, extra: 1 } }))).status).to.equal(
        422,
      );
      await h.request('GET', `/api/v1/applications/${ok.body.id}`, { key: KEYS.muenster });
      await h.request('GET', `/api/v1/admin/messages/${ok.body.id}?payload=true`, { key: KEYS.admin });

      const log = h.log();
      const lines = log
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { message: string; code?: string; status?: number });
      // The requests and the refusals were logged, so the checks below are not vacuous …
      expect(lines.filter((l) => l.message === 'http request').map((l) => l.status)).to.include.members([
        202, 422, 403, 200,
      ]);
      expect(lines.filter((l) => l.message === 'citizen identity refused').map((l) => l.code)).to.deep.equal([
        'AMT_SAML_REPLAYED',
        'AMT_SAML_SIGNATURE_INVALID',
        'AMT_TRUST_LEVEL_TOO_LOW',
      ]);
      // … and none of the SAML text or the identity.
      for (const saml of [accepted, tampered]) {
        for (let i = 0; i + 40 <= saml.length; i += 200) expect(log).to.not.include(saml.slice(i, i + 40));
      }
      expect(log).to.not.include('saml2:');
      expect(log).to.not.include('Assertion');
      for (const value of Object.values(CITIZEN)) expect(log, `log contains ${value}`).to.not.include(value);
      expect(log).to.not.include('Quxleyhausen-Schmidt');
    });
  });
});

/** The same store, except that `accept` fails with 503 while `fail()` says so. */
function acceptFailingFirst(fail: () => boolean): (store: Store) => Store {
  return (store) =>
    new Proxy(store, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property);
        if (property === 'accept') {
          return async (...args: Parameters<Store['accept']>) => {
            if (fail()) throw new AmtError('AMT_STORE_UNAVAILABLE', 'the database is locked');
            return target.accept(...args);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
}

/** The YAML block that follows `<!-- example: NAME … -->` in docs/identity.md. */
function documentedExample(name: string): string {
  const docs = readFileSync(
    path.join(path.dirname(fileURLToPath(import.meta.url)), '../../docs/identity.md'),
    'utf8',
  );
  const marker = docs.indexOf(`<!-- example: ${name} `);
  if (marker < 0) throw new Error(`docs/identity.md has no example ${name}`);
  const block = /```yaml\n([\s\S]*?)```/.exec(docs.slice(marker));
  if (!block?.[1]) throw new Error(`the example ${name} has no yaml block`);
  return block[1];
}
