/**
 * The store contract test suite. Every `Store` implementation runs it unchanged; it uses only
 * the public `Store` interface.
 *
 * Lifecycle: `open()` returns a store over an EMPTY database (a fresh one per test). The suite
 * calls `migrate()` itself, then the test, then `close()`; `cleanup(store)`, when given, runs
 * after `close()` and removes what the store left behind (files, a database) — it must not use
 * the store.
 *
 * Semantics pinned here beyond the doc comments of `Store`:
 * - Absent values come back as `undefined`, never `null`.
 * - `claimDue` orders by (runAt, id) with ids compared bytewise; a reclaimed expired lease is the
 *   history event `reclaimed` with `previousOwner` in its detail.
 * - Attempt rows are numbered per message over its whole life: `n` equals `attempts` until a
 *   replay resets `attempts` to 0; after that `n` keeps counting (claims never reuse a number).
 *   History details name the attempt by that same number.
 * - `complete` does not compare the lease expiry with `now`: a late outcome still applies as long
 *   as no other worker took the message over.
 * - `listMessages`/`deadLetters`: newest first by (createdAt, id); `since` is inclusive, `until`
 *   exclusive; `tenantIds: []` matches nothing; `nextCursor` is undefined on the last page, also
 *   when that page is exactly full. A cursor that is not one of ours is rejected.
 * - Scheduled jobs: an occurrence is (job, scheduledAt). `claimJobOccurrence` gives it to exactly
 *   one caller as attempt 1. While that run is `running` with a live lease (leaseExpiresAt > now)
 *   nobody else gets it; once its lease has expired (leaseExpiresAt <= now) the next claim takes it
 *   over: the old run becomes `abandoned` (finishedAt = now, error AMT_JOB_LEASE_EXPIRED) and the
 *   new one is attempt n+1 with `takeoverOf` naming it. A finished run (any other status) is
 *   never claimed again. `running` in the claim lists the job's other runs whose lease was live at
 *   the claim, oldest occurrence first. `heartbeatJobRun`/`finishJobRun` apply only while the
 *   run is `running` and held by that owner (an expired but not yet taken-over lease still counts,
 *   like `complete`); they answer false and change nothing otherwise. `jobRuns` lists newest
 *   occurrence first, then highest attempt; `lastJobOccurrence` is the greatest scheduledAt ever
 *   claimed for the job, whatever the trigger.
 * - Retention: `purgePayloads` takes messages in `delivered` or `dead` whose `updatedAt` is before
 *   `before` and whose payload is not already `PURGED_PAYLOAD`, oldest `updatedAt` first (then
 *   id). It keeps status, ids, `updatedAt`, history and attempts; the payload becomes
 *   `PURGED_PAYLOAD`, attachments become [], the history gains `purged` (status unchanged, detail
 *   `{attachments: <count>}`). `unreferencedAttachments` are the hashes released by this call
 *   that no message references any more, sorted.
 * - `deadLetterCounts` lists routes with dead messages, sorted by route id (bytewise); `deadSince`
 *   counts those whose `updatedAt` is at or after `since`.
 * - Text from outside (outcomes' remote reference, detail and errors; remote statuses, status
 *   reports, job errors) is kept with U+FFFD in place of U+0000 and of lone surrogates.
 */
import { expect } from 'chai';
import type {
  AcceptResult,
  ErrorInfo,
  MessageFilter,
  MessageRecord,
  NewMessage,
  Outcome,
  Store,
} from '../../src/store/types.js';
import { MAX_ATTACHMENT_LOOKUP, MAX_REMOTE_REFERENCE_LENGTH, PURGED_PAYLOAD } from '../../src/store/types.js';

const T0 = 1_750_000_000_000;
const LEASE = 30_000;

type Draft = { -readonly [K in keyof NewMessage]: NewMessage[K] };

let counter = 0;

/** A new message with a unique, fixed-width id (so ids sort the same bytewise and by number). */
function draft(overrides: Partial<Draft> = {}): NewMessage {
  counter += 1;
  const n = String(counter).padStart(8, '0');
  return {
    id: `m${n}`,
    deliveryId: `d${n}`,
    direction: 'outbound',
    tenantId: 'koeln',
    ars: '053150000000',
    service: '99123456789012',
    reference: undefined,
    clientId: 'portal-koeln',
    routeId: 'wohnsitz',
    target: 'fachverfahren',
    payload: '{"antrag":{"name":"Muster"}}',
    attachments: [],
    idempotency: undefined,
    receivedAt: T0,
    ...overrides,
  };
}

/** Drops keys whose value is undefined so deep equality compares what was stored. */
function plain<T>(value: T): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/** Compares the named fields strictly; a field expected undefined may be absent. */
function expectFields(actual: object | undefined, expected: Record<string, unknown>): void {
  expect(actual, 'record').to.not.equal(undefined);
  const record = actual as Record<string, unknown>;
  for (const [key, value] of Object.entries(expected)) expect(record[key], key).to.equal(value);
}

function created(result: AcceptResult | undefined): MessageRecord {
  expect(result?.kind).to.equal('created');
  if (result?.kind !== 'created') throw new Error('not created');
  return result.message;
}

