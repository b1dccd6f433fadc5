import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AmtError } from '../../src/errors.js';
import { withGroupCommit, type CommitObservation } from '../../src/store/group-commit.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { AcceptResult, NewMessage, Outcome, Store } from '../../src/store/types.js';

const T0 = 1_750_000_000_000;
let counter = 0;

function newMessage(
  overrides: Partial<{ -readonly [K in keyof NewMessage]: NewMessage[K] }> = {},
): NewMessage {
  counter += 1;
  const id = `g${String(counter).padStart(8, '0')}`;
  return {
    id,
    deliveryId: `d-${id}`,
    direction: 'outbound',
    tenantId: 'bielefeld',
    ars: '057110000000',
    service: '99123456789012',
    reference: undefined,
    clientId: 'portal',
    routeId: 'route',
    target: 'fachverfahren',
    payload: `{"id":"${id}"}`,
    attachments: [],
    idempotency: undefined,
    receivedAt: T0,
    ...overrides,
  };
}

function idOf(result: AcceptResult | undefined): string | undefined {
  if (!result) return undefined;
  return result.kind === 'conflict' ? result.messageId : result.message.id;
}

/** What the wrapped store was asked to do, and knobs to slow it down or break it. */
interface Recorder {
  readonly acceptSizes: number[];
  readonly completeCalls: { size: number; now: number }[];
  /** `acceptAndComplete` calls: how many messages and outcomes each carried. */
  readonly sharedCalls: { messages: number; outcomes: number; now: number }[];
  /** While set, every accept waits for it: a commit "in flight". */
  gate: Promise<void> | undefined;
  /** Every accept fails with this while set: the store is down. */
  outage: Error | undefined;
}

/**
 * The store with its calls recorded. `shared: false` hides `acceptAndComplete`, as a store
 * without it (PostgreSQL) looks to the wrapper.
 */
