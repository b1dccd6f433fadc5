/**
 * PostgreSQL implementation of the store contract, for several gateway instances sharing one
 * database. Concurrency rests on the database, never on check-then-write in Node: idempotency
 * keys on a unique index with `INSERT … ON CONFLICT`, claims with `FOR UPDATE SKIP LOCKED`,
 * per-message sequence numbers taken by the same `UPDATE` that locks the message row. Most
 * operations are one statement (data-modifying CTEs), hence one round trip and one commit.
 */
import pg from 'pg';
import type { PoolClient, QueryResultRow } from 'pg';
import { AmtError } from '../errors.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import * as jobs from './postgres-jobs.js';
import { MIGRATIONS } from './postgres-migrations.js';
import { attachmentRef, newMessageRecord } from './records.js';
import type {
  AcceptResult,
  AttemptRecord,
  CitizenStatusRecord,
  DeadLetter,
  ErrorInfo,
  HistoryEvent,
  MessageFilter,
  MessageLookup,
  MessageRecord,
  MessageStatus,
  NewMessage,
  Outcome,
  Page,
  QueueStats,
  StatusReport,
  StatusReportResult,
  Store,
  DeadLetterCount,
  JobClaim,
  JobRun,
  JobRunOutcome,
  JobTrigger,
  PurgeFilter,
  PurgeResult,
} from './types.js';
import { PURGED_PAYLOAD } from './types.js';
import { isTransient, toStoreError } from './postgres-errors.js';
import { WORK_CHANNEL, WorkSubscription } from './postgres-work.js';
import { storableText, storableValue } from './storable.js';

export interface PostgresStoreOptions {
  /** Connections in the pool (default 10). */
  readonly poolSize?: number;
}

const ALL_STATUSES: readonly MessageStatus[] = ['received', 'delivering', 'retrying', 'delivered', 'dead'];
const REMEMBERED_KEYS_PURGE_INTERVAL_MS = 60_000;

// bigint columns hold epoch milliseconds and counts, all far below 2^53: parse them as numbers
// for this pool only (the driver's default is a string).
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

// Named, never `*`: a prepared statement must keep its result shape when a later migration adds
// a column while older instances still run.
const MESSAGE_FIELDS = `id, delivery_id, direction, tenant_id, ars, service, reference, client_id, route_id,
  target, status, payload, attempts, run_at, lease_owner, lease_expires_at, remote_reference, remote_status,
  last_error, created_at, updated_at`;

/**
 * Statements run for every message are prepared once per connection and then run by name: their
 * planning takes about as long as their execution.
 */
const PREPARED = new Map<string, string>();

function prepared(sql: string): string {
  PREPARED.set(sql, `amtsbote_${PREPARED.size + 1}`);
  return sql;
}

const MESSAGE_COLUMNS = `${MESSAGE_FIELDS.replace(/\w+/g, 'm.$&')},
  (SELECT json_agg(json_build_object('sha256', a.sha256, 'size', a.size, 'filename', a.filename,
     'mediaType', a.media_type, 'purpose', a.purpose) ORDER BY a.position)
   FROM message_attachments a WHERE a.message_id = m.id) AS attachments`;

/**
 * Stores a batch of new messages in one statement: committed together or not at all. Inserting
 * in key order keeps two batches with overlapping keys from deadlocking each other; within the
 * batch the first of two equal keys wins, as if they had been accepted one after another.
 */
const ACCEPT_SQL = prepared(`WITH input AS (
     -- claimed: 1 when the message is stored already claimed (NewMessage.claim), else 0
     SELECT *, (lease_owner IS NOT NULL)::int AS claimed
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
       $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[],
       $22::text[], $23::bigint[])
       WITH ORDINALITY AS i(id, delivery_id, direction, tenant_id, ars, service, reference, client_id,
         route_id, target, payload, idempotency_key, request_hash, received_at, lease_owner,
         lease_expires_at, ord)
   ), created AS (
     INSERT INTO messages (id, delivery_id, direction, tenant_id, ars, service, reference, client_id,
       route_id, target, status, payload, attempts, attempt_seq, lease_owner, lease_expires_at, run_at,
       idempotency_key, request_hash, history_seq, created_at, updated_at)
     SELECT id, delivery_id, direction, tenant_id, ars, service, reference, client_id, route_id, target,
       CASE claimed WHEN 1 THEN 'delivering' ELSE 'received' END, payload, claimed, claimed,
       lease_owner, lease_expires_at, received_at, idempotency_key, request_hash, 1 + claimed,
       received_at, received_at
     FROM input ORDER BY client_id, idempotency_key, ord
     ON CONFLICT (client_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING id, created_at, lease_owner
   ), stored_attachments AS (
     INSERT INTO message_attachments (message_id, position, sha256, size, filename, media_type, purpose)
     SELECT a.message_id, a.position, a.sha256, a.size, a.filename, a.media_type, a.purpose
     FROM unnest($15::text[], $16::int[], $17::text[], $18::bigint[], $19::text[], $20::text[], $21::text[])
       AS a(message_id, position, sha256, size, filename, media_type, purpose)
     JOIN created c ON c.id = a.message_id
   ), received_event AS (
     INSERT INTO message_history (message_id, seq, at, status, event, detail)
     SELECT id, 1, created_at, 'received', 'received', NULL FROM created
     UNION ALL
     SELECT id, 2, created_at, 'delivering', 'claimed',
       json_build_object('owner', lease_owner, 'attempt', 1)::text
     FROM created WHERE lease_owner IS NOT NULL
   )
   SELECT id, lease_owner FROM created`);

