/**
 * How the PostgreSQL store reads the driver's errors: which failures may be retried as they are,
 * and which mean the database cannot be reached (`AMT_STORE_UNAVAILABLE`).
 */
import { AmtError } from '../errors.js';

/** Deadlocks and serialisation failures: the database rolled back, the same work may succeed. */
export function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EPIPE',
  'EAI_AGAIN',
]);

/** Connection-level failures become `AMT_STORE_UNAVAILABLE` (HTTP 503, retryable); others pass through. */
export function toStoreError(err: unknown): unknown {
  if (err instanceof AmtError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const unavailable =
    (typeof code === 'string' &&
      (CONNECTION_ERROR_CODES.has(code) ||
        code.startsWith('08') ||
        code === '57P01' ||
        code === '57P02' ||
        code === '57P03' ||
        code === '53300' ||
        // The database named in the URL does not exist, or the login is refused.
        code === '3D000' ||
        code === '28000' ||
        code === '28P01')) ||
    /Connection terminated|timeout exceeded when trying to connect|Cannot use a pool after calling end/i.test(
      message,
    );
  return unavailable
    ? new AmtError('AMT_STORE_UNAVAILABLE', `The message store is not available: ${message}`, { cause: err })
    : err;
}
