/**
 * Identifiers of German e-government. They are strings: an NRW ARS starts with `05`, and a
 * leading zero is data.
 */

/** Amtlicher Regionalschlüssel: 12 digits, or a routing prefix of 2, 3, 5 or 9 digits. */
export type Ars = string;
/** Leistungsschlüssel (LeiKa / FIM service key): 14 digits starting with 99. */
export type Leistungsschluessel = string;

export const ARS_PATTERN = '^[0-9]{12}$';
export const ARS_PREFIX_PATTERN = '^([0-9]{2}|[0-9]{3}|[0-9]{5}|[0-9]{9}|[0-9]{12})$';
export const LEISTUNGSSCHLUESSEL_PATTERN = '^99[0-9]{12}$';

const ARS_RE = new RegExp(ARS_PATTERN);
const ARS_PREFIX_RE = new RegExp(ARS_PREFIX_PATTERN);
const LEIKA_RE = new RegExp(LEISTUNGSSCHLUESSEL_PATTERN);
const LEIKA_URN_PREFIX = 'urn:de:fim:leika:leistung:';

export function isArs(value: unknown): value is Ars {
  return typeof value === 'string' && ARS_RE.test(value);
}

export function isArsPrefix(value: unknown): value is Ars {
  return typeof value === 'string' && ARS_PREFIX_RE.test(value);
}

export function isLeistungsschluessel(value: unknown): value is Leistungsschluessel {
  return typeof value === 'string' && LEIKA_RE.test(value);
}

/** Accepts the bare key or its URN form and returns the bare key, or undefined. */
export function normalizeLeistungsschluessel(value: unknown): Leistungsschluessel | undefined {
  if (typeof value !== 'string') return undefined;
  const bare = value.startsWith(LEIKA_URN_PREFIX) ? value.slice(LEIKA_URN_PREFIX.length) : value;
  return LEIKA_RE.test(bare) ? bare : undefined;
}

export function leistungsschluesselUrn(key: Leistungsschluessel): string {
  return LEIKA_URN_PREFIX + key;
}
