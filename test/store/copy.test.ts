/**
 * `amtsbote store copy`: a SQLite store filled through the public API is copied into PostgreSQL
 * and read back through the public API of the PostgreSQL store, field by field.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { Command } from 'commander';
import { manifests } from '../../adapters/index.js';
import { loadConfigFile } from '../../src/config/load.js';
import { registerStoreCommands } from '../../src/store/cli.js';
import { copySqliteToPostgres, StoreCopyError, type CopySummary } from '../../src/store/copy.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type {
  AttachmentRef,
  HistoryEvent,
  MessageFilter,
  MessageRecord,
  NewMessage,
  Store,
} from '../../src/store/types.js';
import { writeGatewayConfig } from '../support/gateway-process.js';
import { testDatabaseOrSkip, type TestDatabase } from './pg-test-db.js';

const T0 = 1_750_000_000_000;
const LEASE = 30_000;
/** The copy runs shortly after the gateway stopped, its last lease still recent. */
const COPIED_AT = T0 + 100_000;

const UNICODE_PAYLOADS = [
  '{"antrag":{"name":"Jürgen Müller-Lüdenscheidt","straße":"Königsallee 1"}}',
  '{"bemerkung":"Grüße aus 東京 🚲 und e\u0301 (kombinierend)","zeilen":"a\u2028b"}',
  '{"escaped":"\\u0000\\n\\t\\"quoted\\"","leer":"","zahl":"01067"}',
  JSON.stringify({ lang: 'x'.repeat(120_000), ende: 'ß' }),
];

const ATTACHMENTS: readonly AttachmentRef[] = [
  {
    sha256: createHash('sha256').update('nachweis').digest('hex'),
    size: 8,
    filename: 'Meldebescheinigung äöü.pdf',
    mediaType: 'application/pdf',
    purpose: 'Nachweis Wohnsitz',
  },
  {
    sha256: createHash('sha256').update('foto').digest('hex'),
    size: 4,
    filename: 'foto.jpg',
    mediaType: 'image/jpeg',
  },
];

interface Fixture {
  readonly file: string;
  readonly ids: string[];
  /** Message id → lease owner, for the messages that were in delivery at the copy. */
  readonly inDelivery: Map<string, string>;
  readonly idempotencyKeys: { clientId: string; key: string }[];
  /** Messages with a recorded citizen status. */
  readonly citizenStatusIds: string[];
  /** Job names with recorded runs (when the stores keep job runs). */
  readonly jobs: string[];
  readonly liveRemembered: { namespace: string; key: string }[];
  readonly expiredRemembered: { namespace: string; key: string }[];
}

let sequence = 0;

function message(overrides: Partial<NewMessage> = {}): NewMessage {
  sequence += 1;
  const n = String(sequence).padStart(5, '0');
  return {
    id: `msg-${n}`,
    deliveryId: `dlv-${n}`,
    direction: 'outbound',
    tenantId: 'koeln',
    ars: '053150000000',
    service: '99123456789012',
    reference: `AZ-${n}`,
    clientId: 'portal-koeln',
    routeId: 'wohnsitz',
    target: 'fachverfahren',
    payload: '{"antrag":{"name":"Muster"}}',
    attachments: [],
    idempotency: undefined,
    receivedAt: T0 + (sequence % 97) * 10,
    ...overrides,
  };
}

