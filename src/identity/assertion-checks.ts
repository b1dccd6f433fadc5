/**
 * The checks on what a verified assertion says: its time window, audience, subject confirmation
 * and authentication statement, and its attributes. They run only on an assertion taken from
 * signed bytes (see saml.ts).
 */
import { AmtError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { normalizeAttributeName } from './identity.js';
import { NS, childNamed, childrenNamed, textOf } from './xml-tree.js';
import type { XmlElement } from './xml-tree.js';

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

/** Who the assertion must be addressed to, when the caller knows it. */
export interface ExpectedAddressee {
  readonly recipient?: string | undefined;
  readonly expectedInResponseTo?: string | undefined;
}

export function samlError(code: ErrorCode, detail: string): AmtError {
  return new AmtError(code, detail);
}

const fail = samlError;

/** Returns the Conditions' NotOnOrAfter, if any. */
export function checkConditions(
  assertion: XmlElement,
  audience: string,
  now: number,
  skew: number,
): number | undefined {
  const conditions = childNamed(assertion, NS.saml, 'Conditions');
  if (!conditions)
    throw fail('AMT_SAML_AUDIENCE_MISMATCH', 'the assertion has no Conditions with an AudienceRestriction');
  checkWindow(conditions, now, skew, 'the assertion');
  const restrictions = childrenNamed(conditions, NS.saml, 'AudienceRestriction');
  if (restrictions.length === 0)
    throw fail('AMT_SAML_AUDIENCE_MISMATCH', 'the assertion has no AudienceRestriction');
  for (const restriction of restrictions) {
    const audiences = childrenNamed(restriction, NS.saml, 'Audience').map((a) => textOf(a));
    if (!audiences.includes(audience)) {
      throw fail(
        'AMT_SAML_AUDIENCE_MISMATCH',
        `the assertion is meant for ${audiences.join(', ') || '(no audience)'}`,
      );
    }
  }
  return time(conditions, 'NotOnOrAfter');
}

export function checkWindow(element: XmlElement, now: number, skew: number, what: string): void {
  const notBefore = time(element, 'NotBefore');
  if (notBefore !== undefined && now + skew < notBefore) {
    throw fail('AMT_SAML_NOT_YET_VALID', `${what} is valid only from ${element.attrs.get('NotBefore')}`);
  }
  const notOnOrAfter = time(element, 'NotOnOrAfter');
  if (notOnOrAfter !== undefined && now - skew >= notOnOrAfter) {
    throw fail('AMT_SAML_EXPIRED', `${what} expired at ${element.attrs.get('NotOnOrAfter')}`);
  }
}

const SAML_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** SAML times are xs:dateTime in UTC; one without a zone would silently be read as local time. */
export function time(element: XmlElement, attribute: string): number | undefined {
  const text = element.attrs.get(attribute);
  if (text === undefined) return undefined;
  const match = SAML_TIME.exec(text.trim());
  const value = match ? Date.parse(`${match[1]}${(match[2] ?? '').slice(0, 4)}${match[3]}`) : Number.NaN;
  if (Number.isNaN(value))
    throw fail('AMT_SAML_MALFORMED', `${element.local}@${attribute} is not a UTC date-time`);
  return value;
}

export interface CheckedSubject {
  readonly nameId: string;
  readonly nameIdFormat: string | undefined;
  readonly notOnOrAfter: number;
}

export function checkSubject(
  assertion: XmlElement,
  expected: ExpectedAddressee,
  now: number,
  skew: number,
): CheckedSubject {
  const subject = childNamed(assertion, NS.saml, 'Subject');
  if (!subject) throw fail('AMT_SAML_MALFORMED', 'the assertion has no Subject');
  if (childNamed(subject, NS.saml, 'EncryptedID'))
    throw fail('AMT_SAML_MALFORMED', 'an encrypted NameID is not supported');
  const nameIdElement = childNamed(subject, NS.saml, 'NameID');
  const nameId = textOf(nameIdElement);
  if (!nameIdElement || !nameId) throw fail('AMT_SAML_MALFORMED', 'the Subject has no NameID');

  const confirmations = childrenNamed(subject, NS.saml, 'SubjectConfirmation').filter(
    (c) => c.attrs.get('Method') === BEARER,
  );
  if (confirmations.length === 0)
    throw fail('AMT_SAML_MALFORMED', 'the Subject has no bearer SubjectConfirmation');
  let firstProblem: unknown;
  for (const confirmation of confirmations) {
    try {
      return {
        nameId,
        nameIdFormat: nameIdElement.attrs.get('Format'),
        notOnOrAfter: checkConfirmation(confirmation, expected, now, skew),
      };
    } catch (err) {
      firstProblem ??= err;
    }
  }
  throw firstProblem;
}

/** Checks one bearer SubjectConfirmation; returns its NotOnOrAfter. */
function checkConfirmation(
  confirmation: XmlElement,
  expected: ExpectedAddressee,
  now: number,
  skew: number,
): number {
  const data = childNamed(confirmation, NS.saml, 'SubjectConfirmationData');
  const notOnOrAfter = data ? time(data, 'NotOnOrAfter') : undefined;
  if (!data || notOnOrAfter === undefined) {
    throw fail('AMT_SAML_MALFORMED', 'the bearer SubjectConfirmationData has no NotOnOrAfter');
  }
  checkWindow(data, now, skew, 'the subject confirmation');
  if (expected.recipient !== undefined && data.attrs.get('Recipient') !== expected.recipient) {
    throw fail(
      'AMT_SAML_RECIPIENT_MISMATCH',
      `the assertion was issued for ${data.attrs.get('Recipient') ?? '(no recipient)'}`,
    );
  }
  if (
    expected.expectedInResponseTo !== undefined &&
    data.attrs.get('InResponseTo') !== expected.expectedInResponseTo
  ) {
    throw fail('AMT_SAML_IN_RESPONSE_TO_MISMATCH', 'the assertion answers another authentication request');
  }
  return notOnOrAfter;
}

export function checkAuthnStatement(
  assertion: XmlElement,
  now: number,
  skew: number,
): { instant: number; classRef: string | undefined } {
  const statement = childNamed(assertion, NS.saml, 'AuthnStatement');
  if (!statement) throw fail('AMT_SAML_MALFORMED', 'the assertion has no AuthnStatement');
  const instant = time(statement, 'AuthnInstant');
  if (instant === undefined) throw fail('AMT_SAML_MALFORMED', 'the AuthnStatement has no AuthnInstant');
  const sessionEnd = time(statement, 'SessionNotOnOrAfter');
  if (sessionEnd !== undefined && now - skew >= sessionEnd)
    throw fail('AMT_SAML_EXPIRED', 'the login session has ended');
  const context = childNamed(statement, NS.saml, 'AuthnContext');
  const classRef = context ? textOf(childNamed(context, NS.saml, 'AuthnContextClassRef')) : undefined;
  return { instant, classRef };
}

export function readAttributes(assertion: XmlElement): Map<string, string[]> {
  const attributes = new Map<string, string[]>();
  for (const statement of childrenNamed(assertion, NS.saml, 'AttributeStatement')) {
    for (const attribute of childrenNamed(statement, NS.saml, 'Attribute')) {
      const name = attribute.attrs.get('Name');
      if (!name) continue;
      const key = normalizeAttributeName(name);
      const values = childrenNamed(attribute, NS.saml, 'AttributeValue')
        .map((v) => v.text.trim())
        .filter((v) => v !== '');
      attributes.set(key, [...(attributes.get(key) ?? []), ...values]);
    }
  }
  return attributes;
}