/**
 * Claims due messages: parameters $1 owner, $2 limit, $3 lease ms, $4 now. Two index-backed
 * candidate lists (due, lease expired), each locked with SKIP LOCKED so concurrent claimers pass
 * each other by instead of waiting; then the oldest `limit` win. Exported for EXPLAIN in tests.
 */
export const CLAIM_DUE_SQL = prepared(`WITH due AS (
     SELECT id, run_at, status, lease_owner FROM messages
     WHERE status IN ('received', 'retrying') AND run_at <= $4::bigint
     ORDER BY run_at, id LIMIT $2::int FOR UPDATE SKIP LOCKED
   ), expired AS (
     SELECT id, run_at, status, lease_owner FROM messages
     WHERE status = 'delivering' AND lease_expires_at <= $4::bigint
     ORDER BY lease_expires_at, id LIMIT $2::int FOR UPDATE SKIP LOCKED
   ), chosen AS (
     SELECT id, status AS previous_status, lease_owner AS previous_owner
     FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) candidates
     ORDER BY run_at, id LIMIT $2::int
   ), claimed AS (
     UPDATE messages m SET status = 'delivering', lease_owner = $1::text, lease_expires_at = $4::bigint + $3::bigint,
       attempts = m.attempts + 1, attempt_seq = m.attempt_seq + 1, updated_at = $4::bigint,
        history_seq = m.history_seq + 1
     FROM chosen c WHERE m.id = c.id
     RETURNING ${MESSAGE_FIELDS.replace(/\w+/g, 'm.$&')}, m.attempt_seq, m.history_seq,
       c.previous_status, c.previous_owner
   ), claim_event AS (
     INSERT INTO message_history (message_id, seq, at, status, event, detail)
     SELECT id, history_seq, $4::bigint, 'delivering',
       CASE WHEN previous_status = 'delivering' THEN 'reclaimed' ELSE 'claimed' END,
       CASE WHEN previous_status = 'delivering'
         THEN json_build_object('owner', $1, 'attempt', attempt_seq, 'previousOwner', previous_owner)::text
         ELSE json_build_object('owner', $1, 'attempt', attempt_seq)::text END
     FROM claimed
   )
   SELECT ${MESSAGE_COLUMNS} FROM claimed m ORDER BY m.run_at, m.id`);

interface MessageRow extends QueryResultRow {
  id: string;
  delivery_id: string;
  direction: MessageRecord['direction'];
  tenant_id: string;
  ars: string;
  service: string;
  reference: string | null;
  client_id: string;
  route_id: string;
  target: string;
  status: MessageStatus;
  payload: string;
  attempts: number;
  run_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  remote_reference: string | null;
  remote_status: string | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  attachments: AttachmentJson[] | null;
}

interface AttachmentJson {
  sha256: string;
  size: number;
  filename: string;
  mediaType: string;
  purpose: string | null;
}

