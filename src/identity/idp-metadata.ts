/**
 * SAML 2.0 identity provider metadata: who the IdP is (entityID) and which certificates it signs
 * with. Several signing certificates are normal during a key rollover; any of them is trusted.
 *
 * A metadata file the operator put in place is trusted as it is. Metadata fetched from a URL must
 * carry an enveloped signature that verifies against a certificate from the configuration
 * (`verifyWith`); then only the signed bytes are read.
 */
import { readFile } from 'node:fs/promises';
import { AmtError } from '../errors.js';
import { SignatureCheckError, trustedCertificate, verifyEnvelopedSignature } from './xml-signature.js';
import type { TrustedCertificate } from './xml-signature.js';
import {
  NS,
  XmlReadError,
  childrenNamed,
  descendantsNamed,
  is,
  parseXml,
  stripBom,
  textOf,
} from './xml-tree.js';
import type { XmlElement } from './xml-tree.js';

export interface IdpMetadata {
  readonly entityId: string;
  /** Certificates from `IDPSSODescriptor/KeyDescriptor` with use="signing" or no use. */
  readonly signingCertificates: readonly TrustedCertificate[];
  /** `validUntil` of the EntityDescriptor (ms since epoch), when given. */
  readonly validUntil: number | undefined;
  /** True when the document's signature was checked against `verifyWith`. */
  readonly signatureVerified: boolean;
}

export interface ParseIdpMetadataOptions {
  /** PEM certificates the metadata must be signed with. When set, an unsigned document is refused. */
  readonly verifyWith?: readonly string[];
  /** When set, metadata whose validUntil lies before this instant (ms) is refused. */
  readonly now?: number;
}

const SAML2_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';

export function parseIdpMetadata(text: string, options: ParseIdpMetadataOptions = {}): IdpMetadata {
  const xml = stripBom(text);
  const invalid = (detail: string, cause?: unknown): AmtError =>
    new AmtError(
      'AMT_SAML_METADATA_INVALID',
      `IdP metadata: ${detail}`,
      cause === undefined ? {} : { cause },
    );
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (err) {
    throw invalid(err instanceof Error ? err.message : String(err), err);
  }
  if (is(root, NS.md, 'EntitiesDescriptor')) {
    throw invalid('an EntitiesDescriptor (aggregate) was given; configure one EntityDescriptor per IdP');
  }
  if (!is(root, NS.md, 'EntityDescriptor'))
    throw invalid(`root element is ${root.local}, not md:EntityDescriptor`);

  let signatureVerified = false;
  let entity = root;
  if (options.verifyWith !== undefined) {
    let trusted: TrustedCertificate[];
    try {
      trusted = options.verifyWith.map((pem) => trustedCertificate(pem));
    } catch (err) {
      throw invalid('a certificate in verifyWith cannot be read', err);
    }
    if (childrenNamed(root, NS.ds, 'Signature').length === 0) {
      throw new AmtError('AMT_SAML_METADATA_SIGNATURE_INVALID', 'IdP metadata is not signed');
    }
    try {
      entity = verifyEnvelopedSignature(xml, root, trusted, { allowWholeDocumentReference: true }).element;
    } catch (err) {
      if (err instanceof SignatureCheckError || err instanceof XmlReadError) {
        throw new AmtError('AMT_SAML_METADATA_SIGNATURE_INVALID', `IdP metadata: ${err.message}`, {
          cause: err,
        });
      }
      throw err;
    }
    signatureVerified = true;
  }

  const entityId = entity.attrs.get('entityID')?.trim();
  if (!entityId) throw invalid('EntityDescriptor has no entityID');

  const validUntilText = entity.attrs.get('validUntil');
  const validUntil = validUntilText === undefined ? undefined : Date.parse(validUntilText);
  if (validUntil !== undefined && Number.isNaN(validUntil))
    throw invalid(`validUntil "${validUntilText}" is not a date`);
  if (validUntil !== undefined && options.now !== undefined && validUntil < options.now) {
    throw invalid(`metadata of ${entityId} expired at ${validUntilText}`);
  }

  const idpDescriptors = childrenNamed(entity, NS.md, 'IDPSSODescriptor').filter((d) =>
    (d.attrs.get('protocolSupportEnumeration') ?? '').split(/\s+/).includes(SAML2_PROTOCOL),
  );
  if (idpDescriptors.length === 0) throw invalid(`${entityId} has no IDPSSODescriptor for SAML 2.0`);

  const certificates = new Map<string, TrustedCertificate>();
  for (const descriptor of idpDescriptors) {
    for (const keyDescriptor of childrenNamed(descriptor, NS.md, 'KeyDescriptor')) {
      const use = keyDescriptor.attrs.get('use');
      if (use !== undefined && use !== 'signing') continue;
      for (const certElement of descendantsNamed(keyDescriptor, NS.ds, 'X509Certificate')) {
        const text = textOf(certElement);
        if (!text) continue;
        try {
          const certificate = trustedCertificate(text);
          certificates.set(certificate.fingerprintSha256, certificate);
        } catch (err) {
          throw invalid(`a signing certificate of ${entityId} cannot be read`, err);
        }
      }
    }
  }
  if (certificates.size === 0) throw invalid(`${entityId} has no signing certificate`);

  return Object.freeze({
    entityId,
    signingCertificates: Object.freeze([...certificates.values()]),
    validUntil,
    signatureVerified,
  });
}

/** Reads IdP metadata from a file the operator placed (e.g. the BundID or Servicekonto.NRW download). */
export async function loadIdpMetadataFile(
  path: string,
  options: ParseIdpMetadataOptions = {},
): Promise<IdpMetadata> {
  let xml: string;
  try {
    xml = await readFile(path, 'utf8');
  } catch (err) {
    throw new AmtError('AMT_SAML_METADATA_INVALID', `IdP metadata file ${path} cannot be read`, {
      cause: err,
    });
  }
  return parseIdpMetadata(xml, options);
}
