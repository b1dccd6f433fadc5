/**
 * Checks one enveloped XML signature (SAML responses, assertions, metadata) against a fixed set
 * of trusted certificates. The key is never taken from the signature's KeyInfo: a certificate
 * there only helps to pick the trusted one to try first.
 *
 * What the caller gets back is the element as it was signed — the canonical bytes xml-crypto
 * digested, parsed again — never a node of the received document. That, plus the rule that the
 * only reference must point at the signature's own parent, is the guard against signature
 * wrapping: unsigned content placed elsewhere in the document is simply never read.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import {
  NS,
  childNamed,
  childrenNamed,
  descendantsNamed,
  is,
  parseXml,
  serialize,
  textOf,
} from './xml-tree.js';
import type { XmlElement } from './xml-tree.js';

export interface TrustedCertificate {
  /** PEM text of the X.509 certificate. */
  readonly pem: string;
  /** SHA-256 over the DER encoding, lower-case hex. */
  readonly fingerprintSha256: string;
  readonly subject: string;
  readonly validTo: string;
}

export type SignatureProblem = 'invalid' | 'untrusted-certificate';

export class SignatureCheckError extends Error {
  constructor(
    readonly problem: SignatureProblem,
    message: string,
  ) {
    super(message);
    this.name = 'SignatureCheckError';
  }
}

export interface VerifiedSignature {
  /** The signed element, re-parsed from the canonical bytes the signature covers. */
  readonly element: XmlElement;
  readonly certificate: TrustedCertificate;
}

