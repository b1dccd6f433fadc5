/**
 * The embedded store: one SQLite file in WAL mode. Methods are async to fit the `Store`
 * contract but do their work synchronously, each state change inside one transaction. Writing
 * transactions start with BEGIN IMMEDIATE, so several processes on the same file queue up on
 * the write lock (up to the busy timeout) instead of failing half-way or claiming twice.
 *
 * Durability: the connection runs at synchronous=NORMAL and every write that must survive a
 * power failure awaits an fdatasync of the WAL on the thread pool before it returns (see
 * wal-sync.ts) — the guarantee of synchronous=FULL without stalling the event loop on a flush.
 * A database that cannot use WAL (in memory) stays at synchronous=FULL.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AmtError } from '../errors.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import * as jobs from './sqlite-jobs.js';
import { newMessageRecord, attachmentRef } from './records.js';
import { applySqliteMigrations } from './sqlite-migrations.js';
import { StoreThread } from './sqlite-thread.js';
import { WalSync, type WalSyncOptions } from './wal-sync.js';
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
import {
  prepareStatements,
  type AttachmentRow,
  type AttemptRow,
  type HistoryRow,
  type MessageRow,
  type Params,
  type Seq,
  type Statements,
  type Stmt,
} from './sqlite-statements.js';
import { storableText, storableValue } from './storable.js';

const BUSY_TIMEOUT_MS = 5000;
/** rememberOnce purges expired entries on every this many calls. */
const PURGE_EVERY = 100;

export class SqliteStore implements Store {
  private statements: Statements | undefined;
  /** Listing statements differ only by which filters are set; each shape is prepared once. */
  private readonly listings = new Map<string, Stmt>();
  private rememberCalls = 0;

  private constructor(
    private readonly db: Database.Database,
    /** Flushes the WAL after durable commits; undefined when SQLite syncs in COMMIT itself. */
    private readonly wal: WalSync | undefined,
    /** Runs intake commits, claims and outcomes on a connection of its own (see sqlite-thread.ts). */
    private readonly thread: StoreThread | undefined,
  ) {}

  /**
   * Opens (or creates) the database file, creating its directory. Call `migrate()` before use.
   * `busyTimeoutMs`: how long a write waits for another process's transaction before the call
   * fails with `AMT_STORE_UNAVAILABLE`. `writerThread`: run `accept`, `claimDue`, `complete`,
   * `acceptAndComplete` and `releaseLeases` on a store thread (see sqlite-thread.ts); ignored for
   * a database in memory.
   */
  static open(
    file: string,
    options: { busyTimeoutMs?: number; walSync?: WalSyncOptions; writerThread?: boolean } = {},
  ): SqliteStore {
    const busyTimeoutMs = options.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const db = new Database(file, { timeout: busyTimeoutMs });
    let wal: WalSync | undefined;
    try {
      // busy_timeout first: switching to WAL needs a lock another process may briefly hold.
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      const mode = switchToWal(db, busyTimeoutMs);
      if (mode === 'wal' && !db.memory) {
        db.pragma('synchronous = NORMAL');
        wal = new WalSync(`${path.resolve(db.name)}-wal`, options.walSync);
      } else {
        db.pragma('synchronous = FULL');
      }
      db.pragma('foreign_keys = ON');
      // Deleted and overwritten content is zeroed in the file, so a purged payload (personal
      // data) does not linger in free pages until they happen to be reused.
      db.pragma('secure_delete = ON');
    } catch (err) {
      db.close();
      throw unavailable(err);
    }
    const thread =
      options.writerThread && wal
        ? new StoreThread({ file: path.resolve(db.name), busyTimeoutMs: options.busyTimeoutMs })
        : undefined;
    return new SqliteStore(db, wal, thread);
  }

  private get sql(): Statements {
    this.statements ??= prepareStatements(this.db);
    return this.statements;
  }

  async migrate(): Promise<void> {
    await this.write(() => applySqliteMigrations(this.db));
  }

  async ping(): Promise<void> {
    guard(() => this.db.prepare('SELECT 1').get());
    await this.thread?.ping();
  }

  async close(): Promise<void> {
    await this.thread?.close();
    await this.wal?.close();
    if (this.db.open) this.db.close();
  }

