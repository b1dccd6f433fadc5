/**
 * Text from outside — a receiver's answer, a remote status, an error message that quotes a
 * response — made into text every store keeps as it is. PostgreSQL refuses U+0000 in a text
 * value (and as `\u0000` in JSON it casts to jsonb), so an outcome carrying one would fail its
 * commit again on every try while the receiver is asked again and again; and a lone surrogate
 * has no UTF-8 form, which each driver replaces in its own way. Both stores put U+FFFD (the
 * replacement character) in place of either, so what is read back is the same on both.
 *
 * What an application brings is checked at intake instead (see `uncarriableText`): it is
 * refused there, not altered.
 */
import { LONE_SURROGATE } from '../utf8.js';

const UNSTORABLE = /[\u0000\uD800-\uDFFF]/;
const NUL_OR_LONE_SURROGATE = new RegExp(`\\u0000|${LONE_SURROGATE.source}`, 'g');

export function storableText(text: string): string {
  // Paired surrogates (emoji and the like) stay; the test lets most text through without a copy.
  return UNSTORABLE.test(text) ? text.replace(NUL_OR_LONE_SURROGATE, '\uFFFD') : text;
}

/**
 * A JSON-like value (outcomes, a status report, a job's outcome) with every string and member
 * name storable; the value itself when nothing needed it, which is nearly always.
 */
export function storableValue<T>(value: T): T {
  return needsCleaning(value) ? (clean(value) as T) : value;
}

function needsCleaning(value: unknown): boolean {
  if (typeof value === 'string') return UNSTORABLE.test(value);
  if (Array.isArray(value)) return value.some(needsCleaning);
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value))
      if (UNSTORABLE.test(key) || needsCleaning(item)) return true;
  }
  return false;
}

function clean(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (Array.isArray(value)) return value.map(clean);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [storableText(key), clean(item)]));
  }
  return value;
}
