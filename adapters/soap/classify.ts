/**
 * Turns whatever a SOAP call failed with into `retryLater` or `rejectPermanently`:
 * SOAP faults by the configured patterns; HTTP errors without a fault by status; network errors,
 * timeouts and answers that are no SOAP envelope as retryable (see README for why); TLS handshake
 * failures as configured.
 */
import { parseRetryAfter, rejectPermanently, retryLater } from '../../src/adapter-contract.js';
import type { AmtError } from '../../src/errors.js';
import { classifyFault, describeFault, findFault, readEnvelope, type SoapFault } from './faults.js';

export interface ClassificationRules {
  readonly faults: {
    readonly retry: readonly string[];
    readonly permanent: readonly string[];
    readonly default: 'retry' | 'permanent';
  };
  readonly tlsFailure: 'retry' | 'permanent';
  readonly timeoutMs: number;
}

/** The parts of an axios / soap package error this adapter reads. */
interface TransportError {
  readonly code?: string;
  readonly message?: string;
  readonly response?: {
    readonly status?: number;
    readonly headers?: Record<string, unknown>;
    readonly data?: unknown;
  };
  readonly body?: unknown;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNABORTED',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

const TLS_CODE =
  /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_OSSL_)/;

function toText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof ArrayBuffer) return Buffer.from(value).toString('utf8');
  return undefined;
}

/** A short, log-safe picture of an answer that is not SOAP: length and the first characters. */
function sketch(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length === 0
    ? 'an empty body'
    : `${text.length} bytes starting with "${oneLine.slice(0, 40)}"`;
}

function faultError(fault: SoapFault, rules: ClassificationRules, httpStatus: number | undefined): AmtError {
  const decision = classifyFault(fault, rules.faults);
  const because =
    decision.pattern === undefined
      ? `no fault pattern matched (default: ${rules.faults.default})`
      : `matched "${decision.pattern}"`;
  const detail = `${describeFault(fault)}${httpStatus ? ` (HTTP ${httpStatus})` : ''}; ${because}`;
  return decision.outcome === 'retry' ? retryLater(detail) : rejectPermanently(detail);
}

/** Classifies the raw answer of a call that the soap package did not accept, or that carried a fault. */
export function classifyAnswer(
  rawBody: string | undefined,
  httpStatus: number | undefined,
  headers: Record<string, unknown> | undefined,
  rules: ClassificationRules,
): AmtError {
  if (rawBody !== undefined && rawBody.trim() !== '') {
    try {
      const fault = findFault(readEnvelope(rawBody).body);
      if (fault) return faultError(fault, rules, httpStatus);
    } catch {
      // not a SOAP envelope: decided by the HTTP status below
    }
  }
  const retryAfterHeader = headers?.['retry-after'];
  const retryAfterSeconds = parseRetryAfter(
    typeof retryAfterHeader === 'string' ? retryAfterHeader : undefined,
  );
  const what = rawBody === undefined ? 'no body' : sketch(rawBody);
  if (httpStatus !== undefined && (httpStatus >= 500 || httpStatus === 408 || httpStatus === 429)) {
    return retryLater(
      `HTTP ${httpStatus} without a SOAP fault (${what})`,
      retryAfterSeconds === undefined ? {} : { retryAfterSeconds },
    );
  }
  if (httpStatus !== undefined && httpStatus >= 400) {
    return rejectPermanently(
      `HTTP ${httpStatus} without a SOAP fault (${what}); check the endpoint and credentials`,
    );
  }
  // The receiver may or may not have taken the message; with the delivery id in the header it can
  // drop a repeat, while a permanent failure would strand a message that a proxy hiccup garbled.
  return retryLater(`the answer is not a SOAP envelope${httpStatus ? ` (HTTP ${httpStatus})` : ''}: ${what}`);
}

/** Classifies an error thrown by the soap package's call. */
export function classifyCallError(err: unknown, rules: ClassificationRules, signal: AbortSignal): AmtError {
  const error = (err ?? {}) as TransportError;
  if (error.response && typeof error.response.status === 'number') {
    const raw = toText(error.body) ?? toText(error.response.data);
    return classifyAnswer(raw, error.response.status, error.response.headers, rules);
  }
  const code = typeof error.code === 'string' ? error.code : undefined;
  if (signal.aborted || code === 'ERR_CANCELED') {
    return retryLater('the delivery was aborted before the receiver answered', { cause: err });
  }
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return retryLater(`the receiver did not answer within ${rules.timeoutMs} ms`, { cause: err });
  }
  if (code !== undefined && TLS_CODE.test(code)) {
    const detail = `TLS handshake failed (${code}): ${error.message ?? ''}`.trim();
    return rules.tlsFailure === 'retry'
      ? retryLater(detail, { cause: err })
      : rejectPermanently(detail, { cause: err });
  }
  if (code !== undefined && NETWORK_CODES.has(code)) {
    return retryLater(`cannot reach the receiver (${code}): ${error.message ?? ''}`.trim(), { cause: err });
  }
  const message = err instanceof Error ? err.message : String(error.message ?? err);
  return retryLater(`the SOAP call failed: ${message}`, { cause: err });
}
