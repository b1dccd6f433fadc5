/**
 * Test material for the identity tests: keys and self-signed certificates made with the openssl
 * CLI, BundID-like SAML Responses, signing with xml-crypto and XML Encryption done here the way
 * an IdP does it.
 */
import { execFileSync } from 'node:child_process';
import {
  constants,
  createCipheriv,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  randomUUID,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignedXml } from 'xml-crypto';

export interface TestSigner {
  readonly keyPem: string;
  readonly certPem: string;
  /** Certificate content as it appears in metadata and KeyInfo. */
  readonly certBase64: string;
}

export interface TestPki {
  readonly bundId: TestSigner;
  readonly bundIdNext: TestSigner;
  readonly servicekonto: TestSigner;
  readonly attacker: TestSigner;
  readonly metadataSigner: TestSigner;
  readonly sp: { readonly keyPem: string; readonly publicKeyPem: string };
  readonly otherSp: { readonly keyPem: string; readonly publicKeyPem: string };
}

function makeSpKey(): { keyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** A self-signed certificate made by the openssl CLI (node:crypto cannot build certificates). */
function makeSigner(dir: string, name: string, commonName: string): TestSigner {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-nodes', '-days', '30'];
  execFileSync(
    'openssl',
    [...args, '-subj', `/C=DE/O=Test/CN=${commonName}`, '-keyout', keyFile, '-out', certFile],
    {
      stdio: 'ignore',
    },
  );
  const certPem = readFileSync(certFile, 'utf8');
  return {
    keyPem: readFileSync(keyFile, 'utf8'),
    certPem,
    certBase64: certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''),
  };
}

let shared: TestPki | undefined;

/**
 * Keys and certificates for all identity tests, made once per test run. The files live in a
 * temporary directory only while openssl writes them; everything is kept in memory afterwards.
 */
