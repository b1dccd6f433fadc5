/**
 * Verifies the SAML Response (or bare Assertion) a portal forwards with an application and turns
 * it into a VerifiedIdentity. The portal ran the login; amtsbote trusts nothing it says about the
 * citizen until the IdP's signature, the issuer, the time window, the audience, the recipient and
 * the one-time use of the assertion have been checked.
 *
 * Only bytes a trusted signature covers are read for the identity (see xml-signature.ts); a
 * document with more than one assertion anywhere is refused outright.
 */
import { createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { AmtError } from '../errors.js';
import type { IdpMetadata } from './idp-metadata.js';
import {
  checkAuthnStatement,
  checkConditions,
  checkSubject,
  readAttributes,
  samlError,
} from './assertion-checks.js';
import { identityFromAssertion } from './identity.js';
import type { VerifiedIdentity } from './identity.js';
import { CANNOT_DECRYPT, DecryptionError, decryptElement } from './xml-decryption.js';
import { SignatureCheckError, verifyEnvelopedSignature } from './xml-signature.js';
import {
  NS,
  XmlReadError,
  childNamed,
  childrenNamed,
  descendantsNamed,
  hasDoctype,
  is,
  parseXml,
  stripBom,
  textOf,
} from './xml-tree.js';
import type { XmlElement } from './xml-tree.js';

export interface VerifySamlOptions {
  /** Metadata of every IdP whose logins are accepted (e.g. BundID and Servicekonto.NRW). */
  readonly idp: readonly IdpMetadata[];
  /** Our SP entity ID; the assertion's AudienceRestriction must name it. */
  readonly audience: string;
  /** The ACS URL the IdP posted to; when set, Recipient (and a Response Destination) must match. */
  readonly recipient?: string;
  /** ms since epoch; defaults to Date.now(). */
  readonly now?: number;
  /** Tolerance for clock differences with the IdP; default 2 minutes. */
  readonly clockSkewMs?: number;
  /** The ID of our AuthnRequest, when the portal passes it on; InResponseTo must then match. */
  readonly expectedInResponseTo?: string;
  /** PEM private key(s) of the SP for encrypted assertions; several during a key rollover. */
  readonly spDecryptionKey?: string | readonly string[];
  /**
   * Records the assertion ID until `expiresAt`; resolves false when it was seen before. Wire it to
   * `store.rememberOnce('saml-assertion', id, expiresAt, now)` so all instances share the memory.
   */
  readonly replay: (assertionId: string, expiresAt: number) => Promise<boolean>;
  /** Largest accepted document in bytes; default 512 KiB. */
  readonly maxInputBytes?: number;
}

const DEFAULT_SKEW_MS = 2 * 60 * 1000;
const DEFAULT_MAX_BYTES = 512 * 1024;
const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

/** Verifies a SAML Response or Assertion (XML or base64 of it) and returns the citizen's verified identity. */
export async function verifySamlResponse(
  input: string,
  options: VerifySamlOptions,
): Promise<VerifiedIdentity> {
  const now = options.now ?? Date.now();
  const skew = options.clockSkewMs ?? DEFAULT_SKEW_MS;
  try {
    const xml = decodeInput(input, options.maxInputBytes ?? DEFAULT_MAX_BYTES);
    const located = locateAssertion(xml, options);
    const assertion = located.assertion;
    const idp = located.idp;

    const assertionId = assertion.attrs.get('ID');
    if (!assertionId) throw fail('AMT_SAML_MALFORMED', 'the assertion has no ID');
    const issuer = textOf(childNamed(assertion, NS.saml, 'Issuer'));
    if (issuer !== idp.entityId)
      throw fail('AMT_SAML_ISSUER_UNKNOWN', 'the signed assertion names another issuer');

    const conditionsEnd = checkConditions(assertion, options.audience, now, skew);
    const subject = checkSubject(assertion, options, now, skew);
    const authn = checkAuthnStatement(assertion, now, skew);
    const expiresAt = Math.min(subject.notOnOrAfter, conditionsEnd ?? Number.POSITIVE_INFINITY);

    const identity = identityFromAssertion({
      issuer,
      assertionId,
      subjectNameId: subject.nameId,
      subjectNameIdFormat: subject.nameIdFormat,
      authnContextClassRef: authn.classRef,
      authenticatedAt: authn.instant,
      expiresAt,
      attributes: readAttributes(assertion),
    });

    // Last, so that a rejected assertion does not use up its ID. Remembered for as long as the
    // assertion could still be accepted, i.e. including the clock skew.
    if (!(await options.replay(assertionId, expiresAt + skew))) {
      throw fail('AMT_SAML_REPLAYED', 'this assertion was already presented');
    }
    return identity;
  } catch (err) {
    throw asAmtError(err);
  }
}

const fail = samlError;

function asAmtError(err: unknown): unknown {
  if (err instanceof AmtError) return err;
  if (err instanceof XmlReadError) {
    return new AmtError(err.doctype ? 'AMT_SAML_DOCTYPE_FORBIDDEN' : 'AMT_SAML_MALFORMED', err.message, {
      cause: err,
    });
  }
  if (err instanceof SignatureCheckError) {
    const code =
      err.problem === 'untrusted-certificate' ? 'AMT_SAML_CERT_UNTRUSTED' : 'AMT_SAML_SIGNATURE_INVALID';
    return new AmtError(code, err.message, { cause: err });
  }
  if (err instanceof DecryptionError)
    return new AmtError('AMT_SAML_DECRYPTION_FAILED', err.message, { cause: err });
  return err;
}

function decodeInput(input: string, maxBytes: number): string {
  if (typeof input !== 'string') throw fail('AMT_SAML_MALFORMED', 'the SAML response must be a string');
  // base64 is 4/3 of the bytes it carries; anything longer cannot fit once decoded.
  if (input.length > Math.ceil(maxBytes / 3) * 4 + 1024)
    throw fail('AMT_SAML_MALFORMED', 'the SAML response is too large');
  let xml = stripBom(input.trim());
  if (!xml.startsWith('<')) {
    const compact = xml.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 !== 0) {
      throw fail('AMT_SAML_MALFORMED', 'the SAML response is neither XML nor base64');
    }
    try {
      xml = stripBom(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(compact, 'base64')).trim());
    } catch {
      throw fail('AMT_SAML_MALFORMED', 'the decoded SAML response is not UTF-8');
    }
    if (!xml.startsWith('<')) throw fail('AMT_SAML_MALFORMED', 'the decoded SAML response is not XML');
  }
  if (Buffer.byteLength(xml, 'utf8') > maxBytes)
    throw fail('AMT_SAML_MALFORMED', 'the SAML response is too large');
  if (hasDoctype(xml))
    throw fail('AMT_SAML_DOCTYPE_FORBIDDEN', 'the SAML document contains a DOCTYPE or entity declaration');
  return xml;
}

