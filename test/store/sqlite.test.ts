import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { isAmtError } from '../../src/errors.js';
import { withGroupCommit } from '../../src/store/group-commit.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { StoreThread } from '../../src/store/sqlite-thread.js';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-migrations.js';
import { PURGED_PAYLOAD, type NewMessage, type Outcome, type Store } from '../../src/store/types.js';
import { describeStoreContract } from './contract.js';

const dirs = new Map<Store, string>();

function openFresh(wrap: (s: Store) => Store, writerThread = false): () => Promise<Store> {
  return async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-sqlite-'));
    const store = wrap(SqliteStore.open(path.join(dir, 'data', 'amtsbote.db'), { writerThread }));
    dirs.set(store, dir);
    return store;
  };
}

async function removeDir(store: Store): Promise<void> {
  const dir = dirs.get(store);
  dirs.delete(store);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

describeStoreContract(
  'SQLite',
  openFresh((s) => s),
  removeDir,
);
describeStoreContract(
  'SQLite with group commit',
  openFresh((s) => withGroupCommit(s)),
  removeDir,
);
describeStoreContract(
  'SQLite with group commit and a store thread',
  openFresh((s) => withGroupCommit(s), true),
  removeDir,
);

const SQLITE_MODULE = fileURLToPath(new URL('../../src/store/sqlite.ts', import.meta.url));
const T0 = 1_750_000_000_000;

function newMessage(n: number): NewMessage {
  const id = `m${String(n).padStart(8, '0')}`;
  return {
    id,
    deliveryId: `d-${id}`,
    direction: 'outbound',
    tenantId: 'muenster',
    ars: '055150000000',
    service: '99123456789012',
    reference: undefined,
    clientId: 'portal',
    routeId: 'route',
    target: 'fachverfahren',
    payload: `{"n":${n}}`,
    attachments: [],
    idempotency: undefined,
    receivedAt: T0 + n,
  };
}

/** A database file as the migrations before `version` left it (the older gateway's schema). */
function databaseBefore(version: number, file: string): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.exec(
    'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT',
  );
  for (const m of SQLITE_MIGRATIONS.filter((x) => x.version < version)) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, T0);
  }
  return db;
}

/**
 * Runs `body` in a separate Node process with the SQLite store module loaded as `SqliteStore`;
 * `args` arrive as `args`. Resolves with what the process printed as JSON.
 */
