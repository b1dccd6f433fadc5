/**
 * Intake throughput of the SQLite store (WAL, synchronous=FULL): accepted messages per second
 * with one commit per message, with concurrent single-message calls merged by group commit,
 * and with explicit 100-message batches for reference. Median of several runs, fresh file each.
 *
 * Then the WAL pages one application costs — its accept (stored claimed, as a free delivery
 * slot takes it) and its outcome — on a store already holding `--prefill` messages: outcome and
 * accept in commits of their own or in one (`acceptAndComplete`), one application to a commit
 * or eight. A reader holding a snapshot keeps SQLite from starting the WAL over, so the file's
 * growth counts every page written.
 *
 *   npm run bench:store [-- --messages 20000 --single 2000 --concurrency 256 --runs 5
 *                                       --prefill 20000 --applications 2000]
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { withGroupCommit } from '../src/store/group-commit.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { NewMessage, Outcome, Store } from '../src/store/types.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    single: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '256' },
    runs: { type: 'string', default: '5' },
    prefill: { type: 'string', default: '20000' },
    applications: { type: 'string', default: '2000' },
  },
});
const MESSAGES = Number(values.messages);
const SINGLE = Number(values.single);
const CONCURRENCY = Number(values.concurrency);
const RUNS = Number(values.runs);

/** About 5 KB of application JSON, like a real Antrag with some free text. */
const PAYLOAD = JSON.stringify({
  applicant: { givenName: 'Erika', surname: 'Mustermann', street: 'Domkloster 4', postalCode: '50667' },
  remarks: 'Bewohnerparkausweis für Zone 3. '.repeat(150),
});

let sequence = 0;
function message(): NewMessage {
  sequence += 1;
  const id = `b${String(sequence).padStart(10, '0')}`;
  return {
    id,
    deliveryId: `d-${id}`,
    direction: 'outbound',
    tenantId: 'koeln',
    ars: '053150000000',
    service: '99050012104000',
    reference: undefined,
    clientId: 'portal',
    routeId: 'bewohnerparken',
    target: 'fachverfahren',
    payload: PAYLOAD,
    attachments: [],
    idempotency: { key: `key-${id}`, requestHash: 'h' },
    receivedAt: Date.now(),
  };
}

async function withFreshStore(run: (store: SqliteStore) => Promise<number>): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-bench-store-'));
  const store = SqliteStore.open(path.join(dir, 'store.db'));
  try {
    await store.migrate();
    return await run(store);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `callers` concurrent loops, each accepting `perCall` messages per call until `total` are in. */
async function drive(store: Store, total: number, callers: number, perCall: number): Promise<number> {
  let remaining = total;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (remaining > 0) {
        const n = Math.min(perCall, remaining);
        remaining -= n;
        await store.accept(Array.from({ length: n }, message));
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return total / seconds;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const scenarios: [string, () => Promise<number>][] = [
  ['one commit per message (sequential)', () => withFreshStore((s) => drive(s, SINGLE, 1, 1))],
  [
    `group commit (${CONCURRENCY} concurrent single-message calls)`,
    () => withFreshStore((s) => drive(withGroupCommit(s), MESSAGES, CONCURRENCY, 1)),
  ],
  ['explicit batches of 100 (sequential)', () => withFreshStore((s) => drive(s, MESSAGES, 1, 100))],
];

console.log(`SQLite store intake, ~${Math.round(PAYLOAD.length / 1024)} KB payloads, median of ${RUNS} runs`);
for (const [name, scenario] of scenarios) {
  const rates: number[] = [];
  for (let i = 0; i < RUNS; i++) rates.push(await scenario());
  console.log(
    `  ${name.padEnd(58)} ${Math.round(median(rates)).toLocaleString('en-US').padStart(8)} messages/s`,
  );
}

// ---- WAL pages per application ---------------------------------------------------------------

const OWNER = 'bench-worker';
const WAL_FRAME = 4096 + 24;

function claimedMessage(): NewMessage {
  return { ...message(), claim: { owner: OWNER, leaseExpiresAt: Date.now() + 600_000 } };
}

function deliveredOutcome(id: string): Outcome {
  const now = Date.now();
  return {
    kind: 'delivered',
    messageId: id,
    leaseOwner: OWNER,
    attempt: { startedAt: now, endedAt: now, target: 'fachverfahren' },
    remoteReference: `FV-${id}`,
  };
}

/** WAL pages per application: each round accepts `perCommit` new messages and delivers the previous round's. */
async function walPagesPerApplication(shared: boolean, perCommit: number): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-bench-wal-'));
  const file = path.join(dir, 'store.db');
  const store = SqliteStore.open(file);
  let reader: Database.Database | undefined;
  try {
    await store.migrate();
    for (let done = 0; done < Number(values.prefill); done += 200) {
      const batch = Array.from({ length: 200 }, claimedMessage);
      await store.accept(batch);
      await store.complete(
        batch.map((m) => deliveredOutcome(m.id)),
        Date.now(),
      );
    }
    reader = new Database(file, { readonly: true });
    reader.prepare('BEGIN').run();
    reader.prepare('SELECT count(*) FROM messages').get();
    const wal = `${file}-wal`;
    const before = fs.statSync(wal).size;
    const applications = Number(values.applications);
    let previous: NewMessage[] = [];
    for (let done = 0; done < applications + perCommit; done += perCommit) {
      const fresh = done < applications ? Array.from({ length: perCommit }, claimedMessage) : [];
      const outcomes = previous.map((m) => deliveredOutcome(m.id));
      if (shared) await store.acceptAndComplete(fresh, outcomes, Date.now());
      else {
        if (fresh.length > 0) await store.accept(fresh);
        if (outcomes.length > 0) await store.complete(outcomes, Date.now());
      }
      previous = fresh;
    }
    return (fs.statSync(wal).size - before) / WAL_FRAME / applications;
  } finally {
    reader?.prepare('COMMIT').run();
    reader?.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `WAL pages (4 KiB) per application — accept, stored claimed, and its outcome — on a store of ${Number(values.prefill).toLocaleString('en-US')} messages`,
);
for (const perCommit of [1, 8]) {
  const apart = await walPagesPerApplication(false, perCommit);
  const together = await walPagesPerApplication(true, perCommit);
  const label = perCommit === 1 ? 'one application to a commit' : `${perCommit} applications to a commit`;
  console.log(
    `  ${label.padEnd(30)} outcome committed apart ${apart.toFixed(1).padStart(5)}   together with the intake ${together.toFixed(1).padStart(5)}`,
  );
}