interface LocatedAssertion {
  /** The assertion as covered by a verified signature. */
  readonly assertion: XmlElement;
  readonly idp: IdpMetadata;
}

/**
 * Finds the one assertion, checks the Response around it, decrypts it when needed and verifies
 * the signatures. Returns the assertion only from signed bytes.
 */
function locateAssertion(xml: string, options: VerifySamlOptions): LocatedAssertion {
  const root = parseXml(xml);
  const isResponse = is(root, NS.samlp, 'Response');
  if (!isResponse && !is(root, NS.saml, 'Assertion') && !is(root, NS.saml, 'EncryptedAssertion')) {
    throw fail('AMT_SAML_MALFORMED', `the document is a ${root.local}, not a SAML Response or Assertion`);
  }
  if (isResponse) checkStatus(root);
  const total =
    countSelfAndDescendants(root, NS.saml, 'Assertion') +
    countSelfAndDescendants(root, NS.saml, 'EncryptedAssertion');
  if (total > 1) throw fail('AMT_SAML_MULTIPLE_ASSERTIONS', `the document carries ${total} assertions`);
  if (total === 0) throw fail('AMT_SAML_MALFORMED', 'the document carries no assertion');

  let idp: IdpMetadata | undefined;
  let responseSigned = false;
  // Where the assertion sits, and the document its own signature has to be checked in.
  let container = root;
  let assertionDocument = xml;

  if (isResponse) {
    let response = root;
    if (childrenNamed(root, NS.ds, 'Signature').length > 0) {
      const issuer =
        textOf(childNamed(root, NS.saml, 'Issuer')) ??
        textOf(firstOf(childrenNamed(root, NS.saml, 'Assertion'), (a) => childNamed(a, NS.saml, 'Issuer')));
      if (!issuer) throw fail('AMT_SAML_MALFORMED', 'a signed Response must name its Issuer');
      idp = findIdp(options.idp, issuer);
      response = verifyEnvelopedSignature(xml, root, idp.signingCertificates).element;
      responseSigned = true;
    } else {
      const issuer = textOf(childNamed(root, NS.saml, 'Issuer'));
      if (issuer !== undefined) findIdp(options.idp, issuer);
    }
    checkResponseEnvelope(response, options);
    const direct = [
      ...childrenNamed(response, NS.saml, 'Assertion'),
      ...childrenNamed(response, NS.saml, 'EncryptedAssertion'),
    ];
    const only = direct[0];
    if (direct.length > 1)
      throw fail('AMT_SAML_MULTIPLE_ASSERTIONS', 'the Response carries more than one assertion');
    if (!only) throw fail('AMT_SAML_MALFORMED', 'the assertion is not a direct child of the Response');
    container = only;
  }

  let assertion = container;
  if (is(container, NS.saml, 'EncryptedAssertion')) {
    const decrypted = decryptAssertion(container, options.spDecryptionKey);
    assertion = decrypted.assertion;
    assertionDocument = decrypted.document;
  }

  const issuer = textOf(childNamed(assertion, NS.saml, 'Issuer'));
  if (!issuer) throw fail('AMT_SAML_MALFORMED', 'the assertion has no Issuer');
  if (idp && issuer !== idp.entityId) {
    throw fail(
      'AMT_SAML_ISSUER_UNKNOWN',
      'the assertion issuer differs from the issuer of the signed Response',
    );
  }
  idp ??= findIdp(options.idp, issuer);

  if (childrenNamed(assertion, NS.ds, 'Signature').length > 0) {
    return {
      assertion: verifyEnvelopedSignature(assertionDocument, assertion, idp.signingCertificates).element,
      idp,
    };
  }
  // Taken from the signed Response's bytes (or decrypted from a ciphertext those bytes carry).
  if (responseSigned) return { assertion, idp };
  throw fail('AMT_SAML_UNSIGNED', 'neither the Response nor the assertion is signed');
}