function inChildProcess(body: string, args: string[]): Promise<unknown> {
  const code = `
    const { SqliteStore } = await import(${JSON.stringify(pathToFileURL(SQLITE_MODULE).href)});
    const args = process.argv.slice(1);
    const result = await (async () => { ${body} })();
    process.stdout.write(JSON.stringify(result ?? null));`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', code, ...args],
      { cwd: process.cwd(), timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`child process failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as unknown);
      },
    );
  });
}

/**
 * A barrier for child processes: each announces itself with a file in `barrier` and waits until
 * all `parties` are there, so their work overlaps however slowly each one started.
 */
const WAIT_FOR_ALL = `
  const { readdirSync, writeFileSync } = await import('node:fs');
  const [barrier, parties] = args.slice(-2);
  writeFileSync(barrier + '/' + process.pid, '');
  while (readdirSync(barrier).length < Number(parties)) await new Promise((r) => setTimeout(r, 2));`;

describe('SqliteStore', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-sqlite-'));
    file = path.join(dir, 'nested', 'dir', 'amtsbote.db');
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates the directory, uses WAL and records each migration once however often migrate runs', async () => {
    const store = SqliteStore.open(file);
    await store.migrate();
    await store.migrate();
    await store.close();
    const again = SqliteStore.open(file);
    await again.migrate();
    await again.close();
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).to.equal('wal');
      const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
      expect(versions).to.deep.equal(SQLITE_MIGRATIONS.map((m) => m.version));
      const ars = db
        .prepare(`SELECT name FROM pragma_table_info('messages') WHERE name = 'ars'`)
        .pluck()
        .get();
      expect(ars).to.equal('ars');
    } finally {
      db.close();
    }
  });

  it('drops the lease-owner index of an older database; leases are still given back by owner (migration 5)', async () => {
    const db = databaseBefore(5, file);
    const indexes = (d: Database.Database): unknown[] =>
      d
        .prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'`)
        .pluck()
        .all();
    expect(indexes(db)).to.include('messages_lease_owner');
    db.close();

    const store = SqliteStore.open(file);
    try {
      await store.migrate();
      const mine = [newMessage(1), newMessage(2)];
      const theirs = newMessage(3);
      await store.accept([...mine, theirs]);
      await store.claimDue('w1', 2, 60_000, T0 + 10);
      await store.claimDue('w2', 1, 60_000, T0 + 10);
      expect(await store.releaseLeases('w1', T0 + 11)).to.equal(2);
      expect((await store.getMessage(mine[0]!.id))?.status).to.equal('retrying');
      expect((await store.getMessage(theirs.id))?.status).to.equal('delivering');
    } finally {
      await store.close();
    }
    const check = new Database(file, { readonly: true });
    try {
      expect(indexes(check)).to.not.include('messages_lease_owner');
      expect(indexes(check)).to.include('messages_lease_expiry');
    } finally {
      check.close();
    }
  });

  it('moves the payloads of a database written before migration 4 apart, keeping purged ones as marked', async () => {
    const db = databaseBefore(4, file);
    const insert = db.prepare(`INSERT INTO messages (id, delivery_id, direction, tenant_id, ars, service,
        client_id, route_id, target, status, payload, attempts, attempt_seq, run_at, created_at, updated_at)
      VALUES (?, ?, 'outbound', 'muenster', '055150000000', '99123456789012', 'portal', 'route', 'fv', ?, ?, 0, 0, ?, ?, ?)`);
    const payload = JSON.stringify({ applicant: { familyName: 'Müller' }, data: { zone: 'A' } });
    insert.run('m-old', 'd-old', 'received', payload, T0, T0, T0);
    insert.run('m-purged', 'd-purged', 'delivered', PURGED_PAYLOAD, T0, T0, T0);
    db.close();

    const store = SqliteStore.open(file);
    await store.migrate();
    expect((await store.getMessage('m-old'))?.payload).to.equal(payload);
    expect((await store.getMessage('m-purged'))?.payload).to.equal(PURGED_PAYLOAD);
    const [claimed] = await store.claimDue('w1', 10, 1000, T0);
    expect([claimed?.id, claimed?.payload]).to.deep.equal(['m-old', payload]);
    await store.close();
    const check = new Database(file, { readonly: true });
    try {
      expect(check.prepare('SELECT id, payload FROM messages ORDER BY id').all()).to.deep.equal([
        { id: 'm-old', payload: '' },
        { id: 'm-purged', payload: PURGED_PAYLOAD },
      ]);
      expect(check.prepare('SELECT message_id, payload FROM message_payloads').all()).to.deep.equal([
        { message_id: 'm-old', payload },
      ]);
    } finally {
      check.close();
    }
  });

  it('purging a payload deletes the row that held it, not only the message’s marker', async () => {
    const store = SqliteStore.open(file);
    await store.migrate();
    const m = {
      ...newMessage(1),
      payload: JSON.stringify({ applicant: { familyName: 'Quirinius-Löwenherz' } }),
    };
    await store.accept([m]);
    const [claimed] = await store.claimDue('w1', 1, 1000, T0 + 5);
    await store.complete(
      [
        {
          kind: 'delivered',
          messageId: claimed!.id,
          leaseOwner: 'w1',
          attempt: { startedAt: T0 + 5, endedAt: T0 + 6, target: 'fachverfahren' },
          remoteReference: undefined,
        },
      ],
      T0 + 6,
    );
    expect(await store.purgePayloads({ before: T0 + 10, limit: 10 }, T0 + 20)).to.deep.include({ purged: 1 });
    await store.close();
    const check = new Database(file, { readonly: true });
    try {
      expect(check.prepare('SELECT count(*) FROM message_payloads').pluck().get()).to.equal(0);
      // Nothing of it is left in the file's live pages either (the WAL is checkpointed on close).
      expect(fs.readFileSync(file).includes(Buffer.from(m.payload))).to.equal(false);
    } finally {
      check.close();
    }
  });

  /**
   * A store whose WAL flushes are observed and held: each flush records the WAL's size when it
   * starts and finishes only when the test releases it.
   */
  function observedStore(): {
    store: SqliteStore;
    flushes: { walBytes: number; release: (err?: Error) => void }[];
    holding: { on: boolean };
  } {
    const flushes: { walBytes: number; release: (err?: Error) => void }[] = [];
    const holding = { on: false };
    const store = SqliteStore.open(file, {
      walSync: {
        open: async (wal) => ({
          datasync: () =>
            new Promise<void>((resolve, reject) => {
              const release = (err?: Error): void => (err ? reject(err) : resolve());
              flushes.push({ walBytes: fs.statSync(wal).size, release });
              if (!holding.on) release();
            }),
          close: async () => undefined,
        }),
      },
    });
    return { store, flushes, holding };
  }

  const settled = async <T>(promise: Promise<T>): Promise<boolean> => {
    let done = false;
    void promise.then(
      () => (done = true),
      () => (done = true),
    );
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    return done;
  };

  it('answers a durable write only after a WAL flush that started after its commit; claims do not wait', async () => {
    const { store, flushes, holding } = observedStore();
    await store.migrate();
    const db = (store as unknown as { db: InstanceType<typeof Database> }).db;
    expect(db.pragma('synchronous', { simple: true })).to.equal(1); // NORMAL: COMMIT does not flush
    holding.on = true;
    const before = flushes.length;

    const accepted = store.accept([newMessage(1)]);
    expect(await settled(accepted)).to.equal(false);
    expect(flushes.length).to.equal(before + 1);
    const walAfterCommit = fs.statSync(`${file}-wal`).size;
    expect(flushes[before]!.walBytes).to.equal(walAfterCommit);

    // A claim is answered while the flush still runs, and a commit made meanwhile is not covered
    // by the running flush: it waits for the next one.
    const [claimed] = await store.claimDue('w1', 1, 60_000, T0 + 10);
    expect(claimed?.id).to.equal(newMessage(1).id);
    const second = store.accept([newMessage(2)]);
    const third = store.accept([newMessage(3)]);
    flushes[before]!.release();
    expect((await accepted).map((r) => r.kind)).to.deep.equal(['created']);
    expect(await settled(second)).to.equal(false);
    // Both commits made during the first flush share the next one.
    expect(flushes.length).to.equal(before + 2);
    expect(flushes[before + 1]!.walBytes).to.equal(fs.statSync(`${file}-wal`).size);
    flushes[before + 1]!.release();
    expect((await second).map((r) => r.kind)).to.deep.equal(['created']);
    expect((await third).map((r) => r.kind)).to.deep.equal(['created']);
    holding.on = false;
    await store.close();
  });

  it('answers rememberOnce (replay protection) only once its entry is flushed', async () => {
    const { store, flushes, holding } = observedStore();
    await store.migrate();
    holding.on = true;
    const remembered = store.rememberOnce('saml-assertion', 'id-1', T0 + 60_000, T0);
    expect(await settled(remembered)).to.equal(false);
    flushes.at(-1)!.release();
    expect(await remembered).to.equal(true);
    holding.on = false;
    expect(await store.rememberOnce('saml-assertion', 'id-1', T0 + 60_000, T0 + 1)).to.equal(false);
    await store.close();
  });

  it('fails a write whose WAL flush failed with AMT_STORE_UNAVAILABLE, and flushes again next time', async () => {
    const { store, flushes, holding } = observedStore();
    await store.migrate();
    holding.on = true;
    const accepted = store.accept([newMessage(1)]);
    await settled(accepted);
    flushes.at(-1)!.release(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const err = await accepted.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAmtError(err) && err.code).to.equal('AMT_STORE_UNAVAILABLE');
    holding.on = false;
    expect((await store.accept([newMessage(2)])).map((r) => r.kind)).to.deep.equal(['created']);
    await store.close();
  });

  it('flushes the real WAL file, and keeps synchronous=FULL for a database in memory', async () => {
    const store = SqliteStore.open(file);
    await store.migrate();
    await store.accept([newMessage(1)]);
    expect(fs.statSync(`${file}-wal`).size).to.be.greaterThan(0);
    await store.close();
    const memory = SqliteStore.open(':memory:');
    await memory.migrate();
    await memory.accept([newMessage(1)]);
    const db = (memory as unknown as { db: InstanceType<typeof Database> }).db;
    expect(db.pragma('synchronous', { simple: true })).to.equal(2);
    await memory.close();
  });

  it('keeps messages, leases and history across close and reopen', async () => {
    const store = SqliteStore.open(file);
    await store.migrate();
    await store.accept([newMessage(1), newMessage(2)]);
    const [claimed] = await store.claimDue('w1', 1, 60_000, T0 + 10);
    await store.close();

    const reopened = SqliteStore.open(file);
    await reopened.migrate();
    const read = await reopened.getMessage(claimed!.id);
    expect(read).to.deep.equal(claimed);
    expect((await reopened.history(claimed!.id)).map((h) => h.event)).to.deep.equal(['received', 'claimed']);
    expect((await reopened.stats()).byStatus).to.deep.include({ received: 1, delivering: 1 });
    // The lease survived: only the other message is due.
    expect((await reopened.claimDue('w2', 10, 60_000, T0 + 20)).map((m) => m.id)).to.deep.equal([
      newMessage(2).id,
    ]);
    await reopened.close();
  });

  it('reports a database locked by another process as AMT_STORE_UNAVAILABLE and stores nothing', async () => {
    const store = SqliteStore.open(file, { busyTimeoutMs: 50 });
    await store.migrate();
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      let failure: unknown;
      await store.accept([newMessage(1)]).catch((err: unknown) => (failure = err));
      expect(isAmtError(failure) && failure.code).to.equal('AMT_STORE_UNAVAILABLE');
      expect(isAmtError(failure) && failure.retryable).to.equal(true);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(await store.getMessage(newMessage(1).id)).to.equal(undefined);
    expect(await store.accept([newMessage(1)])).to.have.length(1);
    await store.close();
  });

  it('purges expired replay-protection entries as it goes', async () => {
    const store = SqliteStore.open(file);
    await store.migrate();
    for (let i = 0; i < 150; i++)
      expect(await store.rememberOnce('nonce', `old-${i}`, T0 + 10, T0)).to.equal(true);
    for (let i = 0; i < 100; i++) {
      expect(await store.rememberOnce('nonce', `new-${i}`, T0 + 1000, T0 + 20)).to.equal(true);
    }
    await store.close();
    const db = new Database(file, { readonly: true });
    try {
      const left = db
        .prepare('SELECT COUNT(*) FROM remembered_keys WHERE expires_at <= ?')
        .pluck()
        .get(T0 + 20);
      const live = db
        .prepare('SELECT COUNT(*) FROM remembered_keys WHERE expires_at > ?')
        .pluck()
        .get(T0 + 20);
      expect(left).to.equal(0);
      expect(live).to.equal(100);
    } finally {
      db.close();
    }
  });

  it('migrates safely when several processes start on a new file at once', async () => {
    const body = `${WAIT_FOR_ALL}
      const store = SqliteStore.open(args[0]);
      await store.migrate();
      await store.ping();
      await store.close();
      return 'ok';`;
    const barrier = fs.mkdtempSync(path.join(dir, 'barrier-'));
    const results = await Promise.all([1, 2, 3].map(() => inChildProcess(body, [file, barrier, '3'])));
    expect(results).to.deep.equal(['ok', 'ok', 'ok']);
    const db = new Database(file, { readonly: true });
    try {
      const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
      expect(versions).to.deep.equal(SQLITE_MIGRATIONS.map((m) => m.version));
    } finally {
      db.close();
    }
  });

  it('never hands one message to two processes claiming from the same file', async () => {
    const store = SqliteStore.open(file);
    await store.migrate();
    const messages = Array.from({ length: 480 }, (_, i) => newMessage(i));
    await store.accept(messages);
    await store.close();

    // Each process claims small batches and completes them, so claims and outcomes interleave.
    const body = `${WAIT_FOR_ALL}
      const [file, owner] = args;
      const store = SqliteStore.open(file);
      const claimed = [];
      for (;;) {
        const batch = await store.claimDue(owner, 3, 600000, ${T0 + 1000});
        if (batch.length === 0) break;
        claimed.push(...batch.map((m) => m.id));
        const outcomes = batch.map((m) => ({
          kind: 'delivered', messageId: m.id, leaseOwner: owner, remoteReference: owner,
          attempt: { startedAt: ${T0 + 1000}, endedAt: ${T0 + 1001}, target: m.target },
        }));
        const applied = await store.complete(outcomes, ${T0 + 1001});
        if (applied.some((ok) => !ok)) throw new Error('an outcome of a held lease was not applied');
        await new Promise((r) => setTimeout(r, 1));
      }
      await store.close();
      return claimed;`;
    const owners = ['worker-1', 'worker-2', 'worker-3', 'worker-4'];
    const barrier = fs.mkdtempSync(path.join(dir, 'barrier-'));
    const perOwner = (await Promise.all(
      owners.map((o) => inChildProcess(body, [file, o, barrier, String(owners.length)])),
    )) as string[][];

    const all = perOwner.flat();
    expect(new Set(all).size, 'no message claimed twice').to.equal(all.length);
    expect([...all].sort()).to.deep.equal(messages.map((m) => m.id).sort());
    expect(perOwner.filter((ids) => ids.length > 0).length, 'claims interleaved').to.be.greaterThan(1);

    const check = SqliteStore.open(file);
    expect((await check.stats()).byStatus.delivered).to.equal(messages.length);
    for (const [i, owner] of owners.entries()) {
      for (const id of perOwner[i]!.slice(0, 5)) {
        const m = await check.getMessage(id);
        expect(m).to.deep.include({ status: 'delivered', attempts: 1, remoteReference: owner });
        expect((await check.history(id)).filter((h) => h.event === 'claimed')).to.have.length(1);
      }
    }
    await check.close();
  });
});

