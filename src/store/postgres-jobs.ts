/**
 * Scheduled-job runs and retention for the PostgreSQL store. Claims of one job take a
 * transaction-scoped advisory lock before they read: claims of the same job are serialised
 * across all instances, so a claim sees every claim committed before it (the overlap policy
 * relies on that) and exactly one claimer wins an occurrence. The unique key on
 * (job, scheduled_at, attempt) backs this up.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { QueryResultRow } from 'pg';
import {
  JOB_RUN_FIELDS,
  abandonedError,
  decodeJobRunCursor,
  errorText,
  jobRunPage,
  toJobRun,
  type JobRunRow,
} from './job-runs.js';
import { checkLookup } from './records.js';
import {
  PURGED_PAYLOAD,
  type DeadLetterCount,
  type JobClaim,
  type JobRun,
  type JobRunOutcome,
  type JobTrigger,
  type Page,
  type PurgeFilter,
  type PurgeResult,
} from './types.js';

/** Runs one statement, on the pool or inside the caller's transaction. */
export type Query = <R extends QueryResultRow = QueryResultRow>(
  sql: string,
  params: readonly unknown[],
) => Promise<pg.QueryResult<R>>;

/** Run inside a transaction: the advisory lock is held until it ends. */
export async function claimJobOccurrence(
  query: Query,
  job: string,
  scheduledAt: number,
  owner: string,
  leaseMs: number,
  now: number,
  trigger: JobTrigger,
): Promise<JobClaim | undefined> {
  await query(
    `SELECT pg_advisory_xact_lock(hashtextextended('amtsbote:job:' || current_schema() || ':' || $1, 0))`,
    [job],
  );
  const { rows: latestRows } = await query<JobRunRow>(
    `SELECT ${JOB_RUN_FIELDS} FROM job_runs WHERE job = $1 AND scheduled_at = $2 ORDER BY attempt DESC LIMIT 1`,
    [job, scheduledAt],
  );
  const latest = latestRows[0];
  if (
    latest &&
    !(latest.status === 'running' && latest.lease_expires_at !== null && latest.lease_expires_at <= now)
  )
    return undefined;
  if (latest) {
    await query(
      `UPDATE job_runs SET status = 'abandoned', finished_at = $2, lease_expires_at = NULL, error = $3 WHERE id = $1`,
      [latest.id, now, abandonedError(latest, owner)],
    );
  }
  const { rows: running } = await query<JobRunRow>(
    `SELECT ${JOB_RUN_FIELDS} FROM job_runs WHERE job = $1 AND status = 'running' AND lease_expires_at > $2
     ORDER BY scheduled_at, attempt`,
    [job, now],
  );
  const { rows } = await query<JobRunRow>(
    `INSERT INTO job_runs (id, job, scheduled_at, attempt, triggered_by, owner, status, started_at,
       lease_expires_at, takeover_of)
     VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $8, $9)
     RETURNING ${JOB_RUN_FIELDS}`,
    [
      randomUUID(),
      job,
      scheduledAt,
      (latest?.attempt ?? 0) + 1,
      trigger,
      owner,
      now,
      now + leaseMs,
      latest?.id ?? null,
    ],
  );
  return { run: toJobRun(rows[0]!), running: running.map(toJobRun) };
}

export async function heartbeatJobRun(
  query: Query,
  runId: string,
  owner: string,
  expiresAt: number,
): Promise<boolean> {
  const { rowCount } = await query(
    `UPDATE job_runs SET lease_expires_at = $3 WHERE id = $1 AND owner = $2 AND status = 'running'`,
    [runId, owner, expiresAt],
  );
  return rowCount === 1;
}

export async function finishJobRun(
  query: Query,
  runId: string,
  owner: string,
  outcome: JobRunOutcome,
  now: number,
): Promise<boolean> {
  const { rowCount } = await query(
    `UPDATE job_runs SET status = $3, finished_at = $4, lease_expires_at = NULL, items_processed = $5, error = $6
     WHERE id = $1 AND owner = $2 AND status = 'running'`,
    [runId, owner, outcome.status, now, outcome.itemsProcessed, errorText(outcome.error)],
  );
  return rowCount === 1;
}