function firstOf<T, R>(items: readonly T[], pick: (item: T) => R | undefined): R | undefined {
  for (const item of items) {
    const value = pick(item);
    if (value !== undefined) return value;
  }
  return undefined;
}

function countSelfAndDescendants(root: XmlElement, ns: string, local: string): number {
  return (is(root, ns, local) ? 1 : 0) + descendantsNamed(root, ns, local).length;
}

function findIdp(idps: readonly IdpMetadata[], issuer: string): IdpMetadata {
  const idp = idps.find((candidate) => candidate.entityId === issuer);
  if (!idp) throw fail('AMT_SAML_ISSUER_UNKNOWN', `issuer ${issuer} is not a configured identity provider`);
  return idp;
}

function checkStatus(response: XmlElement): void {
  const status = childNamed(response, NS.samlp, 'Status');
  const code = status ? childNamed(status, NS.samlp, 'StatusCode') : undefined;
  const value = code?.attrs.get('Value');
  if (!value) throw fail('AMT_SAML_MALFORMED', 'the Response has no StatusCode');
  if (value === STATUS_SUCCESS) return;
  const second = code ? childNamed(code, NS.samlp, 'StatusCode')?.attrs.get('Value') : undefined;
  const short = (uri: string): string => uri.replace('urn:oasis:names:tc:SAML:2.0:status:', '');
  throw fail(
    'AMT_SAML_STATUS',
    `the identity provider answered ${short(value)}${second ? ` / ${short(second)}` : ''}`,
  );
}

function checkResponseEnvelope(response: XmlElement, options: VerifySamlOptions): void {
  const destination = response.attrs.get('Destination');
  if (options.recipient !== undefined && destination !== undefined && destination !== options.recipient) {
    throw fail('AMT_SAML_RECIPIENT_MISMATCH', `the Response is addressed to ${destination}`);
  }
  const inResponseTo = response.attrs.get('InResponseTo');
  if (options.expectedInResponseTo !== undefined && inResponseTo !== options.expectedInResponseTo) {
    throw fail('AMT_SAML_IN_RESPONSE_TO_MISMATCH', 'the Response answers another authentication request');
  }
}

function decryptAssertion(
  encrypted: XmlElement,
  keys: string | readonly string[] | undefined,
): { assertion: XmlElement; document: string } {
  const pems = keys === undefined ? [] : typeof keys === 'string' ? [keys] : keys;
  if (pems.length === 0)
    throw fail('AMT_SAML_DECRYPTION_FAILED', 'the assertion is encrypted but no SP key is configured');
  let privateKeys: KeyObject[];
  try {
    privateKeys = pems.map((pem) => createPrivateKey(pem));
  } catch (err) {
    throw new AmtError('AMT_SAML_DECRYPTION_FAILED', 'the configured SP key cannot be read', { cause: err });
  }
  const plaintext = decryptElement(encrypted, privateKeys).trim();
  // Whatever is wrong with the plaintext gets the same answer as a failed decryption: telling
  // "not well-formed" apart from "bad padding" is the oracle of the known CBC attacks on XML Encryption.
  const unreadable = (): DecryptionError => new DecryptionError(CANNOT_DECRYPT);
  if (hasDoctype(plaintext)) throw unreadable();
  // The plaintext is an element taken out of its context; prefixes it inherited must stay bound.
  const declarations = Object.entries(encrypted.inScope)
    .map(([prefix, uri]) =>
      prefix === '' ? ` xmlns="${escapeAttr(uri)}"` : ` xmlns:${prefix}="${escapeAttr(uri)}"`,
    )
    .join('');
  const document = `<DecryptedAssertion${declarations}>${plaintext.replace(/^<\?xml[^>]*\?>/, '')}</DecryptedAssertion>`;
  let wrapper: XmlElement;
  try {
    wrapper = parseXml(document);
  } catch {
    throw unreadable();
  }
  const assertion = wrapper.children[0];
  if (wrapper.children.length !== 1 || !assertion || !is(assertion, NS.saml, 'Assertion')) throw unreadable();
  const nested =
    descendantsNamed(assertion, NS.saml, 'Assertion').length +
    descendantsNamed(assertion, NS.saml, 'EncryptedAssertion').length;
  if (nested > 0)
    throw fail('AMT_SAML_MULTIPLE_ASSERTIONS', 'the decrypted assertion contains further assertions');
  return { assertion, document };
}

function escapeAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}