  async accept(messages: readonly NewMessage[]): Promise<AcceptResult[]> {
    if (this.thread) return this.thread.accept(messages);
    return this.write(() => messages.map((m) => this.acceptOne(m)));
  }

  private acceptOne(m: NewMessage): AcceptResult {
    const sql = this.sql;
    if (m.idempotency) {
      const hit = sql.findByKey.get(m.clientId, m.idempotency.key) as
        { id: string; request_hash: string } | undefined;
      if (hit) {
        if (hit.request_hash !== m.idempotency.requestHash) return { kind: 'conflict', messageId: hit.id };
        return { kind: 'existing', message: this.load(hit.id)! };
      }
    }
    // The record says what a new message is (received, or claimed: NewMessage.claim); the row
    // is written from it.
    const message = newMessageRecord(m);
    sql.insertMessage.run({
      id: message.id,
      deliveryId: message.deliveryId,
      direction: message.direction,
      tenantId: message.tenantId,
      ars: message.ars,
      service: message.service,
      reference: message.reference ?? null,
      clientId: message.clientId,
      routeId: message.routeId,
      target: message.target,
      status: message.status,
      attempts: message.attempts,
      leaseOwner: message.leaseOwner ?? null,
      leaseExpiresAt: message.leaseExpiresAt ?? null,
      receivedAt: m.receivedAt,
      key: m.idempotency?.key ?? null,
      requestHash: m.idempotency?.requestHash ?? null,
    });
    sql.insertPayload.run(m.id, m.payload);
    message.attachments.forEach((a, position) =>
      sql.insertAttachment.run(m.id, position, a.sha256, a.size, a.filename, a.mediaType, a.purpose ?? null),
    );
    this.addHistory(m.id, m.receivedAt, 'received', 'received', undefined);
    if (message.leaseOwner !== undefined)
      this.addHistory(m.id, m.receivedAt, 'delivering', 'claimed', { owner: message.leaseOwner, attempt: 1 });
    return { kind: 'created', message };
  }

