/**
 * The verified citizen identity: what Servicekonto.NRW / BundID confirmed in a signed SAML
 * assertion, normalised. It is kept apart from whatever the applicant typed into the form — a
 * mapping that needs "the verified name" reads it from here, never from the application body.
 */
import { createHash } from 'node:crypto';
import { AmtError } from '../errors.js';

/** Vertrauensniveau: basis < substantiell < hoch (STORK-QAA-Level-1/3/4, eIDAS low/substantial/high). */
export type TrustLevel = 'basis' | 'substantiell' | 'hoch';

export const TRUST_LEVELS: readonly TrustLevel[] = ['basis', 'substantiell', 'hoch'];

export interface VerifiedAddress {
  /** Street and house number (`postalAddress`). */
  readonly street: string | undefined;
  readonly postalCode: string | undefined;
  readonly locality: string | undefined;
}

export interface VerifiedIdentity {
  /** entityID of the identity provider that signed the assertion. */
  readonly issuer: string;
  readonly subjectNameId: string;
  readonly subjectNameIdFormat: string | undefined;
  /** bPK2, the stable pseudonym of the citizen account; the key to recognise a citizen again. */
  readonly pseudonym: string | undefined;
  readonly trustLevel: TrustLevel;
  readonly givenName: string | undefined;
  readonly familyName: string | undefined;
  /** ISO 8601; reduced precision (`1970` or `1970-05`) when the ID document leaves day or month open. */
  readonly birthDate: string | undefined;
  readonly email: string | undefined;
  readonly address: VerifiedAddress | undefined;
  readonly assertionId: string;
  /** AuthnInstant, ms since epoch. */
  readonly authenticatedAt: number;
  /** End of the assertion's validity (earliest NotOnOrAfter), ms since epoch. */
  readonly expiresAt: number;
}

/** Attribute names (SAML `Name`, URI format) as BundID and Servicekonto.NRW send them. */
export const IDENTITY_ATTRIBUTES = {
  givenName: 'urn:oid:2.5.4.42',
  familyName: 'urn:oid:2.5.4.4',
  email: 'urn:oid:0.9.2342.19200300.100.1.3',
  birthDate: 'urn:oid:1.2.40.0.10.2.1.1.55',
  street: 'urn:oid:2.5.4.16',
  postalCode: 'urn:oid:2.5.4.17',
  locality: 'urn:oid:2.5.4.7',
  pseudonym: 'urn:oid:1.3.6.1.4.1.25484.494450.3',
  trustLevel: 'urn:oid:1.2.40.0.10.2.1.1.261.94',
} as const;

/** `urn:oid: 1.2.3` (seen from simulators) and a bare `1.2.3` both become `urn:oid:1.2.3`. */
export function normalizeAttributeName(name: string): string {
  const compact = name.replace(/\s+/g, '');
  return /^\d+(\.\d+)+$/.test(compact) ? `urn:oid:${compact}` : compact;
}

/** Reads one trust-level statement; undefined when the value is not one this gateway knows. */
export function trustLevelFrom(value: string): TrustLevel | undefined {
  const text = value.trim();
  const stork = /STORK-QAA-Level-([1-4])$/i.exec(text);
  if (stork) {
    // Level 2 was never used by the federal IdPs; it is below "substantiell", so it counts as basis.
    return stork[1] === '4' ? 'hoch' : stork[1] === '3' ? 'substantiell' : 'basis';
  }
  const eidas = /^https?:\/\/eidas\.europa\.eu\/LoA\/(low|substantial|high)$/i.exec(text);
  if (eidas) {
    const level = eidas[1]!.toLowerCase();
    return level === 'high' ? 'hoch' : level === 'substantial' ? 'substantiell' : 'basis';
  }
  const german = text.toLowerCase();
  if (german === 'basis' || german === 'normal') return 'basis';
  if (german === 'substantiell' || german === 'substanziell') return 'substantiell';
  if (german === 'hoch') return 'hoch';
  return undefined;
}

/**
 * The trust level of a login from the AuthnContextClassRef and the EID-CITIZEN-QAA-LEVEL
 * attribute. When both are present and disagree, the lower one counts: both are statements the
 * IdP signed, a service that requires a level must be able to rely on each of them, and taking
 * the higher would let one statement override a limitation the other one reports.
 */
export function resolveTrustLevel(
  authnContextClassRef: string | undefined,
  attributeValues: readonly string[],
): TrustLevel {
  const statements = [authnContextClassRef, ...attributeValues]
    .filter((v): v is string => v !== undefined)
    .map(trustLevelFrom)
    .filter((l): l is TrustLevel => l !== undefined);
  if (statements.length === 0) {
    throw new AmtError(
      'AMT_SAML_TRUST_LEVEL_UNKNOWN',
      `no known trust level in AuthnContextClassRef ${authnContextClassRef ?? '(none)'} or the trust-level attribute`,
    );
  }
  return statements.reduce((lowest, level) => (rank(level) < rank(lowest) ? level : lowest));
}

function rank(level: TrustLevel): number {
  return TRUST_LEVELS.indexOf(level);
}

