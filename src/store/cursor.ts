/**
 * Keyset cursors for newest-first listings ordered by (createdAt, id). A cursor names the last
 * row of a page; the next page starts strictly after it, so rows arriving meanwhile never shift
 * a page (no duplicates, no gaps). Opaque to clients: base64url of a small JSON array.
 */
import { AmtError } from '../errors.js';

export interface ListingPosition {
  readonly createdAt: number;
  readonly id: string;
}

export function encodeCursor(position: ListingPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id]), 'utf8').toString('base64url');
}

/** Throws `AMT_VALIDATION_FAILED` (path `cursor`) for anything that is not one of our cursors. */
export function decodeCursor(cursor: string): ListingPosition {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  if (
    Array.isArray(decoded) &&
    decoded.length === 2 &&
    Number.isSafeInteger(decoded[0]) &&
    typeof decoded[1] === 'string'
  ) {
    return { createdAt: decoded[0] as number, id: decoded[1] };
  }
  throw new AmtError('AMT_VALIDATION_FAILED', 'The cursor is not one from a previous page', {
    problems: [{ path: 'cursor', message: 'not a cursor issued by this listing' }],
  });
}