  async findByIdempotencyKey(
    clientId: string,
    key: string,
  ): Promise<{ messageId: string; requestHash: string } | undefined> {
    return guard(() => {
      const hit = this.sql.findByKey.get(clientId, key) as { id: string; request_hash: string } | undefined;
      return hit && { messageId: hit.id, requestHash: hit.request_hash };
    });
  }

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    return guard(() => this.load(id));
  }

  async history(id: string): Promise<HistoryEvent[]> {
    return guard(() =>
      (this.sql.history.all(id) as HistoryRow[]).map((r) => ({
        seq: r.seq,
        at: r.at,
        status: r.status,
        event: r.event,
        detail: r.detail === null ? undefined : (JSON.parse(r.detail) as Record<string, unknown>),
      })),
    );
  }

  async attempts(id: string): Promise<AttemptRecord[]> {
    return guard(() =>
      (this.sql.attempts.all(id) as AttemptRow[]).map((r) => ({
        n: r.n,
        startedAt: r.started_at,
        endedAt: r.ended_at,
        target: r.target,
        outcome: r.outcome,
        error: parseError(r.error),
        remoteReference: r.remote_reference ?? undefined,
      })),
    );
  }

  async listMessages(filter: MessageFilter): Promise<Page<MessageRecord>> {
    return guard(() => {
      const rows = this.list(filter, false) as MessageRow[];
      return this.page(rows, filter.limit, (row) => this.toRecord(row));
    });
  }

  async deadLetters(filter: MessageFilter): Promise<Page<DeadLetter>> {
    return guard(() => {
      const rows = this.list(filter, true) as (MessageRow & { dl_died_at: number; dl_error: string })[];
      return this.page(rows, filter.limit, (row) => ({
        message: this.toRecord(row),
        diedAt: row.dl_died_at,
        error: parseError(row.dl_error)!,
      }));
    });
  }

  async stats(): Promise<QueueStats> {
    return guard(() => {
      const byStatus: Record<MessageStatus, number> = {
        received: 0,
        delivering: 0,
        retrying: 0,
        delivered: 0,
        dead: 0,
      };
      for (const row of this.sql.stats.all() as { status: MessageStatus; n: number }[])
        byStatus[row.status] = row.n;
      return { byStatus };
    });
  }

  async claimDue(owner: string, limit: number, leaseMs: number, now: number): Promise<MessageRecord[]> {
    if (limit <= 0) return [];
    if (this.thread) return this.thread.claimDue(owner, limit, leaseMs, now);
    return this.writeUnsynced(() => {
      const sql = this.sql;
      const candidates = sql.claimCandidates.all({ now, limit }) as Pick<
        MessageRow,
        'id' | 'status' | 'lease_owner'
      >[];
      return candidates.map((candidate) => {
        const row = sql.claim.get({
          id: candidate.id,
          owner,
          expiresAt: now + leaseMs,
          now,
        }) as MessageRow;
        const attempt = row.attempt_seq;
        if (candidate.status === 'delivering') {
          const detail = { owner, previousOwner: candidate.lease_owner, attempt };
          this.addHistory(row.id, now, 'delivering', 'reclaimed', detail);
        } else {
          this.addHistory(row.id, now, 'delivering', 'claimed', { owner, attempt });
        }
        return this.toRecord(row);
      });
    });
  }

  async complete(outcomes: readonly Outcome[], now: number): Promise<boolean[]> {
    // The store thread's own store makes the text storable, where it writes.
    if (this.thread) return this.thread.complete(outcomes, now);
    const storable = storableValue(outcomes);
    return this.write(() => storable.map((o) => this.completeOne(o, now)));
  }

  async acceptAndComplete(
    messages: readonly NewMessage[],
    outcomes: readonly Outcome[],
    now: number,
  ): Promise<{ accepted: AcceptResult[]; completed: boolean[] }> {
    if (this.thread) return this.thread.acceptAndComplete(messages, outcomes, now);
    const storable = storableValue(outcomes);
    return this.write(() => ({
      accepted: messages.map((m) => this.acceptOne(m)),
      completed: storable.map((o) => this.completeOne(o, now)),
    }));
  }

  private completeOne(o: Outcome, now: number): boolean {
    const sql = this.sql;
    const key = { id: o.messageId, owner: o.leaseOwner, now };
    const attemptRow = (n: number, error: ErrorInfo | undefined, remoteReference: string | undefined) => ({
      id: o.messageId,
      n,
      startedAt: o.attempt?.startedAt,
      endedAt: o.attempt?.endedAt,
      target: o.attempt?.target,
      error: error === undefined ? null : JSON.stringify(error),
      remoteReference: remoteReference ?? null,
    });
    switch (o.kind) {
      case 'delivered': {
        const hit = sql.delivered.get({ ...key, remoteReference: o.remoteReference ?? null }) as
          Seq | undefined;
        if (!hit) return false;
        const n = hit.attempt_seq;
        sql.insertAttempt.run({ ...attemptRow(n, undefined, o.remoteReference), outcome: 'delivered' });
        const detail = {
          ...o.detail,
          attempt: n,
          ...(o.remoteReference === undefined ? {} : { remoteReference: o.remoteReference }),
        };
        this.addHistory(o.messageId, now, 'delivered', 'delivered', detail);
        return true;
      }
      case 'retry': {
        const hit = sql.retry.get({ ...key, runAt: o.runAt, error: JSON.stringify(o.error) }) as
          Seq | undefined;
        if (!hit) return false;
        const n = hit.attempt_seq;
        sql.insertAttempt.run({ ...attemptRow(n, o.error, undefined), outcome: 'retry' });
        const detail = { attempt: n, code: o.error.code, message: o.error.message, runAt: o.runAt };
        this.addHistory(o.messageId, now, 'retrying', 'attempt-failed', detail);
        return true;
      }
      case 'dead': {
        const error = JSON.stringify(o.error);
        const hit = sql.dead.get({ ...key, error }) as Seq | undefined;
        if (!hit) return false;
        const n = hit.attempt_seq;
        if (o.attempt) sql.insertAttempt.run({ ...attemptRow(n, o.error, undefined), outcome: 'failed' });
        sql.insertDeadLetter.run(o.messageId, now, error);
        const detail = { ...(o.attempt ? { attempt: n } : {}), code: o.error.code, message: o.error.message };
        this.addHistory(o.messageId, now, 'dead', 'dead-lettered', detail);
        return true;
      }
    }
  }

  async releaseLeases(owner: string, now: number): Promise<number> {
    if (this.thread) return this.thread.releaseLeases(owner, now);
    return this.write(() => {
      const released = this.sql.release.all({ owner, now }) as { id: string }[];
      for (const { id } of released) this.addHistory(id, now, 'retrying', 'released', { owner });
      return released.length;
    });
  }

  async replay(
    ids: readonly string[],
    now: number,
    by: string,
  ): Promise<{ replayed: string[]; notReplayable: string[] }> {
    return this.write(() => {
      const replayed: string[] = [];
      const notReplayable: string[] = [];
      for (const id of ids) {
        if (!this.sql.replay.get({ id, now })) {
          notReplayable.push(id);
          continue;
        }
        this.sql.markReplayed.run({ id, now, by });
        this.addHistory(id, now, 'received', 'replayed', { by });
        replayed.push(id);
      }
      return { replayed, notReplayable };
    });
  }

  async recordRemoteStatus(
    messageId: string,
    status: string,
    detail: Record<string, unknown> | undefined,
    now: number,
  ): Promise<boolean> {
    status = storableText(status);
    return this.write(() => {
      if (this.sql.remoteStatus.run({ id: messageId, status, now }).changes === 0) return false;
      this.addHistory(messageId, now, 'delivered', 'remote-status', { ...storableValue(detail), status });
      return true;
    });
  }

  async awaitingRemoteStatus(
    target: string,
    finalStatuses: readonly string[],
    limit: number,
  ): Promise<MessageRecord[]> {
    if (limit <= 0) return [];
    return guard(() => {
      const rows = this.sql.awaitingRemote.all({
        target,
        finals: JSON.stringify(finalStatuses),
        limit,
      }) as MessageRow[];
      return rows.map((row) => this.toRecord(row));
    });
  }

  async recordStatus(
    given: StatusReport,
    followUps: (change: number) => readonly NewMessage[],
    now: number,
  ): Promise<StatusReportResult> {
    const report = storableValue(given);
    return this.write((): StatusReportResult => {
      const sql = this.sql;
      const id = report.messageId;
      const message = sql.statusOf.get(id) as Pick<MessageRow, 'status' | 'remote_status'> | undefined;
      if (!message) return { kind: 'unknown' };
      if (message.status !== 'delivered') return { kind: 'not-delivered' };
      const current = sql.citizenStatus.get(id) as CitizenStatusRecord | undefined;
      const { citizen } = report;
      const sameCitizen =
        citizen === undefined || (current?.status === citizen.status && current.text === citizen.text);
      const acceptAll = (messages: readonly NewMessage[]): number =>
        messages.filter((m) => this.acceptOne(m).kind === 'created').length;
      if (message.remote_status === report.remoteStatus && sameCitizen) {
        const again = citizen !== undefined && current !== undefined ? followUps(current.change) : [];
        return { kind: 'repeated', followUpsCreated: acceptAll(again) };
      }
      sql.remoteStatus.run({ id, status: report.remoteStatus, now });
      let change: number | undefined;
      if (citizen !== undefined && !sameCitizen) {
        change = (current?.change ?? 0) + 1;
        sql.setCitizenStatus.run({ id, status: citizen.status, text: citizen.text, change, now });
      }
      this.addHistory(id, now, 'delivered', 'remote-status', {
        ...report.detail,
        status: report.remoteStatus,
        ...(citizen === undefined ? {} : { citizenStatus: citizen.status, citizenText: citizen.text }),
      });
      return {
        kind: 'recorded',
        change,
        followUpsCreated: change === undefined ? 0 : acceptAll(followUps(change)),
      };
    });
  }

  async citizenStatus(messageId: string): Promise<CitizenStatusRecord | undefined> {
    return guard(() => {
      const row = this.sql.citizenStatus.get(messageId) as CitizenStatusRecord | undefined;
      return row && { status: row.status, text: row.text, change: row.change, at: row.at };
    });
  }

  async findMessages(lookup: MessageLookup, limit: number): Promise<MessageRecord[]> {
    if (limit <= 0) return [];
    return guard(() => {
      const statement = 'deliveryId' in lookup ? this.sql.byDeliveryId : this.sql.byRemoteReference;
      const key = 'deliveryId' in lookup ? lookup.deliveryId : lookup.remoteReference;
      const rows = statement.all({ key, target: lookup.target ?? null, limit }) as MessageRow[];
      return rows.map((row) => this.toRecord(row));
    });
  }

  async rememberOnce(namespace: string, key: string, expiresAt: number, now: number): Promise<boolean> {
    // A used-up assertion or nonce must stay used up after a power failure.
    return this.write(() => {
      if (this.rememberCalls++ % PURGE_EVERY === 0) this.sql.purgeRemembered.run(now);
      return this.sql.remember.run({ namespace, key, expiresAt, now }).changes === 1;
    });
  }

  // scheduled jobs and retention: the statements live in sqlite-jobs.ts

  async claimJobOccurrence(
    job: string,
    scheduledAt: number,
    owner: string,
    leaseMs: number,
    now: number,
    trigger: JobTrigger = 'schedule',
  ): Promise<JobClaim | undefined> {
    return this.write(() => jobs.claimJobOccurrence(this.db, job, scheduledAt, owner, leaseMs, now, trigger));
  }

  async heartbeatJobRun(runId: string, owner: string, leaseMs: number, now: number): Promise<boolean> {
    return this.write(() => jobs.heartbeatJobRun(this.db, runId, owner, now + leaseMs));
  }

  async finishJobRun(runId: string, owner: string, outcome: JobRunOutcome, now: number): Promise<boolean> {
    return this.write(() => jobs.finishJobRun(this.db, runId, owner, storableValue(outcome), now));
  }

  async jobRuns(job: string, limit: number, cursor?: string): Promise<Page<JobRun>> {
    return guard(() => jobs.jobRuns(this.db, job, limit, cursor));
  }

  async runningJobRuns(job: string): Promise<JobRun[]> {
    return guard(() => jobs.runningJobRuns(this.db, job));
  }

  async lastJobOccurrence(job: string): Promise<number | undefined> {
    return guard(() => jobs.lastJobOccurrence(this.db, job));
  }

  async purgePayloads(filter: PurgeFilter, now: number): Promise<PurgeResult> {
    return this.write(() => jobs.purgePayloads(this.db, filter, now));
  }

  async referencedAttachments(sha256s: readonly string[]): Promise<Set<string>> {
    return guard(() => jobs.referencedAttachments(this.db, sha256s));
  }

  async deadLetterCounts(since: number): Promise<DeadLetterCount[]> {
    return guard(() => jobs.deadLetterCounts(this.db, since));
  }

  /**
   * Runs `work` in one writing transaction (BEGIN IMMEDIATE): all of it or none of it, and
   * resolves once the commit is on disk.
   */
  private async write<T>(work: () => T): Promise<T> {
    const result = this.writeUnsynced(work);
    if (this.wal) {
      try {
        await this.wal.sync();
      } catch (cause) {
        // Committed but perhaps not durable: the caller must not report success.
        throw new AmtError('AMT_STORE_UNAVAILABLE', 'SQLite store: the WAL could not be flushed to disk', {
          cause,
        });
      }
    }
    return result;
  }

  /**
   * Like `write`, but without waiting for the disk. Only for changes whose loss on power
   * failure is harmless — a claim: the lease then never existed and the message is claimed
   * again. A process crash loses nothing (the WAL is in the OS's cache), and the next durable
   * commit (an intake, an outcome) flushes the whole WAL, this transaction included, so no
   * later durable state can depend on a lost claim.
   */
  private writeUnsynced<T>(work: () => T): T {
    return guard(() => this.db.transaction(work).immediate());
  }

  private addHistory(
    id: string,
    at: number,
    status: MessageStatus,
    event: string,
    detail: Record<string, unknown> | undefined,
  ): void {
    this.sql.insertHistory.run({
      id,
      at,
      status,
      event,
      detail: detail === undefined ? null : JSON.stringify(detail),
    });
  }

  private load(id: string): MessageRecord | undefined {
    const row = this.sql.message.get(id) as MessageRow | undefined;
    return row && this.toRecord(row);
  }

  /** The payload of a message whose row says it is kept apart (see migration 4). */
  private payloadOf(id: string): string {
    const found = this.sql.payload.get(id) as { payload: string } | undefined;
    if (found === undefined) throw new AmtError('AMT_INTERNAL', `message ${id} has no stored payload`);
    return found.payload;
  }

  private toRecord(row: MessageRow): MessageRecord {
    const attachments = (this.sql.attachments.all(row.id) as AttachmentRow[]).map((a) =>
      attachmentRef({
        sha256: a.sha256,
        size: a.size,
        filename: a.filename,
        mediaType: a.media_type,
        purpose: a.purpose ?? undefined,
      }),
    );
    return {
      id: row.id,
      deliveryId: row.delivery_id,
      direction: row.direction,
      tenantId: row.tenant_id,
      ars: row.ars,
      service: row.service,
      reference: row.reference ?? undefined,
      clientId: row.client_id,
      routeId: row.route_id,
      target: row.target,
      status: row.status,
      payload: row.payload === '' ? this.payloadOf(row.id) : row.payload,
      attachments,
      attempts: row.attempts,
      runAt: row.run_at,
      leaseOwner: row.lease_owner ?? undefined,
      leaseExpiresAt: row.lease_expires_at ?? undefined,
      remoteReference: row.remote_reference ?? undefined,
      remoteStatus: row.remote_status ?? undefined,
      lastError: parseError(row.last_error),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  /** Runs a newest-first listing, one row more than the limit to learn whether a next page exists. */
  private list(filter: MessageFilter, deadOnly: boolean): unknown[] {
    const limit = Math.max(0, Math.floor(filter.limit));
    if (limit === 0 || (filter.tenantIds !== undefined && filter.tenantIds.length === 0)) return [];
    const where: string[] = [];
    const params: Params = { limit: limit + 1 };
    if (deadOnly) where.push(`m.status = 'dead'`);
    if (filter.tenantIds !== undefined) {
      where.push('m.tenant_id IN (SELECT value FROM json_each(@tenantIds))');
      params.tenantIds = JSON.stringify(filter.tenantIds);
    }
    const equal = { service: 'm.service', status: 'm.status', reference: 'm.reference' } as const;
    for (const [field, column] of Object.entries(equal) as [keyof typeof equal, string][]) {
      if (filter[field] === undefined) continue;
      where.push(`${column} = @${field}`);
      params[field] = filter[field];
    }
    if (filter.since !== undefined) {
      where.push('m.created_at >= @since');
      params.since = filter.since;
    }
    if (filter.until !== undefined) {
      where.push('m.created_at < @until');
      params.until = filter.until;
    }
    if (filter.cursor !== undefined) {
      const after = decodeCursor(filter.cursor);
      where.push('(m.created_at, m.id) < (@cursorCreatedAt, @cursorId)');
      params.cursorCreatedAt = after.createdAt;
      params.cursorId = after.id;
    }
    const from = deadOnly
      ? `SELECT m.*, d.died_at AS dl_died_at, d.error AS dl_error FROM messages m
         JOIN dead_letters d ON d.id = (SELECT MAX(id) FROM dead_letters WHERE message_id = m.id)`
      : 'SELECT m.* FROM messages m';
    const sql = `${from}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}
      ORDER BY m.created_at DESC, m.id DESC LIMIT @limit`;
    let statement = this.listings.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.listings.set(sql, statement);
    }
    return statement.all(params);
  }

  private page<R extends MessageRow, T>(rows: R[], limit: number, toItem: (row: R) => T): Page<T> {
    const more = rows.length > limit;
    const shown = more ? rows.slice(0, limit) : rows;
    const last = shown.at(-1);
    return {
      items: shown.map(toItem),
      nextCursor: more && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : undefined,
    };
  }
}

function parseError(text: string | null): ErrorInfo | undefined {
  return text === null ? undefined : (JSON.parse(text) as ErrorInfo);
}

/** SQLite result codes that mean "the store cannot work right now", not "this request is wrong". */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL|NOTADB|CORRUPT)/;

function unavailable(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNAVAILABLE.test(code)) {
    return new AmtError('AMT_STORE_UNAVAILABLE', `SQLite store: ${code}`, { cause: err });
  }
  return err;
}

/**
 * Switches the file to WAL mode (a no-op when another process already did). The switch needs an
 * exclusive lock, and SQLite answers SQLITE_BUSY at once, without its busy handler, while other
 * processes open the same new file: it is retried until `busyTimeoutMs` has passed.
 */
function switchToWal(db: Database.Database, busyTimeoutMs: number): unknown {
  const deadline = Date.now() + busyTimeoutMs;
  for (;;) {
    try {
      if (db.pragma('journal_mode', { simple: true }) === 'wal') return 'wal';
      return db.pragma('journal_mode = WAL', { simple: true });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      // Open is synchronous: a short blocking pause, only while the file is being created.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

function guard<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw unavailable(err);
  }
}