/** True when `identity` was authenticated at `required` or higher. */
export function meetsTrustLevel(
  identity: Pick<VerifiedIdentity, 'trustLevel'>,
  required: TrustLevel,
): boolean {
  return rank(identity.trustLevel) >= rank(required);
}

/** Throws AMT_TRUST_LEVEL_TOO_LOW (403) unless `identity` meets `required`. */
export function requireTrustLevel(
  identity: Pick<VerifiedIdentity, 'trustLevel'>,
  required: TrustLevel,
): void {
  if (!meetsTrustLevel(identity, required)) {
    throw new AmtError(
      'AMT_TRUST_LEVEL_TOO_LOW',
      `this service requires trust level ${required}; the citizen logged in with ${identity.trustLevel}`,
    );
  }
}

/** Birth dates as `YYYY-MM-DD`, `YYYYMMDD` or `DD.MM.YYYY`; `00` for an unknown month or day. */
export function normalizeBirthDate(value: string): string {
  const text = value.trim();
  const invalid = (): AmtError =>
    new AmtError('AMT_SAML_MALFORMED', 'the birth date attribute is not a date', {
      problems: [{ path: IDENTITY_ATTRIBUTES.birthDate, message: 'not a date' }],
    });
  let year: string | undefined;
  let month: string | undefined;
  let day: string | undefined;
  let match: RegExpExecArray | null;
  if ((match = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(text))) [, year, month, day] = match;
  else if ((match = /^(\d{2})\.(\d{2})\.(\d{4})$/.exec(text))) [, day, month, year] = match;
  else if ((match = /^(\d{4})(?:-(\d{2}))?$/.exec(text))) [, year, month] = match;
  if (year === undefined) throw invalid();
  if (month === undefined || month === '00') return year;
  const m = Number(month);
  if (m < 1 || m > 12) throw invalid();
  if (day === undefined || day === '00') return `${year}-${month}`;
  const d = Number(day);
  const date = new Date(Date.UTC(Number(year), m - 1, d));
  if (date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) throw invalid();
  return `${year}-${month}-${day}`;
}

export interface AssertionFacts {
  readonly issuer: string;
  readonly assertionId: string;
  readonly subjectNameId: string;
  readonly subjectNameIdFormat: string | undefined;
  readonly authnContextClassRef: string | undefined;
  readonly authenticatedAt: number;
  readonly expiresAt: number;
  /** Attribute values by normalised name. */
  readonly attributes: ReadonlyMap<string, readonly string[]>;
}

/** Builds the normalised identity from the facts of a verified assertion. */
export function identityFromAssertion(facts: AssertionFacts): VerifiedIdentity {
  const first = (name: string): string | undefined => {
    const value = facts.attributes.get(name)?.find((v) => v.trim() !== '');
    return value?.trim();
  };
  const street = first(IDENTITY_ATTRIBUTES.street);
  const postalCode = first(IDENTITY_ATTRIBUTES.postalCode);
  const locality = first(IDENTITY_ATTRIBUTES.locality);
  const birthDate = first(IDENTITY_ATTRIBUTES.birthDate);
  const identity: VerifiedIdentity = {
    issuer: facts.issuer,
    subjectNameId: facts.subjectNameId,
    subjectNameIdFormat: facts.subjectNameIdFormat,
    pseudonym: first(IDENTITY_ATTRIBUTES.pseudonym),
    trustLevel: resolveTrustLevel(
      facts.authnContextClassRef,
      facts.attributes.get(IDENTITY_ATTRIBUTES.trustLevel) ?? [],
    ),
    givenName: first(IDENTITY_ATTRIBUTES.givenName),
    familyName: first(IDENTITY_ATTRIBUTES.familyName),
    birthDate: birthDate === undefined ? undefined : normalizeBirthDate(birthDate),
    email: first(IDENTITY_ATTRIBUTES.email),
    address:
      street === undefined && postalCode === undefined && locality === undefined
        ? undefined
        : Object.freeze({ street, postalCode, locality }),
    assertionId: facts.assertionId,
    authenticatedAt: facts.authenticatedAt,
    expiresAt: facts.expiresAt,
  };
  return Object.freeze(identity);
}

const REDACTED = '[redacted]';

function fingerprint(value: string): string {
  return `sha256:${createHash('sha256').update(value).digest('hex').slice(0, 12)}`;
}

/**
 * A copy safe for logs: personal data replaced; the name ID and pseudonym become short hashes so
 * log lines of one citizen can still be correlated without revealing who it is.
 */
export function redactIdentity(identity: VerifiedIdentity): Record<string, unknown> {
  const mask = (value: string | undefined): string | undefined =>
    value === undefined ? undefined : REDACTED;
  return {
    issuer: identity.issuer,
    trustLevel: identity.trustLevel,
    assertionId: identity.assertionId,
    authenticatedAt: identity.authenticatedAt,
    expiresAt: identity.expiresAt,
    subjectNameId: fingerprint(identity.subjectNameId),
    pseudonym: identity.pseudonym === undefined ? undefined : fingerprint(identity.pseudonym),
    givenName: mask(identity.givenName),
    familyName: mask(identity.familyName),
    birthDate: mask(identity.birthDate),
    email: mask(identity.email),
    address: identity.address === undefined ? undefined : REDACTED,
  };
}