describe('SQLite store thread', () => {
  // Its behaviour as a store is the contract suite's ("SQLite with group commit and a store thread").
  let n = 1000;
  let dir: string;
  let file: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-thread-'));
    file = path.join(dir, 'amtsbote.db');
    const store = SqliteStore.open(file);
    await store.migrate();
    await store.close();
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const writerThread of [false, true]) {
    it(`commits intake and outcomes together as accept and complete would (${writerThread ? 'through the store thread' : 'on the caller’s connection'})`, async () => {
      const store = SqliteStore.open(file, { writerThread });
      try {
        const key = { key: 'antrag-7', requestHash: 'h7' };
        const inFlight = { ...newMessage(++n), claim: { owner: 'w1', leaseExpiresAt: T0 + 60_000 } };
        const keyed = { ...newMessage(++n), idempotency: key };
        await store.accept([inFlight, keyed]);
        const fresh = newMessage(++n);
        const again = { ...newMessage(++n), idempotency: key };
        const conflicting = { ...newMessage(++n), idempotency: { ...key, requestHash: 'other' } };
        const delivered = (owner: string): Outcome => ({
          kind: 'delivered',
          messageId: inFlight.id,
          leaseOwner: owner,
          attempt: { startedAt: T0 + 50, endedAt: T0 + 60, target: 'fachverfahren' },
          remoteReference: 'FV-1',
        });
        const { accepted, completed } = await store.acceptAndComplete(
          [fresh, again, conflicting],
          [delivered('w2'), delivered('w1')],
          T0 + 70,
        );
        expect(accepted.map((r) => r.kind)).to.deep.equal(['created', 'existing', 'conflict']);
        expect(accepted[0]!.kind === 'created' && accepted[0]!.message).to.deep.equal(
          await store.getMessage(fresh.id),
        );
        expect(accepted[1]!.kind === 'existing' && accepted[1]!.message.id).to.equal(keyed.id);
        expect(completed, 'only the lease holder completes').to.deep.equal([false, true]);
        const done = await store.getMessage(inFlight.id);
        expect([done?.status, done?.remoteReference, done?.updatedAt]).to.deep.equal([
          'delivered',
          'FV-1',
          T0 + 70,
        ]);
        expect((await store.attempts(inFlight.id)).map((a) => a.outcome)).to.deep.equal(['delivered']);
        expect(await store.getMessage(again.id)).to.equal(undefined);
        expect(await store.getMessage(conflicting.id)).to.equal(undefined);
      } finally {
        await store.close();
      }
    });
  }

  it('writes through its own connection what the caller’s connection then reads', async () => {
    const store = SqliteStore.open(file, { writerThread: true });
    try {
      const m = newMessage(++n);
      const [result] = await store.accept([m]);
      expect(result?.kind).to.equal('created');
      expect((await store.getMessage(m.id))?.payload).to.equal(m.payload);
      const [claimed] = await store.claimDue('w1', 10, 1000, T0 + n);
      expect(claimed?.id).to.equal(m.id);
    } finally {
      await store.close();
    }
  });

  it('fails the calls of a thread that died with AMT_STORE_UNAVAILABLE, and starts a new one for the next', async () => {
    const thread = new StoreThread({ file, busyTimeoutMs: undefined });
    try {
      await thread.ping();
      const worker = thread.workerForTest()!;
      const pending = thread.accept([newMessage(++n)]);
      await worker.terminate();
      const err = await pending.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isAmtError(err) && err.code).to.equal('AMT_STORE_UNAVAILABLE');
      const m = newMessage(++n);
      const [result] = await thread.accept([m]);
      expect(result?.kind).to.equal('created');
      expect(thread.workerForTest()).to.not.equal(worker);
    } finally {
      await thread.close();
    }
  });

  it('keeps no process alive once its calls are answered', async () => {
    const code = `
      const { SqliteStore } = await import(${JSON.stringify(SQLITE_MODULE)});
      const store = SqliteStore.open(${JSON.stringify(file)}, { writerThread: true });
      await store.ping();
      console.log('answered');`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', code],
      { timeout: 15_000 },
    );
    expect(stdout.trim()).to.equal('answered');
  });

  it('is closed for good: later calls fail, a second close is harmless', async () => {
    const thread = new StoreThread({ file, busyTimeoutMs: undefined });
    await thread.ping();
    await thread.close();
    await thread.close();
    const err = await thread.ping().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAmtError(err) && err.code).to.equal('AMT_STORE_UNAVAILABLE');
  });
});
