/**
 * Scheduled-job runs and retention for the SQLite store. Every function here runs inside the
 * caller's transaction: writing ones inside BEGIN IMMEDIATE, which serialises all writers of the
 * file — so a claim sees every claim committed before it, and exactly one claimer wins.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
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

/* eslint-disable @typescript-eslint/no-explicit-any -- better-sqlite3 types bind parameters as any[] */
type Stmt = Database.Statement<any[], any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

function prepareStatements(db: Database.Database) {
  const p = (sql: string): Stmt => db.prepare(sql);
  return {
    latestAttempt: p(`SELECT ${JOB_RUN_FIELDS} FROM job_runs WHERE job = ? AND scheduled_at = ?
      ORDER BY attempt DESC LIMIT 1`),
    abandon: p(`UPDATE job_runs SET status = 'abandoned', finished_at = @now, lease_expires_at = NULL,
      error = @error WHERE id = @id`),
    live: p(`SELECT ${JOB_RUN_FIELDS} FROM job_runs
      WHERE job = ? AND status = 'running' AND lease_expires_at > ? ORDER BY scheduled_at, attempt`),
    insert: p(`INSERT INTO job_runs (id, job, scheduled_at, attempt, triggered_by, owner, status, started_at,
        lease_expires_at, takeover_of)
      VALUES (@id, @job, @scheduledAt, @attempt, @trigger, @owner, 'running', @now, @expiresAt, @takeoverOf)
      RETURNING ${JOB_RUN_FIELDS}`),
    heartbeat: p(`UPDATE job_runs SET lease_expires_at = @expiresAt
      WHERE id = @id AND owner = @owner AND status = 'running'`),
    finish: p(`UPDATE job_runs SET status = @status, finished_at = @now, lease_expires_at = NULL,
        items_processed = @items, error = @error
      WHERE id = @id AND owner = @owner AND status = 'running'`),
    runs: p(`SELECT ${JOB_RUN_FIELDS} FROM job_runs WHERE job = ?
      ORDER BY scheduled_at DESC, attempt DESC LIMIT ?`),
    runsAfter: p(`SELECT ${JOB_RUN_FIELDS} FROM job_runs WHERE job = ? AND (scheduled_at, attempt) < (?, ?)
      ORDER BY scheduled_at DESC, attempt DESC LIMIT ?`),
    running: p(`SELECT ${JOB_RUN_FIELDS} FROM job_runs WHERE job = ? AND status = 'running'
      ORDER BY scheduled_at, attempt`),
    lastOccurrence: p(`SELECT MAX(scheduled_at) AS at FROM job_runs WHERE job = ?`),
    // The first two conditions repeat the partial index's WHERE clause verbatim.
    purgeCandidates: p(`SELECT id, status FROM messages INDEXED BY messages_purgeable
      WHERE status IN ('delivered', 'dead') AND payload <> '${PURGED_PAYLOAD}'
        AND updated_at < @before
        AND (@routes IS NULL OR route_id IN (SELECT value FROM json_each(@routes)))
      ORDER BY updated_at, id LIMIT @limit`),
    attachmentShas: p(`SELECT sha256 FROM message_attachments WHERE message_id = ?`),
    dropAttachments: p(`DELETE FROM message_attachments WHERE message_id = ?`),
    purgePayload: p(`UPDATE messages SET payload = '${PURGED_PAYLOAD}' WHERE id = ?`),
    dropPayload: p(`DELETE FROM message_payloads WHERE message_id = ?`),
    history: p(`INSERT INTO message_history (message_id, seq, at, status, event, detail)
      VALUES (@id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM message_history WHERE message_id = @id),
        @at, @status, 'purged', @detail)`),
    referenced: p(`SELECT 1 FROM message_attachments WHERE sha256 = ? LIMIT 1`),
    referencedAmong: p(
      `SELECT DISTINCT sha256 FROM message_attachments WHERE sha256 IN (SELECT value FROM json_each(?))`,
    ),
    deadCounts:
      p(`SELECT route_id, COUNT(*) AS dead, SUM(CASE WHEN updated_at >= ? THEN 1 ELSE 0 END) AS dead_since
      FROM messages WHERE status = 'dead' GROUP BY route_id ORDER BY route_id`),
  };
}

type Statements = ReturnType<typeof prepareStatements>;
const prepared = new WeakMap<Database.Database, Statements>();

function sql(db: Database.Database): Statements {
  let statements = prepared.get(db);
  if (!statements) {
    statements = prepareStatements(db);
    prepared.set(db, statements);
  }
  return statements;
}

