/**
 * The SQLite store's statements and the shapes of the rows they return: everything it runs more
 * than once, prepared once per connection after the schema exists.
 */
import type Database from 'better-sqlite3';
import type { AttemptRecord, Direction, MessageStatus } from './types.js';
import { PURGED_PAYLOAD } from './types.js';

/** Expired remembered keys deleted at most per purge (rememberOnce). */
const PURGE_BATCH = 1000;

export interface MessageRow {
  id: string;
  delivery_id: string;
  direction: Direction;
  tenant_id: string;
  ars: string;
  service: string;
  reference: string | null;
  client_id: string;
  route_id: string;
  target: string;
  status: MessageStatus;
  /** '' while the payload is in message_payloads; the purge marker once purged. */
  payload: string;
  attempts: number;
  attempt_seq: number;
  run_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  remote_reference: string | null;
  remote_status: string | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

export interface AttachmentRow {
  sha256: string;
  size: number;
  filename: string;
  media_type: string;
  purpose: string | null;
}

export interface HistoryRow {
  seq: number;
  at: number;
  status: MessageStatus;
  event: string;
  detail: string | null;
}

export interface AttemptRow {
  n: number;
  started_at: number;
  ended_at: number;
  target: string;
  outcome: AttemptRecord['outcome'];
  error: string | null;
  remote_reference: string | null;
}

export type Params = Record<string, unknown>;
/* eslint-disable @typescript-eslint/no-explicit-any -- better-sqlite3 types bind parameters as any[] */
export type Stmt = Database.Statement<any[], any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

// INDEXED BY pins the partial indexes that match the ORDER BY: without statistics the planner
// may pick another index and sort the whole backlog on every claim.
const CLAIM_CANDIDATES = `
SELECT id, run_at, status, lease_owner FROM (
  SELECT * FROM (
    SELECT id, run_at, status, lease_owner FROM messages INDEXED BY messages_due
    WHERE status IN ('received', 'retrying') AND run_at <= @now
    ORDER BY run_at, id LIMIT @limit)
  UNION ALL
  SELECT * FROM (
    SELECT id, run_at, status, lease_owner FROM messages INDEXED BY messages_lease_expiry
    WHERE status = 'delivering' AND lease_expires_at <= @now
    ORDER BY run_at, id LIMIT @limit)
)
ORDER BY run_at, id LIMIT @limit`;

/** Every statement the store runs more than once, prepared once after the schema exists. */
export function prepareStatements(db: Database.Database) {
  const p = (sql: string): Stmt => db.prepare(sql);
  return {
    insertMessage: p(`INSERT INTO messages (id, delivery_id, direction, tenant_id, ars, service, reference,
        client_id, route_id, target, status, payload, attempts, attempt_seq, lease_owner, lease_expires_at,
        run_at, idempotency_key, request_hash, created_at, updated_at)
      VALUES (@id, @deliveryId, @direction, @tenantId, @ars, @service, @reference, @clientId, @routeId,
        @target, @status, '', @attempts, @attempts, @leaseOwner, @leaseExpiresAt, @receivedAt, @key,
        @requestHash, @receivedAt, @receivedAt)`),
    insertPayload: p(`INSERT INTO message_payloads (message_id, payload) VALUES (?, ?)`),
    payload: p(`SELECT payload FROM message_payloads WHERE message_id = ?`),
    insertAttachment:
      p(`INSERT INTO message_attachments (message_id, position, sha256, size, filename, media_type, purpose)
      VALUES (?, ?, ?, ?, ?, ?, ?)`),
    insertHistory: p(`INSERT INTO message_history (message_id, seq, at, status, event, detail)
      VALUES (@id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM message_history WHERE message_id = @id),
        @at, @status, @event, @detail)`),
    findByKey: p(`SELECT id, request_hash FROM messages WHERE client_id = ? AND idempotency_key = ?`),
    message: p(`SELECT * FROM messages WHERE id = ?`),
    attachments: p(`SELECT sha256, size, filename, media_type, purpose FROM message_attachments
      WHERE message_id = ? ORDER BY position`),
    history: p(
      `SELECT seq, at, status, event, detail FROM message_history WHERE message_id = ? ORDER BY seq`,
    ),
    attempts:
      p(`SELECT n, started_at, ended_at, target, outcome, error, remote_reference FROM message_attempts
      WHERE message_id = ? ORDER BY n`),
    stats: p(`SELECT status, COUNT(*) AS n FROM messages GROUP BY status`),
    claimCandidates: p(CLAIM_CANDIDATES),
    claim: p(`UPDATE messages SET status = 'delivering', lease_owner = @owner, lease_expires_at = @expiresAt,
        attempts = attempts + 1, attempt_seq = attempt_seq + 1, updated_at = @now
      WHERE id = @id RETURNING *`),
    delivered: p(`UPDATE messages SET status = 'delivered', remote_reference = @remoteReference,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE id = @id AND status = 'delivering' AND lease_owner = @owner RETURNING attempt_seq`),
    retry: p(`UPDATE messages SET status = 'retrying', run_at = @runAt, last_error = @error,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE id = @id AND status = 'delivering' AND lease_owner = @owner RETURNING attempt_seq`),
    dead: p(`UPDATE messages SET status = 'dead', last_error = @error,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE id = @id AND status = 'delivering' AND lease_owner = @owner RETURNING attempt_seq`),
    insertAttempt:
      p(`INSERT INTO message_attempts (message_id, n, started_at, ended_at, target, outcome, error, remote_reference)
      VALUES (@id, @n, @startedAt, @endedAt, @target, @outcome, @error, @remoteReference)`),
    insertDeadLetter: p(`INSERT INTO dead_letters (message_id, died_at, error) VALUES (?, ?, ?)`),
    // Through the partial index of the messages in delivery (few), not a scan of the table.
    release: p(`UPDATE messages INDEXED BY messages_lease_expiry SET status = 'retrying', run_at = @now,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE status = 'delivering' AND lease_owner = @owner RETURNING id`),
    replay: p(`UPDATE messages SET status = 'received', run_at = @now, attempts = 0, last_error = NULL,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE id = @id AND status IN ('dead', 'retrying') AND payload <> '${PURGED_PAYLOAD}' RETURNING id`),
    markReplayed: p(`UPDATE dead_letters SET replayed_at = @now, replayed_by = @by
      WHERE message_id = @id AND replayed_at IS NULL`),
    remoteStatus: p(`UPDATE messages SET remote_status = @status, updated_at = @now
      WHERE id = @id AND status = 'delivered'`),
    awaitingRemote: p(`SELECT * FROM messages
      WHERE status = 'delivered' AND target = @target
        AND (remote_status IS NULL OR remote_status NOT IN (SELECT value FROM json_each(@finals)))
      ORDER BY created_at, id LIMIT @limit`),
    remember:
      p(`INSERT INTO remembered_keys (namespace, key, expires_at) VALUES (@namespace, @key, @expiresAt)
      ON CONFLICT (namespace, key) DO UPDATE SET expires_at = excluded.expires_at
      WHERE remembered_keys.expires_at <= @now`),
    purgeRemembered: p(`DELETE FROM remembered_keys WHERE (namespace, key) IN
      (SELECT namespace, key FROM remembered_keys WHERE expires_at <= ? LIMIT ${PURGE_BATCH})`),
    statusOf: p(`SELECT status, remote_status FROM messages WHERE id = ?`),
    citizenStatus: p(`SELECT status, text, change, at FROM citizen_status WHERE message_id = ?`),
    setCitizenStatus: p(`INSERT INTO citizen_status (message_id, status, text, change, at)
      VALUES (@id, @status, @text, @change, @now)
      ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, text = excluded.text,
        change = excluded.change, at = excluded.at`),
    byDeliveryId: p(`SELECT * FROM messages WHERE delivery_id = @key AND (@target IS NULL OR target = @target)
      ORDER BY created_at, id LIMIT @limit`),
    byRemoteReference: p(`SELECT * FROM messages
      WHERE remote_reference = @key AND (@target IS NULL OR target = @target)
      ORDER BY created_at, id LIMIT @limit`),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;

/** What the outcome updates return: the attempt number they recorded. */
export type Seq = { attempt_seq: number };