export class PostgresStore implements Store {
  private closed = false;
  private announcing: Promise<void> | undefined;
  private announceAgain = false;
  private lastRememberedKeysPurge = Number.NEGATIVE_INFINITY;
  private readonly subscriptions = new Set<WorkSubscription>();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly connection: pg.ClientConfig,
  ) {}

  /** Opens a connection pool and checks that the database answers. Call `migrate()` before use. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const connection: pg.ClientConfig = { connectionString: url, types: TYPES, application_name: 'amtsbote' };
    const pool = new pg.Pool({ ...connection, max: options.poolSize ?? 10 });
    // An idle connection that breaks (server restart, network) is discarded by the pool; the
    // next query reports the problem to its caller, so there is nothing to do here.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, connection);
    try {
      await store.ping();
    } catch (err) {
      await pool.end();
      throw err;
    }
    return store;
  }

  async migrate(): Promise<void> {
    await this.transaction(async (client) => {
      // Serialises concurrent migrations of the same schema across processes; the lock ends
      // with the transaction, so a crashed migrator cannot leave it held.
      await client.query(
        `SELECT pg_advisory_xact_lock(hashtextextended('amtsbote:migrate:' || current_schema(), 0))`,
      );
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((r) => r.version));
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          migration.version,
          migration.name,
          Date.now(),
        ]);
      }
    });
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.announcing;
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    await this.pool.end();
  }

  /**
   * Calls `listener` whenever another instance (or this one) announces due work: new messages,
   * released leases, replays. Notifications may be coalesced or lost on reconnect, so workers
   * still poll; this only shortens the wait. Resolves to a function that stops listening.
   */
  async onWork(listener: () => void): Promise<() => Promise<void>> {
    if (this.closed) throw new AmtError('AMT_STORE_UNAVAILABLE', 'The message store is closed');
    const subscription = new WorkSubscription(this.connection, listener, () =>
      this.subscriptions.delete(subscription),
    );
    await subscription.start();
    this.subscriptions.add(subscription);
    return () => subscription.stop();
  }

  async accept(messages: readonly NewMessage[]): Promise<AcceptResult[]> {
    if (messages.length === 0) return [];
    const { rows } = await this.query<{ id: string; lease_owner: string | null }>(
      ACCEPT_SQL,
      acceptParams(messages),
    );
    const createdIds = new Set(rows.map((r) => r.id));
    // Messages stored as claimed are not work for anyone else.
    if (rows.some((r) => r.lease_owner === null)) this.announceWork();
    const duplicates = messages.filter((m) => !createdIds.has(m.id));
    // Read after the commit: the message a duplicate key points to may belong to another
    // transaction that committed while ours waited on the unique index.
    const existing =
      duplicates.length === 0 ? new Map<string, ExistingByKey>() : await this.byKeys(duplicates);
    return messages.map((m): AcceptResult => {
      if (createdIds.has(m.id)) return { kind: 'created', message: newMessageRecord(m) };
      const found = existing.get(keyOf(m.clientId, m.idempotency?.key ?? ''));
      if (!found) throw new AmtError('AMT_INTERNAL', `message ${m.id} was neither stored nor a duplicate`);
      if (found.requestHash === m.idempotency?.requestHash)
        return { kind: 'existing', message: found.message };
      return { kind: 'conflict', messageId: found.message.id };
    });
  }

  private async byKeys(messages: readonly NewMessage[]): Promise<Map<string, ExistingByKey>> {
    const { rows } = await this.query<MessageRow & { idempotency_key: string; request_hash: string }>(
      `SELECT ${MESSAGE_COLUMNS}, m.idempotency_key, m.request_hash
       FROM messages m JOIN unnest($1::text[], $2::text[]) AS k(client_id, key)
         ON m.client_id = k.client_id AND m.idempotency_key = k.key`,
      [messages.map((m) => m.clientId), messages.map((m) => m.idempotency?.key ?? null)],
    );
    return new Map(
      rows.map((r) => [
        keyOf(r.client_id, r.idempotency_key),
        { requestHash: r.request_hash, message: toMessage(r) },
      ]),
    );
  }

  async findByIdempotencyKey(
    clientId: string,
    key: string,
  ): Promise<{ messageId: string; requestHash: string } | undefined> {
    const { rows } = await this.query<{ id: string; request_hash: string }>(
      'SELECT id, request_hash FROM messages WHERE client_id = $1 AND idempotency_key = $2',
      [clientId, key],
    );
    const row = rows[0];
    return row ? { messageId: row.id, requestHash: row.request_hash } : undefined;
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    const { rows } = await this.query<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1`,
      [id],
    );
    return rows[0] ? toMessage(rows[0]) : undefined;
  }

  async history(id: string): Promise<HistoryEvent[]> {
    const { rows } = await this.query<{
      seq: number;
      at: number;
      status: MessageStatus;
      event: string;
      detail: string | null;
    }>('SELECT seq, at, status, event, detail FROM message_history WHERE message_id = $1 ORDER BY seq', [id]);
    return rows.map((r) => ({
      seq: r.seq,
      at: r.at,
      status: r.status,
      event: r.event,
      detail: r.detail === null ? undefined : (JSON.parse(r.detail) as Record<string, unknown>),
    }));
  }

  async attempts(id: string): Promise<AttemptRecord[]> {
    const { rows } = await this.query<{
      n: number;
      started_at: number;
      ended_at: number;
      target: string;
      outcome: AttemptRecord['outcome'];
      error: string | null;
      remote_reference: string | null;
    }>(
      `SELECT n, started_at, ended_at, target, outcome, error, remote_reference
       FROM message_attempts WHERE message_id = $1 ORDER BY n`,
      [id],
    );
    return rows.map((r) => ({
      n: r.n,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      target: r.target,
      outcome: r.outcome,
      error: parseError(r.error),
      remoteReference: r.remote_reference ?? undefined,
    }));
  }

  async listMessages(filter: MessageFilter): Promise<Page<MessageRecord>> {
    const where = filterConditions(filter);
    if (!where) return { items: [], nextCursor: undefined };
    const { rows } = await this.query<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE ${where.sql}
       ORDER BY m.created_at DESC, m.id DESC LIMIT ${where.limitParam}`,
      where.params,
    );
    return toPage(rows.map(toMessage), filter.limit, (m) => m);
  }

  async deadLetters(filter: MessageFilter): Promise<Page<DeadLetter>> {
    if (filter.status !== undefined && filter.status !== 'dead') return { items: [], nextCursor: undefined };
    const where = filterConditions({ ...filter, status: 'dead' });
    if (!where) return { items: [], nextCursor: undefined };
    const { rows } = await this.query<MessageRow & { died_at: number; dead_error: string }>(
      `SELECT ${MESSAGE_COLUMNS}, d.died_at, d.error AS dead_error
       FROM messages m
       CROSS JOIN LATERAL (SELECT died_at, error FROM dead_letters
         WHERE message_id = m.id ORDER BY id DESC LIMIT 1) d
       WHERE ${where.sql}
       ORDER BY m.created_at DESC, m.id DESC LIMIT ${where.limitParam}`,
      where.params,
    );
    const letters = rows.map((r): DeadLetter => ({
      message: toMessage(r),
      diedAt: r.died_at,
      error: parseError(r.dead_error) ?? unknownError(),
    }));
    return toPage(letters, filter.limit, (d) => d.message);
  }

  async stats(): Promise<QueueStats> {
    const { rows } = await this.query<{ status: MessageStatus; n: number }>(
      'SELECT status, count(*) AS n FROM messages GROUP BY status',
    );
    const byStatus = Object.fromEntries(ALL_STATUSES.map((s) => [s, 0])) as Record<MessageStatus, number>;
    for (const r of rows) byStatus[r.status] = r.n;
    return { byStatus };
  }

  async claimDue(owner: string, limit: number, leaseMs: number, now: number): Promise<MessageRecord[]> {
    if (limit <= 0) return [];
    const { rows } = await this.query<MessageRow>(CLAIM_DUE_SQL, [owner, limit, leaseMs, now]);
    return rows.map(toMessage);
  }

  async complete(given: readonly Outcome[], now: number): Promise<boolean[]> {
    if (given.length === 0) return [];
    const outcomes = storableValue(given);
    const ids = outcomes.map((o) => o.messageId);
    if (new Set(ids).size === ids.length) {
      const { rows } = await this.query<{ id: string }>(COMPLETE_SQL, completeParams(outcomes, now));
      const applied = new Set(rows.map((r) => r.id));
      return ids.map((id) => applied.has(id));
    }
    // Two outcomes for one message: apply them one after another, so the second sees the first.
    return this.transaction(async (client) => {
      const applied: boolean[] = [];
      for (const outcome of outcomes) {
        const { rowCount } = await this.query(COMPLETE_SQL, completeParams([outcome], now), client);
        applied.push(rowCount === 1);
      }
      return applied;
    });
  }

  async releaseLeases(owner: string, now: number): Promise<number> {
    const { rowCount } = await this.query(
      `WITH released AS (
         UPDATE messages SET status = 'retrying', run_at = $2, lease_owner = NULL, lease_expires_at = NULL,
           updated_at = $2, history_seq = history_seq + 1
         WHERE status = 'delivering' AND lease_owner = $1
         RETURNING id, history_seq
       ), release_event AS (
         INSERT INTO message_history (message_id, seq, at, status, event, detail)
         SELECT id, history_seq, $2, 'retrying', 'released', json_build_object('owner', $1::text)::text
         FROM released
       )
       SELECT id FROM released`,
      [owner, now],
    );
    if (rowCount) this.announceWork();
    return rowCount ?? 0;
  }

  async replay(
    ids: readonly string[],
    now: number,
    by: string,
  ): Promise<{ replayed: string[]; notReplayable: string[] }> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return { replayed: [], notReplayable: [] };
    const { rows } = await this.query<{ id: string }>(
      `WITH replayed AS (
         UPDATE messages SET status = 'received', attempts = 0, run_at = $2, last_error = NULL, lease_owner = NULL,
           lease_expires_at = NULL, updated_at = $2, history_seq = history_seq + 1
         WHERE id = ANY($1::text[]) AND status IN ('dead', 'retrying') AND payload <> '${PURGED_PAYLOAD}'
         RETURNING id, history_seq
       ), marked AS (
         UPDATE dead_letters d SET replayed_at = $2, replayed_by = $3
         FROM replayed r WHERE d.message_id = r.id AND d.replayed_at IS NULL
       ), replay_event AS (
         INSERT INTO message_history (message_id, seq, at, status, event, detail)
         SELECT id, history_seq, $2, 'received', 'replayed', json_build_object('by', $3::text)::text
         FROM replayed
       )
       SELECT id FROM replayed`,
      [unique, now, by],
    );
    const done = new Set(rows.map((r) => r.id));
    if (done.size > 0) this.announceWork();
    return {
      replayed: unique.filter((id) => done.has(id)),
      notReplayable: unique.filter((id) => !done.has(id)),
    };
  }

  async recordRemoteStatus(
    messageId: string,
    status: string,
    detail: Record<string, unknown> | undefined,
    now: number,
  ): Promise<boolean> {
    status = storableText(status);
    const { rowCount } = await this.query(
      `WITH recorded AS (
         UPDATE messages SET remote_status = $2, updated_at = $3, history_seq = history_seq + 1
         WHERE id = $1 AND status = 'delivered'
         RETURNING id, history_seq
       ), remote_event AS (
         INSERT INTO message_history (message_id, seq, at, status, event, detail)
         SELECT id, history_seq, $3, 'delivered', 'remote-status', $4 FROM recorded
       )
       SELECT id FROM recorded`,
      [messageId, status, now, JSON.stringify({ ...storableValue(detail), status })],
    );
    return rowCount === 1;
  }

  async awaitingRemoteStatus(
    target: string,
    finalStatuses: readonly string[],
    limit: number,
  ): Promise<MessageRecord[]> {
    const { rows } = await this.query<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m
       WHERE m.status = 'delivered' AND m.target = $1
         AND (m.remote_status IS NULL OR NOT (m.remote_status = ANY($2::text[])))
       ORDER BY m.created_at, m.id LIMIT $3`,
      [target, [...finalStatuses], Math.max(0, limit)],
    );
    return rows.map(toMessage);
  }

  async recordStatus(
    given: StatusReport,
    followUps: (change: number) => readonly NewMessage[],
    now: number,
  ): Promise<StatusReportResult> {
    const report = storableValue(given);
    const id = report.messageId;
    const { citizen } = report;
    const result = await this.transaction(async (client): Promise<StatusReportResult> => {
      // The row lock orders concurrent reports of one message: each sees the one before.
      const { rows } = await this.query<{ status: MessageStatus; remote_status: string | null }>(
        'SELECT status, remote_status FROM messages WHERE id = $1 FOR UPDATE',
        [id],
        client,
      );
      const message = rows[0];
      if (!message) return { kind: 'unknown' };
      if (message.status !== 'delivered') return { kind: 'not-delivered' };
      const current = (
        await this.query<CitizenStatusRecord>(
          'SELECT status, text, change, at FROM citizen_status WHERE message_id = $1',
          [id],
          client,
        )
      ).rows[0];
      const sameCitizen =
        citizen === undefined || (current?.status === citizen.status && current.text === citizen.text);
      const acceptAll = async (messages: readonly NewMessage[]): Promise<number> =>
        messages.length === 0
          ? 0
          : ((await this.query(ACCEPT_SQL, acceptParams(messages), client)).rowCount ?? 0);
      if (message.remote_status === report.remoteStatus && sameCitizen) {
        const again = citizen !== undefined && current !== undefined ? followUps(current.change) : [];
        return { kind: 'repeated', followUpsCreated: await acceptAll(again) };
      }
      const change = citizen !== undefined && !sameCitizen ? (current?.change ?? 0) + 1 : undefined;
      const detail = {
        ...report.detail,
        status: report.remoteStatus,
        ...(citizen === undefined ? {} : { citizenStatus: citizen.status, citizenText: citizen.text }),
      };
      await this.query(
        `WITH recorded AS (
           UPDATE messages SET remote_status = $2, updated_at = $3, history_seq = history_seq + 1
           WHERE id = $1 RETURNING id, history_seq
         )
         INSERT INTO message_history (message_id, seq, at, status, event, detail)
         SELECT id, history_seq, $3, 'delivered', 'remote-status', $4 FROM recorded`,
        [id, report.remoteStatus, now, JSON.stringify(detail)],
        client,
      );
      if (change === undefined || citizen === undefined)
        return { kind: 'recorded', change, followUpsCreated: 0 };
      await this.query(
        `INSERT INTO citizen_status (message_id, status, text, change, at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (message_id) DO UPDATE SET status = EXCLUDED.status, text = EXCLUDED.text,
           change = EXCLUDED.change, at = EXCLUDED.at`,
        [id, citizen.status, citizen.text, change, now],
        client,
      );
      return { kind: 'recorded', change, followUpsCreated: await acceptAll(followUps(change)) };
    });
    if ((result.kind === 'recorded' || result.kind === 'repeated') && result.followUpsCreated > 0) {
      this.announceWork();
    }
    return result;
  }

  async citizenStatus(messageId: string): Promise<CitizenStatusRecord | undefined> {
    const { rows } = await this.query<CitizenStatusRecord>(
      'SELECT status, text, change, at FROM citizen_status WHERE message_id = $1',
      [messageId],
    );
    const row = rows[0];
    return row && { status: row.status, text: row.text, change: row.change, at: row.at };
  }

  async findMessages(lookup: MessageLookup, limit: number): Promise<MessageRecord[]> {
    if (limit <= 0) return [];
    const column = 'deliveryId' in lookup ? 'delivery_id' : 'remote_reference';
    const key = 'deliveryId' in lookup ? lookup.deliveryId : lookup.remoteReference;
    const { rows } = await this.query<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m
       WHERE m.${column} = $1 AND ($2::text IS NULL OR m.target = $2::text)
       ORDER BY m.created_at, m.id LIMIT $3`,
      [key, lookup.target ?? null, limit],
    );
    return rows.map(toMessage);
  }

  async rememberOnce(namespace: string, key: string, expiresAt: number, now: number): Promise<boolean> {
    if (now - this.lastRememberedKeysPurge >= REMEMBERED_KEYS_PURGE_INTERVAL_MS) {
      this.lastRememberedKeysPurge = now;
      await this.query('DELETE FROM remembered_keys WHERE expires_at <= $1', [now]);
    }
    // An expired entry counts as absent: the conditional update takes it over atomically.
    const { rowCount } = await this.query(
      `INSERT INTO remembered_keys (namespace, key, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (namespace, key) DO UPDATE SET expires_at = EXCLUDED.expires_at
         WHERE remembered_keys.expires_at <= $4`,
      [namespace, key, expiresAt, now],
    );
    return rowCount === 1;
  }

  // scheduled jobs and retention: the statements live in postgres-jobs.ts

  async claimJobOccurrence(
    job: string,
    scheduledAt: number,
    owner: string,
    leaseMs: number,
    now: number,
    trigger: JobTrigger = 'schedule',
  ): Promise<JobClaim | undefined> {
    return this.transaction((client) =>
      jobs.claimJobOccurrence(
        (sql, params) => this.query(sql, params, client),
        job,
        scheduledAt,
        owner,
        leaseMs,
        now,
        trigger,
      ),
    );
  }

  async heartbeatJobRun(runId: string, owner: string, leaseMs: number, now: number): Promise<boolean> {
    return jobs.heartbeatJobRun(this.onPool, runId, owner, now + leaseMs);
  }

  async finishJobRun(runId: string, owner: string, outcome: JobRunOutcome, now: number): Promise<boolean> {
    return jobs.finishJobRun(this.onPool, runId, owner, storableValue(outcome), now);
  }

  async jobRuns(job: string, limit: number, cursor?: string): Promise<Page<JobRun>> {
    return jobs.jobRuns(this.onPool, job, limit, cursor);
  }

  async runningJobRuns(job: string): Promise<JobRun[]> {
    return jobs.runningJobRuns(this.onPool, job);
  }

  async lastJobOccurrence(job: string): Promise<number | undefined> {
    return jobs.lastJobOccurrence(this.onPool, job);
  }

  async purgePayloads(filter: PurgeFilter, now: number): Promise<PurgeResult> {
    return jobs.purgePayloads(this.onPool, filter, now);
  }

  async referencedAttachments(sha256s: readonly string[]): Promise<Set<string>> {
    return jobs.referencedAttachments(this.onPool, sha256s);
  }

  async deadLetterCounts(since: number): Promise<DeadLetterCount[]> {
    return jobs.deadLetterCounts(this.onPool, since);
  }

  private readonly onPool: jobs.Query = (sql, params) => this.query(sql, params);

  /**
   * Tells listening instances that work is due, after it was committed. Not inside the
   * committing transaction: a transaction that notifies takes a database-wide lock through its
   * commit, which serialises the commits of every instance (measured here with four writers:
   * about 220 instead of 600 commits/s). Requests while one is on its way are folded into one
   * more. A notification lost in a crash costs only latency: workers also poll.
   */
  private announceWork(): void {
    if (this.closed) return;
    if (this.announcing) {
      this.announceAgain = true;
      return;
    }
    this.announcing = this.pool
      .query('SELECT pg_notify($1, $2)', [WORK_CHANNEL, ''])
      .then(
        () => undefined,
        () => undefined, // the next announcement or the workers' poll makes up for it
      )
      .finally(() => {
        this.announcing = undefined;
        if (this.announceAgain) {
          this.announceAgain = false;
          this.announceWork();
        }
      });
  }

  private async query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params: readonly unknown[] = [],
    db: pg.Pool | PoolClient = this.pool,
  ): Promise<pg.QueryResult<R>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await db.query<R>({ name: PREPARED.get(sql), text: sql, values: params as unknown[] });
      } catch (err) {
        // Inside a transaction the caller retries the whole transaction, not one statement.
        if (db === this.pool && isTransient(err) && attempt < 5) continue;
        throw toStoreError(err);
      }
    }
  }

  private async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        throw toStoreError(err);
      }
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        });
        const cause = err instanceof AmtError && err.cause !== undefined ? err.cause : err;
        if (!isTransient(cause) || attempt >= 5) throw toStoreError(err);
      } finally {
        client.release(broken);
      }
    }
  }
}