export function testPki(): TestPki {
  if (shared) return shared;
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('the identity tests need the openssl CLI to make test certificates');
  }
  const dir = mkdtempSync(join(tmpdir(), 'amtsbote-identity-'));
  try {
    shared = {
      bundId: makeSigner(dir, 'bundid', 'BundID Test IdP 2025'),
      bundIdNext: makeSigner(dir, 'bundid-next', 'BundID Test IdP 2026'),
      servicekonto: makeSigner(dir, 'servicekonto', 'Servicekonto.NRW Test IdP'),
      // Same subject name as the real one: only the key tells them apart.
      attacker: makeSigner(dir, 'attacker', 'BundID Test IdP 2025'),
      metadataSigner: makeSigner(dir, 'metadata', 'Metadata Signer'),
      sp: makeSpKey(),
      otherSp: makeSpKey(),
    };
    return shared;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const BUNDID_ENTITY_ID = 'https://idp.bundid.example/idp';
export const SERVICEKONTO_ENTITY_ID = 'https://servicekonto.nrw.example/idp';
export const SP_ENTITY_ID = 'https://amtsbote.stadt-musterstadt.example/saml/sp';
export const ACS_URL = 'https://portal.stadt-musterstadt.example/saml/acs';
export const REQUEST_ID = '_a3f1c2d4e5b6a7980f1e2d3c4b5a6978';
export const NOW = Date.parse('2025-03-14T09:30:00Z');

const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const PROTOCOL_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';

export const iso = (ms: number): string => new Date(ms).toISOString();

const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface AssertionSpec {
  id?: string;
  issuer?: string;
  audience?: string;
  recipient?: string;
  inResponseTo?: string | undefined;
  notBefore?: number;
  notOnOrAfter?: number;
  confirmationNotOnOrAfter?: number;
  authnInstant?: number;
  classRef?: string;
  nameId?: string;
  attributes?: Record<string, { friendlyName: string; values: string[] }>;
}

/** The attribute set BundID sends after an eID (Online-Ausweis) login. */
export function eidAttributes(
  overrides: Partial<Record<string, string[]>> = {},
): AssertionSpec['attributes'] {
  const base: Record<string, { friendlyName: string; values: string[] }> = {
    'urn:oid:1.3.6.1.4.1.25484.494450.3': {
      friendlyName: 'bPK2',
      values: ['UkVGRVJFTlpQU0VVRE9OWU0tMTIzNDU2Nzg5MA=='],
    },
    'urn:oid:2.5.4.42': { friendlyName: 'givenName', values: ['Erika'] },
    'urn:oid:2.5.4.4': { friendlyName: 'surname', values: ['Mustermann'] },
    'urn:oid:1.2.40.0.10.2.1.1.55': { friendlyName: 'birthdate', values: ['1964-08-12'] },
    'urn:oid:0.9.2342.19200300.100.1.3': { friendlyName: 'mail', values: ['erika.mustermann@example.org'] },
    'urn:oid:2.5.4.16': { friendlyName: 'postalAddress', values: ['Heidestraße 17'] },
    'urn:oid:2.5.4.17': { friendlyName: 'postalCode', values: ['51147'] },
    'urn:oid:2.5.4.7': { friendlyName: 'localityName', values: ['Köln'] },
    'urn:oid:1.2.40.0.10.2.1.1.261.94': {
      friendlyName: 'EID-CITIZEN-QAA-LEVEL',
      values: ['STORK-QAA-Level-4'],
    },
  };
  for (const [name, values] of Object.entries(overrides)) {
    const entry = base[name];
    if (values === undefined) continue;
    if (values.length === 0) delete base[name];
    else base[name] = { friendlyName: entry?.friendlyName ?? 'test', values };
  }
  return base;
}

export function buildAssertion(spec: AssertionSpec = {}): string {
  const id = spec.id ?? `_${randomUUID().replace(/-/g, '')}`;
  const notBefore = spec.notBefore ?? NOW - 60_000;
  const notOnOrAfter = spec.notOnOrAfter ?? NOW + 5 * 60_000;
  const confirmationEnd = spec.confirmationNotOnOrAfter ?? notOnOrAfter;
  const inResponseTo = 'inResponseTo' in spec ? spec.inResponseTo : REQUEST_ID;
  const attributes = Object.entries(spec.attributes ?? eidAttributes() ?? {})
    .map(
      ([name, { friendlyName, values }]) =>
        `<saml2:Attribute FriendlyName="${friendlyName}" Name="${name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">` +
        values
          .map(
            (v) =>
              `<saml2:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${escapeXml(v)}</saml2:AttributeValue>`,
          )
          .join('') +
        '</saml2:Attribute>',
    )
    .join('\n      ');
  return `<saml2:Assertion xmlns:saml2="${ASSERTION_NS}" ID="${id}" IssueInstant="${iso(NOW - 1000)}" Version="2.0">
    <saml2:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">${spec.issuer ?? BUNDID_ENTITY_ID}</saml2:Issuer>
    <saml2:Subject>
      <saml2:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient">${escapeXml(spec.nameId ?? '_b81c5e0f7d2a4a3c9e1f0a2b3c4d5e6f')}</saml2:NameID>
      <saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml2:SubjectConfirmationData${inResponseTo === undefined ? '' : ` InResponseTo="${inResponseTo}"`} NotOnOrAfter="${iso(confirmationEnd)}" Recipient="${spec.recipient ?? ACS_URL}"/>
      </saml2:SubjectConfirmation>
    </saml2:Subject>
    <saml2:Conditions NotBefore="${iso(notBefore)}" NotOnOrAfter="${iso(notOnOrAfter)}">
      <saml2:AudienceRestriction>
        <saml2:Audience>${spec.audience ?? SP_ENTITY_ID}</saml2:Audience>
      </saml2:AudienceRestriction>
    </saml2:Conditions>
    <saml2:AuthnStatement AuthnInstant="${iso(spec.authnInstant ?? NOW - 2000)}" SessionIndex="${id}">
      <saml2:AuthnContext>
        <saml2:AuthnContextClassRef>${spec.classRef ?? 'STORK-QAA-Level-4'}</saml2:AuthnContextClassRef>
      </saml2:AuthnContext>
    </saml2:AuthnStatement>
    <saml2:AttributeStatement>
      ${attributes}
    </saml2:AttributeStatement>
  </saml2:Assertion>`;
}

export interface ResponseSpec {
  id?: string;
  issuer?: string;
  destination?: string;
  inResponseTo?: string;
  statusCode?: string;
  subStatusCode?: string;
  /** Assertion or EncryptedAssertion XML, or several. */
  assertions: string[];
}

export function buildResponse(spec: ResponseSpec): string {
  const id = spec.id ?? `_${randomUUID().replace(/-/g, '')}`;
  const status = spec.statusCode ?? 'urn:oasis:names:tc:SAML:2.0:status:Success';
  const sub = spec.subStatusCode ? `<saml2p:StatusCode Value="${spec.subStatusCode}"/>` : '';
  const assertions = spec.assertions.map((a) => a.replace(/^<\?xml[^>]*\?>/, '')).join('\n  ');
  return `<?xml version="1.0" encoding="UTF-8"?>
<saml2p:Response xmlns:saml2p="${PROTOCOL_NS}" Destination="${spec.destination ?? ACS_URL}" ID="${id}" InResponseTo="${spec.inResponseTo ?? REQUEST_ID}" IssueInstant="${iso(NOW - 500)}" Version="2.0">
  <saml2:Issuer xmlns:saml2="${ASSERTION_NS}" Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">${spec.issuer ?? BUNDID_ENTITY_ID}</saml2:Issuer>
  <saml2p:Status><saml2p:StatusCode Value="${status}">${sub}</saml2p:StatusCode></saml2p:Status>
  ${assertions}
</saml2p:Response>`;
}

export const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
export const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/**
 * Signs the element `localName` (the first with that name) with an enveloped signature placed
 * after its Issuer, as SAML requires. `referenceXpath` lets a test point the reference elsewhere.
 */
export function signXml(
  xml: string,
  localName: 'Assertion' | 'Response' | 'EntityDescriptor',
  signer: TestSigner,
  options: { signatureAlgorithm?: string; digestAlgorithm?: string; referenceXpath?: string } = {},
): string {
  const sig = new SignedXml({
    privateKey: signer.keyPem,
    publicCert: signer.certPem,
    signatureAlgorithm: options.signatureAlgorithm ?? RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
  });
  sig.addReference({
    xpath: options.referenceXpath ?? `//*[local-name(.)='${localName}']`,
    transforms: [ENVELOPED, EXC_C14N],
    digestAlgorithm: options.digestAlgorithm ?? 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  const location =
    localName === 'EntityDescriptor'
      ? { reference: `//*[local-name(.)='EntityDescriptor']`, action: 'prepend' as const }
      : {
          reference: `//*[local-name(.)='Issuer' and parent::*[local-name(.)='${localName}']]`,
          action: 'after' as const,
        };
  sig.computeSignature(xml, { prefix: 'ds', location });
  return sig.getSignedXml();
}

export type DataAlgorithm = 'aes256-gcm' | 'aes128-gcm' | 'aes128-cbc' | 'aes256-cbc';
export type KeyTransport = 'rsa-oaep-mgf1p' | 'rsa-oaep-sha256' | 'rsa-1_5';

const DATA_URIS: Record<DataAlgorithm, string> = {
  'aes256-gcm': 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'aes128-gcm': 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'aes128-cbc': 'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  'aes256-cbc': 'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
};

/** Encrypts an assertion for the SP's public key into a saml2:EncryptedAssertion. */
export function encryptAssertion(
  assertionXml: string,
  spPublicKeyPem: string,
  options: { data?: DataAlgorithm; keyTransport?: KeyTransport; keyOutside?: boolean; tamper?: boolean } = {},
): string {
  const data = options.data ?? 'aes256-gcm';
  const transport = options.keyTransport ?? 'rsa-oaep-mgf1p';
  const keyLength = data.startsWith('aes256') ? 32 : 16;
  const key = randomBytes(keyLength);
  const plaintext = Buffer.from(assertionXml.replace(/^<\?xml[^>]*\?>/, ''), 'utf8');
  let cipherBytes: Buffer;
  if (data.endsWith('gcm')) {
    const iv = randomBytes(12);
    const cipher = createCipheriv(keyLength === 32 ? 'aes-256-gcm' : 'aes-128-gcm', key, iv);
    cipherBytes = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  } else {
    const iv = randomBytes(16);
    // PKCS#7 padding is one valid form of the XML Encryption padding (last byte = count).
    const cipher = createCipheriv(keyLength === 32 ? 'aes-256-cbc' : 'aes-128-cbc', key, iv);
    cipherBytes = Buffer.concat([iv, cipher.update(plaintext), cipher.final()]);
  }
  if (options.tamper) cipherBytes[20] = cipherBytes[20]! ^ 0x01;

  const publicKey = createPublicKey(spPublicKeyPem);
  let wrapped: Buffer;
  let method: string;
  if (transport === 'rsa-1_5') {
    wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, key);
    method = '<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-1_5"/>';
  } else if (transport === 'rsa-oaep-sha256') {
    wrapped = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      key,
    );
    method =
      '<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep">' +
      '<ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>' +
      '<xenc11:MGF xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"/>' +
      '</xenc:EncryptionMethod>';
  } else {
    wrapped = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      key,
    );
    method =
      '<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p">' +
      '<ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>' +
      '</xenc:EncryptionMethod>';
  }
  const encryptedKey =
    `<xenc:EncryptedKey xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Id="_ek${randomUUID().slice(0, 8)}">` +
    method +
    `<xenc:CipherData><xenc:CipherValue>${wrapped.toString('base64')}</xenc:CipherValue></xenc:CipherData>` +
    '</xenc:EncryptedKey>';
  const keyInfo = options.keyOutside
    ? ''
    : `<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">${encryptedKey}</ds:KeyInfo>`;
  return (
    `<saml2:EncryptedAssertion xmlns:saml2="${ASSERTION_NS}">` +
    `<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">` +
    `<xenc:EncryptionMethod Algorithm="${DATA_URIS[data]}"/>` +
    keyInfo +
    `<xenc:CipherData><xenc:CipherValue>${cipherBytes.toString('base64')}</xenc:CipherValue></xenc:CipherData>` +
    '</xenc:EncryptedData>' +
    (options.keyOutside ? encryptedKey : '') +
    '</saml2:EncryptedAssertion>'
  );
}

