/**
 * What both store implementations share about scheduled-job runs: the row shape, its mapping to
 * `JobRun`, the listing cursor and the record of an abandoned run.
 */
import { AmtError } from '../errors.js';
import type { ErrorInfo, JobRun, JobRunStatus, JobTrigger } from './types.js';

export interface JobRunRow {
  id: string;
  job: string;
  scheduled_at: number;
  attempt: number;
  triggered_by: JobTrigger;
  owner: string;
  status: JobRunStatus;
  started_at: number;
  lease_expires_at: number | null;
  finished_at: number | null;
  items_processed: number | null;
  error: string | null;
  takeover_of: string | null;
}

export const JOB_RUN_FIELDS = `id, job, scheduled_at, attempt, triggered_by, owner, status, started_at,
  lease_expires_at, finished_at, items_processed, error, takeover_of`;

export function toJobRun(row: JobRunRow): JobRun {
  return {
    id: row.id,
    job: row.job,
    scheduledAt: row.scheduled_at,
    attempt: row.attempt,
    trigger: row.triggered_by,
    owner: row.owner,
    status: row.status,
    startedAt: row.started_at,
    leaseExpiresAt: row.lease_expires_at ?? undefined,
    finishedAt: row.finished_at ?? undefined,
    itemsProcessed: row.items_processed ?? undefined,
    error: row.error === null ? undefined : normalizeError(JSON.parse(row.error) as ErrorInfo),
    takeoverOf: row.takeover_of ?? undefined,
  };
}

export function errorText(error: ErrorInfo | undefined): string | null {
  return error === undefined ? null : JSON.stringify(normalizeError(error));
}

function normalizeError(e: ErrorInfo): ErrorInfo {
  return e.details === undefined
    ? { code: e.code, message: e.message }
    : { code: e.code, message: e.message, details: e.details };
}

/** Why a run became `abandoned`: no personal data, just who held it and who took over. */
export function abandonedError(previous: JobRunRow, newOwner: string): string {
  return JSON.stringify({
    code: 'AMT_JOB_LEASE_EXPIRED',
    message: `the lease of ${previous.owner} expired before the run finished; ${newOwner} took the occurrence over`,
  });
}

/** Position in a job's run listing: (scheduledAt, attempt) of the last run shown. */
export interface JobRunPosition {
  readonly scheduledAt: number;
  readonly attempt: number;
}

export function encodeJobRunCursor(position: JobRunPosition): string {
  return Buffer.from(JSON.stringify([position.scheduledAt, position.attempt]), 'utf8').toString('base64url');
}

/** Throws `AMT_VALIDATION_FAILED` (path `cursor`) for anything that is not one of our cursors. */
export function decodeJobRunCursor(cursor: string): JobRunPosition {
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
    Number.isSafeInteger(decoded[1])
  ) {
    return { scheduledAt: decoded[0] as number, attempt: decoded[1] as number };
  }
  throw new AmtError('AMT_VALIDATION_FAILED', 'The cursor is not one from a previous page', {
    problems: [{ path: 'cursor', message: 'not a cursor issued by this listing' }],
  });
}

/** A page from rows fetched with one extra row beyond `limit`. */
export function jobRunPage(rows: readonly JobRunRow[], limit: number) {
  const size = Math.max(0, Math.floor(limit));
  const shown = rows.slice(0, size);
  const last = shown.at(-1);
  return {
    items: shown.map(toJobRun),
    nextCursor:
      rows.length > size && last
        ? encodeJobRunCursor({ scheduledAt: last.scheduled_at, attempt: last.attempt })
        : undefined,
  };
}
