/**
 * Moves an installation from the embedded SQLite store to PostgreSQL without losing anything.
 *
 * A store-internal tool: it reads SQLite tables and writes PostgreSQL tables directly. Every table
 * both schemas have is copied column by column (by name), in batches of one transaction each, in
 * foreign-key order; then row counts and a checksum per table are compared. Tables that later
 * migrations add to both stores are therefore copied without a change here. What this module
 * knows about particular tables — the lease of a message in delivery, the PostgreSQL-only history
 * counter — is in TABLE_RULES and nowhere else.
 *
 * The source is read in one read transaction, so the copy is of one moment even if something
 * writes meanwhile; the source gateway should nevertheless be stopped, and a recent lease or
 * write is reported as a warning.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { StoreConfig } from '../config/types.js';
import { MIGRATIONS } from './postgres-migrations.js';
import { PostgresStore } from './postgres.js';
import { SQLITE_MIGRATIONS, applySqliteMigrations } from './sqlite-migrations.js';

export interface CopyOptions {
  /** Rows per batch (and per transaction). Default 500. */
  readonly batchSize?: number;
  /** The clock for released leases and the recent-activity check (tests). */
  readonly now?: () => number;
  /** A lease or write newer than this (ms before now) means the source gateway may still run. Default 5 min. */
  readonly recentActivityMs?: number;
  /** Where the source's attachment files are; default `attachments/` next to the SQLite file. */
  readonly attachmentsDir?: string;
  /** Called after every committed batch. */
  readonly onProgress?: (table: string, copied: number, total: number) => void;
}

export interface TableCopyResult {
  readonly table: string;
  readonly sourceRows: number;
  /** Rows the copy wrote that the source did not have (history events of released leases). */
  readonly addedRows: number;
  readonly targetRows: number;
  /** Order-independent SHA-256 sum over the rows as they should be in the target, hex. */
  readonly expectedChecksum: string;
  readonly targetChecksum: string;
  readonly matches: boolean;
}

export interface CopySummary {
  readonly source: string;
  readonly target: string;
  readonly sourceSchemaVersion: number;
  readonly targetSchemaVersion: number;
  readonly tables: readonly TableCopyResult[];
  /** Messages that were `delivering` in the source and are `retrying` in the target. */
  readonly releasedLeases: number;
  readonly warnings: readonly string[];
  readonly notes: readonly string[];
  readonly seconds: number;
}

export type StoreCopyRefusal =
  | 'source-missing'
  | 'source-newer'
  | 'target-not-empty'
  | 'schema-mismatch'
  | 'copy-failed'
  | 'verification-failed';

/** The copy refused to start, failed, or found a difference; `reason` tells which. */
export class StoreCopyError extends Error {
  constructor(
    readonly reason: StoreCopyRefusal,
    message: string,
    readonly summary?: CopySummary,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreCopyError';
  }
}

type Row = Record<string, unknown>;

interface CopyContext {
  readonly now: number;
  readonly released: { messageId: string; seq: bigint; owner: unknown }[];
}

interface TableRule {
  /** Values the target needs and the source does not store: SQL over the source row `t`. */
  readonly derived?: Readonly<Record<string, string>>;
  /** Source columns whose value is taken from this SQL over the source row `t` instead. */
  readonly replaced?: Readonly<Record<string, string>>;
  /** Adjusts a source row (SQLite values, by column name) before it is written. */
  readonly transform?: (row: Row, ctx: CopyContext) => Row;
  /** Rows written after the source's rows. */
  readonly added?: (ctx: CopyContext) => Row[];
}