export async function jobRuns(
  query: Query,
  job: string,
  limit: number,
  cursor?: string,
): Promise<Page<JobRun>> {
  const size = Math.max(0, Math.floor(limit));
  if (size === 0) return { items: [], nextCursor: undefined };
  const after = cursor === undefined ? undefined : decodeJobRunCursor(cursor);
  const { rows } = await query<JobRunRow>(
    after === undefined
      ? `SELECT ${JOB_RUN_FIELDS} FROM job_runs WHERE job = $1 ORDER BY scheduled_at DESC, attempt DESC LIMIT $2`
      : `SELECT ${JOB_RUN_FIELDS} FROM job_runs WHERE job = $1 AND (scheduled_at, attempt) < ($3::bigint, $4::int)
         ORDER BY scheduled_at DESC, attempt DESC LIMIT $2`,
    after === undefined ? [job, size + 1] : [job, size + 1, after.scheduledAt, after.attempt],
  );
  return jobRunPage(rows, size);
}

export async function runningJobRuns(query: Query, job: string): Promise<JobRun[]> {
  const { rows } = await query<JobRunRow>(
    `SELECT ${JOB_RUN_FIELDS} FROM job_runs WHERE job = $1 AND status = 'running' ORDER BY scheduled_at, attempt`,
    [job],
  );
  return rows.map(toJobRun);
}

export async function lastJobOccurrence(query: Query, job: string): Promise<number | undefined> {
  const { rows } = await query<{ at: number | null }>(
    'SELECT max(scheduled_at) AS at FROM job_runs WHERE job = $1',
    [job],
  );
  return rows[0]?.at ?? undefined;
}

/**
 * One statement: choose, purge, drop attachment rows, write the history event. The
 * still-referenced check reads the snapshot from before the delete, so it leaves out the rows
 * of the messages purged here.
 */
const PURGE_SQL = `WITH chosen AS (
    SELECT id FROM messages
    WHERE status IN ('delivered', 'dead') AND payload <> '${PURGED_PAYLOAD}'
      AND updated_at < $1::bigint AND ($2::text[] IS NULL OR route_id = ANY($2::text[]))
    ORDER BY updated_at, id LIMIT $3::int FOR UPDATE SKIP LOCKED
  ), purged AS (
    UPDATE messages m SET payload = '${PURGED_PAYLOAD}', history_seq = m.history_seq + 1
    FROM chosen c WHERE m.id = c.id
    RETURNING m.id, m.status, m.history_seq
  ), removed AS (
    DELETE FROM message_attachments a USING purged p WHERE a.message_id = p.id
    RETURNING a.message_id, a.sha256
  ), purge_event AS (
    INSERT INTO message_history (message_id, seq, at, status, event, detail)
    SELECT p.id, p.history_seq, $4::bigint, p.status, 'purged',
      json_build_object('attachments', (SELECT count(*) FROM removed r WHERE r.message_id = p.id))::text
    FROM purged p
  )
  SELECT (SELECT count(*) FROM purged)::int AS purged,
    ARRAY(SELECT DISTINCT r.sha256 FROM removed r
      WHERE NOT EXISTS (SELECT 1 FROM message_attachments a
        WHERE a.sha256 = r.sha256 AND a.message_id NOT IN (SELECT id FROM purged))
      ORDER BY 1) AS unreferenced`;

export async function purgePayloads(query: Query, filter: PurgeFilter, now: number): Promise<PurgeResult> {
  const limit = Math.max(0, Math.floor(filter.limit));
  if (limit === 0 || (filter.routeIds !== undefined && filter.routeIds.length === 0))
    return { purged: 0, unreferencedAttachments: [] };
  const { rows } = await query<{ purged: number; unreferenced: string[] }>(PURGE_SQL, [
    filter.before,
    filter.routeIds === undefined ? null : [...filter.routeIds],
    limit,
    now,
  ]);
  return { purged: rows[0]?.purged ?? 0, unreferencedAttachments: [...(rows[0]?.unreferenced ?? [])].sort() };
}

export async function referencedAttachments(query: Query, sha256s: readonly string[]): Promise<Set<string>> {
  checkLookup(sha256s);
  if (sha256s.length === 0) return new Set();
  const { rows } = await query<{ sha256: string }>(
    'SELECT DISTINCT sha256 FROM message_attachments WHERE sha256 = ANY($1::text[])',
    [[...sha256s]],
  );
  return new Set(rows.map((r) => r.sha256));
}

export async function deadLetterCounts(query: Query, since: number): Promise<DeadLetterCount[]> {
  const { rows } = await query<{ route_id: string; dead: number; dead_since: number }>(
    `SELECT route_id, count(*)::int AS dead, (count(*) FILTER (WHERE updated_at >= $1))::int AS dead_since
     FROM messages WHERE status = 'dead' GROUP BY route_id ORDER BY route_id COLLATE "C"`,
    [since],
  );
  return rows.map((r) => ({ routeId: r.route_id, dead: r.dead, deadSince: r.dead_since }));
}