/** Fills a SQLite store through its public API with what a running installation accumulates. */
async function fillSqlite(dir: string): Promise<Fixture> {
  const file = path.join(dir, 'data', 'amtsbote.db');
  const store = SqliteStore.open(file);
  await store.migrate();
  const ids: string[] = [];
  const inDelivery = new Map<string, string>();
  const idempotencyKeys: { clientId: string; key: string }[] = [];
  const citizenStatusIds: string[] = [];
  const accept = async (m: NewMessage): Promise<string> => {
    const [result] = await store.accept([m]);
    expect(result?.kind).to.equal('created');
    ids.push(m.id);
    if (m.idempotency) idempotencyKeys.push({ clientId: m.clientId, key: m.idempotency.key });
    return m.id;
  };
  const claim = async (id: string, owner: string, now: number): Promise<MessageRecord> => {
    const claimed = await store.claimDue(owner, 1, LEASE, now);
    expect(claimed.map((m) => m.id)).to.deep.equal([id]);
    return claimed[0]!;
  };
  const attempt = (m: MessageRecord, at: number) => ({ startedAt: at - 7, endedAt: at, target: m.target });

  // Each scenario runs to its end before the next starts, so every claim takes the one due message.
  let t = T0 + 1_000;
  const step = (): number => (t += 37);

  // Delivered, with remote statuses, an idempotency key, unicode payload, two attachments.
  for (let i = 0; i < 6; i++) {
    const id = await accept(
      message({
        ars: i % 2 === 0 ? '059130000000' : '05315',
        payload: UNICODE_PAYLOADS[i % UNICODE_PAYLOADS.length]!,
        attachments: i === 0 ? ATTACHMENTS : [],
        idempotency: { key: `antrag-${i}-ü`, requestHash: `sha256:${i}` },
        reference: i === 3 ? undefined : `AZ-Δ-${i}`,
        receivedAt: T0 + 100, // equal creation times: listings break the tie by id
      }),
    );
    const m = await claim(id, 'worker-a', step());
    const at = step();
    await store.complete(
      [
        {
          kind: 'delivered',
          messageId: id,
          leaseOwner: 'worker-a',
          attempt: attempt(m, at),
          remoteReference: i === 1 ? undefined : `VG-${i}/2025`,
          detail: { status: 201 },
        },
      ],
      at,
    );
    if (i < 3) await store.recordRemoteStatus(id, 'forwarded', { via: 'callback' }, step());
    if (i < 2) await store.recordRemoteStatus(id, 'accepted', undefined, step());
    if (i === 4) {
      // A citizen status with a follow-up message to the citizen's postbox.
      const report = (remoteStatus: string, status: string, text: string) => ({
        messageId: id,
        remoteStatus,
        detail: { via: 'poll' },
        citizen: { status, text },
      });
      const followUp = (change: number): NewMessage[] => [
        message({
          id: `${id}-status-${change}`,
          deliveryId: `${id}-dlv-${change}`,
          target: 'postfach',
          routeId: 'status',
          receivedAt: T0 + 10_000_000, // waits for a postbox that is not configured here
        }),
      ];
      const first = await store.recordStatus(
        report('IN_BEARBEITUNG', 'in-progress', 'Ihr Antrag wird bearbeitet.'),
        followUp,
        step(),
      );
      expect(first).to.deep.include({ kind: 'recorded', change: 1, followUpsCreated: 1 });
      const second = await store.recordStatus(
        report('ABGESCHLOSSEN', 'completed', 'Bescheid versandt – Grüße'),
        followUp,
        step(),
      );
      expect(second).to.deep.include({ kind: 'recorded', change: 2, followUpsCreated: 1 });
      ids.push(`${id}-status-1`, `${id}-status-2`);
      citizenStatusIds.push(id);
    }
  }

  // Retrying after two failed attempts, the last with details.
  {
    const id = await accept(message({ tenantId: 'bonn', ars: '053140000000', service: '99050012104000' }));
    for (let n = 0; n < 2; n++) {
      const m = await claim(id, `worker-${n}`, step());
      const at = step();
      await store.complete(
        [
          {
            kind: 'retry',
            messageId: id,
            leaseOwner: `worker-${n}`,
            attempt: attempt(m, at),
            error: {
              code: 'AMT_DELIVERY_RETRYABLE',
              message: 'HTTP 503',
              details: { status: 503, retryAfter: 'ü' },
            },
            runAt: n === 0 ? at : T0 + 3_600_000, // the second retry is due long after the copy
          },
        ],
        at,
      );
    }
  }

  // Dead, replayed, delivered afterwards (replayed mark on the dead letter).
  {
    const id = await accept(message({ direction: 'inbound', target: 'postfach' }));
    const m = await claim(id, 'worker-a', step());
    const at = step();
    await store.complete(
      [
        {
          kind: 'dead',
          messageId: id,
          leaseOwner: 'worker-a',
          attempt: attempt(m, at),
          error: { code: 'AMT_DELIVERY_REJECTED', message: 'HTTP 422 Unprocessable' },
        },
      ],
      at,
    );
    expect((await store.replay([id], step(), 'operator@stadt')).replayed).to.deep.equal([id]);
    const again = await claim(id, 'worker-b', step());
    const at2 = step();
    await store.complete(
      [
        {
          kind: 'delivered',
          messageId: id,
          leaseOwner: 'worker-b',
          attempt: attempt(again, at2),
          remoteReference: 'R-1',
        },
      ],
      at2,
    );
  }

  // Dead twice: dead, replayed, dead again (two dead letters, the first replayed).
  {
    const id = await accept(message({ service: '99058012104000' }));
    for (let round = 0; round < 2; round++) {
      const m = await claim(id, 'worker-c', step());
      const at = step();
      await store.complete(
        [
          {
            kind: 'dead',
            messageId: id,
            leaseOwner: 'worker-c',
            attempt: attempt(m, at),
            error: {
              code: 'AMT_MAPPING_FAILED',
              message: `round ${round}`,
              details: { path: '/antrag/name' },
            },
          },
        ],
        at,
      );
      if (round === 0) await store.replay([id], step(), 'admin');
    }
  }

  // Dead before any attempt (mapping failed).
  const deadBeforeAttempt = async (): Promise<string> => {
    const id = await accept(message({ payload: UNICODE_PAYLOADS[1]! }));
    await claim(id, 'worker-d', step());
    const error = { code: 'AMT_MAPPING_FAILED', message: 'Feld fehlt: Geburtsdatum' };
    await store.complete(
      [{ kind: 'dead', messageId: id, leaseOwner: 'worker-d', attempt: undefined, error }],
      step(),
    );
    return id;
  };
  await deadBeforeAttempt();

  // In delivery when the gateway stopped: claimed, lease expired, reclaimed, still held.
  {
    const id = await accept(message({ attachments: [ATTACHMENTS[1]!] }));
    await claim(id, 'worker-crashed', step());
    t += LEASE + 1;
    await claim(id, 'worker-e', t);
    inDelivery.set(id, 'worker-e');
  }

  // Replayed after dying, waiting for a worker again.
  await store.replay([await deadBeforeAttempt()], step(), 'operator@stadt');

  // Received and waiting: one with another client's key of the same text, the rest without keys,
  // several sharing a creation time.
  await accept(
    message({ clientId: 'portal-bonn', idempotency: { key: 'antrag-0-ü', requestHash: 'sha256:bonn' } }),
  );
  for (let i = 0; i < 14; i++) await accept(message({ receivedAt: T0 + 50_000 + (i % 4) }));

  // Scheduled job runs, where the store keeps them: one finished, one still running.
  const jobs: string[] = [];
  const jobStore = jobRunApi(store);
  if (jobStore) {
    jobs.push('retention-purge');
    const done = await jobStore.claimJobOccurrence('retention-purge', T0, 'gw-sqlite', 60_000, T0 + 5);
    expect(done).to.not.equal(undefined);
    const outcome = { status: 'succeeded', itemsProcessed: 17 } as const;
    expect(await jobStore.finishJobRun(done!.run.id, 'gw-sqlite', outcome, T0 + 900)).to.equal(true);
    expect(
      await jobStore.claimJobOccurrence(
        'retention-purge',
        T0 + 86_400_000,
        'gw-sqlite',
        60_000,
        T0 + 86_400_001,
      ),
    ).to.not.equal(undefined);
  }

  const liveRemembered = [
    { namespace: 'saml', key: '_a1b2c3-assertion' },
    { namespace: 'adapter:fit-connect', key: 'nonce-ä-1' },
  ];
  const expiredRemembered = [{ namespace: 'saml', key: '_old-assertion' }];
  for (const r of liveRemembered)
    expect(await store.rememberOnce(r.namespace, r.key, T0 + 86_400_000, T0)).to.equal(true);
  for (const r of expiredRemembered)
    expect(await store.rememberOnce(r.namespace, r.key, T0 + 1, T0)).to.equal(true);

  await store.close();
  // The attachment files, where the gateway keeps them (beside the store file).
  for (const a of ATTACHMENTS) {
    fs.mkdirSync(path.join(dir, 'data', 'attachments', a.sha256.slice(0, 2)), { recursive: true });
    fs.writeFileSync(path.join(dir, 'data', 'attachments', a.sha256.slice(0, 2), a.sha256), 'x');
  }
  return {
    file,
    ids,
    inDelivery,
    idempotencyKeys,
    citizenStatusIds,
    jobs,
    liveRemembered,
    expiredRemembered,
  };
}