/** Everything the copy knows about particular tables. */
const TABLE_RULES: Readonly<Record<string, TableRule>> = {
  messages: {
    // SQLite keeps the payload in a table of its own (its row holds '' or the purge marker).
    replaced: {
      payload: 'COALESCE((SELECT p.payload FROM message_payloads p WHERE p.message_id = t.id), t.payload)',
    },
    // PostgreSQL numbers history rows from a counter on the message row; SQLite takes MAX(seq) + 1.
    derived: {
      history_seq: '(SELECT COALESCE(MAX(h.seq), 0) FROM message_history h WHERE h.message_id = t.id)',
    },
    // No worker holds a lease across stores: a message in delivery is released as on shutdown.
    // Its delivery id stays, so a receiver that got it before the stop sees the same id again.
    transform: (row, ctx) => {
      if (row.status !== 'delivering') return row;
      const seq = BigInt(row.history_seq as bigint | number) + 1n;
      ctx.released.push({ messageId: row.id as string, seq, owner: row.lease_owner });
      return {
        ...row,
        status: 'retrying',
        lease_owner: null,
        lease_expires_at: null,
        run_at: BigInt(ctx.now),
        updated_at: BigInt(ctx.now),
        history_seq: seq,
      };
    },
  },
  message_history: {
    added: (ctx) =>
      ctx.released.map((r) => ({
        message_id: r.messageId,
        seq: r.seq,
        at: BigInt(ctx.now),
        status: 'retrying',
        event: 'released',
        detail: JSON.stringify({ owner: r.owner, by: 'store copy' }),
      })),
  },
};

/** Tables each store keeps for itself. */
const NOT_COPIED = new Set(['schema_migrations']);
/** SQLite tables whose rows the copy folds into another table's columns (see `replaced`). */
const FOLDED = new Set(['message_payloads']);

/** PostgreSQL accepts at most 65,535 parameters per statement. */
const MAX_PARAMETERS = 60_000;

type Category = 'integer' | 'float' | 'numeric' | 'boolean' | 'json' | 'bytea' | 'timestamp' | 'text';

interface TargetColumn {
  readonly name: string;
  readonly category: Category;
  readonly notNull: boolean;
  readonly hasDefault: boolean;
  readonly serial: boolean;
  readonly identityAlways: boolean;
}

interface TablePlan {
  readonly name: string;
  /** Source columns read as they are. */
  readonly sourceColumns: readonly string[];
  /** Derived values read from the source (column → SQL). */
  readonly derived: Readonly<Record<string, string>>;
  /** Keyset order in the source: primary key, or rowid. */
  readonly sourceKey: readonly string[];
  /** Keyset order in the target: primary key, or ctid. */
  readonly targetKey: readonly string[];
  /** Columns written, in order. */
  readonly columns: readonly TargetColumn[];
  readonly rule: TableRule;
}

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** Copies everything from the SQLite file `fromPath` into the PostgreSQL database at `toUrl`. */
export async function copySqliteToPostgres(
  fromPath: string,
  toUrl: string,
  options: CopyOptions = {},
): Promise<CopySummary> {
  const started = performance.now();
  const now = (options.now ?? Date.now)();
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 500));
  const source = openSource(fromPath);
  const target = new pg.Client({ connectionString: toUrl, application_name: 'amtsbote-store-copy' });
  try {
    await target.connect();
    await lockCopy(target);
    await refuseIfHoldsMessages(target);
    // The store migrates its own schema; the copy only fills it.
    const store = await PostgresStore.open(toUrl, { poolSize: 1 });
    try {
      await store.migrate();
    } finally {
      await store.close();
    }
    source.db.exec('BEGIN'); // one snapshot of the source for the whole copy
    try {
      const notes: string[] = [];
      const plans = await planTables(source.db, target, notes);
      await refuseIfNotEmpty(target, plans);
      const warnings = [...recentActivity(source.db, now, options.recentActivityMs ?? 300_000)];
      warnings.push(
        ...missingAttachmentFiles(source.db, options.attachmentsDir ?? defaultAttachmentsDir(fromPath)),
      );
      const ctx: CopyContext = { now, released: [] };
      const expected = new Map<string, { sourceRows: number; addedRows: number; checksum: bigint }>();
      try {
        for (const plan of plans) {
          expected.set(
            plan.name,
            await copyTable(source.db, target, plan, ctx, batchSize, options.onProgress),
          );
        }
        await resetSequences(target, plans);
      } catch (err) {
        const emptied = await truncate(target, plans).then(
          () => 'the target was emptied again',
          () => 'the target could not be emptied again: drop and recreate it before the next attempt',
        );
        const reason = err instanceof Error ? err.message : String(err);
        throw new StoreCopyError('copy-failed', `the copy failed (${reason}); ${emptied}`, undefined, {
          cause: err,
        });
      }
      const tables: TableCopyResult[] = [];
      for (const plan of plans) {
        const want = expected.get(plan.name)!;
        const got = await targetDigest(target, plan, batchSize);
        tables.push({
          table: plan.name,
          sourceRows: want.sourceRows,
          addedRows: want.addedRows,
          targetRows: got.rows,
          expectedChecksum: hex(want.checksum),
          targetChecksum: hex(got.checksum),
          matches: got.rows === want.sourceRows + want.addedRows && got.checksum === want.checksum,
        });
      }
      const summary: CopySummary = {
        source: `sqlite:${path.resolve(fromPath)}`,
        target: `postgres:${redactUrl(toUrl)}`,
        sourceSchemaVersion: source.version,
        targetSchemaVersion: await postgresSchemaVersion(target),
        tables,
        releasedLeases: ctx.released.length,
        warnings,
        notes: [...source.notes, ...notes],
        seconds: (performance.now() - started) / 1000,
      };
      const different = tables.filter((t) => !t.matches).map((t) => t.table);
      if (different.length > 0) {
        throw new StoreCopyError(
          'verification-failed',
          `the target differs from the source in ${different.join(', ')}; it was left as written for inspection`,
          summary,
        );
      }
      return summary;
    } finally {
      source.db.exec('ROLLBACK');
    }
  } finally {
    source.db.close();
    await target.end().catch(() => undefined);
  }
}

