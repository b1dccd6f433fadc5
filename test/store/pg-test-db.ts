/**
 * A throwaway PostgreSQL database per test run. Other suites use the same server at the same
 * time, so every run gets a random database name and drops it afterwards; inside it, every store
 * a test opens gets its own schema, which keeps stores apart without the cost of a database each.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const ADMIN_URL = process.env.AMTSBOTE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A URL whose connections use `schema` (created here) as their search path. */
  createSchema(): Promise<{ schema: string; url: string }>;
  dropSchema(schema: string): Promise<void>;
  /** Runs one statement in the test database, e.g. to inspect what a store wrote. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  drop(): Promise<void>;
}

function randomName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = randomName('amtsbote_test');
  const admin = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(ADMIN_URL, name);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined);
  return {
    name,
    url,
    async createSchema() {
      const schema = randomName('s');
      await pool.query(`CREATE SCHEMA ${schema}`);
      return { schema, url: withSearchPath(url, schema) };
    },
    async dropSchema(schema) {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) {
      return (await pool.query<R>(sql, params)).rows;
    },
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * For a `before` hook: the test database, or — on a developer machine without PostgreSQL — a
 * loud notice and a skipped suite. In CI (env CI set) an unreachable server fails the run.
 */
export async function testDatabaseOrSkip(ctx: Mocha.Context): Promise<TestDatabase> {
  try {
    return await createTestDatabase();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (process.env.CI) {
      throw new Error(`PostgreSQL at ${redact(ADMIN_URL)} is required in CI and not reachable: ${reason}`, {
        cause: err,
      });
    }
    console.warn(
      `\n!!! PostgreSQL tests SKIPPED: ${redact(ADMIN_URL)} is not reachable (${reason}).` +
        `\n!!! Start PostgreSQL or set AMTSBOTE_TEST_PG_URL to run them.\n`,
    );
    ctx.skip();
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
