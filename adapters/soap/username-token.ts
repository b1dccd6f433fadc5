/**
 * Checks the WS-Security UsernameToken (OASIS Username Token Profile 1.0/1.1) a caller of the
 * status callback presents: PasswordDigest and PasswordText, both with Nonce and Created, so
 * every token can be used once. Secrets are compared in constant time (as SHA-256 digests, which
 * makes the compared values equally long whatever was sent).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { attributeOf, findChildren, textOf, type XmlElement } from '../../src/xml/index.js';

export const WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
export const WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const TOKEN_PROFILE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0';
export const PASSWORD_TEXT = `${TOKEN_PROFILE}#PasswordText`;
export const PASSWORD_DIGEST = `${TOKEN_PROFILE}#PasswordDigest`;

/** A token is accepted while its Created lies at most this far from the gateway's clock. */
export const TOKEN_WINDOW_MS = 5 * 60_000;

export interface ExpectedCredentials {
  readonly username: string;
  readonly password: string;
}

/** Why a token was refused; the WS-Security fault name says it to the caller. */
export type TokenRefusal =
  | { readonly fault: 'InvalidSecurity'; readonly reason: 'missing' | 'malformed' }
  | { readonly fault: 'FailedAuthentication'; readonly reason: 'credentials' }
  | { readonly fault: 'MessageExpired'; readonly reason: 'stale' | 'expired' | 'replayed' };

export type TokenCheck =
  | { readonly ok: true; readonly passwordType: 'PasswordText' | 'PasswordDigest' }
  | ({ readonly ok: false } & TokenRefusal);

function digest(value: string | Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}

function sameSecret(presented: string | Buffer, expected: string | Buffer): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function instant(value: string | undefined): number | undefined {
  if (value === undefined || !ISO_DATE_TIME.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : at;
}

/** The single child, or undefined when there is none or more than one. */
function only(parent: XmlElement, ns: string, local: string): XmlElement | undefined {
  const found = findChildren(parent, ns, local);
  return found.length === 1 ? found[0] : undefined;
}

/**
 * Verifies the UsernameToken in the SOAP header. `rememberOnce(key, expiresAt)` must be shared by
 * all gateway instances (the store's), so a token replayed to another instance is refused too.
 */
export async function verifyUsernameToken(
  header: XmlElement | undefined,
  expected: ExpectedCredentials,
  rememberOnce: (key: string, expiresAt: number) => Promise<boolean>,
  now: number = Date.now(),
): Promise<TokenCheck> {
  const securities = header ? findChildren(header, WSSE, 'Security') : [];
  if (securities.length === 0) return { ok: false, fault: 'InvalidSecurity', reason: 'missing' };
  const security = securities.length === 1 ? securities[0]! : undefined;
  const token = security ? only(security, WSSE, 'UsernameToken') : undefined;
  if (!security || !token) return { ok: false, fault: 'InvalidSecurity', reason: 'malformed' };

  const username = only(token, WSSE, 'Username');
  const password = only(token, WSSE, 'Password');
  const nonceElement = only(token, WSSE, 'Nonce');
  const createdElement = only(token, WSU, 'Created');
  const createdText = createdElement ? textOf(createdElement).trim() : '';
  const nonce = nonceElement ? textOf(nonceElement).trim() : '';
  const type = password ? (attributeOf(password, '', 'Type') ?? PASSWORD_TEXT) : undefined;
  const encoding = nonceElement ? attributeOf(nonceElement, '', 'EncodingType') : undefined;
  if (
    !username ||
    !password ||
    (type !== PASSWORD_TEXT && type !== PASSWORD_DIGEST) ||
    !/^[A-Za-z0-9+/]{8,128}={0,2}$/.test(nonce) ||
    (encoding !== undefined && !encoding.endsWith('#Base64Binary'))
  ) {
    return { ok: false, fault: 'InvalidSecurity', reason: 'malformed' };
  }
  const created = instant(createdText);
  if (created === undefined) return { ok: false, fault: 'InvalidSecurity', reason: 'malformed' };
  if (Math.abs(now - created) > TOKEN_WINDOW_MS)
    return { ok: false, fault: 'MessageExpired', reason: 'stale' };
  const timestamp = only(security, WSU, 'Timestamp');
  const expires = timestamp ? only(timestamp, WSU, 'Expires') : undefined;
  if (expires) {
    const until = instant(textOf(expires).trim());
    if (until === undefined) return { ok: false, fault: 'InvalidSecurity', reason: 'malformed' };
    if (until < now) return { ok: false, fault: 'MessageExpired', reason: 'expired' };
  }

  const presented = textOf(password).trim();
  const userMatches = sameSecret(textOf(username).trim(), expected.username);
  let passwordMatches: boolean;
  if (type === PASSWORD_DIGEST) {
    const computed = createHash('sha1')
      .update(Buffer.from(nonce, 'base64'))
      .update(createdText, 'utf8')
      .update(expected.password, 'utf8')
      .digest('base64');
    passwordMatches = sameSecret(presented, computed);
  } else {
    passwordMatches = sameSecret(presented, expected.password);
  }
  // Both comparisons always run: the answer time does not tell which part was wrong.
  if (!(userMatches && passwordMatches)) {
    return { ok: false, fault: 'FailedAuthentication', reason: 'credentials' };
  }
  // Remembered until the token leaves the window; after that its Created refuses it anyway.
  const firstUse = await rememberOnce(
    `wsse-nonce:${digest(nonce).toString('hex')}`,
    created + TOKEN_WINDOW_MS + 1000,
  );
  if (!firstUse) return { ok: false, fault: 'MessageExpired', reason: 'replayed' };
  return { ok: true, passwordType: type === PASSWORD_DIGEST ? 'PasswordDigest' : 'PasswordText' };
}