/** Parameters of ACCEPT_SQL: one array per column, attachments flattened. */
function acceptParams(messages: readonly NewMessage[]): unknown[] {
  const attachments = messages.flatMap((m) => m.attachments.map((a, i) => ({ messageId: m.id, i, a })));
  return [
    messages.map((m) => m.id),
    messages.map((m) => m.deliveryId),
    messages.map((m) => m.direction),
    messages.map((m) => m.tenantId),
    messages.map((m) => m.ars),
    messages.map((m) => m.service),
    messages.map((m) => m.reference ?? null),
    messages.map((m) => m.clientId),
    messages.map((m) => m.routeId),
    messages.map((m) => m.target),
    messages.map((m) => m.payload),
    messages.map((m) => m.idempotency?.key ?? null),
    messages.map((m) => m.idempotency?.requestHash ?? null),
    messages.map((m) => m.receivedAt),
    attachments.map((x) => x.messageId),
    attachments.map((x) => x.i),
    attachments.map((x) => x.a.sha256),
    attachments.map((x) => x.a.size),
    attachments.map((x) => x.a.filename),
    attachments.map((x) => x.a.mediaType),
    attachments.map((x) => x.a.purpose ?? null),
    messages.map((m) => m.claim?.owner ?? null),
    messages.map((m) => m.claim?.leaseExpiresAt ?? null),
  ];
}

