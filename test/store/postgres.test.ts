import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { expect } from 'chai';
import pg from 'pg';
import { AmtError } from '../../src/errors.js';
import { CLAIM_DUE_SQL, PostgresStore } from '../../src/store/postgres.js';
import type { NewMessage, Store } from '../../src/store/types.js';
import { describeStoreContract } from './contract.js';
import { ADMIN_URL, testDatabaseOrSkip, type TestDatabase } from './pg-test-db.js';

function newMessage(overrides: Partial<NewMessage> = {}): NewMessage {
  return {
    id: randomUUID(),
    deliveryId: randomUUID(),
    direction: 'outbound',
    tenantId: 'muenster',
    ars: '055150000000',
    service: '99102013104000',
    reference: undefined,
    clientId: 'portal',
    routeId: 'anmeldung',
    target: 'fachverfahren',
    payload: '{"antrag":"Wohnsitz"}',
    attachments: [],
    idempotency: undefined,
    receivedAt: 1_700_000_000_000,
    ...overrides,
  };
}

describe('PostgresStore', function () {
  let db: TestDatabase;
  const schemas = new Map<Store, string>();

  before(async function () {
    db = await testDatabaseOrSkip(this);
  });

  after(async () => {
    await db?.drop();
  });

  /** A store on a fresh schema of the run's database; several stores may share one schema. */
  async function openStore(schemaUrl?: string, poolSize = 4): Promise<PostgresStore> {
    if (schemaUrl) return PostgresStore.open(schemaUrl, { poolSize });
    const { schema, url } = await db.createSchema();
    const store = await PostgresStore.open(url, { poolSize });
    schemas.set(store, schema);
    return store;
  }

  async function closeStore(store: Store): Promise<void> {
    await store.close();
    const schema = schemas.get(store);
    schemas.delete(store);
    if (schema) await db.dropSchema(schema);
  }

  describeStoreContract('postgres', () => openStore(), closeStore);

  describe('several instances on one database', () => {
    let schema: string;
    let url: string;
    let a: PostgresStore;
    let b: PostgresStore;

    beforeEach(async () => {
      ({ schema, url } = await db.createSchema());
      a = await openStore(url);
      b = await openStore(url);
      await a.migrate();
    });

    afterEach(async () => {
      await Promise.all([a.close(), b.close()]);
      await db.dropSchema(schema);
    });

    async function messagesWithKey(key: string): Promise<number> {
      const rows = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${schema}.messages WHERE client_id = 'portal' AND idempotency_key = $1`,
        [key],
      );
      return Number(rows[0]?.n);
    }

    it('stores one message when two instances accept the same Idempotency-Key at once', async () => {
      for (let round = 0; round < 40; round++) {
        const key = `key-${round}`;
        const idempotency = { key, requestHash: 'sha256:same' };
        const [fromA, fromB] = await Promise.all([
          a.accept([newMessage({ idempotency })]),
          b.accept([newMessage({ idempotency })]),
        ]);
        const kinds = [fromA[0]?.kind, fromB[0]?.kind].sort();
        expect(kinds, `round ${round}`).to.deep.equal(['created', 'existing']);
        const ids = [fromA[0], fromB[0]].map((r) => (r && r.kind !== 'conflict' ? r.message.id : undefined));
        expect(ids[0], `round ${round}`).to.equal(ids[1]);
        expect(await messagesWithKey(key)).to.equal(1);
      }
    });

    it('reports a conflict to the loser when the racing requests differ', async () => {
      for (let round = 0; round < 20; round++) {
        const key = `differ-${round}`;
        const [fromA, fromB] = await Promise.all([
          a.accept([newMessage({ idempotency: { key, requestHash: 'sha256:a' } })]),
          b.accept([newMessage({ idempotency: { key, requestHash: 'sha256:b' } })]),
        ]);
        const results = [fromA[0], fromB[0]];
        const created = results.find((r) => r?.kind === 'created');
        const conflict = results.find((r) => r?.kind === 'conflict');
        expect(created, `round ${round}`).to.not.equal(undefined);
        expect(conflict, `round ${round}`).to.not.equal(undefined);
        if (created?.kind === 'created' && conflict?.kind === 'conflict') {
          expect(conflict.messageId).to.equal(created.message.id);
        }
        expect(await messagesWithKey(key)).to.equal(1);
      }
    });

    it('accepts batches whose keys overlap in opposite order without deadlock or duplicates', async () => {
      for (let round = 0; round < 20; round++) {
        const keys = [0, 1, 2, 3, 4].map((i) => `batch-${round}-${i}`);
        const batch = (order: string[]): NewMessage[] =>
          order.map((key) => newMessage({ idempotency: { key, requestHash: `hash-${key}` } }));
        const [fromA, fromB] = await Promise.all([
          a.accept(batch(keys)),
          b.accept(batch([...keys].reverse())),
        ]);
        const created = [...fromA, ...fromB].filter((r) => r.kind === 'created').length;
        expect(created, `round ${round}`).to.equal(keys.length);
        expect([...fromA, ...fromB].every((r) => r.kind !== 'conflict')).to.equal(true);
        for (const key of keys) expect(await messagesWithKey(key)).to.equal(1);
      }
    });

    it('claims each of 1,000 messages exactly once when two instances claim at the same time', async () => {
      const total = 1000;
      for (let i = 0; i < total; i += 200) {
        const batch = Array.from({ length: 200 }, (_, j) => newMessage({ receivedAt: 1_000 + i + j }));
        await a.accept(batch);
      }
      const claimedBy = new Map<string, string[]>();
      const worker = async (store: PostgresStore, owner: string): Promise<void> => {
        for (;;) {
          const claimed = await store.claimDue(owner, 17, 60_000, 10_000);
          if (claimed.length === 0) return;
          for (const m of claimed) claimedBy.set(m.id, [...(claimedBy.get(m.id) ?? []), owner]);
        }
      };
      await Promise.all([
        worker(a, 'a1'),
        worker(a, 'a2'),
        worker(a, 'a3'),
        worker(b, 'b1'),
        worker(b, 'b2'),
        worker(b, 'b3'),
      ]);
      expect(claimedBy.size).to.equal(total);
      const twice = [...claimedBy].filter(([, owners]) => owners.length !== 1);
      expect(twice).to.deep.equal([]);
      const owners = new Set([...claimedBy.values()].flat());
      expect(owners.size, 'both instances took part').to.be.greaterThan(1);
      const stats = await b.stats();
      expect(stats.byStatus.delivering).to.equal(total);
      expect(stats.byStatus.received).to.equal(0);
      const events = await db.query<{ event: string; n: string }>(
        `SELECT event, count(*) AS n FROM ${schema}.message_history GROUP BY event ORDER BY event`,
      );
      expect(events.map((e) => [e.event, Number(e.n)])).to.deep.equal([
        ['claimed', total],
        ['received', total],
      ]);
    });

    it('wakes a listener on another instance when work arrives', async () => {
      let wakes = 0;
      let wake: () => void = () => undefined;
      const next = (): Promise<void> => new Promise<void>((resolve) => (wake = resolve));
      const stop = await b.onWork(() => {
        wakes++;
        wake();
      });
      try {
        const afterAccept = next();
        const [accepted] = await a.accept([newMessage()]);
        await afterAccept;

        expect(await a.claimDue('worker-a', 1, 60_000, 2_000_000_000_000)).to.have.length(1);
        const afterRelease = next();
        expect(await a.releaseLeases('worker-a', 2_000_000_000_001)).to.equal(1);
        await afterRelease;

        const id = accepted?.kind === 'created' ? accepted.message.id : '';
        await a.claimDue('worker-a', 1, 60_000, 2_000_000_000_002);
        const error = { code: 'AMT_DELIVERY_REJECTED', message: 'rejected' };
        await a.complete(
          [{ kind: 'dead', messageId: id, leaseOwner: 'worker-a', attempt: undefined, error }],
          2e12 + 3,
        );
        const afterReplay = next();
        expect((await a.replay([id], 2e12 + 4, 'operator')).replayed).to.deep.equal([id]);
        await afterReplay;
        expect(wakes).to.be.at.least(3);
      } finally {
        await stop();
      }
    });

    it('listens again after the server dropped the listening connection, and wakes the listener', async () => {
      let wake: () => void = () => undefined;
      const next = (): Promise<void> => new Promise<void>((resolve) => (wake = resolve));
      const stop = await b.onWork(() => wake());
      try {
        const afterReconnect = next();
        const terminated = await db.query<{ ok: boolean }>(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = 'amtsbote-work-listener'`,
        );
        expect(terminated.map((t) => t.ok)).to.deep.equal([true]);
        // Notifications sent while it was away are lost, so the listener is woken once anyway.
        await afterReconnect;
        const afterAccept = next();
        await a.accept([newMessage()]);
        await afterAccept;
      } finally {
        await stop();
      }
    });
  });

  describe('failures', () => {
    it('reports an unreachable server as AMT_STORE_UNAVAILABLE (retryable)', async () => {
      const closedPort = await new Promise<number>((resolve) => {
        const server = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address() as net.AddressInfo;
          server.close(() => resolve(port));
        });
      });
      let failure: unknown;
      try {
        await PostgresStore.open(`postgres://postgres@127.0.0.1:${closedPort}/amtsbote`);
      } catch (err) {
        failure = err;
      }
      expect(failure).to.be.instanceOf(AmtError);
      expect((failure as AmtError).code).to.equal('AMT_STORE_UNAVAILABLE');
      expect((failure as AmtError).retryable).to.equal(true);
    });

    it('reports a database that does not exist as AMT_STORE_UNAVAILABLE, naming it', async () => {
      const url = new URL(ADMIN_URL);
      url.pathname = '/amtsbote_no_such_database';
      const failure = await PostgresStore.open(url.toString()).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((failure as AmtError | undefined)?.code).to.equal('AMT_STORE_UNAVAILABLE');
      expect((failure as AmtError).message).to.include('database "amtsbote_no_such_database" does not exist');
    });

    it('reports a closed store as AMT_STORE_UNAVAILABLE', async () => {
      const store = await openStore();
      await store.migrate();
      await closeStore(store);
      let failure: unknown;
      try {
        await store.ping();
      } catch (err) {
        failure = err;
      }
      expect((failure as AmtError | undefined)?.code).to.equal('AMT_STORE_UNAVAILABLE');
    });
  });

  describe('schema', () => {
    it('migrates once when three processes call migrate() at the same time', async () => {
      const { schema, url } = await db.createSchema();
      const stores = await Promise.all([openStore(url, 2), openStore(url, 2), openStore(url, 2)]);
      try {
        await Promise.all(stores.map((s) => s.migrate()));
        const versions = await db.query<{ version: number; n: string }>(
          `SELECT version, count(*) AS n FROM ${schema}.schema_migrations GROUP BY version ORDER BY version`,
        );
        expect(versions.length).to.be.greaterThan(0);
        expect(versions.every((v) => Number(v.n) === 1)).to.equal(true);
        await Promise.all(stores.map((s) => s.migrate()));
        const [first] = stores;
        const [result] = await (first as PostgresStore).accept([newMessage()]);
        expect(result?.kind).to.equal('created');
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await db.dropSchema(schema);
      }
    });

    it('claims through the partial index in ORDER BY order, without a sort', async () => {
      const { schema, url } = await db.createSchema();
      const store = await openStore(url);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await store.migrate();
        // A realistic table: mostly finished messages, a few due ones, statistics up to date.
        for (let i = 0; i < 10; i++) {
          await store.accept(Array.from({ length: 500 }, (_, j) => newMessage({ receivedAt: i * 500 + j })));
        }
        await client.query(`UPDATE messages SET status = 'delivered' WHERE run_at >= 200`);
        await client.query('ANALYZE messages');
        const claimPlan = async (mode: string): Promise<{ due: PlanNode[]; expired: PlanNode[] }> => {
          await client.query(`SET plan_cache_mode = ${mode}`);
          const { rows } = await client.query<{ 'QUERY PLAN': unknown }>(
            `EXPLAIN (FORMAT JSON) ${CLAIM_DUE_SQL}`,
            ['owner', 10, 60_000, 5_000],
          );
          const plan = rows[0]?.['QUERY PLAN'];
          return {
            due: flatten(findSubplan(plan, 'CTE due')),
            expired: flatten(findSubplan(plan, 'CTE expired')),
          };
        };
        // Any sort, an incremental one included, means the index does not match the ORDER BY.
        const sorts = (nodes: PlanNode[]): boolean =>
          nodes.some((n) => String(n['Node Type']).includes('Sort'));

        // Custom plans (first runs of the prepared statement) and the generic plan it may switch to.
        for (const mode of ['force_custom_plan', 'force_generic_plan']) {
          const { due, expired } = await claimPlan(mode);
          expect(due.length, `${mode}: CTE due in the plan`).to.be.greaterThan(0);
          expect(
            due.some((n) => n['Index Name'] === 'messages_due'),
            mode,
          ).to.equal(true);
          expect(sorts(due), mode).to.equal(false);
          expect(
            expired.some((n) => n['Index Name'] === 'messages_lease_expiry'),
            mode,
          ).to.equal(true);
        }

        // The check itself is sharp: an index on run_at alone leaves the id tie-break to a sort.
        await client.query(`DROP INDEX messages_due;
          CREATE INDEX messages_due ON messages (run_at) WHERE status IN ('received', 'retrying');
          ANALYZE messages`);
        expect(sorts((await claimPlan('force_custom_plan')).due)).to.equal(true);
      } finally {
        await client.end();
        await store.close();
        await db.dropSchema(schema);
      }
    });
  });
});

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

function flatten(node: PlanNode | undefined): PlanNode[] {
  if (!node) return [];
  return [node, ...(node.Plans ?? []).flatMap(flatten)];
}

function findSubplan(plan: unknown, name: string): PlanNode | undefined {
  const root = (plan as { Plan: PlanNode }[] | undefined)?.[0]?.Plan;
  return flatten(root).find((n) => n['Subplan Name'] === name);
}
