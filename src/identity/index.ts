/** Verified citizen identity from Servicekonto.NRW / BundID SAML logins. */
export { verifySamlResponse } from './saml.js';
export type { VerifySamlOptions } from './saml.js';
export { parseIdpMetadata, loadIdpMetadataFile } from './idp-metadata.js';
export type { IdpMetadata, ParseIdpMetadataOptions } from './idp-metadata.js';
export type { TrustedCertificate } from './xml-signature.js';
export {
  TRUST_LEVELS,
  IDENTITY_ATTRIBUTES,
  meetsTrustLevel,
  requireTrustLevel,
  redactIdentity,
  trustLevelFrom,
  resolveTrustLevel,
} from './identity.js';
export type { TrustLevel, VerifiedIdentity, VerifiedAddress } from './identity.js';
