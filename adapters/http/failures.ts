/**
 * Classification of failed HTTP exchanges into `retryLater` / `rejectPermanently`. Error texts
 * name the target by origin and path only and quote at most a short excerpt of a problem+json
 * answer: query strings, request headers and credentials never reach a message or a cause.
 */
import { parseRetryAfter, quotePeerText, rejectPermanently, retryLater } from '../../src/adapter-contract.js';
import { isAmtError, type AmtError } from '../../src/errors.js';

/** `https://host:port/path` without user info, query or fragment. */
export function describeTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** Statuses where the same request may succeed later. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

export interface TransportContext {
  readonly target: string;
  /** The caller's signal aborted (shutdown, delivery deadline). */
  readonly aborted: boolean;
  readonly timedOut: boolean;
  readonly timeoutMs: number;
}

/** Codes of errors raised before any byte left, caused by the configuration itself. */
const CONFIGURATION_CODES = new Set([
  'ERR_INVALID_URL',
  'ERR_INVALID_CHAR',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_UNESCAPED_CHARACTERS',
]);

/**
 * A failure without an HTTP answer. The receiver never judged the content, so apart from a
 * broken configuration everything (refused, reset, DNS, TLS, timeout, abort) is worth a retry.
 */
export function transportFailure(err: unknown, context: TransportContext): AmtError {
  if (isAmtError(err)) return err;
  const code = errorCode(err);
  const cause = safeCause(err, code);
  if (context.aborted) return retryLater(`the delivery to ${context.target} was aborted`, { cause });
  if (context.timedOut) {
    return retryLater(`${context.target} did not answer within ${context.timeoutMs} ms`, { cause });
  }
  if (code !== undefined && CONFIGURATION_CODES.has(code)) {
    return rejectPermanently(`the request to ${context.target} cannot be built (${code})`, { cause });
  }
  return retryLater(`the request to ${context.target} failed: ${code ?? 'network error'}`, { cause });
}

/** The answer of a receiver that did not accept the message, as the matching contract error. */
export function statusFailure(
  target: string,
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  body: Buffer,
  secrets: readonly string[],
): AmtError {
  const excerpt = maskSecrets(problemExcerpt(headers['content-type'], body), secrets);
  const what = `${target} answered ${status}${excerpt ? `: ${excerpt}` : ''}`;
  if (isRetryableStatus(status)) {
    const retryAfterSeconds =
      status === 429 || status === 503 ? parseRetryAfter(headers['retry-after']) : undefined;
    return retryLater(what, retryAfterSeconds === undefined ? {} : { retryAfterSeconds });
  }
  if (status >= 300 && status < 400) {
    return rejectPermanently(`${what} (a redirect: configure the final URL)`);
  }
  return rejectPermanently(what);
}

const EXCERPT_FIELD_LIMIT = 200;

/**
 * `title — "detail"` of an RFC 9457 problem (or any JSON object carrying them), shortened. The
 * title names the problem type; the detail is about this occurrence and may quote the
 * application, so it is quoted (`quotePeerText`) and masked in logs.
 */
export function problemExcerpt(contentType: string | undefined, body: Buffer): string | undefined {
  if (!contentType || !/^application\/([\w.+-]*\+)?json\b/i.test(contentType)) return undefined;
  let problem: unknown;
  try {
    problem = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (problem === null || typeof problem !== 'object') return undefined;
  const { title, detail } = problem as { title?: unknown; detail?: unknown };
  const parts = [
    ...(typeof title === 'string' && title.trim() !== '' ? [shorten(title)] : []),
    ...(typeof detail === 'string' && detail.trim() !== ''
      ? [quotePeerText(detail, EXCERPT_FIELD_LIMIT)]
      : []),
  ];
  return parts.length > 0 ? parts.join(' — ') : undefined;
}

/** Some receivers echo the presented credentials in their error detail. */
function maskSecrets(text: string | undefined, secrets: readonly string[]): string | undefined {
  if (text === undefined) return undefined;
  let masked = text;
  for (const secret of secrets) if (secret.length >= 4) masked = masked.split(secret).join('***');
  return masked;
}

function shorten(text: string): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > EXCERPT_FIELD_LIMIT ? `${flat.slice(0, EXCERPT_FIELD_LIMIT)}…` : flat;
}

function errorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'ERR_CANCELED' && code !== 'ECONNABORTED') return code;
    current = (current as { cause?: unknown }).cause;
  }
  const fallback = (err as { code?: unknown } | null)?.code;
  return typeof fallback === 'string' ? fallback : undefined;
}

/**
 * A plain error with the code and the low-level message only. The original (an AxiosError of
 * the token request) may carry the request config with its headers, which would leak
 * credentials into any log that prints causes.
 */
function safeCause(err: unknown, code: string | undefined): Error {
  const root = (err as { cause?: unknown } | null)?.cause ?? err;
  const message = root instanceof Error ? root.message : String(root);
  const cause = new Error(code ? `${code}: ${message}` : message);
  cause.name = 'TransportError';
  return cause;
}