function recording(store: Store, shared: boolean): { store: Store; recorder: Recorder } {
  const recorder: Recorder = {
    acceptSizes: [],
    completeCalls: [],
    sharedCalls: [],
    gate: undefined,
    outage: undefined,
  };
  const wrapped = new Proxy(store, {
    get(target, property) {
      if (property === 'accept') {
        return async (messages: readonly NewMessage[]) => {
          recorder.acceptSizes.push(messages.length);
          await recorder.gate;
          if (recorder.outage) throw recorder.outage;
          return target.accept(messages);
        };
      }
      if (property === 'complete') {
        return async (outcomes: readonly Outcome[], now: number) => {
          recorder.completeCalls.push({ size: outcomes.length, now });
          return target.complete(outcomes, now);
        };
      }
      if (property === 'acceptAndComplete') {
        if (!shared) return undefined;
        return async (messages: readonly NewMessage[], outcomes: readonly Outcome[], now: number) => {
          recorder.sharedCalls.push({ messages: messages.length, outcomes: outcomes.length, now });
          await recorder.gate;
          if (recorder.outage) throw recorder.outage;
          return target.acceptAndComplete!(messages, outcomes, now);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: wrapped, recorder };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function delivered(id: string, owner: string, remoteReference?: string): Outcome {
  return {
    kind: 'delivered',
    messageId: id,
    leaseOwner: owner,
    attempt: { startedAt: T0 + 2, endedAt: T0 + 3, target: 'fachverfahren' },
    remoteReference,
  };
}

for (const mode of ['shared', 'separate'] as const) {
  describe(`withGroupCommit (${mode === 'shared' ? 'a store that commits intake and outcomes together' : 'intake and outcomes committed apart'})`, () => {
    let dir: string;
    let base: SqliteStore;
    let recorder: Recorder;
    let inner: Store;

    beforeEach(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-group-'));
      base = SqliteStore.open(path.join(dir, 'store.db'));
      await base.migrate();
      ({ store: inner, recorder } = recording(base, mode === 'shared'));
    });

    afterEach(async () => {
      await base.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('merges concurrent accepts into fewer commits and answers every caller with its own results', async () => {
      const store = withGroupCommit(inner);
      const calls = Array.from({ length: 40 }, (_, i) =>
        i % 4 === 0 ? [newMessage(), newMessage()] : [newMessage()],
      );
      const answers = await Promise.all(calls.map((messages) => store.accept(messages)));

      expect(recorder.acceptSizes.length).to.be.lessThan(calls.length);
      expect(recorder.acceptSizes.reduce((a, b) => a + b, 0)).to.equal(calls.flat().length);
      for (const [i, messages] of calls.entries()) {
        const answer = answers[i]!;
        expect(answer.map((r) => r.kind)).to.deep.equal(messages.map(() => 'created'));
        expect(answer.map(idOf)).to.deep.equal(messages.map((m) => m.id));
        expect(answer.map((r) => (r.kind === 'created' ? r.message.payload : undefined))).to.deep.equal(
          messages.map((m) => m.payload),
        );
      }
      expect((await base.stats()).byStatus.received).to.equal(calls.flat().length);
    });

    it('keeps idempotency between callers that share a commit', async () => {
      const store = withGroupCommit(inner);
      const key = { key: 'antrag-1', requestHash: 'h1' };
      const [first, second, third] = await Promise.all([
        store.accept([newMessage({ idempotency: key })]),
        store.accept([newMessage({ idempotency: key })]),
        store.accept([newMessage({ idempotency: { key: 'antrag-1', requestHash: 'h2' } })]),
      ]);
      expect(recorder.acceptSizes).to.deep.equal([3]);
      expect(first![0]!.kind).to.equal('created');
      expect(second![0]!.kind).to.equal('existing');
      expect(third![0]).to.deep.equal({ kind: 'conflict', messageId: idOf(first![0]) });
      expect(idOf(second![0])).to.equal(idOf(first![0]));
    });

    it('commits calls that arrive while a commit is in flight together in the next one', async () => {
      const store = withGroupCommit(inner);
      let open!: () => void;
      recorder.gate = new Promise<void>((resolve) => (open = resolve));
      const firstCall = store.accept([newMessage()]);
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(recorder.acceptSizes).to.deep.equal([1]);

      const later: Promise<AcceptResult[]>[] = [];
      for (let i = 0; i < 10; i++) {
        later.push(store.accept([newMessage()]));
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(recorder.acceptSizes, 'nothing more is committed while one commit is in flight').to.deep.equal([
        1,
      ]);
      recorder.gate = undefined;
      open();
      await firstCall;
      const answers = await Promise.all(later);
      expect(recorder.acceptSizes).to.deep.equal([1, 10]);
      expect(answers.every((a) => a.length === 1 && a[0]!.kind === 'created')).to.equal(true);
    });

    it('tells onCommit what each commit carried, how long its first application waited and how long it took', async () => {
      const seen: CommitObservation[] = [];
      const store = withGroupCommit(inner, { onCommit: (commit) => seen.push(commit) });
      let open!: () => void;
      recorder.gate = new Promise<void>((resolve) => (open = resolve));
      const firstCall = store.accept([newMessage()]);
      await nextTurn();
      await nextTurn();
      const later = [store.accept([newMessage(), newMessage()]), store.accept([newMessage()])];
      await new Promise((resolve) => setTimeout(resolve, 60));
      recorder.gate = undefined;
      open();
      await firstCall;
      await Promise.all(later);
      expect(seen.map(({ accepts, outcomes }) => ({ accepts, outcomes }))).to.deep.equal([
        { accepts: 1, outcomes: 0 },
        { accepts: 3, outcomes: 0 },
      ]);
      expect(seen[0]!.durationMs, 'the first commit was held for 60 ms').to.be.at.least(50);
      expect(seen[1]!.waitedMs, 'the later calls waited for it').to.be.at.least(50);
      expect(seen[0]!.waitedMs).to.be.below(seen[1]!.waitedMs!);
      expect(seen[1]!.durationMs).to.be.below(seen[0]!.durationMs);

      const [claimed] = await store.claimDue('worker', 1, 60_000, T0 + 1);
      expect(await store.complete([delivered(claimed!.id, 'worker')], T0 + 5)).to.deep.equal([true]);
      const last = seen.at(-1)!;
      expect(last).to.include({ accepts: 0, outcomes: 1, waitedMs: undefined });
      expect(last.durationMs).to.be.a('number').and.at.least(0);
    });

    it('commits as usual when onCommit throws', async () => {
      const store = withGroupCommit(inner, {
        onCommit: () => {
          throw new Error('metrics broke');
        },
      });
      const message = newMessage();
      const [result] = await store.accept([message]);
      expect(result!.kind).to.equal('created');
      expect(
        recorder.acceptSizes.length + recorder.sharedCalls.length,
        'committed once, not retried',
      ).to.equal(1);
      expect((await base.getMessage(message.id))?.id).to.equal(message.id);
    });

    it('puts at most maxBatch items into one commit but never splits a call', async () => {
      const store = withGroupCommit(inner, { maxBatch: 5 });
      const big = Array.from({ length: 8 }, () => newMessage());
      const calls = [...Array.from({ length: 12 }, () => [newMessage()]), big, [newMessage()]];
      const answers = await Promise.all(calls.map((messages) => store.accept(messages)));
      expect(recorder.acceptSizes).to.include(8);
      expect(recorder.acceptSizes.filter((size) => size !== 8).every((size) => size <= 5)).to.equal(true);
      expect(recorder.acceptSizes.length).to.be.lessThan(calls.length);
      expect(answers.map((a) => a.map(idOf))).to.deep.equal(calls.map((ms) => ms.map((m) => m.id)));
    });

    it('fails only the caller whose batch is bad, not the others of its commit', async () => {
      const store = withGroupCommit(inner);
      const [existing] = await store.accept([newMessage()]);
      const good = [newMessage(), newMessage()];
      const badFresh = newMessage();
      const settled = await Promise.allSettled([
        store.accept([good[0]!]),
        store.accept([badFresh, newMessage({ id: idOf(existing)! })]),
        store.accept([good[1]!]),
      ]);
      expect(settled.map((s) => s.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
      for (const m of good) expect((await base.getMessage(m.id))?.status).to.equal('received');
      expect(await base.getMessage(badFresh.id)).to.equal(undefined);
    });

    it('hands a store failure to every caller of the commit', async () => {
      const store = withGroupCommit(inner);
      recorder.outage = new AmtError('AMT_STORE_UNAVAILABLE', 'disk gone');
      const settled = await Promise.allSettled([1, 2, 3, 4].map(() => store.accept([newMessage()])));
      expect(settled.map((s) => s.status)).to.deep.equal(['rejected', 'rejected', 'rejected', 'rejected']);
      for (const s of settled) {
        expect(s.status === 'rejected' && (s.reason as AmtError).code).to.equal('AMT_STORE_UNAVAILABLE');
      }
      recorder.outage = undefined;
      expect((await store.accept([newMessage()]))[0]!.kind).to.equal('created');
    });

    it('merges concurrent outcomes, answers each worker for its own, and records them at the latest clock', async () => {
      const store = withGroupCommit(inner);
      const messages = Array.from({ length: 6 }, () => newMessage());
      await store.accept(messages);
      const a = await store.claimDue('worker-a', 3, 60_000, T0 + 1);
      const b = await store.claimDue('worker-b', 3, 60_000, T0 + 1);
      const outcome = (id: string, owner: string): Outcome => ({
        kind: 'delivered',
        messageId: id,
        leaseOwner: owner,
        attempt: { startedAt: T0 + 2, endedAt: T0 + 3, target: 'fachverfahren' },
        remoteReference: `${owner}:${id}`,
      });
      const [fromA, fromB, stale] = await Promise.all([
        store.complete(
          a.map((m) => outcome(m.id, 'worker-a')),
          T0 + 10,
        ),
        store.complete(
          b.map((m) => outcome(m.id, 'worker-b')),
          T0 + 12,
        ),
        store.complete([outcome(a[0]!.id, 'worker-b')], T0 + 11),
      ]);
      expect(recorder.completeCalls).to.deep.equal([{ size: 7, now: T0 + 12 }]);
      expect(fromA).to.deep.equal([true, true, true]);
      expect(fromB).to.deep.equal([true, true, true]);
      expect(stale).to.deep.equal([false]);
      const read = await store.getMessage(a[0]!.id);
      expect(read?.remoteReference).to.equal(`worker-a:${a[0]!.id}`);
      expect(read?.updatedAt).to.equal(T0 + 12);
    });

    it('passes other methods straight through', async () => {
      const store = withGroupCommit(inner);
      await store.accept([newMessage({ receivedAt: T0 })]);
      expect(recorder.acceptSizes).to.deep.equal([1]);
      const claimed = await store.claimDue('w', 10, 1000, T0);
      expect(claimed).to.have.length(1);
      expect(await store.releaseLeases('w', T0 + 1)).to.equal(1);
      expect(await store.rememberOnce('ns', 'k', T0 + 10, T0)).to.equal(true);
      expect(await store.accept([])).to.deep.equal([]);
      expect(await store.complete([], T0)).to.deep.equal([]);
      expect(recorder.acceptSizes).to.deep.equal([1]);
      expect(recorder.completeCalls).to.deep.equal([]);
    });

    it('lets queued calls commit before close', async () => {
      const file = path.join(dir, 'closing.db');
      const own = SqliteStore.open(file);
      await own.migrate();
      const store = withGroupCommit(own);
      const m = newMessage();
      const pending = store.accept([m]);
      await store.close();
      expect((await pending)[0]!.kind).to.equal('created');
      const reopened = SqliteStore.open(file);
      expect((await reopened.getMessage(m.id))?.status).to.equal('received');
      await reopened.close();
    });
  });
}

describe('withGroupCommit with a store that commits intake and outcomes together', () => {
  let dir: string;
  let base: SqliteStore;
  let recorder: Recorder;
  let inner: Store;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-shared-'));
    base = SqliteStore.open(path.join(dir, 'store.db'));
    await base.migrate();
    ({ store: inner, recorder } = recording(base, true));
  });

  afterEach(async () => {
    await base.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Messages accepted and claimed by `owner`, with the recorder cleared afterwards. */
  async function claimed(store: Store, count: number, owner: string): Promise<string[]> {
    const messages = Array.from({ length: count }, () =>
      newMessage({ claim: { owner, leaseExpiresAt: T0 + 60_000 } }),
    );
    await store.accept(messages);
    recorder.acceptSizes.length = 0;
    recorder.sharedCalls.length = 0;
    return messages.map((m) => m.id);
  }

  it('lets waiting outcomes ride along with the next intake commit', async () => {
    const store = withGroupCommit(inner, { outcomeWaitMs: 10_000 });
    const [a, b] = await claimed(store, 2, 'worker');
    const outcomes = [
      store.complete([delivered(a!, 'worker', 'R-1')], T0 + 10),
      store.complete([delivered(b!, 'other-worker')], T0 + 11),
    ];
    await nextTurn();
    await nextTurn();
    expect(recorder.completeCalls, 'outcomes wait for an intake commit').to.deep.equal([]);
    const fresh = newMessage();
    const [accepted] = await store.accept([fresh]);
    expect(await Promise.all(outcomes)).to.deep.equal([[true], [false]]);
    expect(recorder.sharedCalls).to.deep.equal([{ messages: 1, outcomes: 2, now: T0 + 11 }]);
    expect(recorder.acceptSizes).to.deep.equal([]);
    expect(recorder.completeCalls).to.deep.equal([]);
    expect(idOf(accepted)).to.equal(fresh.id);
    expect((await base.getMessage(fresh.id))?.status).to.equal('received');
    const done = await base.getMessage(a!);
    expect([done?.status, done?.remoteReference, done?.updatedAt]).to.deep.equal([
      'delivered',
      'R-1',
      T0 + 11,
    ]);
    expect((await base.getMessage(b!))?.status, 'a lease it does not hold is not completed').to.equal(
      'delivering',
    );
    expect((await base.history(a!)).map((e) => e.event)).to.deep.equal(['received', 'claimed', 'delivered']);
  });

  it('commits outcomes at once while no applications come in (a backlog drains)', async () => {
    const store = withGroupCommit(inner, { outcomeWaitMs: 60_000 });
    const m = newMessage();
    await base.accept([m]); // stored earlier, not through this wrapper: its intake is quiet
    const [claimedNow] = await store.claimDue('worker', 1, 60_000, T0 + 1);
    expect(await store.complete([delivered(claimedNow!.id, 'worker')], T0 + 10)).to.deep.equal([true]);
    expect(recorder.completeCalls).to.deep.equal([{ size: 1, now: T0 + 10 }]);
    expect((await base.getMessage(m.id))?.status).to.equal('delivered');
  });

  it('lets outcomes wait for intake while it comes in, and commits them alone after outcomeWaitMs', async () => {
    const store = withGroupCommit(inner, { outcomeWaitMs: 400 });
    const [id] = await claimed(store, 1, 'worker');
    const outcome = store.complete([delivered(id!, 'worker')], T0 + 10);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(recorder.completeCalls, 'still waiting for an intake to ride along with').to.deep.equal([]);
    expect(await outcome).to.deep.equal([true]);
    expect(recorder.completeCalls).to.deep.equal([{ size: 1, now: T0 + 10 }]);
    expect(recorder.sharedCalls).to.deep.equal([]);
    expect((await base.getMessage(id!))?.status).to.equal('delivered');
  });

  it('does not let maxBatch outcomes wait', async () => {
    const store = withGroupCommit(inner, { outcomeWaitMs: 60_000, maxBatch: 3 });
    const ids = await claimed(store, 3, 'worker');
    const answers = await Promise.all([
      store.complete([delivered(ids[0]!, 'worker')], T0 + 10),
      store.complete(
        ids.slice(1).map((id) => delivered(id, 'worker')),
        T0 + 10,
      ),
    ]);
    expect(answers).to.deep.equal([[true], [true, true]]);
    expect(recorder.completeCalls).to.deep.equal([{ size: 3, now: T0 + 10 }]);
  });

  it('paces commits: what arrives within commitIntervalMs of the last commit shares the next one', async () => {
    const store = withGroupCommit(inner, { commitIntervalMs: 60_000 });
    await store.accept([newMessage()]);
    expect(recorder.acceptSizes, 'after a quiet spell a call is committed at once').to.deep.equal([1]);
    const later: Promise<AcceptResult[]>[] = [];
    for (let i = 0; i < 3; i++) {
      later.push(store.accept([newMessage()]));
      await nextTurn();
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(recorder.acceptSizes, 'the next commit waits for its interval').to.deep.equal([1]);
    // Closing does not wait for the interval: it commits what is queued.
    await store.close();
    const answers = await Promise.all(later);
    expect(recorder.acceptSizes).to.deep.equal([1, 3]);
    expect(answers.map((a) => a[0]!.kind)).to.deep.equal(['created', 'created', 'created']);
    base = SqliteStore.open(path.join(dir, 'store.db'));
  });

  it('commits a waiting outcome when the store is closed', async () => {
    const file = path.join(dir, 'closing.db');
    const own = SqliteStore.open(file);
    await own.migrate();
    const store = withGroupCommit(own, { outcomeWaitMs: 60_000 });
    const m = newMessage({ claim: { owner: 'worker', leaseExpiresAt: T0 + 60_000 } });
    await store.accept([m]);
    const outcome = store.complete([delivered(m.id, 'worker')], T0 + 10);
    await store.close();
    expect(await outcome).to.deep.equal([true]);
    const reopened = SqliteStore.open(file);
    expect((await reopened.getMessage(m.id))?.status).to.equal('delivered');
    await reopened.close();
  });

  it('retries the calls of a failed shared commit one by one: a bad intake fails alone, the outcome is kept', async () => {
    const store = withGroupCommit(inner, { outcomeWaitMs: 60_000 });
    const [id] = await claimed(store, 1, 'worker');
    const [existing] = await store.accept([newMessage()]);
    recorder.acceptSizes.length = 0;
    const outcome = store.complete([delivered(id!, 'worker')], T0 + 10);
    const badFresh = newMessage();
    const good = newMessage();
    const settled = await Promise.allSettled([
      store.accept([badFresh, newMessage({ id: idOf(existing)! })]),
      store.accept([good]),
      outcome,
    ]);
    expect(settled.map((s) => s.status)).to.deep.equal(['rejected', 'fulfilled', 'fulfilled']);
    expect(recorder.sharedCalls.map((c) => [c.messages, c.outcomes])).to.deep.equal([[3, 1]]);
    expect(recorder.acceptSizes).to.deep.equal([2, 1]);
    expect(recorder.completeCalls.map((c) => c.size)).to.deep.equal([1]);
    expect(await base.getMessage(badFresh.id)).to.equal(undefined);
    expect((await base.getMessage(good.id))?.status).to.equal('received');
    expect((await base.getMessage(id!))?.status).to.equal('delivered');
  });
});
