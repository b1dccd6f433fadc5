/**
 * Schema of the PostgreSQL store as an append-only list of migrations. A released migration is
 * never edited; a change of schema is a new entry with the next version.
 *
 * Timestamps are bigint epoch milliseconds (the SQLite store keeps the same numbers, so both
 * round-trip identically). ARS, service keys and payloads are text: a leading zero is data and a
 * payload must come back byte for byte.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'messages, history, attempts, dead letters, replay protection',
    sql: `
CREATE TABLE messages (
  id                text PRIMARY KEY,
  delivery_id       text NOT NULL,
  direction         text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
  tenant_id         text NOT NULL,
  ars               text NOT NULL,
  service           text NOT NULL,
  reference         text,
  client_id         text NOT NULL,
  route_id          text NOT NULL,
  target            text NOT NULL,
  status            text NOT NULL CHECK (status IN ('received', 'delivering', 'retrying', 'delivered', 'dead')),
  payload           text NOT NULL,
  attempts          integer NOT NULL DEFAULT 0,
  run_at            bigint NOT NULL,
  lease_owner       text,
  lease_expires_at  bigint,
  remote_reference  text,
  remote_status     text,
  last_error        text,
  idempotency_key   text,
  request_hash      text,
  -- Per-message counters: sequence numbers are taken while the message row is locked by the
  -- same UPDATE that changes it, so concurrent writers never hand out the same number twice.
  history_seq       integer NOT NULL DEFAULT 0,
  attempt_seq       integer NOT NULL DEFAULT 0,
  created_at        bigint NOT NULL,
  updated_at        bigint NOT NULL
);

-- The unique constraint makes concurrent intake of the same key produce exactly one message.
CREATE UNIQUE INDEX messages_idempotency ON messages (client_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- The claim query orders by (run_at, id); the index must match that order exactly, otherwise
-- the planner sorts and queue throughput drops several times.
CREATE INDEX messages_due ON messages (run_at, id) WHERE status IN ('received', 'retrying');
CREATE INDEX messages_lease_expiry ON messages (lease_expires_at, id) WHERE status = 'delivering';
CREATE INDEX messages_lease_owner ON messages (lease_owner) WHERE status = 'delivering';

CREATE INDEX messages_newest ON messages (created_at DESC, id DESC);
CREATE INDEX messages_tenant_newest ON messages (tenant_id, created_at DESC, id DESC);
CREATE INDEX messages_reference ON messages (reference) WHERE reference IS NOT NULL;
CREATE INDEX messages_status_newest ON messages (status, created_at DESC, id DESC);
CREATE INDEX messages_awaiting_remote ON messages (target, created_at, id) WHERE status = 'delivered';

CREATE TABLE message_attachments (
  message_id  text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  position    integer NOT NULL,
  sha256      text NOT NULL,
  size        bigint NOT NULL,
  filename    text NOT NULL,
  media_type  text NOT NULL,
  purpose     text,
  PRIMARY KEY (message_id, position)
);
-- Finds whether content-addressed attachment files are still referenced.
CREATE INDEX message_attachments_sha256 ON message_attachments (sha256);

CREATE TABLE message_history (
  message_id  text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  seq         integer NOT NULL,
  at          bigint NOT NULL,
  status      text NOT NULL,
  event       text NOT NULL,
  detail      text,
  PRIMARY KEY (message_id, seq)
);

CREATE TABLE message_attempts (
  message_id        text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  n                 integer NOT NULL,
  started_at        bigint NOT NULL,
  ended_at          bigint NOT NULL,
  target            text NOT NULL,
  outcome           text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
  error             text,
  remote_reference  text,
  PRIMARY KEY (message_id, n)
);

CREATE TABLE dead_letters (
  id           bigserial PRIMARY KEY,
  message_id   text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  died_at      bigint NOT NULL,
  error        text NOT NULL,
  replayed_at  bigint,
  replayed_by  text
);
CREATE INDEX dead_letters_message ON dead_letters (message_id, id DESC);

CREATE TABLE remembered_keys (
  namespace   text NOT NULL,
  key         text NOT NULL,
  expires_at  bigint NOT NULL,
  PRIMARY KEY (namespace, key)
);
CREATE INDEX remembered_keys_expiry ON remembered_keys (expires_at);
`,
  },
  {
    version: 2,
    name: 'citizen status; messages by delivery id and remote reference',
    sql: `
CREATE TABLE citizen_status (
  message_id  text PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  status      text NOT NULL,
  text        text NOT NULL,
  change      integer NOT NULL,
  at          bigint NOT NULL
);

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
  id                text PRIMARY KEY,
  job               text NOT NULL,
  scheduled_at      bigint NOT NULL,
  attempt           integer NOT NULL,
  triggered_by      text NOT NULL CHECK (triggered_by IN ('schedule', 'missed', 'manual')),
  owner             text NOT NULL,
  status            text NOT NULL
    CHECK (status IN ('running', 'succeeded', 'failed', 'timed-out', 'skipped', 'abandoned')),
  started_at        bigint NOT NULL,
  lease_expires_at  bigint,
  finished_at       bigint,
  items_processed   bigint,
  error             text,
  takeover_of       text
);
CREATE UNIQUE INDEX job_runs_occurrence ON job_runs (job, scheduled_at, attempt);
CREATE INDEX job_runs_running ON job_runs (job, scheduled_at) WHERE status = 'running';

-- Retention purge reads final messages oldest change first; the predicate is repeated verbatim
-- in the query (with the literal marker) so the planner may use this index.
CREATE INDEX messages_purgeable ON messages (updated_at, id)
  WHERE status IN ('delivered', 'dead') AND payload <> '{"amtsbote":"purged"}';
`,
  },
];