interface ExistingByKey {
  readonly requestHash: string;
  readonly message: MessageRecord;
}

function keyOf(clientId: string, key: string): string {
  return `${clientId}\u0000${key}`;
}

/**
 * Records outcomes of distinct messages. Each applies only while the reporting worker still
 * holds the lease; the attempt row (numbered by the claim), the history event and the dead
 * letter are written by the same statement.
 */
const COMPLETE_SQL = prepared(`WITH outcome AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
      $7::text[], $8::text[], $9::bigint[], $10::text[])
      AS o(message_id, lease_owner, kind, error, started_at, ended_at, target, remote_reference, run_at, detail)
  ), applied AS (
    UPDATE messages m SET
      status = CASE o.kind WHEN 'delivered' THEN 'delivered' WHEN 'retry' THEN 'retrying' ELSE 'dead' END,
      run_at = COALESCE(o.run_at, m.run_at),
      last_error = COALESCE(o.error, m.last_error),
      remote_reference = COALESCE(o.remote_reference, m.remote_reference),
      lease_owner = NULL, lease_expires_at = NULL, updated_at = $11::bigint, history_seq = m.history_seq + 1
    FROM outcome o
    WHERE m.id = o.message_id AND m.status = 'delivering' AND m.lease_owner = o.lease_owner
    RETURNING m.id, m.status, m.history_seq, m.attempt_seq, o.kind, o.error, o.started_at, o.ended_at,
      o.target AS attempt_target, o.remote_reference AS attempt_reference, o.detail
  ), attempt AS (
    INSERT INTO message_attempts (message_id, n, started_at, ended_at, target, outcome, error, remote_reference)
    SELECT id, attempt_seq, started_at, ended_at, attempt_target,
      CASE kind WHEN 'delivered' THEN 'delivered' WHEN 'retry' THEN 'retry' ELSE 'failed' END,
      error, attempt_reference
    FROM applied WHERE started_at IS NOT NULL
  ), event AS (
    INSERT INTO message_history (message_id, seq, at, status, event, detail)
    SELECT id, history_seq, $11::bigint, status,
      CASE kind WHEN 'delivered' THEN 'delivered' WHEN 'retry' THEN 'attempt-failed' ELSE 'dead-lettered' END,
      (detail::jsonb || jsonb_build_object('attempt', attempt_seq))::text
    FROM applied
  ), dead_letter AS (
    INSERT INTO dead_letters (message_id, died_at, error) SELECT id, $11::bigint, error FROM applied WHERE kind = 'dead'
  )
  SELECT id FROM applied`);

