/**
 * Three scheduler processes on one PostgreSQL database run an every-second job. Each occurrence
 * must be done exactly once — also the one whose process is killed with SIGKILL in the middle of
 * its run: its lease expires, another instance takes it over, the killed run stays on record as
 * `abandoned`. "Exactly once" for that occurrence means: its run started twice (the first never
 * finished), its work completed once. A job whose work may be cut off half-way must therefore be
 * idempotent; the side effect here is written only at the end, so it is counted exactly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { testDatabaseOrSkip, type TestDatabase } from '../store/pg-test-db.js';

const INSTANCE = fileURLToPath(new URL('./cluster-instance.ts', import.meta.url));
const OCCURRENCES = 20;

interface Instance {
  readonly owner: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startInstance(url: string, owner: string): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', INSTANCE], {
    env: { ...process.env, AMTSBOTE_CLUSTER_URL: url, AMTSBOTE_CLUSTER_OWNER: owner },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line === 'ready') resolve({ owner, child, exited });
    });
    void exited.then(({ code }) =>
      reject(new Error(`instance ${owner} exited (${code}) before it was ready: ${stderr}`)),
    );
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('scheduler cluster on PostgreSQL', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let schema: string;
  let url: string;
  const instances: Instance[] = [];

  before(async function () {
    db = await testDatabaseOrSkip(this);
    ({ schema, url } = await db.createSchema());
    for (const sql of [
      `CREATE TABLE ${schema}.cluster_plan (kill_at bigint NOT NULL)`,
      `CREATE TABLE ${schema}.effects_started (scheduled_at bigint, attempt int, owner text, pid int)`,
      `CREATE TABLE ${schema}.effects_done (scheduled_at bigint, attempt int, owner text, from_ms bigint, to_ms bigint)`,
    ])
      await db.query(sql);
  });

  after(async () => {
    for (const instance of instances) instance.child.kill('SIGKILL');
    await Promise.all(instances.map((i) => i.exited));
    await db?.drop();
  });

  it('runs each of twenty occurrences exactly once, also when an instance is killed mid-run', async () => {
    instances.push(
      ...(await Promise.all(['alpha', 'beta', 'gamma'].map((owner) => startInstance(url, owner)))),
    );
    const first = Math.ceil(Date.now() / 1000) * 1000 + 2000;
    const window = Array.from({ length: OCCURRENCES }, (_, i) => first + i * 1000);
    const killAt = window[8]!;
    await db.query(`INSERT INTO ${schema}.cluster_plan (kill_at) VALUES ($1)`, [killAt]);

    // Kill the process that holds the designated occurrence while it works on it.
    const holder = await until('the designated run to start', async () => {
      const rows = await db.query<{ owner: string; pid: number }>(
        `SELECT owner, pid FROM ${schema}.effects_started WHERE scheduled_at = $1 AND attempt = 1`,
        [killAt],
      );
      return rows[0];
    });
    const victim = instances.find((i) => i.owner === holder.owner)!;
    expect(victim.child.pid).to.equal(holder.pid);
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).to.equal('SIGKILL');

    await until('every occurrence of the window to be done', async () => {
      const rows = await db.query<{ n: number }>(
        `SELECT count(DISTINCT scheduled_at)::int AS n FROM ${schema}.effects_done
         WHERE scheduled_at >= $1 AND scheduled_at <= $2`,
        [window[0], window.at(-1)],
      );
      return rows[0]!.n === OCCURRENCES ? true : undefined;
    });
    const survivors = instances.filter((i) => i !== victim);
    for (const s of survivors) s.child.kill('SIGTERM');
    for (const s of survivors) expect((await s.exited).code).to.equal(0);

    const runs = await db.query<{
      id: string;
      scheduled_at: number;
      attempt: number;
      owner: string;
      status: string;
      takeover_of: string | null;
      error: string | null;
    }>(
      `SELECT id, scheduled_at::float8 AS scheduled_at, attempt, owner, status, takeover_of, error
       FROM ${schema}.job_runs WHERE job = 'cluster-tick' ORDER BY scheduled_at, attempt`,
    );
    const done = await db.query<{
      scheduled_at: number;
      attempt: number;
      owner: string;
      from_ms: number;
      to_ms: number;
    }>(
      `SELECT scheduled_at::float8 AS scheduled_at, attempt, owner, from_ms::float8 AS from_ms, to_ms::float8 AS to_ms
       FROM ${schema}.effects_done ORDER BY from_ms`,
    );

    for (const at of window) {
      const ofOccurrence = runs.filter((r) => r.scheduled_at === at);
      const effects = done.filter((d) => d.scheduled_at === at);
      expect(effects, `side effects of ${new Date(at).toISOString()}`).to.have.length(1);
      if (at !== killAt) {
        expect(
          ofOccurrence.map((r) => [r.attempt, r.status]),
          new Date(at).toISOString(),
        ).to.deep.equal([[1, 'succeeded']]);
      }
    }
    // The killed run is on record as abandoned; another instance took the occurrence over.
    const killed = runs.filter((r) => r.scheduled_at === killAt);
    expect(killed.map((r) => [r.attempt, r.owner, r.status])).to.deep.equal([
      [1, victim.owner, 'abandoned'],
      [2, killed[1]?.owner, 'succeeded'],
    ]);
    expect(killed[1]?.owner).to.not.equal(victim.owner);
    expect(killed[1]?.takeover_of).to.equal(killed[0]?.id);
    expect(JSON.parse(killed[0]!.error!).code).to.equal('AMT_JOB_LEASE_EXPIRED');
    expect(done.find((d) => d.scheduled_at === killAt)?.owner).to.equal(killed[1]?.owner);

    // Outside the window too: never two completed runs or two side effects for one occurrence.
    const completed = new Map<number, number>();
    for (const r of runs)
      if (r.status === 'succeeded') completed.set(r.scheduled_at, (completed.get(r.scheduled_at) ?? 0) + 1);
    expect([...completed.values()].every((n) => n === 1)).to.equal(true);
    expect(new Set(done.map((d) => d.scheduled_at)).size).to.equal(done.length);
    // Overlap policy `queue`: runs of the job never worked at the same time, on any instance.
    done
      .slice(1)
      .forEach((d, i) =>
        expect(d.from_ms, 'a run started before the previous one ended').to.be.at.least(done[i]!.to_ms),
      );
  });
});