/** IdP metadata as BundID and Servicekonto.NRW publish it (trimmed to what matters here). */
export function idpMetadataXml(
  entityId: string,
  signingCerts: string[],
  options: { encryptionCert?: string; unqualifiedUse?: boolean; validUntil?: number; id?: string } = {},
): string {
  const keyDescriptor = (cert: string, use: string | undefined): string =>
    `<md:KeyDescriptor${use ? ` use="${use}"` : ''}><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
  const keys = [
    ...signingCerts.map((c) => keyDescriptor(c, options.unqualifiedUse ? undefined : 'signing')),
    ...(options.encryptionCert ? [keyDescriptor(options.encryptionCert, 'encryption')] : []),
  ].join('\n    ');
  return `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="${options.id ?? '_metadata1'}" entityID="${entityId}"${options.validUntil === undefined ? '' : ` validUntil="${iso(options.validUntil)}"`}>
  <md:IDPSSODescriptor WantAuthnRequestsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    ${keys}
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${entityId.replace(/\/idp$/, '')}/sso"/>
  </md:IDPSSODescriptor>
  <md:Organization>
    <md:OrganizationName xml:lang="de">Test IdP</md:OrganizationName>
    <md:OrganizationDisplayName xml:lang="de">Test IdP</md:OrganizationDisplayName>
    <md:OrganizationURL xml:lang="de">${entityId}</md:OrganizationURL>
  </md:Organization>
</md:EntityDescriptor>`;
}

/** An in-memory stand-in with the semantics of `Store.rememberOnce`. */
export function memoryReplayCache(clock: () => number): {
  replay: (assertionId: string, expiresAt: number) => Promise<boolean>;
  calls: Array<{ assertionId: string; expiresAt: number }>;
} {
  const entries = new Map<string, number>();
  const calls: Array<{ assertionId: string; expiresAt: number }> = [];
  return {
    calls,
    replay: async (assertionId, expiresAt) => {
      calls.push({ assertionId, expiresAt });
      const now = clock();
      const existing = entries.get(assertionId);
      if (existing !== undefined && existing > now) return false;
      entries.set(assertionId, expiresAt);
      return true;
    },
  };
}
