/**
 * Redaction of personal data and secrets: a list of key names (like pino's redact paths, but
 * matched at any depth) plus value patterns for credentials that travel inside strings.
 */

/** Keys whose values are personal data (DSGVO) or secrets; matched case-insensitively at any depth. */
export const REDACTED_KEYS: readonly string[] = [
  // secrets
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'password',
  'passphrase',
  'secret',
  'clientsecret',
  'token',
  'accesstoken',
  'access_token',
  'refreshtoken',
  'apikey',
  'api-key',
  'x-api-key',
  'privatekey',
  'key',
  'callback-authentication',
  'samlresponse',
  'assertion',
  // personal data of applicants and citizens
  'applicant',
  'identity',
  'verifiedidentity',
  'subjectnameid',
  'data',
  'payload',
  'givenname',
  'familyname',
  'firstname',
  'lastname',
  'name',
  'birthdate',
  'dateofbirth',
  'geburtsdatum',
  'vorname',
  'nachname',
  'email',
  'mail',
  'phone',
  'telefon',
  'address',
  'anschrift',
  'street',
  'strasse',
  'iban',
  'pseudonym',
  'bpk2',
  'kennzeichen',
];

const KEY_SET = new Set(REDACTED_KEYS.map((k) => k.toLowerCase()));
const MASK = '[redacted]';

/** Credentials that appear inside free text (error messages, URLs), with what replaces them. */
const VALUE_PATTERNS: readonly (readonly [RegExp, string])[] = [
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${MASK}`], // Authorization header values
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, MASK], // JWT / JWS compact
  [/(\/\/[^/\s:@]+:)[^@\s/]+@/g, `$1${MASK}@`], // user:password@ in URLs
  [/([?&](?:access_token|token|api_key|apikey|client_secret|password)=)[^&\s]+/gi, `$1${MASK}`],
];

export function redactString(value: string): string {
  let out = value;
  for (const [pattern, replacement] of VALUE_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Returns a deep copy with redacted keys masked and credential patterns removed from strings. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 12) return '[truncated]';
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return {
      name: value.name,
      message: redactErrorMessage(value.message),
      code: (value as { code?: unknown }).code,
    };
  }
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = KEY_SET.has(k.toLowerCase()) && v !== undefined && v !== null ? MASK : redact(v, depth + 1);
  }
  // An error passed as plain data ({code, message}, as the pipeline logs outcomes) is an error too.
  if (typeof out['message'] === 'string' && typeof out['code'] === 'string' && /^AMT_/.test(out['code'])) {
    out['message'] = redactErrorMessage(out['message']);
  }
  return out;
}

/**
 * Error messages quote what was wrong: a mapping that cannot write a birth date says which
 * (`"31.02.1984" is not a calendar date`), libxml2 names the value a pattern refused, a receiver
 * echoes a field. In logs every quoted part is masked; the whole message stays in the message's
 * history and dead letter, where the admin API shows it to those allowed to see it.
 */
export function redactErrorMessage(message: string): string {
  return redactString(message)
    .replace(/"(?:[^"\\\n]|\\.)*"/g, `"${MASK}"`)
    .replace(/'[^'\n]*'/g, `'${MASK}'`);
}