export function describeStoreContract(
  name: string,
  open: () => Promise<Store>,
  cleanup?: (s: Store) => Promise<void>,
): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });

    afterEach(async () => {
      await store.close();
      if (cleanup) await cleanup(store);
    });

    async function acceptOne(overrides: Partial<Draft> = {}): Promise<MessageRecord> {
      const [result] = await store.accept([draft(overrides)]);
      return created(result);
    }

    /** Claims the next due message; when `expectedId` is given it must be that one. */
    async function claimOnly(owner: string, now: number, expectedId?: string): Promise<MessageRecord> {
      const claimed = await store.claimDue(owner, 1, LEASE, now);
      expect(claimed).to.have.length(1);
      if (expectedId !== undefined) expect(claimed[0]?.id).to.equal(expectedId);
      return claimed[0]!;
    }

    function delivered(m: MessageRecord, owner: string, at: number, remoteReference?: string): Outcome {
      return {
        kind: 'delivered',
        messageId: m.id,
        leaseOwner: owner,
        attempt: { startedAt: at - 5, endedAt: at, target: m.target },
        remoteReference,
      };
    }

    const REJECTED: ErrorInfo = {
      code: 'AMT_DELIVERY_REJECTED',
      message: 'Antrag abgelehnt',
      details: { status: 400 },
    };

    function dead(
      m: MessageRecord,
      owner: string,
      at: number,
      withAttempt = true,
      error = REJECTED,
    ): Outcome {
      return {
        kind: 'dead',
        messageId: m.id,
        leaseOwner: owner,
        attempt: withAttempt ? { startedAt: at - 5, endedAt: at, target: m.target } : undefined,
        error,
      };
    }

    /** Accepts, claims and completes one message as delivered; no other message may be due. */
    async function deliverOne(overrides: Partial<Draft> = {}, at = T0 + 10): Promise<MessageRecord> {
      const m = await acceptOne(overrides);
      await claimOnly('w1', at - 5, m.id);
      expect(await store.complete([delivered(m, 'w1', at, `remote-${m.id}`)], at)).to.deep.equal([true]);
      return (await store.getMessage(m.id))!;
    }

    async function killOne(overrides: Partial<Draft> = {}, at = T0 + 10): Promise<MessageRecord> {
      const m = await acceptOne(overrides);
      await claimOnly('w1', at - 5, m.id);
      expect(await store.complete([dead(m, 'w1', at)], at)).to.deep.equal([true]);
      return (await store.getMessage(m.id))!;
    }

    describe('schema', () => {
      it('answers ping and survives a second migrate with its data', async () => {
        await store.ping();
        const m = await acceptOne();
        await store.migrate();
        await store.ping();
        expect((await store.getMessage(m.id))?.deliveryId).to.equal(m.deliveryId);
      });
    });

    describe('accept', () => {
      it('stores a new message as received, due at once, with every field round-tripping', async () => {
        const input = draft({
          direction: 'inbound',
          reference: 'AZ-2025/0815',
          receivedAt: T0 + 123,
        });
        const [result] = await store.accept([input]);
        const m = created(result);
        expectFields(m, {
          id: input.id,
          deliveryId: input.deliveryId,
          direction: 'inbound',
          tenantId: 'koeln',
          ars: '053150000000',
          service: '99123456789012',
          reference: 'AZ-2025/0815',
          clientId: 'portal-koeln',
          routeId: 'wohnsitz',
          target: 'fachverfahren',
          status: 'received',
          payload: input.payload,
          attempts: 0,
          runAt: T0 + 123,
          createdAt: T0 + 123,
          updatedAt: T0 + 123,
        });
        for (const absent of [
          'leaseOwner',
          'leaseExpiresAt',
          'remoteReference',
          'remoteStatus',
          'lastError',
        ] as const) {
          expect(m[absent], absent).to.equal(undefined);
        }
        expect(m.attachments).to.deep.equal([]);
        expect(plain(await store.getMessage(m.id))).to.deep.equal(plain(m));
        expect(await store.history(m.id)).to.deep.equal([
          { seq: 1, at: T0 + 123, status: 'received', event: 'received', detail: undefined },
        ]);
        expect(await store.attempts(m.id)).to.deep.equal([]);
      });

      it('returns undefined (not null) for a message without reference', async () => {
        const m = await acceptOne({ reference: undefined });
        const read = await store.getMessage(m.id);
        expect(read).to.not.equal(undefined);
        expect(read!.reference).to.equal(undefined);
        expect(read!.leaseOwner).to.equal(undefined);
        expect(read!.lastError).to.equal(undefined);
      });

      it('keeps the leading zeros of ARS and service key (they are strings, not numbers)', async () => {
        const m = await acceptOne({ ars: '059130000000', service: '99000000000001', tenantId: '05913' });
        const read = (await store.getMessage(m.id))!;
        expect(read.ars).to.equal('059130000000');
        expect(read.service).to.equal('99000000000001');
        expect(read.tenantId).to.equal('05913');
        const page = await store.listMessages({ service: '99000000000001', tenantIds: ['05913'], limit: 10 });
        expect(page.items.map((x) => x.ars)).to.deep.equal(['059130000000']);
      });

      it('keeps unicode payloads, filenames and references byte for byte', async () => {
        // Decomposed and precomposed umlauts must both survive: nothing may normalise them.
        const payload = JSON.stringify({
          name: 'Jürgen Groß',
          decomposed: 'Mu\u0308ller',
          family: '👩‍👩‍👧 🏠',
          scripts: 'Ελληνικά · العربية · 漢字',
          separators: 'a\u2028b\u2029c\r\nd\te',
          escapes: '"\\/',
        });
        const m = await acceptOne({
          payload,
          reference: 'Aktenzeichen ä/ß/€',
          attachments: [
            {
              sha256: 'a'.repeat(64),
              size: 12,
              filename: 'Meldebestätigung – Köln 📄.pdf',
              mediaType: 'application/pdf',
              purpose: 'Nachweis Wohnsitz (Ü)',
            },
          ],
        });
        const read = (await store.getMessage(m.id))!;
        expect(Buffer.from(read.payload, 'utf8').equals(Buffer.from(payload, 'utf8'))).to.equal(true);
        expect(read.reference).to.equal('Aktenzeichen ä/ß/€');
        expect(read.attachments[0]?.filename).to.equal('Meldebestätigung – Köln 📄.pdf');
        expect(read.attachments[0]?.purpose).to.equal('Nachweis Wohnsitz (Ü)');
        const [claimed] = await store.claimDue('w1', 1, LEASE, T0);
        expect(claimed?.payload).to.equal(payload);
      });

      it('stores attachment refs with the message, in order, sizes beyond 32 bits intact', async () => {
        const attachments = [
          { sha256: 'f'.repeat(64), size: 5_000_000_000, filename: 'b.pdf', mediaType: 'application/pdf' },
          {
            sha256: '0'.repeat(64),
            size: 0,
            filename: 'a.txt',
            mediaType: 'text/plain',
            purpose: 'Vollmacht',
          },
          {
            sha256: '1'.repeat(64),
            size: 7,
            filename: 'c.xml',
            mediaType: 'application/xml',
            purpose: undefined,
          },
        ];
        const m = await acceptOne({ attachments });
        expect(plain(m.attachments)).to.deep.equal(plain(attachments));
        const read = (await store.getMessage(m.id))!;
        expect(plain(read.attachments)).to.deep.equal(plain(attachments));
        expect(read.attachments[0]?.size).to.equal(5_000_000_000);
        expect(read.attachments[0]?.purpose).to.equal(undefined);
        const [claimed] = await store.claimDue('w1', 1, LEASE, T0);
        expect(plain(claimed?.attachments)).to.deep.equal(plain(attachments));
      });

      it('accepts a batch and answers in the order of the batch', async () => {
        const batch = [draft(), draft({ tenantId: 'bonn' }), draft()];
        const results = await store.accept(batch);
        expect(results.map((r) => r.kind)).to.deep.equal(['created', 'created', 'created']);
        expect(results.map((r) => (r.kind === 'created' ? r.message.id : undefined))).to.deep.equal(
          batch.map((b) => b.id),
        );
        expect((await store.stats()).byStatus.received).to.equal(3);
      });

      it('returns the existing message for the same client, key and request hash, writing nothing', async () => {
        const first = await acceptOne({ idempotency: { key: 'k-1', requestHash: 'h1' } });
        const again = draft({ idempotency: { key: 'k-1', requestHash: 'h1' }, receivedAt: T0 + 50 });
        const [result] = await store.accept([again]);
        expect(result?.kind).to.equal('existing');
        if (result?.kind !== 'existing') return;
        expect(plain(result.message)).to.deep.equal(plain(first));
        expect(await store.getMessage(again.id)).to.equal(undefined);
        expect(await store.history(first.id)).to.have.length(1);
        expect((await store.stats()).byStatus.received).to.equal(1);
      });

      it('returns the current state of the existing message, not the state at intake', async () => {
        const first = await acceptOne({ idempotency: { key: 'k-2', requestHash: 'h' } });
        await claimOnly('w1', T0 + 1);
        const [result] = await store.accept([draft({ idempotency: { key: 'k-2', requestHash: 'h' } })]);
        expect(result?.kind).to.equal('existing');
        if (result?.kind !== 'existing') return;
        expect(result.message.id).to.equal(first.id);
        expect(result.message.status).to.equal('delivering');
        expect(result.message.attempts).to.equal(1);
      });

      it('reports a conflict for the same key with another request hash, writing nothing', async () => {
        const first = await acceptOne({ idempotency: { key: 'k-1', requestHash: 'h1' } });
        const other = draft({ idempotency: { key: 'k-1', requestHash: 'h2' } });
        const results = await store.accept([other]);
        expect(results).to.deep.equal([{ kind: 'conflict', messageId: first.id }]);
        expect(await store.getMessage(other.id)).to.equal(undefined);
        expect(await store.findByIdempotencyKey('portal-koeln', 'k-1')).to.deep.equal({
          messageId: first.id,
          requestHash: 'h1',
        });
      });

      it('stores a message claimed at intake when asked, as if claimDue had taken it then', async () => {
        const claim = { owner: 'w1', leaseExpiresAt: T0 + LEASE };
        const [plainOne, claimedOne] = await store.accept([draft(), draft({ claim })]);
        expect(created(plainOne).status).to.equal('received');
        const m = created(claimedOne);
        expectFields(m, {
          status: 'delivering',
          leaseOwner: 'w1',
          leaseExpiresAt: T0 + LEASE,
          attempts: 1,
          runAt: T0,
          updatedAt: T0,
        });
        expect(plain(await store.getMessage(m.id))).to.deep.equal(plain(m));
        const history = await store.history(m.id);
        expect(history.map((h) => [h.seq, h.at, h.event, h.status])).to.deep.equal([
          [1, T0, 'received', 'received'],
          [2, T0, 'claimed', 'delivering'],
        ]);
        expect(history[1]?.detail).to.deep.include({ owner: 'w1', attempt: 1 });
        // Not handed to anyone else while the lease holds; only the unclaimed one is due.
        expect((await store.claimDue('w2', 10, LEASE, T0 + 1)).map((x) => x.id)).to.deep.equal([
          created(plainOne).id,
        ]);
        expect(await store.complete([delivered(m, 'w1', T0 + 20, 'r-1')], T0 + 20)).to.deep.equal([true]);
        const done = (await store.getMessage(m.id))!;
        expectFields(done, { status: 'delivered', remoteReference: 'r-1', leaseOwner: undefined });
        expect((await store.attempts(m.id)).map((a) => [a.n, a.outcome])).to.deep.equal([[1, 'delivered']]);
      });

      it('reclaims a message claimed at intake once its lease expired (the taker crashed)', async () => {
        const m = await acceptOne({ claim: { owner: 'w1', leaseExpiresAt: T0 + LEASE } });
        expect(await store.claimDue('w2', 10, LEASE, T0 + LEASE - 1)).to.deep.equal([]);
        const [again] = await store.claimDue('w2', 10, LEASE, T0 + LEASE);
        expectFields(again, { id: m.id, leaseOwner: 'w2', attempts: 2 });
        expect((await store.history(m.id)).map((h) => h.event)).to.deep.equal([
          'received',
          'claimed',
          'reclaimed',
        ]);
      });

      it('ignores the claim of a call answered with an existing message or a conflict', async () => {
        const first = await acceptOne({ idempotency: { key: 'k-c', requestHash: 'h1' } });
        const claim = { owner: 'w1', leaseExpiresAt: T0 + LEASE };
        const results = await store.accept([
          draft({ idempotency: { key: 'k-c', requestHash: 'h1' }, claim }),
          draft({ idempotency: { key: 'k-c', requestHash: 'h2' }, claim }),
        ]);
        expect(results.map((r) => r.kind)).to.deep.equal(['existing', 'conflict']);
        expectFields(await store.getMessage(first.id), { status: 'received', leaseOwner: undefined });
        expect(await store.history(first.id)).to.have.length(1);
      });

      it('treats the same key twice in one batch as two calls in sequence', async () => {
        const a = draft({ idempotency: { key: 'k', requestHash: 'h1' } });
        const b = draft({ idempotency: { key: 'k', requestHash: 'h1' } });
        const c = draft({ idempotency: { key: 'k', requestHash: 'h2' } });
        const d = draft();
        const results = await store.accept([a, b, c, d]);
        expect(results.map((r) => r.kind)).to.deep.equal(['created', 'existing', 'conflict', 'created']);
        const existing = results[1];
        expect(existing?.kind === 'existing' && existing.message.id).to.equal(a.id);
        expect(results[2]).to.deep.equal({ kind: 'conflict', messageId: a.id });
        expect(await store.getMessage(b.id)).to.equal(undefined);
        expect(await store.getMessage(c.id)).to.equal(undefined);
        expect((await store.stats()).byStatus.received).to.equal(2);
      });

      it('scopes keys per client', async () => {
        const a = await acceptOne({ clientId: 'portal-a', idempotency: { key: 'same', requestHash: 'h1' } });
        const b = await acceptOne({ clientId: 'portal-b', idempotency: { key: 'same', requestHash: 'h2' } });
        expect(a.id).to.not.equal(b.id);
        expect(await store.findByIdempotencyKey('portal-a', 'same')).to.deep.equal({
          messageId: a.id,
          requestHash: 'h1',
        });
        expect(await store.findByIdempotencyKey('portal-b', 'same')).to.deep.equal({
          messageId: b.id,
          requestHash: 'h2',
        });
        expect(await store.findByIdempotencyKey('portal-c', 'same')).to.equal(undefined);
        expect(await store.findByIdempotencyKey('portal-a', 'other')).to.equal(undefined);
      });

      it('never deduplicates messages without a key', async () => {
        const results = await store.accept([draft(), draft()]);
        expect(results.map((r) => r.kind)).to.deep.equal(['created', 'created']);
      });

      it('lets one of two concurrent calls with the same key create the message', async () => {
        const [x, y] = await Promise.all([
          store.accept([draft({ idempotency: { key: 'race', requestHash: 'h' } })]),
          store.accept([draft({ idempotency: { key: 'race', requestHash: 'h' } })]),
        ]);
        const kinds = [x?.[0]?.kind, y?.[0]?.kind].sort();
        expect(kinds).to.deep.equal(['created', 'existing']);
        const ids = [x?.[0], y?.[0]].map((r) => (r?.kind === 'conflict' ? r.messageId : r?.message.id));
        expect(ids[0]).to.equal(ids[1]);
        expect((await store.stats()).byStatus.received).to.equal(1);
      });

      it('writes nothing of a batch that fails', async () => {
        const existing = await acceptOne();
        const fresh = draft({ idempotency: { key: 'k-fail', requestHash: 'h' } });
        const duplicate = draft({ id: existing.id });
        let failed = false;
        try {
          await store.accept([fresh, duplicate]);
        } catch {
          failed = true;
        }
        expect(failed, 'a batch with an id that exists must be rejected').to.equal(true);
        expect(await store.getMessage(fresh.id)).to.equal(undefined);
        expect(await store.findByIdempotencyKey(fresh.clientId, 'k-fail')).to.equal(undefined);
        expect((await store.stats()).byStatus.received).to.equal(1);
      });
    });

    describe('claimDue', () => {
      it('claims the oldest due messages first (runAt, then id) and leases them', async () => {
        await store.accept([
          draft({ id: 'c0000003', receivedAt: T0 + 2 }),
          draft({ id: 'c0000002', receivedAt: T0 + 1 }),
          draft({ id: 'c0000001', receivedAt: T0 + 1 }),
          draft({ id: 'c0000000', receivedAt: T0 + 3 }),
        ]);
        const claimed = await store.claimDue('worker-a', 3, LEASE, T0 + 10);
        expect(claimed.map((m) => m.id)).to.deep.equal(['c0000001', 'c0000002', 'c0000003']);
        for (const m of claimed) {
          expectFields(m, {
            status: 'delivering',
            leaseOwner: 'worker-a',
            leaseExpiresAt: T0 + 10 + LEASE,
            attempts: 1,
            updatedAt: T0 + 10,
          });
        }
        const read = (await store.getMessage('c0000001'))!;
        expect(plain(read)).to.deep.equal(plain(claimed[0]));
        const history = await store.history('c0000001');
        expect(history.map((h) => [h.seq, h.event, h.status])).to.deep.equal([
          [1, 'received', 'received'],
          [2, 'claimed', 'delivering'],
        ]);
        expect(history[1]?.at).to.equal(T0 + 10);
        expect(history[1]?.detail).to.deep.include({ owner: 'worker-a', attempt: 1 });
        const rest = await store.claimDue('worker-b', 10, LEASE, T0 + 10);
        expect(rest.map((m) => m.id)).to.deep.equal(['c0000000']);
      });

      it('claims only what is due (runAt ≤ now) and nothing twice while the lease holds', async () => {
        const m = await acceptOne({ receivedAt: T0 + 100 });
        expect(await store.claimDue('w1', 10, LEASE, T0 + 99)).to.deep.equal([]);
        expect((await store.claimDue('w1', 10, LEASE, T0 + 100)).map((x) => x.id)).to.deep.equal([m.id]);
        expect(await store.claimDue('w2', 10, LEASE, T0 + 100 + LEASE - 1)).to.deep.equal([]);
        expect(await store.claimDue('w1', 10, LEASE, T0 + 100 + LEASE - 1)).to.deep.equal([]);
      });

      it('reclaims a message whose lease expired (leaseExpiresAt ≤ now) and says whose it was', async () => {
        const m = await acceptOne();
        await claimOnly('w1', T0);
        const [again] = await store.claimDue('w2', 10, LEASE, T0 + LEASE);
        expectFields(again, { id: m.id, leaseOwner: 'w2', attempts: 2, leaseExpiresAt: T0 + 2 * LEASE });
        const history = await store.history(m.id);
        expect(history.map((h) => h.event)).to.deep.equal(['received', 'claimed', 'reclaimed']);
        expect(history[2]?.status).to.equal('delivering');
        expect(history[2]?.detail).to.deep.include({ owner: 'w2', previousOwner: 'w1', attempt: 2 });
      });

      it('respects the limit and leaves the rest for the next call', async () => {
        await store.accept([draft(), draft(), draft(), draft(), draft()]);
        expect(await store.claimDue('w1', 2, LEASE, T0)).to.have.length(2);
        expect(await store.claimDue('w1', 2, LEASE, T0)).to.have.length(2);
        expect(await store.claimDue('w1', 2, LEASE, T0)).to.have.length(1);
        expect(await store.claimDue('w1', 2, LEASE, T0)).to.have.length(0);
      });

      it('never claims delivered or dead messages', async () => {
        await deliverOne();
        await killOne();
        expect(await store.claimDue('w9', 10, LEASE, T0 + 10 * LEASE)).to.deep.equal([]);
      });

      it('never hands the same message to two concurrent claims', async () => {
        const batch = Array.from({ length: 30 }, () => draft());
        await store.accept(batch);
        const rounds = await Promise.all(['a', 'b', 'c', 'd'].map((o) => store.claimDue(o, 5, LEASE, T0)));
        const rest = await store.claimDue('e', 100, LEASE, T0);
        const ids = [...rounds.flat(), ...rest].map((m) => m.id);
        expect(new Set(ids).size).to.equal(ids.length);
        expect([...ids].sort()).to.deep.equal(batch.map((b) => b.id).sort());
      });
    });

    describe('complete', () => {
      it('records a delivery: status, remote reference, cleared lease, attempt row, history', async () => {
        const m = await acceptOne();
        await claimOnly('w1', T0 + 1);
        const outcome: Outcome = {
          kind: 'delivered',
          messageId: m.id,
          leaseOwner: 'w1',
          attempt: { startedAt: T0 + 2, endedAt: T0 + 7, target: 'fachverfahren' },
          remoteReference: 'submission-4711',
          detail: { caseId: 'case-1' },
        };
        expect(await store.complete([outcome], T0 + 8)).to.deep.equal([true]);
        const read = (await store.getMessage(m.id))!;
        expectFields(read, {
          status: 'delivered',
          remoteReference: 'submission-4711',
          leaseOwner: undefined,
          leaseExpiresAt: undefined,
          attempts: 1,
          updatedAt: T0 + 8,
        });
        expect(await store.attempts(m.id)).to.deep.equal([
          {
            n: 1,
            startedAt: T0 + 2,
            endedAt: T0 + 7,
            target: 'fachverfahren',
            outcome: 'delivered',
            error: undefined,
            remoteReference: 'submission-4711',
          },
        ]);
        const last = (await store.history(m.id)).at(-1)!;
        expectFields(last, { seq: 3, at: T0 + 8, status: 'delivered', event: 'delivered' });
        expect(last.detail).to.deep.include({
          attempt: 1,
          remoteReference: 'submission-4711',
          caseId: 'case-1',
        });
      });

      it('schedules a retry with the error kept, details included', async () => {
        const m = await acceptOne();
        await claimOnly('w1', T0 + 1);
        const error = {
          code: 'AMT_DELIVERY_TIMEOUT',
          message: 'no answer in 30 s',
          details: { status: 504 },
        };
        const outcome: Outcome = {
          kind: 'retry',
          messageId: m.id,
          leaseOwner: 'w1',
          attempt: { startedAt: T0 + 2, endedAt: T0 + 9, target: 'fachverfahren' },
          error,
          runAt: T0 + 60_000,
        };
        expect(await store.complete([outcome], T0 + 10)).to.deep.equal([true]);
        const read = (await store.getMessage(m.id))!;
        expectFields(read, {
          status: 'retrying',
          runAt: T0 + 60_000,
          leaseOwner: undefined,
          leaseExpiresAt: undefined,
          attempts: 1,
          updatedAt: T0 + 10,
        });
        expect(read.lastError).to.deep.equal(error);
        expect(plain(await store.attempts(m.id))).to.deep.equal([
          { n: 1, startedAt: T0 + 2, endedAt: T0 + 9, target: 'fachverfahren', outcome: 'retry', error },
        ]);
        const last = (await store.history(m.id)).at(-1)!;
        expectFields(last, { status: 'retrying', event: 'attempt-failed', at: T0 + 10 });
        expect(last.detail).to.deep.include({
          attempt: 1,
          code: 'AMT_DELIVERY_TIMEOUT',
          message: 'no answer in 30 s',
          runAt: T0 + 60_000,
        });
        expect(await store.claimDue('w2', 10, LEASE, T0 + 59_999)).to.deep.equal([]);
        const [again] = await store.claimDue('w2', 10, LEASE, T0 + 60_000);
        expectFields(again, { id: m.id, attempts: 2 });
      });

      it('dead-letters a message with its error and a failed attempt row', async () => {
        const m = await killOne({}, T0 + 20);
        expectFields(m, {
          status: 'dead',
          leaseOwner: undefined,
          leaseExpiresAt: undefined,
          updatedAt: T0 + 20,
        });
        expect(m.lastError).to.deep.equal({
          code: 'AMT_DELIVERY_REJECTED',
          message: 'Antrag abgelehnt',
          details: { status: 400 },
        });
        const attempts = await store.attempts(m.id);
        expect(attempts.map((a) => [a.n, a.outcome, a.error?.code])).to.deep.equal([
          [1, 'failed', 'AMT_DELIVERY_REJECTED'],
        ]);
        const last = (await store.history(m.id)).at(-1)!;
        expectFields(last, { status: 'dead', event: 'dead-lettered', at: T0 + 20 });
        expect(last.detail).to.deep.include({ code: 'AMT_DELIVERY_REJECTED', message: 'Antrag abgelehnt' });
        const page = await store.deadLetters({ limit: 10 });
        expect(page.items).to.have.length(1);
        expect(page.items[0]?.diedAt).to.equal(T0 + 20);
        expect(page.items[0]?.error).to.deep.equal(m.lastError);
        expect(plain(page.items[0]?.message)).to.deep.equal(plain(m));
      });

      it('dead-letters without an attempt row when no delivery was attempted', async () => {
        const m = await acceptOne();
        await claimOnly('w1', T0 + 1);
        expect(await store.complete([dead(m, 'w1', T0 + 2, false)], T0 + 2)).to.deep.equal([true]);
        expect((await store.getMessage(m.id))?.status).to.equal('dead');
        expect(await store.attempts(m.id)).to.deep.equal([]);
        expect((await store.deadLetters({ limit: 10 })).items.map((d) => d.message.id)).to.deep.equal([m.id]);
      });

      it('ignores an outcome whose lease another worker took over, and applies the new owner’s', async () => {
        const m = await acceptOne();
        await claimOnly('w1', T0);
        await claimOnly('w2', T0 + LEASE);
        const before = await store.history(m.id);
        expect(await store.complete([delivered(m, 'w1', T0 + LEASE + 1)], T0 + LEASE + 1)).to.deep.equal([
          false,
        ]);
        expect((await store.getMessage(m.id))?.status).to.equal('delivering');
        expect(await store.history(m.id)).to.deep.equal(before);
        expect(await store.attempts(m.id)).to.deep.equal([]);
        expect(await store.complete([delivered(m, 'w2', T0 + LEASE + 2)], T0 + LEASE + 2)).to.deep.equal([
          true,
        ]);
        expect(await store.attempts(m.id)).to.have.length(1);
        expect((await store.attempts(m.id))[0]?.n).to.equal(2);
      });

      it('applies a late outcome when the lease expired but nobody took the message over', async () => {
        const m = await acceptOne();
        await claimOnly('w1', T0);
        expect(await store.complete([delivered(m, 'w1', T0 + 5 * LEASE)], T0 + 5 * LEASE)).to.deep.equal([
          true,
        ]);
        expect((await store.getMessage(m.id))?.status).to.equal('delivered');
      });

      it('answers per outcome, in order, and applies only the first of two for one message', async () => {
        const a = await acceptOne();
        const b = await acceptOne();
        const c = await acceptOne();
        await store.claimDue('w1', 2, LEASE, T0);
        const results = await store.complete(
          [
            delivered(a, 'w1', T0 + 1),
            delivered(c, 'w1', T0 + 1), // c is still received: not claimed
            { ...delivered(b, 'w1', T0 + 1), messageId: 'unknown-id' },
            dead(b, 'w1', T0 + 1),
            delivered(b, 'w1', T0 + 1),
            delivered(a, 'w1', T0 + 1),
          ],
          T0 + 1,
        );
        expect(results).to.deep.equal([true, false, false, true, false, false]);
        expect((await store.getMessage(a.id))?.status).to.equal('delivered');
        expect((await store.getMessage(b.id))?.status).to.equal('dead');
        expect((await store.getMessage(c.id))?.status).to.equal('received');
        expect(await store.attempts(a.id)).to.have.length(1);
      });
    });

    describe('text from outside', () => {
      // What a receiver answers may hold U+0000 (PostgreSQL keeps none in text, nor as \u0000 in
      // jsonb) or a lone surrogate (no UTF-8 form): every store keeps U+FFFD in its place.
      const BAD = 'Az\u0000-\ud800-\udc00 🚗';
      const KEPT = 'Az\ufffd-\ufffd-\ufffd 🚗';
      const badError: ErrorInfo = {
        code: 'AMT_DELIVERY_REJECTED',
        message: BAD,
        details: { body: BAD, [BAD]: 1 },
      };
      const keptError: ErrorInfo = {
        code: 'AMT_DELIVERY_REJECTED',
        message: KEPT,
        details: { body: KEPT, [KEPT]: 1 },
      };

      it('outcomes: remote reference, detail and errors are kept with U+FFFD in place', async () => {
        const a = await acceptOne();
        const b = await acceptOne();
        const c = await acceptOne();
        await store.claimDue('w1', 3, LEASE, T0);
        const results = await store.complete(
          [
            {
              kind: 'delivered',
              messageId: a.id,
              leaseOwner: 'w1',
              attempt: { startedAt: T0, endedAt: T0 + 1, target: a.target },
              remoteReference: BAD,
              detail: { status: 201, answer: [BAD] },
            },
            {
              kind: 'retry',
              messageId: b.id,
              leaseOwner: 'w1',
              attempt: { startedAt: T0, endedAt: T0 + 1, target: b.target },
              error: badError,
              runAt: T0 + 1000,
            },
            dead(c, 'w1', T0 + 1, true, badError),
          ],
          T0 + 1,
        );
        expect(results).to.deep.equal([true, true, true]);
        expect((await store.getMessage(a.id))?.remoteReference).to.equal(KEPT);
        expect((await store.attempts(a.id))[0]?.remoteReference).to.equal(KEPT);
        expect((await store.history(a.id)).at(-1)?.detail).to.include({ status: 201 });
        expect((await store.history(a.id)).at(-1)?.detail?.answer).to.deep.equal([KEPT]);
        expect(plain((await store.getMessage(b.id))?.lastError)).to.deep.equal(keptError);
        expect(plain((await store.attempts(b.id))[0]?.error)).to.deep.equal(keptError);
        expect(plain((await store.getMessage(c.id))?.lastError)).to.deep.equal(keptError);
        const [letter] = (await store.deadLetters({ limit: 10 })).items;
        expect(plain(letter?.error)).to.deep.equal(keptError);
        for (const id of [a.id, b.id, c.id]) {
          expect(JSON.stringify(await store.history(id))).to.not.match(/\\u0000|\\ud[89a-f]/);
        }
      });

      it('a remote status and its detail, and a job run’s error, are kept with U+FFFD in place', async () => {
        const done = await deliverOne();
        expect(await store.recordRemoteStatus(done.id, BAD, { text: BAD }, T0 + 500)).to.equal(true);
        expect((await store.getMessage(done.id))?.remoteStatus).to.equal(KEPT);
        expect((await store.history(done.id)).at(-1)?.detail).to.deep.equal({ status: KEPT, text: KEPT });
        const claim = await store.claimJobOccurrence('poll', T0, 'o', LEASE, T0);
        expect(
          await store.finishJobRun(
            claim!.run.id,
            'o',
            { status: 'failed', itemsProcessed: 0, error: badError },
            T0 + 1,
          ),
        ).to.equal(true);
        expect(plain((await store.jobRuns('poll', 10)).items[0]?.error)).to.deep.equal(keptError);
      });

      it('a status report: remote status, detail and citizen text are kept with U+FFFD in place', async () => {
        const m = await deliverOne();
        const result = await store.recordStatus(
          {
            messageId: m.id,
            remoteStatus: BAD,
            detail: { text: BAD },
            citizen: { status: 'in-bearbeitung', text: `Ihr Antrag: ${BAD}` },
          },
          () => [],
          T0 + 500,
        );
        expect(result.kind).to.equal('recorded');
        expect((await store.getMessage(m.id))?.remoteStatus).to.equal(KEPT);
        expect((await store.citizenStatus(m.id))?.text).to.equal(`Ihr Antrag: ${KEPT}`);
        expect(JSON.stringify(await store.history(m.id))).to.not.match(/\\u0000|\\ud[89a-f]/);
      });

      it(`a remote reference of ${MAX_REMOTE_REFERENCE_LENGTH} UTF-16 units, the longest, is kept and found`, async () => {
        // Three bytes in UTF-8 per unit is the most there is (a surrogate pair: four for two).
        const longest = '€'.repeat(MAX_REMOTE_REFERENCE_LENGTH);
        const mixed =
          '🚗'.repeat(MAX_REMOTE_REFERENCE_LENGTH / 4) + 'Ä'.repeat(MAX_REMOTE_REFERENCE_LENGTH / 2);
        for (const ref of [longest, mixed]) {
          expect(ref.length).to.equal(MAX_REMOTE_REFERENCE_LENGTH);
          const m = await acceptOne();
          await claimOnly('w1', T0, m.id);
          expect(await store.complete([delivered(m, 'w1', T0 + 1, ref)], T0 + 1)).to.deep.equal([true]);
          expect((await store.getMessage(m.id))?.remoteReference).to.equal(ref);
          expect((await store.findMessages({ remoteReference: ref }, 5)).map((r) => r.id)).to.deep.equal([
            m.id,
          ]);
        }
      });

      it('text that needs nothing is kept as it is, paired surrogates included', async () => {
        const text = 'Vorgang 🚗 Nr. 12\t/ä';
        const m = await deliverOne();
        expect(await store.recordRemoteStatus(m.id, text, { text }, T0 + 500)).to.equal(true);
        expect((await store.getMessage(m.id))?.remoteStatus).to.equal(text);
        expect((await store.history(m.id)).at(-1)?.detail).to.deep.equal({ status: text, text });
      });
    });

    describe('releaseLeases', () => {
      it('returns the owner’s leased messages to the queue, due at once, and leaves others alone', async () => {
        const [a, b, c] = (await store.accept([draft(), draft(), draft()])).map(created);
        await store.claimDue('w1', 2, LEASE, T0);
        await store.claimDue('w2', 1, LEASE, T0);
        expect(await store.releaseLeases('w1', T0 + 50)).to.equal(2);
        for (const id of [a!.id, b!.id]) {
          const read = (await store.getMessage(id))!;
          expectFields(read, {
            status: 'retrying',
            runAt: T0 + 50,
            leaseOwner: undefined,
            leaseExpiresAt: undefined,
            attempts: 1,
            updatedAt: T0 + 50,
          });
          const last = (await store.history(id)).at(-1)!;
          expectFields(last, { event: 'released', status: 'retrying', at: T0 + 50 });
        }
        expectFields(await store.getMessage(c!.id), { status: 'delivering', leaseOwner: 'w2' });
        expect(await store.releaseLeases('w1', T0 + 60)).to.equal(0);
        const again = await store.claimDue('w3', 10, LEASE, T0 + 50);
        expect(again.map((m) => m.id).sort()).to.deep.equal([a!.id, b!.id].sort());
        expect(again.every((m) => m.attempts === 2)).to.equal(true);
      });
    });

    describe('replay', () => {
      it('moves dead letters back to received, keeping the delivery id, and nothing received or delivered', async () => {
        const deadOne = await killOne({}, T0 + 20);
        const done = await deliverOne({}, T0 + 30);
        const alive = await acceptOne();
        const result = await store.replay(
          [deadOne.id, alive.id, 'no-such-id', done.id],
          T0 + 100,
          'admin@stadt',
        );
        expect(result.replayed).to.deep.equal([deadOne.id]);
        expect(result.notReplayable).to.deep.equal([alive.id, 'no-such-id', done.id]);
        const read = (await store.getMessage(deadOne.id))!;
        expectFields(read, {
          status: 'received',
          runAt: T0 + 100,
          attempts: 0,
          deliveryId: deadOne.deliveryId,
          lastError: undefined,
          updatedAt: T0 + 100,
        });
        const last = (await store.history(deadOne.id)).at(-1)!;
        expectFields(last, { event: 'replayed', status: 'received', at: T0 + 100 });
        expect(last.detail).to.deep.include({ by: 'admin@stadt' });
        expect((await store.deadLetters({ limit: 10 })).items).to.deep.equal([]);
        expect((await store.getMessage(alive.id))?.status).to.equal('received');
        expect((await store.getMessage(done.id))?.status).to.equal('delivered');
      });

      it('moves a message waiting for its next retry back to received, due at once', async () => {
        const m = await acceptOne();
        await claimOnly('w1', T0 + 1, m.id);
        const waiting: Outcome = {
          kind: 'retry',
          messageId: m.id,
          leaseOwner: 'w1',
          attempt: { startedAt: T0 + 2, endedAt: T0 + 9, target: 'fachverfahren' },
          error: { code: 'AMT_MAPPING_COMPILE_FAILED', message: 'the mapping does not compile' },
          runAt: T0 + 3_600_000,
        };
        expect(await store.complete([waiting], T0 + 10)).to.deep.equal([true]);
        expect(await store.replay([m.id], T0 + 100, 'ops')).to.deep.equal({
          replayed: [m.id],
          notReplayable: [],
        });
        expectFields((await store.getMessage(m.id))!, {
          status: 'received',
          runAt: T0 + 100,
          attempts: 0,
          lastError: undefined,
          deliveryId: m.deliveryId,
        });
        expectFields((await store.history(m.id)).at(-1)!, { event: 'replayed', status: 'received' });
        const [claimed] = await store.claimDue('w2', 1, LEASE, T0 + 100);
        expectFields(claimed, { id: m.id, attempts: 1 });
        expect((await store.attempts(m.id)).map((a) => a.n)).to.deep.equal([1]);
      });

      it('keeps numbering attempts after a replay and lists the latest dead letter when it dies again', async () => {
        const m = await killOne({}, T0 + 20);
        await store.replay([m.id], T0 + 100, 'ops');
        const [claimed] = await store.claimDue('w2', 1, LEASE, T0 + 100);
        expectFields(claimed, { id: m.id, attempts: 1, deliveryId: m.deliveryId });
        expect((await store.history(m.id)).at(-1)?.detail).to.deep.include({ owner: 'w2', attempt: 2 });
        const second = dead(m, 'w2', T0 + 200, true, {
          code: 'AMT_RETRIES_EXHAUSTED',
          message: 'zweiter Versuch',
          details: { attempts: 1 },
        });
        expect(await store.complete([second], T0 + 200)).to.deep.equal([true]);
        expect((await store.attempts(m.id)).map((a) => a.n)).to.deep.equal([1, 2]);
        const page = await store.deadLetters({ limit: 10 });
        expect(page.items).to.have.length(1);
        expect(page.items[0]?.diedAt).to.equal(T0 + 200);
        expect(page.items[0]?.error.code).to.equal('AMT_RETRIES_EXHAUSTED');
      });
    });

    describe('listMessages', () => {
      async function seed(): Promise<MessageRecord[]> {
        // Pairs share a createdAt so the id must break the tie.
        const batch = [0, 0, 1, 1, 2, 3, 3].map((k) => draft({ receivedAt: T0 + k }));
        return (await store.accept(batch)).map(created);
      }

      function newestFirst(ms: readonly MessageRecord[]): string[] {
        return [...ms]
          .sort((x, y) => y.createdAt - x.createdAt || (y.id < x.id ? -1 : y.id > x.id ? 1 : 0))
          .map((m) => m.id);
      }

      it('lists newest first and pages with a cursor, without duplicates or gaps', async () => {
        const all = await seed();
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.listMessages({ limit: 3, ...(cursor ? { cursor } : {}) });
          seen.push(...page.items.map((m) => m.id));
          cursor = page.nextCursor;
          pages += 1;
          expect(pages).to.be.below(10);
        } while (cursor);
        expect(pages).to.equal(3);
        expect(seen).to.deep.equal(newestFirst(all));
      });

      it('gives no cursor when the last page is exactly full', async () => {
        const all = await seed();
        const page = await store.listMessages({ limit: all.length });
        expect(page.items).to.have.length(all.length);
        expect(page.nextCursor).to.equal(undefined);
        const first = await store.listMessages({ limit: all.length - 1 });
        expect(first.nextCursor).to.be.a('string');
        const rest = await store.listMessages({ limit: 5, cursor: first.nextCursor! });
        expect(rest.items).to.have.length(1);
        expect(rest.nextCursor).to.equal(undefined);
      });

      it('continues a listing correctly while newer messages arrive', async () => {
        const all = await seed();
        const first = await store.listMessages({ limit: 4 });
        await store.accept([draft({ receivedAt: T0 + 50 }), draft({ receivedAt: T0 })]);
        const second = await store.listMessages({ limit: 10, cursor: first.nextCursor! });
        const firstIds = first.items.map((m) => m.id);
        const secondIds = second.items.map((m) => m.id);
        expect(firstIds.filter((id) => secondIds.includes(id))).to.deep.equal([]);
        const expected = newestFirst(all);
        expect(firstIds).to.deep.equal(expected.slice(0, 4));
        // The message created at T0 later got a larger id: it sorts before the older T0 ones.
        expect(secondIds.filter((id) => all.some((m) => m.id === id))).to.deep.equal(expected.slice(4));
      });

      it('filters by tenant: a list of tenants, none (empty list) or all (absent)', async () => {
        await store.accept([
          draft({ tenantId: 'koeln' }),
          draft({ tenantId: 'bonn' }),
          draft({ tenantId: 'aachen' }),
          draft({ tenantId: 'koeln' }),
        ]);
        const tenants = async (tenantIds?: string[]) =>
          (await store.listMessages({ limit: 10, ...(tenantIds ? { tenantIds } : {}) })).items
            .map((m) => m.tenantId)
            .sort();
        expect(await tenants(['koeln'])).to.deep.equal(['koeln', 'koeln']);
        expect(await tenants(['bonn', 'aachen'])).to.deep.equal(['aachen', 'bonn']);
        expect(await tenants([])).to.deep.equal([]);
        expect(await tenants(['nowhere'])).to.deep.equal([]);
        expect(await tenants()).to.deep.equal(['aachen', 'bonn', 'koeln', 'koeln']);
        expect((await store.deadLetters({ limit: 10, tenantIds: [] })).items).to.deep.equal([]);
      });

      it('filters by service, status, reference and a half-open createdAt range', async () => {
        const a = await acceptOne({ service: '99000000000001', reference: 'AZ-1', receivedAt: T0 + 10 });
        const b = await acceptOne({ service: '99000000000002', reference: 'AZ-2', receivedAt: T0 + 20 });
        const c = await acceptOne({ service: '99000000000001', receivedAt: T0 + 30 });
        await store.claimDue('w1', 1, LEASE, T0 + 40); // a is delivering now
        const ids = async (filter: Omit<MessageFilter, 'limit'>) =>
          (await store.listMessages({ limit: 10, ...filter })).items.map((m) => m.id);
        expect(await ids({ service: '99000000000001' })).to.deep.equal([c.id, a.id]);
        expect(await ids({ status: 'delivering' })).to.deep.equal([a.id]);
        expect(await ids({ status: 'received' })).to.deep.equal([c.id, b.id]);
        expect(await ids({ status: 'dead' })).to.deep.equal([]);
        expect(await ids({ reference: 'AZ-2' })).to.deep.equal([b.id]);
        expect(await ids({ reference: 'AZ' })).to.deep.equal([]);
        expect(await ids({ since: T0 + 20 })).to.deep.equal([c.id, b.id]);
        expect(await ids({ until: T0 + 20 })).to.deep.equal([a.id]);
        expect(await ids({ since: T0 + 10, until: T0 + 30 })).to.deep.equal([b.id, a.id]);
        expect(await ids({ service: '99000000000001', since: T0 + 11 })).to.deep.equal([c.id]);
      });

      it('pages through a filtered listing', async () => {
        const batch = Array.from({ length: 9 }, (_, i) =>
          draft({ tenantId: i % 3 === 0 ? 'bonn' : 'koeln', receivedAt: T0 + i }),
        );
        await store.accept(batch);
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.listMessages({
            limit: 2,
            tenantIds: ['koeln'],
            ...(cursor ? { cursor } : {}),
          });
          expect(page.items.every((m) => m.tenantId === 'koeln')).to.equal(true);
          seen.push(...page.items.map((m) => m.id));
          cursor = page.nextCursor;
        } while (cursor);
        expect(seen).to.deep.equal(
          batch
            .filter((m) => m.tenantId === 'koeln')
            .map((m) => m.id)
            .reverse(),
        );
      });

      it('rejects a cursor it did not issue', async () => {
        await seed();
        let failed = false;
        try {
          await store.listMessages({ limit: 2, cursor: 'not-a-cursor' });
        } catch {
          failed = true;
        }
        expect(failed).to.equal(true);
      });
    });

    describe('deadLetters', () => {
      it('lists the currently dead messages newest first, filtered and paged', async () => {
        const d1 = await killOne({ tenantId: 'koeln', receivedAt: T0 + 1 }, T0 + 40);
        await deliverOne({ tenantId: 'koeln', receivedAt: T0 + 2 }, T0 + 50);
        const d2 = await killOne({ tenantId: 'bonn', receivedAt: T0 + 3 }, T0 + 60);
        const d3 = await killOne({ tenantId: 'koeln', receivedAt: T0 + 4 }, T0 + 70);
        await acceptOne({ receivedAt: T0 + 5 });
        const all = await store.deadLetters({ limit: 10 });
        expect(all.items.map((d) => d.message.id)).to.deep.equal([d3.id, d2.id, d1.id]);
        expect(all.items.map((d) => d.diedAt)).to.deep.equal([T0 + 70, T0 + 60, T0 + 40]);
        expect(all.nextCursor).to.equal(undefined);
        const koeln = await store.deadLetters({ limit: 1, tenantIds: ['koeln'] });
        expect(koeln.items.map((d) => d.message.id)).to.deep.equal([d3.id]);
        const next = await store.deadLetters({ limit: 1, tenantIds: ['koeln'], cursor: koeln.nextCursor! });
        expect(next.items.map((d) => d.message.id)).to.deep.equal([d1.id]);
        expect(next.nextCursor).to.equal(undefined);
      });
    });

    describe('stats', () => {
      it('counts every status, zeros included', async () => {
        expect(await store.stats()).to.deep.equal({
          byStatus: { received: 0, delivering: 0, retrying: 0, delivered: 0, dead: 0 },
        });
        await deliverOne();
        await killOne();
        await store.accept([draft(), draft()]);
        await store.claimDue('w1', 1, LEASE, T0 + 100);
        expect(await store.stats()).to.deep.equal({
          byStatus: { received: 1, delivering: 1, retrying: 0, delivered: 1, dead: 1 },
        });
      });
    });

    describe('remote status', () => {
      it('records a remote status only on delivered messages', async () => {
        const done = await deliverOne();
        const killed = await killOne();
        const waiting = await acceptOne();
        expect(await store.recordRemoteStatus(done.id, 'forwarded', { caseId: 'c-1' }, T0 + 500)).to.equal(
          true,
        );
        expect(await store.recordRemoteStatus(waiting.id, 'forwarded', undefined, T0 + 500)).to.equal(false);
        expect(await store.recordRemoteStatus(killed.id, 'forwarded', undefined, T0 + 500)).to.equal(false);
        expect(await store.recordRemoteStatus('no-such-id', 'forwarded', undefined, T0 + 500)).to.equal(
          false,
        );
        expectFields(await store.getMessage(done.id), {
          remoteStatus: 'forwarded',
          status: 'delivered',
          updatedAt: T0 + 500,
        });
        expect((await store.getMessage(waiting.id))?.remoteStatus).to.equal(undefined);
        expect((await store.history(waiting.id)).map((h) => h.event)).to.deep.equal(['received']);
        const last = (await store.history(done.id)).at(-1)!;
        expectFields(last, { event: 'remote-status', status: 'delivered', at: T0 + 500 });
        expect(last.detail).to.deep.equal({ status: 'forwarded', caseId: 'c-1' });
        expect(await store.recordRemoteStatus(done.id, 'accepted', undefined, T0 + 600)).to.equal(true);
        expect((await store.history(done.id)).at(-1)?.detail).to.deep.equal({ status: 'accepted' });
        expect((await store.getMessage(done.id))?.remoteStatus).to.equal('accepted');
      });

      it('lists delivered messages of a target still awaiting a final remote status, oldest first', async () => {
        const old = await deliverOne({ receivedAt: T0 + 1 }, T0 + 100);
        const finished = await deliverOne({ receivedAt: T0 + 2 }, T0 + 110);
        const pending = await deliverOne({ receivedAt: T0 + 3 }, T0 + 120);
        const newest = await deliverOne({ receivedAt: T0 + 4 }, T0 + 130);
        await deliverOne({ target: 'efa-service', receivedAt: T0 + 5 }, T0 + 140);
        await acceptOne({ receivedAt: T0 + 6 });
        await store.recordRemoteStatus(finished.id, 'accepted', undefined, T0 + 200);
        await store.recordRemoteStatus(pending.id, 'forwarded', undefined, T0 + 200);
        const ids = async (finals: string[], limit = 10) =>
          (await store.awaitingRemoteStatus('fachverfahren', finals, limit)).map((m) => m.id);
        expect(await ids(['accepted', 'rejected'])).to.deep.equal([old.id, pending.id, newest.id]);
        expect(await ids(['accepted', 'rejected'], 2)).to.deep.equal([old.id, pending.id]);
        expect(await ids([])).to.deep.equal([old.id, finished.id, pending.id, newest.id]);
        expect(await ids(['accepted', 'forwarded'])).to.deep.equal([old.id, newest.id]);
        const [first] = await store.awaitingRemoteStatus('fachverfahren', ['accepted'], 1);
        expect(first?.status).to.equal('delivered');
        expect(first?.remoteReference).to.equal(`remote-${old.id}`);
      });
    });

    describe('citizen status', () => {
      /** A notification follow-up of a status change, idempotent per (message, change). */
      const notice = (m: MessageRecord, change: number, n = 0): NewMessage =>
        draft({
          clientId: 'amtsbote:status',
          routeId: 'status:webhook',
          target: 'webhook:portal-koeln',
          payload: JSON.stringify({ applicationId: m.id, change, n }),
          idempotency: { key: `webhook:${m.id}:${change}`, requestHash: `h-${change}` },
          receivedAt: T0 + 1000 + change,
        });
      const report = (
        m: MessageRecord,
        remoteStatus: string,
        citizen?: { status: string; text: string },
        detail?: Record<string, unknown>,
      ) => ({ messageId: m.id, remoteStatus, citizen, detail });

      it('records remote and citizen status in one history event and creates the follow-ups', async () => {
        const m = await deliverOne();
        const changes: number[] = [];
        const result = await store.recordStatus(
          report(
            m,
            'IN_BEARBEITUNG',
            { status: 'PROCESSING', text: 'Ihr Antrag wird bearbeitet.' },
            { by: 'fv' },
          ),
          (change) => {
            changes.push(change);
            return [notice(m, change)];
          },
          T0 + 500,
        );
        expect(result).to.deep.equal({ kind: 'recorded', change: 1, followUpsCreated: 1 });
        expect(changes).to.deep.equal([1]);
        expectFields(await store.getMessage(m.id), { remoteStatus: 'IN_BEARBEITUNG', updatedAt: T0 + 500 });
        expect(await store.citizenStatus(m.id)).to.deep.equal({
          status: 'PROCESSING',
          text: 'Ihr Antrag wird bearbeitet.',
          change: 1,
          at: T0 + 500,
        });
        const last = (await store.history(m.id)).at(-1)!;
        expectFields(last, { event: 'remote-status', status: 'delivered', at: T0 + 500 });
        expect(last.detail).to.deep.equal({
          by: 'fv',
          status: 'IN_BEARBEITUNG',
          citizenStatus: 'PROCESSING',
          citizenText: 'Ihr Antrag wird bearbeitet.',
        });
        const followUp = (await store.listMessages({ limit: 10, reference: undefined })).items.find(
          (x) => x.target === 'webhook:portal-koeln',
        );
        expectFields(followUp, {
          status: 'received',
          clientId: 'amtsbote:status',
          routeId: 'status:webhook',
        });
        expect((await store.claimDue('w2', 10, LEASE, T0 + 2000)).map((x) => x.id)).to.deep.equal([
          followUp!.id,
        ]);
      });

      it('adds nothing for a repeated identical report, but accepts missing follow-ups again', async () => {
        const m = await deliverOne();
        const citizen = { status: 'PROCESSING', text: 'wird bearbeitet' };
        await store.recordStatus(report(m, 'IN_BEARBEITUNG', citizen), () => [], T0 + 500);
        const seen: number[] = [];
        const again = await store.recordStatus(
          report(m, 'IN_BEARBEITUNG', citizen, { attempt: 2 }),
          (change) => {
            seen.push(change);
            return [notice(m, change)];
          },
          T0 + 600,
        );
        expect(again).to.deep.equal({ kind: 'repeated', followUpsCreated: 1 });
        expect(seen).to.deep.equal([1]);
        const third = await store.recordStatus(
          report(m, 'IN_BEARBEITUNG', citizen),
          (c) => [notice(m, c, 3)],
          T0 + 700,
        );
        expect(third).to.deep.equal({ kind: 'repeated', followUpsCreated: 0 });
        expect((await store.history(m.id)).filter((h) => h.event === 'remote-status')).to.have.length(1);
        expectFields(await store.getMessage(m.id), { updatedAt: T0 + 500 });
        expect((await store.citizenStatus(m.id))?.at).to.equal(T0 + 500);
        expect((await store.listMessages({ limit: 10 })).items).to.have.length(2);
      });

      it('counts citizen-status changes, also back to an earlier status', async () => {
        const m = await deliverOne();
        const steps: [string, string | undefined][] = [
          ['forwarded', 'RECEIVED'],
          ['accepted', 'RECEIVED'], // same citizen status: no change
          ['IN_BEARBEITUNG', 'PROCESSING'],
          ['UNBEKANNT', undefined], // unmapped: remote status only
          ['NACHFORDERUNG', 'ACTION_REQUIRED'],
          ['IN_BEARBEITUNG', 'PROCESSING'],
        ];
        const results = [];
        for (const [i, [remote, citizen]] of steps.entries()) {
          results.push(
            await store.recordStatus(
              report(
                m,
                remote,
                citizen === undefined ? undefined : { status: citizen, text: `Text ${citizen}` },
              ),
              (change) => [notice(m, change)],
              T0 + 500 + i,
            ),
          );
        }
        expect(results.map((r) => (r.kind === 'recorded' ? r.change : r.kind))).to.deep.equal([
          1,
          undefined,
          2,
          undefined,
          3,
          4,
        ]);
        expectFields(await store.citizenStatus(m.id), { status: 'PROCESSING', change: 4, at: T0 + 505 });
        const events = (await store.history(m.id)).filter((h) => h.event === 'remote-status');
        expect(events.map((h) => [h.detail?.status, h.detail?.citizenStatus])).to.deep.equal([
          ['forwarded', 'RECEIVED'],
          ['accepted', 'RECEIVED'],
          ['IN_BEARBEITUNG', 'PROCESSING'],
          ['UNBEKANNT', undefined],
          ['NACHFORDERUNG', 'ACTION_REQUIRED'],
          ['IN_BEARBEITUNG', 'PROCESSING'],
        ]);
        expect(
          (await store.listMessages({ limit: 10 })).items.filter((x) => x.target.startsWith('webhook:')),
        ).to.have.length(4);
      });

      it('a changed text of the same citizen status is a change', async () => {
        const m = await deliverOne();
        await store.recordStatus(
          report(m, 'NACHFORDERUNG', { status: 'ACTION_REQUIRED', text: 'Pass fehlt' }),
          () => [],
          T0 + 500,
        );
        const result = await store.recordStatus(
          report(m, 'NACHFORDERUNG', { status: 'ACTION_REQUIRED', text: 'Meldebescheinigung fehlt' }),
          () => [],
          T0 + 600,
        );
        expect(result).to.deep.equal({ kind: 'recorded', change: 2, followUpsCreated: 0 });
        expectFields(await store.citizenStatus(m.id), { text: 'Meldebescheinigung fehlt', change: 2 });
      });

      it('refuses unknown and undelivered messages without writing anything', async () => {
        const killed = await killOne();
        const waiting = await acceptOne();
        const calls: number[] = [];
        const followUps = (change: number) => {
          calls.push(change);
          return [notice(waiting, change)];
        };
        const citizen = { status: 'RECEIVED', text: 'eingegangen' };
        expect(
          await store.recordStatus(report(waiting, 'forwarded', citizen), followUps, T0 + 500),
        ).to.deep.equal({
          kind: 'not-delivered',
        });
        expect(
          await store.recordStatus(report(killed, 'forwarded', citizen), followUps, T0 + 500),
        ).to.deep.equal({
          kind: 'not-delivered',
        });
        expect(
          await store.recordStatus(
            { ...report(waiting, 'forwarded', citizen), messageId: 'no-such-id' },
            followUps,
            T0,
          ),
        ).to.deep.equal({ kind: 'unknown' });
        expect(calls).to.deep.equal([]);
        expect(await store.citizenStatus(waiting.id)).to.equal(undefined);
        expect(await store.citizenStatus('no-such-id')).to.equal(undefined);
        expect((await store.history(waiting.id)).map((h) => h.event)).to.deep.equal(['received']);
        expect((await store.listMessages({ limit: 10 })).items).to.have.length(2);
      });

      it('finds messages by delivery id and by remote reference, optionally of one target', async () => {
        const first = await deliverOne({ receivedAt: T0 + 1 }, T0 + 100);
        const second = await deliverOne({ receivedAt: T0 + 2, target: 'efa-service' }, T0 + 110);
        const waiting = await acceptOne({ receivedAt: T0 + 3 });
        const ids = (found: MessageRecord[]) => found.map((m) => m.id);
        expect(ids(await store.findMessages({ deliveryId: first.deliveryId }, 5))).to.deep.equal([first.id]);
        expect(ids(await store.findMessages({ deliveryId: waiting.deliveryId }, 5))).to.deep.equal([
          waiting.id,
        ]);
        expect(
          ids(await store.findMessages({ deliveryId: first.deliveryId, target: 'efa-service' }, 5)),
        ).to.deep.equal([]);
        expect(ids(await store.findMessages({ remoteReference: `remote-${second.id}` }, 5))).to.deep.equal([
          second.id,
        ]);
        expect(
          ids(await store.findMessages({ remoteReference: `remote-${second.id}`, target: 'efa-service' }, 5)),
        ).to.deep.equal([second.id]);
        expect(ids(await store.findMessages({ remoteReference: 'nothing' }, 5))).to.deep.equal([]);
        expect(ids(await store.findMessages({ deliveryId: first.deliveryId }, 0))).to.deep.equal([]);
        const found = (await store.findMessages({ deliveryId: first.deliveryId }, 1))[0];
        expect(plain(found)).to.deep.equal(plain(await store.getMessage(first.id)));
      });

      it('finds every message that shares a remote reference, oldest first', async () => {
        const a = await deliverOne({ receivedAt: T0 + 1 }, T0 + 100);
        const b = await acceptOne({ receivedAt: T0 + 2 });
        await claimOnly('w1', T0 + 105, b.id);
        expect(
          await store.complete([delivered(b, 'w1', T0 + 110, `remote-${a.id}`)], T0 + 110),
        ).to.deep.equal([true]);
        expect(
          (await store.findMessages({ remoteReference: `remote-${a.id}` }, 5)).map((m) => m.id),
        ).to.deep.equal([a.id, b.id]);
        expect(await store.findMessages({ remoteReference: `remote-${a.id}` }, 1)).to.have.length(1);
      });
    });

    describe('rememberOnce', () => {
      it('is true the first time, false while the entry lives, true again once it expired', async () => {
        expect(await store.rememberOnce('saml-assertion', 'id-1', T0 + 100, T0)).to.equal(true);
        expect(await store.rememberOnce('saml-assertion', 'id-1', T0 + 100, T0 + 50)).to.equal(false);
        expect(await store.rememberOnce('saml-assertion', 'id-1', T0 + 500, T0 + 99)).to.equal(false);
        expect(await store.rememberOnce('callback-nonce', 'id-1', T0 + 100, T0 + 50)).to.equal(true);
        expect(await store.rememberOnce('saml-assertion', 'id-2', T0 + 100, T0 + 50)).to.equal(true);
        // expiresAt ≤ now: expired.
        expect(await store.rememberOnce('saml-assertion', 'id-1', T0 + 300, T0 + 100)).to.equal(true);
        expect(await store.rememberOnce('saml-assertion', 'id-1', T0 + 300, T0 + 299)).to.equal(false);
        expect(await store.rememberOnce('saml-assertion', 'id-1', T0 + 900, T0 + 300)).to.equal(true);
      });

      it('keeps entries apart that only look alike', async () => {
        expect(await store.rememberOnce('a', 'b:c', T0 + 100, T0)).to.equal(true);
        expect(await store.rememberOnce('a:b', 'c', T0 + 100, T0)).to.equal(true);
        expect(await store.rememberOnce('A', 'b:c', T0 + 100, T0)).to.equal(true);
        expect(await store.rememberOnce('a', 'B:C', T0 + 100, T0)).to.equal(true);
      });
    });

    describe('reading', () => {
      it('answers undefined or empty for an unknown message', async () => {
        expect(await store.getMessage('no-such-id')).to.equal(undefined);
        expect(await store.history('no-such-id')).to.deep.equal([]);
        expect(await store.attempts('no-such-id')).to.deep.equal([]);
      });

      it('numbers history per message from 1, ascending, across a whole life', async () => {
        const m = await acceptOne();
        const other = await acceptOne({ receivedAt: T0 + 1000 });
        await store.claimDue('w1', 1, LEASE, T0);
        await store.complete(
          [
            {
              kind: 'retry',
              messageId: m.id,
              leaseOwner: 'w1',
              attempt: { startedAt: T0, endedAt: T0 + 1, target: m.target },
              error: { code: 'AMT_DELIVERY_RETRYABLE', message: '503' },
              runAt: T0 + 10,
            },
          ],
          T0 + 1,
        );
        await store.claimDue('w1', 1, LEASE, T0 + 10);
        await store.complete([delivered(m, 'w1', T0 + 11, 'r-1')], T0 + 11);
        await store.recordRemoteStatus(m.id, 'accepted', undefined, T0 + 12);
        const history = await store.history(m.id);
        expect(history.map((h) => [h.seq, h.event, h.status])).to.deep.equal([
          [1, 'received', 'received'],
          [2, 'claimed', 'delivering'],
          [3, 'attempt-failed', 'retrying'],
          [4, 'claimed', 'delivering'],
          [5, 'delivered', 'delivered'],
          [6, 'remote-status', 'delivered'],
        ]);
        expect(history.map((h) => h.at)).to.deep.equal([T0, T0, T0 + 1, T0 + 10, T0 + 11, T0 + 12]);
        expect((await store.attempts(m.id)).map((a) => [a.n, a.outcome])).to.deep.equal([
          [1, 'retry'],
          [2, 'delivered'],
        ]);
        expect((await store.history(other.id)).map((h) => h.seq)).to.deep.equal([1]);
      });
    });

    describe('scheduled job runs', () => {
      const JOB = 'retention-purge';
      const AT = T0 + 60_000;

      async function claim(owner: string, now: number, scheduledAt = AT, job = JOB) {
        return store.claimJobOccurrence(job, scheduledAt, owner, 1000, now);
      }

      it('gives an occurrence to exactly one claimer, as attempt 1 holding a lease', async () => {
        const first = await claim('a', AT + 5);
        expectFields(first?.run, {
          job: JOB,
          scheduledAt: AT,
          attempt: 1,
          trigger: 'schedule',
          owner: 'a',
          status: 'running',
          startedAt: AT + 5,
          leaseExpiresAt: AT + 1005,
          finishedAt: undefined,
          itemsProcessed: undefined,
          error: undefined,
          takeoverOf: undefined,
        });
        expect(first?.running).to.deep.equal([]);
        expect(await claim('b', AT + 6)).to.equal(undefined);
        expect(await claim('a', AT + 1004)).to.equal(undefined);
        expect(await claim('b', AT + 10, AT, 'dead-letter-digest')).to.not.equal(undefined);
        expect(await claim('b', AT + 10, AT + 1)).to.not.equal(undefined);
      });

      it('records the trigger it is given', async () => {
        const manual = await store.claimJobOccurrence(JOB, AT, 'cli', 1000, AT, 'manual');
        const missed = await store.claimJobOccurrence(JOB, AT - 1, 'a', 1000, AT, 'missed');
        expect([manual?.run.trigger, missed?.run.trigger]).to.deep.equal(['manual', 'missed']);
      });

      it('lets another owner take over once the lease expired, recording the abandoned run', async () => {
        const first = (await claim('a', AT))!.run;
        expect(await claim('b', AT + 999)).to.equal(undefined);
        const second = (await claim('b', AT + 1000))!.run;
        expectFields(second, {
          attempt: 2,
          owner: 'b',
          status: 'running',
          takeoverOf: first.id,
          startedAt: AT + 1000,
        });
        expect(second.id).to.not.equal(first.id);
        const runs = (await store.jobRuns(JOB, 10)).items;
        expect(runs.map((r) => [r.attempt, r.owner, r.status])).to.deep.equal([
          [2, 'b', 'running'],
          [1, 'a', 'abandoned'],
        ]);
        expectFields(runs[1], { finishedAt: AT + 1000, leaseExpiresAt: undefined });
        expect(runs[1]?.error?.code).to.equal('AMT_JOB_LEASE_EXPIRED');
        // The old owner has lost the run: it can neither renew nor finish it.
        expect(await store.heartbeatJobRun(first.id, 'a', 1000, AT + 1001)).to.equal(false);
        expect(
          await store.finishJobRun(first.id, 'a', { status: 'succeeded', itemsProcessed: 1 }, AT + 1002),
        ).to.equal(false);
        expect((await store.jobRuns(JOB, 10)).items[1]?.status).to.equal('abandoned');
        expect(await claim('c', AT + 1500)).to.equal(undefined);
        expect((await claim('c', AT + 2000))?.run.attempt).to.equal(3);
      });

      it('extends a lease on heartbeat, only for its owner', async () => {
        const run = (await claim('a', AT))!.run;
        expect(await store.heartbeatJobRun(run.id, 'b', 1000, AT + 900)).to.equal(false);
        expect(await store.heartbeatJobRun(run.id, 'a', 1000, AT + 900)).to.equal(true);
        expect(await claim('b', AT + 1000)).to.equal(undefined);
        expect((await store.runningJobRuns(JOB))[0]?.leaseExpiresAt).to.equal(AT + 1900);
        expect(await claim('b', AT + 1900)).to.not.equal(undefined);
      });

      it('finishes a run once, with its outcome, and never hands the occurrence out again', async () => {
        const run = (await claim('a', AT))!.run;
        const error = { code: 'AMT_JOB_TIMEOUT', message: 'after 5m', details: { timeoutMs: 300_000 } };
        expect(
          await store.finishJobRun(run.id, 'b', { status: 'succeeded', itemsProcessed: 3 }, AT + 10),
        ).to.equal(false);
        expect(
          await store.finishJobRun(run.id, 'a', { status: 'timed-out', itemsProcessed: 7, error }, AT + 10),
        ).to.equal(true);
        expect(
          await store.finishJobRun(run.id, 'a', { status: 'succeeded', itemsProcessed: 8 }, AT + 11),
        ).to.equal(false);
        expect(await store.heartbeatJobRun(run.id, 'a', 1000, AT + 12)).to.equal(false);
        const [stored] = (await store.jobRuns(JOB, 1)).items;
        expect(plain(stored)).to.deep.equal(
          plain({
            ...run,
            status: 'timed-out',
            finishedAt: AT + 10,
            leaseExpiresAt: undefined,
            itemsProcessed: 7,
            error,
          }),
        );
        expect(await claim('b', AT + 5000)).to.equal(undefined);
        expect(await store.runningJobRuns(JOB)).to.deep.equal([]);
      });

      it('finishes a run whose lease expired as long as nobody took it over', async () => {
        const run = (await claim('a', AT))!.run;
        expect(
          await store.finishJobRun(run.id, 'a', { status: 'skipped', itemsProcessed: 0 }, AT + 5000),
        ).to.equal(true);
        expect(await claim('b', AT + 6000)).to.equal(undefined);
        expect((await store.jobRuns(JOB, 1)).items[0]?.status).to.equal('skipped');
      });

      it('names the runs of the job that held a live lease at the claim', async () => {
        const one = (await claim('a', AT, AT))!.run;
        const two = (await claim('b', AT + 1, AT + 1))!;
        expect(two.running.map((r) => r.id)).to.deep.equal([one.id]);
        await claim('c', AT + 2, AT, 'dead-letter-digest');
        const three = (await claim('c', AT + 2, AT + 2))!;
        expect(three.running.map((r) => r.id)).to.deep.equal([one.id, two.run.id]);
        await store.finishJobRun(one.id, 'a', { status: 'succeeded', itemsProcessed: 0 }, AT + 3);
        // two's lease (until AT + 1001) has expired by AT + 1001: it no longer counts as running
        const four = (await claim('d', AT + 1001, AT + 4))!;
        expect(four.running.map((r) => r.id)).to.deep.equal([three.run.id]);
        expect((await store.runningJobRuns(JOB)).map((r) => r.scheduledAt)).to.deep.equal([
          AT + 1,
          AT + 2,
          AT + 4,
        ]);
      });

      it('lists runs newest occurrence first with cursors, and knows the last occurrence', async () => {
        expect(await store.lastJobOccurrence(JOB)).to.equal(undefined);
        for (const at of [AT + 2, AT, AT + 1]) await claim('a', at, at);
        await claim('b', AT + 5000, AT + 1); // takes over occurrence AT + 1
        await store.claimJobOccurrence(JOB, AT - 10, 'cli', 1000, AT + 5000, 'manual');
        await claim('a', AT, AT + 99, 'other-job');
        const first = await store.jobRuns(JOB, 2);
        expect(first.items.map((r) => [r.scheduledAt, r.attempt])).to.deep.equal([
          [AT + 2, 1],
          [AT + 1, 2],
        ]);
        const second = await store.jobRuns(JOB, 2, first.nextCursor);
        expect(second.items.map((r) => [r.scheduledAt, r.attempt])).to.deep.equal([
          [AT + 1, 1],
          [AT, 1],
        ]);
        const third = await store.jobRuns(JOB, 2, second.nextCursor);
        expect(third.items.map((r) => [r.scheduledAt, r.attempt])).to.deep.equal([[AT - 10, 1]]);
        expect(third.nextCursor).to.equal(undefined);
        expect((await store.jobRuns(JOB, 5)).nextCursor).to.equal(undefined);
        expect(await store.lastJobOccurrence(JOB)).to.equal(AT + 2);
        expect(await store.lastJobOccurrence('other-job')).to.equal(AT + 99);
        let rejected: unknown;
        try {
          await store.jobRuns(JOB, 2, 'not-a-cursor');
        } catch (err) {
          rejected = err;
        }
        expect((rejected as { code?: string } | undefined)?.code).to.equal('AMT_VALIDATION_FAILED');
      });
    });

    describe('retention', () => {
      const SHARED = 'a'.repeat(64);
      const OWN = 'b'.repeat(64);
      const attachment = (sha256: string) => ({
        sha256,
        size: 3,
        filename: 'nachweis.pdf',
        mediaType: 'application/pdf',
      });

      it('purges payloads and attachment references of final messages, keeping the audit record', async () => {
        const old = await deliverOne({ attachments: [attachment(SHARED), attachment(OWN)] }, T0 + 10);
        const oldDead = await killOne({ routeId: 'gewerbe' }, T0 + 20);
        const recent = await deliverOne({ attachments: [attachment(SHARED)] }, T0 + 5000);
        const pending = await acceptOne({ receivedAt: T0 });
        const historyBefore = await store.history(old.id);

        const result = await store.purgePayloads({ before: T0 + 1000, limit: 10 }, T0 + 9000);
        expect(result).to.deep.equal({ purged: 2, unreferencedAttachments: [OWN] });

        const purged = (await store.getMessage(old.id))!;
        expect(purged.payload).to.equal(PURGED_PAYLOAD);
        expect(purged.attachments).to.deep.equal([]);
        expectFields(purged, {
          status: 'delivered',
          deliveryId: old.deliveryId,
          remoteReference: old.remoteReference,
          updatedAt: old.updatedAt,
        });
        const history = await store.history(old.id);
        expect(history.slice(0, -1)).to.deep.equal(historyBefore);
        expect(plain(history.at(-1))).to.deep.equal({
          seq: historyBefore.length + 1,
          at: T0 + 9000,
          status: 'delivered',
          event: 'purged',
          detail: { attachments: 2 },
        });
        expect(await store.attempts(old.id)).to.have.length(1);
        expectFields(await store.getMessage(oldDead.id), { status: 'dead', payload: PURGED_PAYLOAD });
        // A purged dead letter has nothing left to deliver: replay refuses it.
        expect(await store.replay([oldDead.id], T0 + 9100, 'ops')).to.deep.equal({
          replayed: [],
          notReplayable: [oldDead.id],
        });
        expect((await store.history(oldDead.id)).at(-1)?.status).to.equal('dead');
        expect((await store.getMessage(recent.id))?.payload).to.equal(recent.payload);
        expect((await store.getMessage(pending.id))?.payload).to.equal(pending.payload);

        expect(await store.referencedAttachments([OWN, SHARED, SHARED])).to.deep.equal(new Set([SHARED]));
        expect(await store.referencedAttachments([])).to.deep.equal(new Set());
        expect(await store.purgePayloads({ before: T0 + 1000, limit: 10 }, T0 + 9500)).to.deep.equal({
          purged: 0,
          unreferencedAttachments: [],
        });
        expect(await store.purgePayloads({ before: T0 + 6000, limit: 10 }, T0 + 9600)).to.deep.equal({
          purged: 1,
          unreferencedAttachments: [SHARED],
        });
        expect(await store.referencedAttachments([SHARED])).to.deep.equal(new Set());
      });

      it('tells in one call which of up to MAX_ATTACHMENT_LOOKUP hashes are referenced', async () => {
        const hashes = Array.from({ length: MAX_ATTACHMENT_LOOKUP }, (_, i) =>
          i.toString(16).padStart(64, 'c'),
        );
        await deliverOne({ attachments: [attachment(hashes[7]!), attachment(hashes[998]!)] }, T0 + 10);
        await deliverOne({ attachments: [attachment(hashes[7]!)] }, T0 + 20);
        expect(await store.referencedAttachments(hashes)).to.deep.equal(new Set([hashes[7], hashes[998]]));
        let refused: unknown;
        try {
          await store.referencedAttachments([...hashes, SHARED]);
        } catch (err) {
          refused = err;
        }
        expect(refused).to.be.instanceOf(RangeError);
      });

      it('purges oldest first, up to the limit, only of the routes named', async () => {
        const a = await deliverOne({ routeId: 'parken' }, T0 + 30);
        const b = await deliverOne({ routeId: 'gewerbe' }, T0 + 10);
        const c = await deliverOne({ routeId: 'parken' }, T0 + 20);
        expect(
          (await store.purgePayloads({ before: T0 + 100, routeIds: [], limit: 10 }, T0 + 200)).purged,
        ).to.equal(0);
        expect(
          (await store.purgePayloads({ before: T0 + 100, routeIds: ['parken'], limit: 1 }, T0 + 200)).purged,
        ).to.equal(1);
        const payloads = async () =>
          Promise.all([a, b, c].map(async (m) => (await store.getMessage(m.id))?.payload === PURGED_PAYLOAD));
        expect(await payloads()).to.deep.equal([false, false, true]);
        expect(
          (await store.purgePayloads({ before: T0 + 100, routeIds: ['parken'], limit: 5 }, T0 + 300)).purged,
        ).to.equal(1);
        expect(await payloads()).to.deep.equal([true, false, true]);
        expect((await store.purgePayloads({ before: T0 + 100, limit: 5 }, T0 + 400)).purged).to.equal(1);
        expect(await payloads()).to.deep.equal([true, true, true]);
      });

      it('counts dead letters per route, in total and since an instant', async () => {
        expect(await store.deadLetterCounts(T0)).to.deep.equal([]);
        await killOne({ routeId: 'parken' }, T0 + 10);
        await killOne({ routeId: 'parken' }, T0 + 500);
        await killOne({ routeId: 'gewerbe-anmeldung' }, T0 + 20);
        await killOne({ routeId: 'gewerbe_abmeldung' }, T0 + 600);
        await deliverOne({ routeId: 'wohnsitz' }, T0 + 700);
        expect(await store.deadLetterCounts(T0 + 500)).to.deep.equal([
          { routeId: 'gewerbe-anmeldung', dead: 1, deadSince: 0 },
          { routeId: 'gewerbe_abmeldung', dead: 1, deadSince: 1 },
          { routeId: 'parken', dead: 2, deadSince: 1 },
        ]);
      });
    });
  });
}