function completeParams(outcomes: readonly Outcome[], now: number): unknown[] {
  const column = <T>(value: (o: Outcome) => T): T[] => outcomes.map(value);
  return [
    column((o) => o.messageId),
    column((o) => o.leaseOwner),
    column((o) => o.kind),
    column((o) => (o.kind === 'delivered' ? null : JSON.stringify(normalizeError(o.error)))),
    column((o) => o.attempt?.startedAt ?? null),
    column((o) => o.attempt?.endedAt ?? null),
    column((o) => o.attempt?.target ?? null),
    column((o) => (o.kind === 'delivered' ? (o.remoteReference ?? null) : null)),
    column((o) => (o.kind === 'retry' ? o.runAt : null)),
    column((o) => JSON.stringify(outcomeDetail(o))),
    now,
  ];
}

function outcomeDetail(o: Outcome): Record<string, unknown> {
  if (o.kind === 'delivered') {
    return {
      ...o.detail,
      ...(o.remoteReference === undefined ? {} : { remoteReference: o.remoteReference }),
    };
  }
  const detail: Record<string, unknown> = { code: o.error.code, message: o.error.message };
  if (o.kind === 'retry') detail.runAt = o.runAt;
  return detail;
}

/** Builds the WHERE clause of a message listing; undefined when the filter can match nothing. */
function filterConditions(
  filter: MessageFilter,
): { sql: string; params: unknown[]; limitParam: string } | undefined {
  if (filter.tenantIds !== undefined && filter.tenantIds.length === 0) return undefined;
  const conditions: string[] = [];
  const params: unknown[] = [];
  const bind = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.tenantIds !== undefined)
    conditions.push(`m.tenant_id = ANY(${bind([...filter.tenantIds])}::text[])`);
  if (filter.service !== undefined) conditions.push(`m.service = ${bind(filter.service)}`);
  if (filter.status !== undefined) conditions.push(`m.status = ${bind(filter.status)}`);
  if (filter.reference !== undefined) conditions.push(`m.reference = ${bind(filter.reference)}`);
  if (filter.since !== undefined) conditions.push(`m.created_at >= ${bind(filter.since)}`);
  if (filter.until !== undefined) conditions.push(`m.created_at < ${bind(filter.until)}`);
  if (filter.cursor !== undefined) {
    const { createdAt, id } = decodeCursor(filter.cursor);
    conditions.push(`(m.created_at, m.id) < (${bind(createdAt)}::bigint, ${bind(id)}::text)`);
  }
  // One row more than asked tells whether there is a next page.
  const limitParam = bind(Math.max(0, filter.limit) + 1);
  return { sql: conditions.length === 0 ? 'true' : conditions.join(' AND '), params, limitParam };
}