/** The schema version a store's database is at (0 when it has none yet). */
export async function storeSchemaVersion(config: StoreConfig): Promise<number> {
  if (config.type === 'sqlite') {
    if (!fs.existsSync(config.path)) return 0;
    const db = new Database(config.path, { fileMustExist: true });
    try {
      return sqliteSchemaVersion(db);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: config.url, application_name: 'amtsbote-migrate' });
  await client.connect();
  try {
    return await postgresSchemaVersion(client);
  } finally {
    await client.end();
  }
}

/** The newest schema version this build of amtsbote knows for a store type. */
export function latestSchemaVersion(type: StoreConfig['type']): number {
  const versions = (type === 'sqlite' ? SQLITE_MIGRATIONS : MIGRATIONS).map((m) => m.version);
  return Math.max(0, ...versions);
}

/** A connection URL with its password replaced, for output. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function sqliteSchemaVersion(db: Database.Database): number {
  const exists = db
    .prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`)
    .get();
  if (!exists) return 0;
  return Number(db.prepare('SELECT COALESCE(MAX(version), 0) FROM schema_migrations').pluck().get());
}

async function postgresSchemaVersion(client: pg.Client): Promise<number> {
  const exists = await client.query<{ exists: boolean }>(
    `SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`,
  );
  if (!exists.rows[0]?.exists) return 0;
  const { rows } = await client.query<{ v: number }>(
    'SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations',
  );
  return Number(rows[0]?.v ?? 0);
}

/** Opens the source, bringing an older schema up to this build's (as starting the gateway would). */
function openSource(file: string): { db: Database.Database; version: number; notes: string[] } {
  if (!fs.existsSync(file)) throw new StoreCopyError('source-missing', `no SQLite store at ${file}`);
  const db = new Database(file, { fileMustExist: true, timeout: 5000 });
  try {
    db.pragma('busy_timeout = 5000');
    const notes: string[] = [];
    const before = sqliteSchemaVersion(db);
    const latest = latestSchemaVersion('sqlite');
    if (before === 0) throw new StoreCopyError('source-missing', `${file} is not an amtsbote store`);
    if (before > latest) {
      throw new StoreCopyError(
        'source-newer',
        `the source schema (version ${before}) is newer than this amtsbote knows (${latest}); use the amtsbote that wrote it`,
      );
    }
    if (before < latest) {
      db.transaction(() => applySqliteMigrations(db)).immediate();
      notes.push(`the source schema was migrated from version ${before} to ${latest} before copying`);
    }
    return { db, version: sqliteSchemaVersion(db), notes };
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Two copies into one schema at the same time would interleave; the second waits for the first. */
async function lockCopy(target: pg.Client): Promise<void> {
  await target.query(
    `SELECT pg_advisory_lock(hashtextextended('amtsbote:store-copy:' || current_schema(), 0))`,
  );
}

async function refuseIfHoldsMessages(target: pg.Client): Promise<void> {
  const { rows } = await target.query<{ exists: boolean }>(
    `SELECT to_regclass('messages') IS NOT NULL AS exists`,
  );
  if (!rows[0]?.exists) return;
  const count = await target.query<{ n: string }>('SELECT count(*) AS n FROM messages');
  const n = Number(count.rows[0]?.n ?? 0);
  if (n > 0) {
    throw new StoreCopyError(
      'target-not-empty',
      `the target already holds ${n} message(s); a copy goes into an empty database only ` +
        `(nothing was changed — to repeat an interrupted copy, drop and recreate the target database)`,
    );
  }
}

async function refuseIfNotEmpty(target: pg.Client, plans: readonly TablePlan[]): Promise<void> {
  const filled: string[] = [];
  for (const plan of plans) {
    const { rows } = await target.query<{ any: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${quote(plan.name)}) AS any`,
    );
    if (rows[0]?.any) filled.push(plan.name);
  }
  if (filled.length > 0) {
    throw new StoreCopyError(
      'target-not-empty',
      `the target already holds rows in ${filled.join(', ')}; a copy goes into an empty database only (nothing was changed)`,
    );
  }
}

/** Decides which tables and columns are copied, refusing whatever would lose data. */
async function planTables(db: Database.Database, target: pg.Client, notes: string[]): Promise<TablePlan[]> {
  const sourceTables = (
    db
      .prepare(
        `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`,
      )
      .pluck()
      .all() as string[]
  ).filter((t) => !NOT_COPIED.has(t) && !FOLDED.has(t));
  const targetColumns = await describeTarget(target);
  const problems: string[] = [];
  const plans: TablePlan[] = [];
  for (const table of sourceTables) {
    const columns = targetColumns.get(table);
    if (!columns) {
      const rows = Number(
        db
          .prepare(`SELECT count(*) FROM ${quote(table)}`)
          .pluck()
          .get(),
      );
      if (rows > 0) problems.push(`table ${table} (${rows} rows) exists only in the source`);
      else notes.push(`table ${table} exists only in the source and is empty`);
      continue;
    }
    const info = db.prepare('SELECT name, pk FROM pragma_table_info(?)').all(table) as {
      name: string;
      pk: number;
    }[];
    const sourceNames = new Set(info.map((c) => c.name));
    const rule = TABLE_RULES[table] ?? {};
    const derived = Object.fromEntries([
      ...Object.entries(rule.derived ?? {}).filter(
        ([c]) => !sourceNames.has(c) && columns.some((t) => t.name === c),
      ),
      ...Object.entries(rule.replaced ?? {}).filter(
        ([c]) => sourceNames.has(c) && columns.some((t) => t.name === c),
      ),
    ]);
    for (const name of sourceNames) {
      if (columns.some((c) => c.name === name)) continue;
      const used = Number(
        db
          .prepare(`SELECT count(*) FROM ${quote(table)} WHERE ${quote(name)} IS NOT NULL`)
          .pluck()
          .get(),
      );
      if (used > 0) problems.push(`column ${table}.${name} (${used} values) exists only in the source`);
    }
    const written = columns.filter((c) => sourceNames.has(c.name) || c.name in derived);
    for (const c of columns) {
      if (written.includes(c)) continue;
      if (c.notNull && !c.hasDefault)
        problems.push(`column ${table}.${c.name} is required in the target and unknown to the source`);
      else notes.push(`column ${table}.${c.name} exists only in the target and keeps its default`);
    }
    const pk = info
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    plans.push({
      name: table,
      sourceColumns: written
        .filter((c) => sourceNames.has(c.name) && !(c.name in derived))
        .map((c) => c.name),
      derived,
      sourceKey: pk.length > 0 ? pk : ['rowid'],
      targetKey: await targetKeyOf(target, table),
      columns: written,
      rule,
    });
  }
  for (const table of targetColumns.keys()) {
    if (!NOT_COPIED.has(table) && !sourceTables.includes(table))
      notes.push(`table ${table} exists only in the target`);
  }
  if (problems.length > 0) {
    throw new StoreCopyError(
      'schema-mismatch',
      `the copy would lose data (nothing was changed): ${problems.join('; ')}`,
    );
  }
  return orderByForeignKeys(plans, await foreignKeys(target));
}

async function describeTarget(target: pg.Client): Promise<Map<string, TargetColumn[]>> {
  const { rows } = await target.query<{
    table_name: string;
    column_name: string;
    data_type: string;
    is_nullable: string;
    column_default: string | null;
    is_identity: string;
    identity_generation: string | null;
  }>(
    `SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default, c.is_identity,
       c.identity_generation
     FROM information_schema.columns c JOIN information_schema.tables t
       ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
     ORDER BY c.table_name, c.ordinal_position`,
  );
  const tables = new Map<string, TargetColumn[]>();
  for (const r of rows) {
    const identity = r.is_identity === 'YES';
    const column: TargetColumn = {
      name: r.column_name,
      category: categoryOf(r.table_name, r.column_name, r.data_type),
      notNull: r.is_nullable === 'NO',
      hasDefault: r.column_default !== null || identity,
      serial: identity || (r.column_default ?? '').startsWith('nextval('),
      identityAlways: identity && r.identity_generation === 'ALWAYS',
    };
    tables.set(r.table_name, [...(tables.get(r.table_name) ?? []), column]);
  }
  return tables;
}

function categoryOf(table: string, column: string, dataType: string): Category {
  switch (dataType) {
    case 'smallint':
    case 'integer':
    case 'bigint':
      return 'integer';
    case 'real':
    case 'double precision':
      return 'float';
    case 'numeric':
      return 'numeric';
    case 'boolean':
      return 'boolean';
    case 'json':
    case 'jsonb':
      return 'json';
    case 'bytea':
      return 'bytea';
    case 'timestamp with time zone':
    case 'timestamp without time zone':
      return 'timestamp';
    case 'text':
    case 'character varying':
    case 'character':
      return 'text';
    default:
      throw new StoreCopyError(
        'schema-mismatch',
        `column ${table}.${column} has the PostgreSQL type ${dataType}, which the copy does not know how to fill`,
      );
  }
}

async function targetKeyOf(target: pg.Client, table: string): Promise<string[]> {
  const { rows } = await target.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = to_regclass(quote_ident($1)) AND i.indisprimary
     ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [table],
  );
  return rows.length > 0 ? rows.map((r) => r.attname) : ['ctid'];
}

async function foreignKeys(target: pg.Client): Promise<{ child: string; parent: string }[]> {
  const { rows } = await target.query<{ child: string; parent: string }>(
    `SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k
     JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
     WHERE k.contype = 'f' AND c.relnamespace = current_schema()::regnamespace`,
  );
  return rows;
}

/** Parents before children, so every batch satisfies its foreign keys when it commits. */
function orderByForeignKeys(plans: TablePlan[], edges: { child: string; parent: string }[]): TablePlan[] {
  const names = new Set(plans.map((p) => p.name));
  const ordered: TablePlan[] = [];
  const done = new Set<string>();
  let remaining = [...plans];
  while (remaining.length > 0) {
    const ready = remaining.filter((p) =>
      edges.every(
        (e) => e.child !== p.name || e.parent === p.name || done.has(e.parent) || !names.has(e.parent),
      ),
    );
    if (ready.length === 0) {
      throw new StoreCopyError(
        'schema-mismatch',
        `foreign keys form a cycle among ${remaining.map((p) => p.name).join(', ')}`,
      );
    }
    for (const p of ready) done.add(p.name);
    ordered.push(...ready);
    remaining = remaining.filter((p) => !done.has(p.name));
  }
  return ordered;
}

/** Leases that are live or ended recently, and recent writes: signs of a gateway still running. */
function* recentActivity(db: Database.Database, now: number, windowMs: number): Generator<string> {
  const lease = db
    .prepare(`SELECT count(*) AS n, max(lease_expires_at) AS until FROM messages WHERE status = 'delivering'`)
    .get() as { n: number; until: number | null };
  if (lease.until !== null && lease.until > now - windowMs) {
    yield (
      `${lease.n} message(s) were being delivered, with a lease until ${new Date(lease.until).toISOString()}: ` +
      'is the source gateway still running? Stop it before copying — they are copied as retrying and will be delivered again (same delivery id)'
    );
  }
  const last = db.prepare('SELECT max(updated_at) FROM messages').pluck().get() as number | null;
  if (last !== null && last > now - windowMs && !(lease.until !== null && lease.until > now - windowMs)) {
    yield (
      `the source was written at ${new Date(last).toISOString()}, less than ${Math.round(windowMs / 60_000)} min ago: ` +
      'make sure its gateway is stopped, or later intake will be missing from the target'
    );
  }
}

function defaultAttachmentsDir(fromPath: string): string {
  return path.join(path.dirname(path.resolve(fromPath)), 'attachments');
}

/** Attachment files live beside the store, not in it: they must move with it. */
function missingAttachmentFiles(db: Database.Database, dir: string): string[] {
  const hashes = db.prepare('SELECT DISTINCT sha256 FROM message_attachments').pluck().all() as string[];
  if (hashes.length === 0) return [];
  const missing = hashes.filter((h) => !fs.existsSync(path.join(dir, h.slice(0, 2), h))).length;
  const where = `attachment files are not in the store: make ${dir} (${hashes.length} file(s)) available to every PostgreSQL instance as <dataDir>/attachments`;
  return missing === 0
    ? [where]
    : [`${missing} of ${hashes.length} referenced attachment file(s) are missing in ${dir}; ${where}`];
}

async function copyTable(
  db: Database.Database,
  target: pg.Client,
  plan: TablePlan,
  ctx: CopyContext,
  batchSize: number,
  onProgress: CopyOptions['onProgress'],
): Promise<{ sourceRows: number; addedRows: number; checksum: bigint }> {
  const total = Number(
    db
      .prepare(`SELECT count(*) FROM ${quote(plan.name)}`)
      .pluck()
      .get(),
  );
  let checksum = 0n;
  let copied = 0;
  const write = async (rows: Row[]): Promise<void> => {
    const values = rows.map((row) => plan.columns.map((c) => toTarget(c, row[c.name], plan.name)));
    for (const v of values) checksum = addDigest(checksum, rowDigest(plan.columns, v));
    await insertBatch(target, plan, values);
  };
  for (const batch of sourceBatches(db, plan, batchSize)) {
    await write(plan.rule.transform ? batch.map((row) => plan.rule.transform!(row, ctx)) : batch);
    copied += batch.length;
    onProgress?.(plan.name, copied, total);
  }
  const added = plan.rule.added?.(ctx) ?? [];
  for (let i = 0; i < added.length; i += batchSize) await write(added.slice(i, i + batchSize));
  return { sourceRows: copied, addedRows: added.length, checksum };
}

/** Source rows in primary-key order, `batchSize` at a time (keyset paging, integers as BigInt). */
function* sourceBatches(db: Database.Database, plan: TablePlan, batchSize: number): Generator<Row[]> {
  const keyAliases = plan.sourceKey.map((k, i) => `__key${i}`);
  const select = [
    ...plan.sourceColumns.map((c) => `t.${quote(c)}`),
    ...Object.entries(plan.derived).map(([c, sql]) => `${sql} AS ${quote(c)}`),
    ...plan.sourceKey.map((k, i) => `t.${quote(k)} AS ${keyAliases[i]}`),
  ].join(', ');
  const order = plan.sourceKey.map((k) => `t.${quote(k)}`).join(', ');
  const from = `SELECT ${select} FROM ${quote(plan.name)} t`;
  const first = db.prepare(`${from} ORDER BY ${order} LIMIT ?`).safeIntegers(true);
  const next = db
    .prepare(
      `${from} WHERE (${order}) > (${plan.sourceKey.map(() => '?').join(', ')}) ORDER BY ${order} LIMIT ?`,
    )
    .safeIntegers(true);
  let after: unknown[] | undefined;
  for (;;) {
    const rows = (after ? next.all(...after, batchSize) : first.all(batchSize)) as Row[];
    if (rows.length === 0) return;
    const last = rows[rows.length - 1]!;
    after = keyAliases.map((a) => last[a]);
    yield rows;
    if (rows.length < batchSize) return;
  }
}

/** Writes one batch in one transaction (several statements when the batch has many parameters). */
async function insertBatch(target: pg.Client, plan: TablePlan, values: unknown[][]): Promise<void> {
  if (values.length === 0) return;
  const width = plan.columns.length;
  const perStatement = Math.max(1, Math.floor(MAX_PARAMETERS / width));
  const overriding = plan.columns.some((c) => c.identityAlways) ? ' OVERRIDING SYSTEM VALUE' : '';
  const head = `INSERT INTO ${quote(plan.name)} (${plan.columns.map((c) => quote(c.name)).join(', ')})${overriding} VALUES `;
  await target.query('BEGIN');
  try {
    for (let i = 0; i < values.length; i += perStatement) {
      const chunk = values.slice(i, i + perStatement);
      const tuples = chunk.map(
        (_, r) => `(${plan.columns.map((_c, k) => `$${r * width + k + 1}`).join(', ')})`,
      );
      await target.query(head + tuples.join(', '), chunk.flat());
    }
    await target.query('COMMIT');
  } catch (err) {
    await target.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Converts a SQLite value to what the PostgreSQL column takes, refusing anything that would change it. */
function toTarget(column: TargetColumn, value: unknown, table: string): unknown {
  if (value === null || value === undefined) return null;
  const refuse = (): never => {
    throw new StoreCopyError(
      'copy-failed',
      `${table}.${column.name}: a ${typeof value} value does not fit the ${column.category} column`,
    );
  };
  switch (column.category) {
    case 'integer':
      if (typeof value === 'bigint') return value.toString();
      if (typeof value === 'number' && Number.isInteger(value)) return String(value);
      if (typeof value === 'string' && /^-?\d+$/.test(value)) return value;
      return refuse();
    case 'float':
      return typeof value === 'bigint' || typeof value === 'number' ? Number(value) : refuse();
    case 'numeric':
      return typeof value === 'bigint' ? value.toString() : typeof value === 'number' ? value : refuse();
    case 'boolean':
      if (value === 0n || value === 0) return false;
      if (value === 1n || value === 1) return true;
      return refuse();
    case 'json':
      return typeof value === 'string' ? value : refuse();
    case 'bytea':
      return Buffer.isBuffer(value)
        ? value
        : typeof value === 'string'
          ? Buffer.from(value, 'utf8')
          : refuse();
    case 'timestamp':
      if (typeof value === 'bigint' || typeof value === 'number') return new Date(Number(value));
      return typeof value === 'string' ? value : refuse();
    case 'text':
      if (typeof value === 'string') return value;
      return typeof value === 'bigint' || typeof value === 'number' ? String(value) : refuse();
  }
}

/**
 * One text per value that is the same whether it comes from the copy's input or is read back from
 * PostgreSQL (whose driver returns bigint as string, json parsed, bytea as Buffer).
 */
function canonical(category: Category, value: unknown): string {
  if (value === null || value === undefined) return '\u0000null';
  switch (category) {
    case 'integer':
    case 'numeric':
      return String(value);
    case 'float':
      return String(Number(value));
    case 'boolean':
      return value ? 'true' : 'false';
    case 'json':
      return stableJson(typeof value === 'string' ? (JSON.parse(value) as unknown) : value);
    case 'bytea':
      return (value as Buffer).toString('hex');
    case 'timestamp':
      return new Date(value as string | Date).toISOString();
    case 'text':
      return value as string;
  }
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const CHECKSUM_MODULUS = 1n << 256n;

function rowDigest(columns: readonly TargetColumn[], values: readonly unknown[]): bigint {
  const hash = createHash('sha256');
  columns.forEach((c, i) => {
    hash.update(c.name, 'utf8');
    hash.update('\u0001');
    hash.update(canonical(c.category, values[i]), 'utf8');
    hash.update('\u0002');
  });
  return BigInt(`0x${hash.digest('hex')}`);
}

/** A sum, not a chain: the checksum does not depend on the order rows are read in. */
function addDigest(sum: bigint, digest: bigint): bigint {
  return (sum + digest) % CHECKSUM_MODULUS;
}

function hex(checksum: bigint): string {
  return checksum.toString(16).padStart(64, '0');
}

/** Reads a copied table back and sums its rows the same way. */
async function targetDigest(
  target: pg.Client,
  plan: TablePlan,
  batchSize: number,
): Promise<{ rows: number; checksum: bigint }> {
  const keys = plan.targetKey.map((k) => (k === 'ctid' ? 'ctid' : quote(k)));
  const keyAliases = plan.targetKey.map((_k, i) => `__key${i}`);
  const select = [
    ...plan.columns.map((c) => quote(c.name)),
    ...keys.map((k, i) => `${k} AS ${keyAliases[i]}`),
  ].join(', ');
  const order = keys.join(', ');
  let rows = 0;
  let checksum = 0n;
  let after: unknown[] | undefined;
  for (;;) {
    const where = after ? ` WHERE (${order}) > (${after.map((_v, i) => `$${i + 1}`).join(', ')})` : '';
    const params = after ?? [];
    const { rows: batch } = await target.query<Row>(
      `SELECT ${select} FROM ${quote(plan.name)}${where} ORDER BY ${order} LIMIT $${params.length + 1}`,
      [...params, batchSize],
    );
    for (const row of batch) {
      checksum = addDigest(
        checksum,
        rowDigest(
          plan.columns,
          plan.columns.map((c) => row[c.name]),
        ),
      );
    }
    rows += batch.length;
    if (batch.length < batchSize) return { rows, checksum };
    const last = batch[batch.length - 1]!;
    after = keyAliases.map((a) => last[a]);
  }
}

/** Serial and identity columns continue after the highest copied value. */
async function resetSequences(target: pg.Client, plans: readonly TablePlan[]): Promise<void> {
  for (const plan of plans) {
    for (const column of plan.columns.filter((c) => c.serial)) {
      await target.query(
        `SELECT setval(s.seq::regclass, COALESCE(m.max, 1), m.max IS NOT NULL)
         FROM (SELECT pg_get_serial_sequence(quote_ident(current_schema()) || '.' || quote_ident($1), $2) AS seq) s,
           (SELECT max(${quote(column.name)}) AS max FROM ${quote(plan.name)}) m
         WHERE s.seq IS NOT NULL`,
        [plan.name, column.name],
      );
    }
  }
}

async function truncate(target: pg.Client, plans: readonly TablePlan[]): Promise<void> {
  await target.query(`TRUNCATE ${plans.map((p) => quote(p.name)).join(', ')}`);
}