export function claimJobOccurrence(
  db: Database.Database,
  job: string,
  scheduledAt: number,
  owner: string,
  leaseMs: number,
  now: number,
  trigger: JobTrigger,
): JobClaim | undefined {
  const s = sql(db);
  const latest = s.latestAttempt.get(job, scheduledAt) as JobRunRow | undefined;
  if (
    latest &&
    !(latest.status === 'running' && latest.lease_expires_at !== null && latest.lease_expires_at <= now)
  )
    return undefined;
  if (latest) s.abandon.run({ id: latest.id, now, error: abandonedError(latest, owner) });
  const running = (s.live.all(job, now) as JobRunRow[]).map(toJobRun);
  const row = s.insert.get({
    id: randomUUID(),
    job,
    scheduledAt,
    attempt: (latest?.attempt ?? 0) + 1,
    trigger,
    owner,
    now,
    expiresAt: now + leaseMs,
    takeoverOf: latest?.id ?? null,
  }) as JobRunRow;
  return { run: toJobRun(row), running };
}

export function heartbeatJobRun(
  db: Database.Database,
  runId: string,
  owner: string,
  expiresAt: number,
): boolean {
  return sql(db).heartbeat.run({ id: runId, owner, expiresAt }).changes === 1;
}

export function finishJobRun(
  db: Database.Database,
  runId: string,
  owner: string,
  outcome: JobRunOutcome,
  now: number,
): boolean {
  const result = sql(db).finish.run({
    id: runId,
    owner,
    now,
    status: outcome.status,
    items: outcome.itemsProcessed,
    error: errorText(outcome.error),
  });
  return result.changes === 1;
}

export function jobRuns(db: Database.Database, job: string, limit: number, cursor?: string): Page<JobRun> {
  const size = Math.max(0, Math.floor(limit));
  if (size === 0) return { items: [], nextCursor: undefined };
  const s = sql(db);
  let rows: JobRunRow[];
  if (cursor === undefined) {
    rows = s.runs.all(job, size + 1) as JobRunRow[];
  } else {
    const after = decodeJobRunCursor(cursor);
    rows = s.runsAfter.all(job, after.scheduledAt, after.attempt, size + 1) as JobRunRow[];
  }
  return jobRunPage(rows, size);
}

export function runningJobRuns(db: Database.Database, job: string): JobRun[] {
  return (sql(db).running.all(job) as JobRunRow[]).map(toJobRun);
}

export function lastJobOccurrence(db: Database.Database, job: string): number | undefined {
  const row = sql(db).lastOccurrence.get(job) as { at: number | null };
  return row.at ?? undefined;
}

export function purgePayloads(db: Database.Database, filter: PurgeFilter, now: number): PurgeResult {
  const limit = Math.max(0, Math.floor(filter.limit));
  if (limit === 0 || (filter.routeIds !== undefined && filter.routeIds.length === 0))
    return { purged: 0, unreferencedAttachments: [] };
  const s = sql(db);
  const candidates = s.purgeCandidates.all({
    before: filter.before,
    routes: filter.routeIds === undefined ? null : JSON.stringify(filter.routeIds),
    limit,
  }) as { id: string; status: string }[];
  const released = new Set<string>();
  for (const message of candidates) {
    const shas = (s.attachmentShas.all(message.id) as { sha256: string }[]).map((r) => r.sha256);
    s.dropAttachments.run(message.id);
    s.purgePayload.run(message.id);
    s.dropPayload.run(message.id);
    s.history.run({
      id: message.id,
      at: now,
      status: message.status,
      detail: JSON.stringify({ attachments: shas.length }),
    });
    for (const sha of shas) released.add(sha);
  }
  const unreferencedAttachments = [...released].filter((sha) => s.referenced.get(sha) === undefined).sort();
  return { purged: candidates.length, unreferencedAttachments };
}

export function referencedAttachments(db: Database.Database, sha256s: readonly string[]): Set<string> {
  checkLookup(sha256s);
  if (sha256s.length === 0) return new Set();
  const rows = sql(db).referencedAmong.all(JSON.stringify(sha256s)) as { sha256: string }[];
  return new Set(rows.map((r) => r.sha256));
}

export function deadLetterCounts(db: Database.Database, since: number): DeadLetterCount[] {
  const rows = sql(db).deadCounts.all(since) as { route_id: string; dead: number; dead_since: number }[];
  return rows.map((r) => ({ routeId: r.route_id, dead: r.dead, deadSince: r.dead_since }));
}