function toPage<T>(rows: T[], limit: number, messageOf: (item: T) => MessageRecord): Page<T> {
  const size = Math.max(0, limit);
  if (rows.length <= size) return { items: rows, nextCursor: undefined };
  const items = rows.slice(0, size);
  const last = items[items.length - 1];
  return { items, nextCursor: last === undefined ? undefined : encodeCursor(messageOf(last)) };
}

function toMessage(r: MessageRow): MessageRecord {
  return {
    id: r.id,
    deliveryId: r.delivery_id,
    direction: r.direction,
    tenantId: r.tenant_id,
    ars: r.ars,
    service: r.service,
    reference: r.reference ?? undefined,
    clientId: r.client_id,
    routeId: r.route_id,
    target: r.target,
    status: r.status,
    payload: r.payload,
    attachments: (r.attachments ?? []).map((a) => attachmentRef({ ...a, purpose: a.purpose ?? undefined })),
    attempts: r.attempts,
    runAt: r.run_at,
    leaseOwner: r.lease_owner ?? undefined,
    leaseExpiresAt: r.lease_expires_at ?? undefined,
    remoteReference: r.remote_reference ?? undefined,
    remoteStatus: r.remote_status ?? undefined,
    lastError: parseError(r.last_error),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function normalizeError(e: ErrorInfo): ErrorInfo {
  return e.details === undefined
    ? { code: e.code, message: e.message }
    : { code: e.code, message: e.message, details: e.details };
}

function parseError(text: string | null): ErrorInfo | undefined {
  return text === null ? undefined : normalizeError(JSON.parse(text) as ErrorInfo);
}

function unknownError(): ErrorInfo {
  return { code: 'AMT_INTERNAL', message: 'dead letter without a recorded error' };
}