type JobRunApi = Pick<
  Store,
  'claimJobOccurrence' | 'finishJobRun' | 'jobRuns' | 'runningJobRuns' | 'lastJobOccurrence'
>;

/** The job-run part of a store, when its implementation has one. */
function jobRunApi(store: object): JobRunApi | undefined {
  return typeof (store as Partial<JobRunApi>).claimJobOccurrence === 'function'
    ? (store as JobRunApi)
    : undefined;
}

/** What a message in delivery looks like after the copy: released, as on a graceful stop. */
function released(m: MessageRecord): MessageRecord {
  return {
    ...m,
    status: 'retrying',
    leaseOwner: undefined,
    leaseExpiresAt: undefined,
    runAt: COPIED_AT,
    updatedAt: COPIED_AT,
  };
}

async function allPages<T>(
  list: (filter: MessageFilter) => Promise<{ items: readonly T[]; nextCursor: string | undefined }>,
  filter: Omit<MessageFilter, 'cursor'>,
): Promise<{ items: T[]; cursors: (string | undefined)[] }> {
  const items: T[] = [];
  const cursors: (string | undefined)[] = [];
  let cursor: string | undefined;
  do {
    const page = await list({ ...filter, ...(cursor === undefined ? {} : { cursor }) });
    items.push(...page.items);
    cursors.push(page.nextCursor);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return { items, cursors };
}

describe('store copy: SQLite → PostgreSQL', function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let dir: string;

  before(async function () {
    db = await testDatabaseOrSkip(this);
  });
  after(async () => {
    await db?.drop();
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amt-copy-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('a realistic installation', () => {
    let fixture: Fixture;
    let summary: CopySummary;
    let source: SqliteStore;
    let target: PostgresStore;
    let schema: string;
    let fixtureDir: string | undefined;

    before(async () => {
      fixtureDir = fs.mkdtempSync(path.join(os.tmpdir(), 'amt-copy-src-'));
      fixture = await fillSqlite(fixtureDir);
      const created = await db.createSchema();
      schema = created.schema;
      summary = await copySqliteToPostgres(fixture.file, created.url, { batchSize: 7, now: () => COPIED_AT });
      source = SqliteStore.open(fixture.file);
      target = await PostgresStore.open(created.url, { poolSize: 2 });
    });
    after(async () => {
      await source?.close();
      await target?.close();
      if (fixtureDir) fs.rmSync(fixtureDir, { recursive: true, force: true });
    });

    it('reports every table copied with equal counts and checksums', async () => {
      const tables = summary.tables.map((t) => t.table);
      expect(tables[0]).to.equal('messages');
      const sqlite = new Database(fixture.file, { readonly: true });
      const sourceTables = sqlite
        .prepare(
          `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name <> 'schema_migrations'
             AND name <> 'message_payloads'`,
        )
        .pluck()
        .all();
      sqlite.close();
      // The payloads SQLite keeps apart arrive as messages.payload (checked field by field below).
      expect(tables).to.have.members(sourceTables);
      expect(tables).to.not.include('message_payloads');
      expect(tables).to.include.members([
        'message_attachments',
        'message_history',
        'message_attempts',
        'dead_letters',
        'remembered_keys',
        'citizen_status',
      ]);
      for (const t of summary.tables) {
        expect(t.matches, t.table).to.equal(true);
        expect(t.targetChecksum, t.table).to.equal(t.expectedChecksum);
        const [row] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.${t.table}`);
        expect(Number(row?.n), t.table).to.equal(t.targetRows);
        expect(t.targetRows, t.table).to.equal(t.sourceRows + t.addedRows);
      }
      const byName = new Map(summary.tables.map((t) => [t.table, t]));
      expect(byName.get('messages')?.sourceRows).to.equal(fixture.ids.length);
      expect(byName.get('message_history')?.addedRows).to.equal(fixture.inDelivery.size);
      expect(byName.get('dead_letters')?.sourceRows).to.equal(5);
      expect(summary.releasedLeases).to.equal(fixture.inDelivery.size);
      expect(summary.sourceSchemaVersion).to.be.greaterThan(0);
      expect(summary.targetSchemaVersion).to.be.greaterThan(0);
    });

    it('warns that a lease was live and that the attachment files must move too', () => {
      expect(summary.warnings.some((w) => /lease until/.test(w) && /still running/.test(w))).to.equal(true);
      expect(
        summary.warnings.some((w) => w.includes(path.join(path.dirname(fixture.file), 'attachments'))),
      ).to.equal(true);
      expect(summary.warnings.some((w) => /missing/.test(w))).to.equal(false);
    });

    it('reads every message back field by field, payload bytes and ARS exact', async () => {
      for (const id of fixture.ids) {
        const before = (await source.getMessage(id))!;
        const after = await target.getMessage(id);
        expect(after, id).to.deep.equal(fixture.inDelivery.has(id) ? released(before) : before);
        expect(Buffer.from(after!.payload, 'utf8').equals(Buffer.from(before.payload, 'utf8')), id).to.equal(
          true,
        );
      }
      const ars = new Set(
        (await Promise.all(fixture.ids.map((id) => target.getMessage(id)))).map((m) => m?.ars),
      );
      expect([...ars]).to.include.members(['059130000000', '053150000000', '05315']);
    });

    it('keeps history and attempts, adding one "released" event per message in delivery', async () => {
      for (const id of fixture.ids) {
        const history = await source.history(id);
        const owner = fixture.inDelivery.get(id);
        const expected: HistoryEvent[] =
          owner === undefined
            ? history
            : [
                ...history,
                {
                  seq: history.length + 1,
                  at: COPIED_AT,
                  status: 'retrying',
                  event: 'released',
                  detail: { owner, by: 'store copy' },
                },
              ];
        expect(await target.history(id), id).to.deep.equal(expected);
        expect(await target.attempts(id), id).to.deep.equal(await source.attempts(id));
      }
    });

    it('pages listings and dead letters identically, cursors included', async () => {
      const adjust = (m: MessageRecord): MessageRecord => (fixture.inDelivery.has(m.id) ? released(m) : m);
      const filters: Omit<MessageFilter, 'cursor'>[] = [
        { limit: 4 },
        { limit: 5, tenantIds: ['koeln'] },
        { limit: 2, status: 'dead' },
        { limit: 3, service: '99058012104000' },
        { limit: 3, since: T0 + 100, until: T0 + 50_002 },
        { limit: 100, reference: 'AZ-Δ-0' },
      ];
      for (const filter of filters) {
        const want = await allPages((f) => source.listMessages(f), filter);
        const got = await allPages((f) => target.listMessages(f), filter);
        expect(got.items, JSON.stringify(filter)).to.deep.equal(want.items.map(adjust));
        expect(got.cursors, JSON.stringify(filter)).to.deep.equal(want.cursors);
        const wantDead = await allPages((f) => source.deadLetters(f), filter);
        const gotDead = await allPages((f) => target.deadLetters(f), filter);
        expect(gotDead.items, JSON.stringify(filter)).to.deep.equal(wantDead.items);
        expect(gotDead.cursors).to.deep.equal(wantDead.cursors);
      }
      const dead = await allPages((f) => target.deadLetters(f), { limit: 10 });
      expect(dead.items).to.have.length(2);
    });

    it('finds every idempotency key, and the queue counts match', async () => {
      for (const { clientId, key } of fixture.idempotencyKeys) {
        const found = await target.findByIdempotencyKey(clientId, key);
        expect(found, key).to.not.equal(undefined);
        expect(found).to.deep.equal(await source.findByIdempotencyKey(clientId, key));
      }
      const want = (await source.stats()).byStatus;
      expect((await target.stats()).byStatus).to.deep.equal({
        ...want,
        delivering: want.delivering - fixture.inDelivery.size,
        retrying: want.retrying + fixture.inDelivery.size,
      });
      expect(await target.awaitingRemoteStatus('fachverfahren', ['accepted'], 100)).to.deep.equal(
        await source.awaitingRemoteStatus('fachverfahren', ['accepted'], 100),
      );
    });

    it('keeps citizen statuses and finds messages by delivery id and remote reference', async () => {
      expect(fixture.citizenStatusIds).to.have.length(1);
      for (const id of fixture.ids) {
        expect(await target.citizenStatus(id), id).to.deep.equal(await source.citizenStatus(id));
      }
      const withStatus = await target.citizenStatus(fixture.citizenStatusIds[0]!);
      expect(withStatus).to.include({ status: 'completed', text: 'Bescheid versandt – Grüße', change: 2 });
      for (const id of fixture.ids) {
        const m = (await source.getMessage(id))!;
        const adjust = (r: MessageRecord): MessageRecord => (fixture.inDelivery.has(r.id) ? released(r) : r);
        const byDelivery = { deliveryId: m.deliveryId };
        expect(await target.findMessages(byDelivery, 10)).to.deep.equal(
          (await source.findMessages(byDelivery, 10)).map(adjust),
        );
        if (m.remoteReference !== undefined) {
          const byRemote = { remoteReference: m.remoteReference, target: m.target };
          expect(await target.findMessages(byRemote, 10)).to.deep.equal(
            await source.findMessages(byRemote, 10),
          );
        }
      }
    });

    it('keeps scheduled job runs, where the stores keep them', async function () {
      const from = jobRunApi(source);
      const to = jobRunApi(target);
      if (!from || !to) {
        // Both stores gain job runs together; until then the table is copied empty.
        expect(summary.tables.find((t) => t.table === 'job_runs')?.targetRows ?? 0).to.equal(0);
        return;
      }
      expect(fixture.jobs).to.deep.equal(['retention-purge']);
      expect(summary.tables.find((t) => t.table === 'job_runs')).to.include({
        sourceRows: 2,
        targetRows: 2,
        matches: true,
      });
      for (const job of fixture.jobs) {
        const runs = await to.jobRuns(job, 100);
        expect(runs.items.map((r) => r.status)).to.have.members(['running', 'succeeded']);
        expect(runs).to.deep.equal(await from.jobRuns(job, 100));
        expect(await to.runningJobRuns(job)).to.deep.equal(await from.runningJobRuns(job));
        expect(await to.lastJobOccurrence(job)).to.equal(await from.lastJobOccurrence(job));
      }
      // The run that was running on the stopped gateway is taken over once its lease expired.
      const [stale] = await to.runningJobRuns('retention-purge');
      const takeover = await to.claimJobOccurrence(
        'retention-purge',
        stale!.scheduledAt,
        'gw-postgres',
        60_000,
        stale!.leaseExpiresAt! + 1,
      );
      expect(takeover?.run).to.include({ takeoverOf: stale!.id, attempt: 2, owner: 'gw-postgres' });
    });

    it('remembers the live remember-once keys (and lets expired ones go)', async () => {
      for (const r of fixture.liveRemembered) {
        expect(await target.rememberOnce(r.namespace, r.key, COPIED_AT + 1000, COPIED_AT), r.key).to.equal(
          false,
        );
      }
      for (const r of fixture.expiredRemembered) {
        expect(await target.rememberOnce(r.namespace, r.key, COPIED_AT + 1000, COPIED_AT), r.key).to.equal(
          true,
        );
      }
    });

    it('continues where the source stopped: history numbers, dead-letter ids, claims', async () => {
      const delivered = fixture.ids[0]!;
      const before = await target.history(delivered);
      expect(await target.recordRemoteStatus(delivered, 'closed', undefined, COPIED_AT + 1)).to.equal(true);
      expect((await target.history(delivered)).at(-1)?.seq).to.equal(before.length + 1);

      // Due now: the waiting ones, the released one and the first retry; never the one due later.
      const claimed = await target.claimDue('pg-worker', 100, LEASE, COPIED_AT + 2);
      const releasedId = [...fixture.inDelivery.keys()][0]!;
      expect(claimed.map((m) => m.id)).to.include(releasedId);
      const again = claimed.find((m) => m.id === releasedId)!;
      expect(again.deliveryId).to.equal((await source.getMessage(releasedId))?.deliveryId);
      expect(again.attempts).to.equal((await source.getMessage(releasedId))!.attempts + 1);
      const all = (await source.listMessages({ limit: 1000 })).items;
      const due = all.filter(
        (m) =>
          fixture.inDelivery.has(m.id) ||
          (['received', 'retrying'].includes(m.status) && m.runAt <= COPIED_AT + 2),
      );
      expect(due.length).to.be.greaterThan(fixture.inDelivery.size);
      expect(claimed.map((m) => m.id)).to.have.members(due.map((m) => m.id));

      // A message that dies in PostgreSQL gets a dead letter with a fresh id after the copied ones.
      const error = { code: 'AMT_DELIVERY_REJECTED', message: 'after the move' };
      const [applied] = await target.complete(
        [{ kind: 'dead', messageId: releasedId, leaseOwner: 'pg-worker', attempt: undefined, error }],
        COPIED_AT + 3,
      );
      expect(applied).to.equal(true);
      const [letter] = (await target.deadLetters({ limit: 100 })).items.filter(
        (d) => d.message.id === releasedId,
      );
      expect(letter?.error).to.deep.equal(error);
      const ids = await db.query<{ id: string }>(`SELECT id FROM ${schema}.dead_letters ORDER BY id`);
      expect(ids.map((r) => Number(r.id))).to.deep.equal([1, 2, 3, 4, 5, 6]);
    });
  });

  describe('refusals', () => {
    async function snapshot(schema: string): Promise<unknown[]> {
      const tables = [
        'messages',
        'message_history',
        'message_attachments',
        'message_attempts',
        'dead_letters',
        'remembered_keys',
      ];
      return Promise.all(tables.map((t) => db.query(`SELECT * FROM ${schema}.${t} ORDER BY 1, 2`)));
    }

    async function copyFailure(from: string, to: string): Promise<StoreCopyError> {
      try {
        await copySqliteToPostgres(from, to, { now: () => COPIED_AT });
      } catch (err) {
        expect(err).to.be.instanceOf(StoreCopyError);
        return err as StoreCopyError;
      }
      throw new Error('the copy was not refused');
    }

    it('refuses a target that holds messages, and changes nothing', async () => {
      const fixture = await fillSqlite(dir);
      const { schema, url } = await db.createSchema();
      const existing = await PostgresStore.open(url, { poolSize: 1 });
      await existing.migrate();
      await existing.accept([message({ id: fixture.ids[0]!, payload: '{"schon":"da"}' }), message()]);
      await existing.rememberOnce('saml', 'present', T0 + 10, T0);
      await existing.close();
      const before = await snapshot(schema);

      const failure = await copyFailure(fixture.file, url);
      expect(failure.reason).to.equal('target-not-empty');
      expect(failure.message).to.match(/already holds 2 message/);
      expect(await snapshot(schema)).to.deep.equal(before);
    });

    it('refuses a target with other rows though no messages, and changes nothing', async () => {
      const fixture = await fillSqlite(dir);
      const { schema, url } = await db.createSchema();
      const existing = await PostgresStore.open(url, { poolSize: 1 });
      await existing.migrate();
      await existing.rememberOnce('saml', '_a1b2c3-assertion', T0 + 10, T0);
      await existing.close();
      const before = await snapshot(schema);

      const failure = await copyFailure(fixture.file, url);
      expect(failure.reason).to.equal('target-not-empty');
      expect(failure.message).to.include('remembered_keys');
      expect(await snapshot(schema)).to.deep.equal(before);
    });

    it('refuses a source table the target does not have, when it holds rows', async () => {
      const fixture = await fillSqlite(dir);
      const sqlite = new Database(fixture.file);
      sqlite.exec(`CREATE TABLE local_notes (id INTEGER PRIMARY KEY, note TEXT NOT NULL) STRICT;
        INSERT INTO local_notes (note) VALUES ('only here')`);
      sqlite.close();
      const { schema, url } = await db.createSchema();
      const failure = await copyFailure(fixture.file, url);
      expect(failure.reason).to.equal('schema-mismatch');
      expect(failure.message).to.include('local_notes');
      const [row] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.messages`);
      expect(Number(row?.n)).to.equal(0);
    });

    it('refuses a missing source file without touching the target', async () => {
      const { schema, url } = await db.createSchema();
      const failure = await copyFailure(path.join(dir, 'nope.db'), url);
      expect(failure.reason).to.equal('source-missing');
      expect(fs.existsSync(path.join(dir, 'nope.db'))).to.equal(false);
      const tables = await db.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = $1`, [
        schema,
      ]);
      expect(tables).to.deep.equal([]);
    });
  });

  it('copies a table a later migration adds to both stores, by column name (types converted, sequence continued)', async () => {
    // A table no rule knows: what the copy does with any table a future migration adds to both stores.
    const fixture = await fillSqlite(dir);
    const sqlite = new Database(fixture.file);
    sqlite.exec(`CREATE TABLE later_runs (
        id INTEGER PRIMARY KEY, job TEXT NOT NULL, started_at INTEGER NOT NULL, succeeded INTEGER,
        output TEXT, big INTEGER) STRICT`);
    const insert = sqlite.prepare(
      'INSERT INTO later_runs (job, started_at, succeeded, output, big) VALUES (?, ?, ?, ?, ?)',
    );
    for (let i = 0; i < 11; i++) {
      insert.run(
        `retention-purge-${i}`,
        T0 + i,
        i % 3 === 0 ? null : i % 2,
        JSON.stringify({ purged: i, note: 'ä' }),
        2n ** 60n + BigInt(i),
      );
    }
    sqlite.close();
    const { schema, url } = await db.createSchema();
    await db.query(`CREATE TABLE ${schema}.later_runs (
        id bigserial PRIMARY KEY, job text NOT NULL, started_at bigint NOT NULL, succeeded boolean,
        output jsonb, big bigint, host text DEFAULT 'unknown')`);

    const summary = await copySqliteToPostgres(fixture.file, url, { batchSize: 4, now: () => COPIED_AT });
    const laterRuns = summary.tables.find((t) => t.table === 'later_runs');
    expect(laterRuns).to.include({ sourceRows: 11, targetRows: 11, matches: true });
    expect(summary.notes.some((n) => n.includes('later_runs.host'))).to.equal(true);
    const rows = await db.query<{ id: string; succeeded: boolean | null; output: unknown; big: string }>(
      `SELECT id, succeeded, output, big FROM ${schema}.later_runs ORDER BY id`,
    );
    expect(rows.map((r) => r.succeeded)).to.deep.equal(
      Array.from({ length: 11 }, (_, i) => (i % 3 === 0 ? null : i % 2 === 1)),
    );
    expect(rows[5]?.output).to.deep.equal({ purged: 5, note: 'ä' });
    expect(rows[10]?.big).to.equal((2n ** 60n + 10n).toString());
    const [next] = await db.query<{ id: string }>(
      `INSERT INTO ${schema}.later_runs (job, started_at) VALUES ('next', 1) RETURNING id`,
    );
    expect(Number(next?.id)).to.equal(12);
  });

  describe('command line', () => {
    async function run(...args: string[]): Promise<{ out: string; err: string }> {
      const program = new Command('amtsbote').exitOverride();
      registerStoreCommands(program, (file) => loadConfigFile(file ?? 'gateway.yaml', { manifests }));
      const out: string[] = [];
      const err: string[] = [];
      const { log, error } = console;
      console.log = (...a: unknown[]) => out.push(a.join(' '));
      console.error = (...a: unknown[]) => err.push(a.join(' '));
      try {
        await program.parseAsync(args, { from: 'user' });
      } finally {
        console.log = log;
        console.error = error;
      }
      return { out: out.join('\n'), err: err.join('\n') };
    }

    it('migrate creates the configured schema and prints its version, then reports it up to date', async () => {
      const { url } = await db.createSchema();
      const config = writeGatewayConfig({
        dir,
        receiverUrl: 'http://127.0.0.1:9',
        port: 1,
        postgresUrl: url,
      });
      const first = await run('migrate', '-c', config);
      expect(first.out).to.match(/^store postgres .*: schema version [1-9]\d* \(migrated from version 0\)$/);
      expect(first.out).to.not.include('password');
      const second = await run('migrate', '-c', config);
      expect(second.out).to.match(/schema version [1-9]\d* \(up to date\)$/);

      const sqliteConfig = writeGatewayConfig({ dir, receiverUrl: 'http://127.0.0.1:9', port: 2 });
      const sqlite = await run('migrate', '-c', sqliteConfig);
      expect(sqlite.out).to.match(
        /^store sqlite .*amtsbote\.db: schema version [1-9]\d* \(migrated from version 0\)$/,
      );
    });

    it('store copy copies, verifies and prints a summary; a second run is refused', async () => {
      const fixture = await fillSqlite(dir);
      const { url } = await db.createSchema();
      const result = await run(
        'store',
        'copy',
        '--from',
        `sqlite:${fixture.file}`,
        '--to',
        `postgres:${url}`,
        '--batch',
        '3',
      );
      const n = fixture.ids.length;
      expect(result.out).to.match(new RegExp(`messages\\s+${n}\\s+${n}\\s+ok [0-9a-f]{16}`));
      expect(result.out).to.match(/message_history\s+\d+\s+\d+\s+ok [0-9a-f]{16} \(\+1 added\)/);
      expect(result.out).to.include('1 message(s) in delivery were copied as retrying');
      expect(result.out).to.match(
        new RegExp(`copied ${n} message\\(s\\) in [\\d.]+ s; counts and checksums match`),
      );

      let refused: unknown;
      try {
        await run('store', 'copy', '--from', `sqlite:${fixture.file}`, '--to', url);
      } catch (err) {
        refused = err;
      }
      expect((refused as StoreCopyError | undefined)?.reason).to.equal('target-not-empty');
    });

    it('store copy takes the target from -c FILE, keeping the password off the command line', async () => {
      const fixture = await fillSqlite(dir);
      const { url } = await db.createSchema();
      const config = writeGatewayConfig({
        dir,
        receiverUrl: 'http://127.0.0.1:9',
        port: 3,
        postgresUrl: url,
      });
      const result = await run('store', 'copy', '--from', `sqlite:${fixture.file}`, '-c', config);
      expect(result.out).to.include('counts and checksums match');
    });
  });
});
