/**
 * Schema of the SQLite store as an append-only list of migrations. A released migration is never
 * edited; a change of schema is a new entry with the next version.
 *
 * Tables are STRICT: a value of the wrong type is an error instead of a silent conversion, so an
 * ARS like `059130000000` can never end up as the integer 59130000000. Timestamps are INTEGER
 * epoch milliseconds.
 */
import type Database from 'better-sqlite3';

export interface SqliteMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'messages, history, attempts, dead letters, replay protection',
    sql: `
CREATE TABLE messages (
  id                TEXT PRIMARY KEY,
  delivery_id       TEXT NOT NULL,
  direction         TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
  tenant_id         TEXT NOT NULL,
  ars               TEXT NOT NULL,
  service           TEXT NOT NULL,
  reference         TEXT,
  client_id         TEXT NOT NULL,
  route_id          TEXT NOT NULL,
  target            TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('received', 'delivering', 'retrying', 'delivered', 'dead')),
  payload           TEXT NOT NULL,
  attempts          INTEGER NOT NULL,
  -- Counts claims over the message's whole life and numbers its attempt rows; unlike
  -- attempts it is not reset by a replay, so attempt numbers are never reused.
  attempt_seq       INTEGER NOT NULL,
  run_at            INTEGER NOT NULL,
  lease_owner       TEXT,
  lease_expires_at  INTEGER,
  remote_reference  TEXT,
  remote_status     TEXT,
  last_error        TEXT,
  idempotency_key   TEXT,
  request_hash      TEXT,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX messages_idempotency ON messages (client_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- The claim query reads these two partial indexes in (run_at, id) order; their WHERE clauses
-- are repeated verbatim in the query so the planner may use them.
CREATE INDEX messages_due ON messages (run_at, id) WHERE status IN ('received', 'retrying');
CREATE INDEX messages_lease_expiry ON messages (lease_expires_at) WHERE status = 'delivering';
CREATE INDEX messages_lease_owner ON messages (lease_owner) WHERE status = 'delivering';

CREATE INDEX messages_newest ON messages (created_at, id);
CREATE INDEX messages_tenant_newest ON messages (tenant_id, created_at, id);
CREATE INDEX messages_status_newest ON messages (status, created_at, id);
CREATE INDEX messages_reference ON messages (reference) WHERE reference IS NOT NULL;
CREATE INDEX messages_awaiting_remote ON messages (target, created_at, id) WHERE status = 'delivered';

CREATE TABLE message_attachments (
  message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  sha256      TEXT NOT NULL,
  size        INTEGER NOT NULL,
  filename    TEXT NOT NULL,
  media_type  TEXT NOT NULL,
  purpose     TEXT,
  PRIMARY KEY (message_id, position)
) STRICT, WITHOUT ROWID;
-- Tells whether a content-addressed attachment file is still referenced.
CREATE INDEX message_attachments_sha256 ON message_attachments (sha256);

CREATE TABLE message_history (
  message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  at          INTEGER NOT NULL,
  status      TEXT NOT NULL,
  event       TEXT NOT NULL,
  detail      TEXT,
  PRIMARY KEY (message_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE message_attempts (
  message_id        TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  n                 INTEGER NOT NULL,
  started_at        INTEGER NOT NULL,
  ended_at          INTEGER NOT NULL,
  target            TEXT NOT NULL,
  outcome           TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
  error             TEXT,
  remote_reference  TEXT,
  PRIMARY KEY (message_id, n)
) STRICT, WITHOUT ROWID;

CREATE TABLE dead_letters (
  id           INTEGER PRIMARY KEY,
  message_id   TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  died_at      INTEGER NOT NULL,
  error        TEXT NOT NULL,
  replayed_at  INTEGER,
  replayed_by  TEXT
) STRICT;
CREATE INDEX dead_letters_message ON dead_letters (message_id, id);

CREATE TABLE remembered_keys (
  namespace   TEXT NOT NULL,
  key         TEXT NOT NULL,
  expires_at  INTEGER NOT NULL,
  PRIMARY KEY (namespace, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX remembered_keys_expiry ON remembered_keys (expires_at);
`,
  },
  {
    version: 2,
    name: 'citizen status; messages by delivery id and remote reference',
    sql: `
CREATE TABLE citizen_status (
  message_id  TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  status      TEXT NOT NULL,
  text        TEXT NOT NULL,
  change      INTEGER NOT NULL,
  at          INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX messages_delivery_id ON messages (delivery_id);
CREATE INDEX messages_remote_reference ON messages (remote_reference) WHERE remote_reference IS NOT NULL;
`,
  },
  {
    version: 3,
    name: 'scheduled job runs; retention purge index',
    sql: `
-- One row per run of a job occurrence; a takeover after an expired lease adds a row with the
-- next attempt. The unique key makes exactly one claimer win each (occurrence, attempt).
CREATE TABLE job_runs (
  id                TEXT PRIMARY KEY,
  job               TEXT NOT NULL,
  scheduled_at      INTEGER NOT NULL,
  attempt           INTEGER NOT NULL,
  triggered_by      TEXT NOT NULL CHECK (triggered_by IN ('schedule', 'missed', 'manual')),
  owner             TEXT NOT NULL,
  status            TEXT NOT NULL
    CHECK (status IN ('running', 'succeeded', 'failed', 'timed-out', 'skipped', 'abandoned')),
  started_at        INTEGER NOT NULL,
  lease_expires_at  INTEGER,
  finished_at       INTEGER,
  items_processed   INTEGER,
  error             TEXT,
  takeover_of       TEXT
) STRICT;
CREATE UNIQUE INDEX job_runs_occurrence ON job_runs (job, scheduled_at, attempt);
CREATE INDEX job_runs_running ON job_runs (job, scheduled_at) WHERE status = 'running';

-- Retention purge reads final messages oldest change first; the predicate is repeated verbatim
-- in the query (with the literal marker) so the planner may use this index.
CREATE INDEX messages_purgeable ON messages (updated_at, id)
  WHERE status IN ('delivered', 'dead') AND payload <> '{"amtsbote":"purged"}';
`,
  },
  {
    version: 4,
    name: 'payloads apart from the message rows',
    sql: `
-- SQLite rewrites a whole row on UPDATE, overflow pages included: with the application in the
-- message row, every claim and every outcome wrote its payload (kilobytes) again. The payload
-- now lives in a row of its own, written once. messages.payload stays as a marker: '' while
-- the payload is in message_payloads, the purge marker once it was purged (the retention
-- index and the replay check read it there).
CREATE TABLE message_payloads (
  message_id  TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  payload     TEXT NOT NULL
) STRICT;
INSERT INTO message_payloads (message_id, payload)
  SELECT id, payload FROM messages WHERE payload <> '{"amtsbote":"purged"}';
UPDATE messages SET payload = '' WHERE payload <> '{"amtsbote":"purged"}';
`,
  },
  {
    version: 5,
    name: 'no index on lease owners',
    sql: `
-- Every claim and every outcome wrote a page of this index, for a lookup made only when a
-- gateway gives its leases back on shutdown. The messages in delivery are few (the delivery
-- slots of the processes on this file); that lookup now reads them through
-- messages_lease_expiry, which holds exactly those.
DROP INDEX IF EXISTS messages_lease_owner;
`,
  },
];

/**
 * Applies the migrations this database has not seen yet, recording each in `schema_migrations`.
 * Run it inside a BEGIN IMMEDIATE transaction: a second process migrating at the same moment
 * then waits and finds everything applied.
 */
export function applySqliteMigrations(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`);
  const applied = new Set(
    db
      .prepare('SELECT version FROM schema_migrations')
      .pluck()
      .all()
      .map((v) => Number(v)),
  );
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const migration of SQLITE_MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    db.exec(migration.sql);
    record.run(migration.version, migration.name, Date.now());
  }
}