const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
// SHA-1 is refused: both the federal IdPs sign with RSA-SHA256.
const SIGNATURE_ALGORITHMS = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
]);
const DIGEST_ALGORITHMS = new Set([
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);

/** Reads a base64 certificate (PEM or the bare content of `ds:X509Certificate`). */
export function trustedCertificate(pemOrBase64: string): TrustedCertificate {
  const body = pemOrBase64.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('certificate is not base64');
  const der = Buffer.from(body, 'base64');
  const cert = new X509Certificate(der);
  const lines = body.match(/.{1,64}/g) ?? [];
  return {
    pem: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`,
    fingerprintSha256: createHash('sha256').update(cert.raw).digest('hex'),
    subject: cert.subject,
    validTo: cert.validTo,
  };
}

/**
 * Verifies the one `ds:Signature` child of `signed` inside the document `documentXml`.
 * `allowWholeDocumentReference` accepts `URI=""` when `signed` is the document element
 * (metadata signers use it); SAML messages must reference the element's ID.
 */
export function verifyEnvelopedSignature(
  documentXml: string,
  signed: XmlElement,
  trusted: readonly TrustedCertificate[],
  options: { allowWholeDocumentReference?: boolean } = {},
): VerifiedSignature {
  const signatures = childrenNamed(signed, NS.ds, 'Signature');
  const signature = signatures[0];
  if (signatures.length !== 1 || !signature) {
    throw new SignatureCheckError(
      'invalid',
      `expected one signature on ${signed.local}, found ${signatures.length}`,
    );
  }
  const id = signed.attrs.get('ID');
  checkSignedInfo(signature, id, options.allowWholeDocumentReference === true);

  const presented = presentedCertificates(signature);
  const presentedTrusted = trusted.filter((t) => presented.includes(t.fingerprintSha256));
  const candidates = [...presentedTrusted, ...trusted.filter((t) => !presentedTrusted.includes(t))];
  const signatureXml = serialize(signature);

  let lastError = 'no trusted certificate is configured';
  for (const certificate of candidates) {
    const sig = new SignedXml({ publicCert: certificate.pem, getCertFromKeyInfo: () => null });
    let valid: boolean;
    try {
      sig.loadSignature(signatureXml);
      valid = sig.checkSignature(documentXml);
    } catch (err) {
      // A wrong key and a broken signature value look the same here; try the next key.
      const message = err instanceof Error ? err.message : String(err);
      lastError = message.startsWith('invalid signature: the signature value')
        ? 'the signature value does not match'
        : message;
      continue;
    }
    // false means a reference digest did not match: the content changed, whatever the key.
    if (!valid) throw new SignatureCheckError('invalid', 'the signed content was changed after signing');
    const references = sig.getSignedReferences();
    const signedXml = references[0];
    if (references.length !== 1 || signedXml === undefined) {
      throw new SignatureCheckError('invalid', 'the signature must cover exactly one element');
    }
    const element = parseXml(signedXml);
    if (!is(element, signed.ns, signed.local) || element.attrs.get('ID') !== id) {
      throw new SignatureCheckError(
        'invalid',
        `the signature does not cover the ${signed.local} it is part of`,
      );
    }
    return { element, certificate };
  }
  if (presented.length > 0 && presentedTrusted.length === 0) {
    throw new SignatureCheckError(
      'untrusted-certificate',
      `signed with a certificate not in the metadata (SHA-256 ${presented[0]})`,
    );
  }
  throw new SignatureCheckError(
    'invalid',
    `the signature does not verify with a trusted certificate: ${lastError}`,
  );
}

function checkSignedInfo(signature: XmlElement, id: string | undefined, allowWholeDocument: boolean): void {
  const fail = (message: string): never => {
    throw new SignatureCheckError('invalid', message);
  };
  const signedInfo = childNamed(signature, NS.ds, 'SignedInfo') ?? fail('the signature has no SignedInfo');
  const algorithmOf = (e: XmlElement | undefined): string | undefined => e?.attrs.get('Algorithm');

  const c14n = algorithmOf(childNamed(signedInfo, NS.ds, 'CanonicalizationMethod'));
  if (c14n !== EXC_C14N) fail(`canonicalization ${c14n ?? '(none)'} is not accepted, only exclusive c14n`);
  const method = algorithmOf(childNamed(signedInfo, NS.ds, 'SignatureMethod'));
  if (!method || !SIGNATURE_ALGORITHMS.has(method))
    fail(`signature method ${method ?? '(none)'} is not accepted`);

  const references = childrenNamed(signedInfo, NS.ds, 'Reference');
  const reference = references[0];
  if (references.length !== 1 || !reference) return fail('the signature must have exactly one reference');
  const uri = reference.attrs.get('URI') ?? '';
  const pointsAtParent = (id !== undefined && uri === `#${id}`) || (uri === '' && allowWholeDocument);
  if (!pointsAtParent)
    fail(`the signature references ${uri || '(the whole document)'}, not the element it is part of`);

  const digest = algorithmOf(childNamed(reference, NS.ds, 'DigestMethod'));
  if (!digest || !DIGEST_ALGORITHMS.has(digest)) fail(`digest method ${digest ?? '(none)'} is not accepted`);
  const transforms = childNamed(reference, NS.ds, 'Transforms');
  const names = transforms ? childrenNamed(transforms, NS.ds, 'Transform').map(algorithmOf) : [];
  if (!names.includes(ENVELOPED)) fail('the signature is not an enveloped signature');
  for (const name of names) {
    if (name !== ENVELOPED && name !== EXC_C14N) fail(`transform ${name ?? '(none)'} is not accepted`);
  }
}

function presentedCertificates(signature: XmlElement): string[] {
  const keyInfo = childNamed(signature, NS.ds, 'KeyInfo');
  if (!keyInfo) return [];
  const fingerprints: string[] = [];
  for (const element of descendantsNamed(keyInfo, NS.ds, 'X509Certificate')) {
    const text = textOf(element);
    if (!text) continue;
    try {
      fingerprints.push(trustedCertificate(text).fingerprintSha256);
    } catch {
      fingerprints.push(createHash('sha256').update(text).digest('hex'));
    }
  }
  return fingerprints;
}
