/**
 * Group commit: concurrent `accept()` and `complete()` calls share one store call, and so one
 * commit. A durable commit costs about the same for one row as for a hundred (SQLite WAL with
 * synchronous=FULL: ~5k single-row commits/s against ~60k rows/s in 100-row commits), so
 * intake and workers gain throughput without giving up "acknowledged only after commit".
 *
 * Calls that arrive in the same turn of the event loop, or while the previous group is being
 * committed, form the next group (up to `maxBatch` items; a single call larger than that is
 * never split). Merging is safe because the store treats a batch like calls in sequence (the
 * same idempotency key twice in one batch behaves as two calls). Every caller gets back its
 * own slice of the results. When a merged group fails, each call of it is retried on its own,
 * so one bad request (e.g. a duplicate id) fails only its caller, while an error of the store
 * itself still reaches every caller.
 *
 * A store that can commit both in one transaction (`acceptAndComplete`, SQLite) gets the
 * outcomes of its workers added to the next intake commit (see SharedCommits).
 */
import type { AcceptResult, NewMessage, Outcome, Store } from './types.js';

export interface GroupCommitOptions {
  /** Most items (messages or outcomes) merged into one store call. Default 256. */
  readonly maxBatch?: number;
  /**
   * For a store with `acceptAndComplete`: how long an outcome waits for an intake commit to ride
   * along with before it is committed on its own, while applications come in. Default 5 ms.
   */
  readonly outcomeWaitMs?: number;
  /**
   * For a store with `acceptAndComplete`: the least time from the start of one commit to the
   * start of the next. Default 3 ms. A call after a quiet spell is committed at once; under
   * load, calls gather for up to this long, so a commit carries more of them.
   */
  readonly commitIntervalMs?: number;
  /**
   * Told of every group committed (or tried: a group whose store call failed too), for the
   * metrics. Not called for the one-by-one retries of a failed group; what it throws is ignored.
   */
  readonly onCommit?: CommitObserver;
}

/** One group commit, as the metrics see it. */
export interface CommitObservation {
  /** Applications accepted in it. */
  readonly accepts: number;
  /** Delivery outcomes recorded in it. */
  readonly outcomes: number;
  /**
   * How long the longest-waiting application in it was queued before the commit started, in ms;
   * undefined when it carried none. (Outcomes may wait on purpose; see SharedCommits.)
   */
  readonly waitedMs: number | undefined;
  /** The store call: the transaction with its flush to disk (and, for SQLite, the trip to its store thread), in ms. */
  readonly durationMs: number;
}

export type CommitObserver = (commit: CommitObservation) => void;

interface TimedOutcome {
  readonly outcome: Outcome;
  readonly now: number;
}

interface PendingCall<I, O> {
  readonly items: readonly I[];
  /** performance.now() when an accept call was queued (what the wait metric measures). */
  readonly queuedAt?: number;
  readonly resolve: (results: O[]) => void;
  readonly reject: (err: unknown) => void;
}

/** Takes the calls of the next group off the queue: at least one, never more than `maxBatch` items unless a single call is larger. */
function takeGroup<I, O>(queue: PendingCall<I, O>[], maxBatch: number): PendingCall<I, O>[] {
  const group: PendingCall<I, O>[] = [];
  let size = 0;
  while (queue.length > 0) {
    const next = queue[0]!;
    if (group.length > 0 && size + next.items.length > maxBatch) break;
    group.push(next);
    size += next.items.length;
    queue.shift();
  }
  return group;
}

/**
 * Runs one group's store call and, with an observer, reports it — whether it succeeded or not.
 * `acceptsQueuedAt`: when the group's first (longest-waiting) application was queued, if any.
 * What the observer throws is dropped: metrics must not turn a commit into a failure (and a
 * retry of its calls).
 */
async function observed<R>(
  onCommit: CommitObserver | undefined,
  group: {
    readonly accepts: number;
    readonly outcomes: number;
    readonly acceptsQueuedAt: number | undefined;
  },
  call: () => Promise<R>,
): Promise<R> {
  if (onCommit === undefined) return call();
  const startedAt = performance.now();
  try {
    return await call();
  } finally {
    const { accepts, outcomes, acceptsQueuedAt } = group;
    const waitedMs = acceptsQueuedAt === undefined ? undefined : startedAt - acceptsQueuedAt;
    try {
      onCommit({ accepts, outcomes, waitedMs, durationMs: performance.now() - startedAt });
    } catch {
      // metrics only
    }
  }
}

/** Hands every call of a committed group its own slice of the results. */
function answer<I, O>(group: readonly PendingCall<I, O>[], results: readonly O[]): void {
  let offset = 0;
  for (const call of group) {
    call.resolve(results.slice(offset, offset + call.items.length));
    offset += call.items.length;
  }
}

async function commitAlone<I, O>(
  call: PendingCall<I, O>,
  commit: (items: readonly I[]) => Promise<O[]>,
): Promise<void> {
  try {
    call.resolve(await commit(call.items));
  } catch (err) {
    call.reject(err);
  }
}

function checkCount(results: readonly unknown[], items: readonly unknown[]): void {
  if (results.length !== items.length) {
    throw new Error(`store answered ${results.length} results for ${items.length} items`);
  }
}

/** One commit has one clock: a merged group is recorded at the latest `now` of its calls. */
function latestNow(items: readonly TimedOutcome[]): number {
  return Math.max(...items.map((item) => item.now));
}

function completeTimed(store: Store, items: readonly TimedOutcome[]): Promise<boolean[]> {
  return store.complete(
    items.map((item) => item.outcome),
    latestNow(items),
  );
}

interface Committer {
  accept(messages: readonly NewMessage[]): Promise<AcceptResult[]>;
  complete(outcomes: readonly Outcome[], now: number): Promise<boolean[]>;
  /**
   * For close(): commits what is queued without waiting any longer, and resolves once every call
   * submitted so far has been committed (or has failed).
   */
  drain(): Promise<void>;
}

/** Queues calls of one kind and commits them in groups, one group at a time. */
class CommitGroups<I, O> {
  private queue: PendingCall<I, O>[] = [];
  private scheduled = false;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly commit: (items: readonly I[]) => Promise<O[]>,
    private readonly maxBatch: number,
    /** What the calls carry, for the observer. */
    private readonly kind: 'accepts' | 'outcomes',
    private readonly onCommit: CommitObserver | undefined,
  ) {}

  submit(items: readonly I[]): Promise<O[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<O[]>((resolve, reject) => {
      const queuedAt = this.kind === 'accepts' ? performance.now() : undefined;
      this.queue.push({ items, queuedAt, resolve, reject });
      this.schedule();
    });
  }

  async drain(): Promise<void> {
    while (this.inFlight || this.scheduled || this.queue.length > 0) {
      await (this.inFlight ?? new Promise<void>((resolve) => setImmediate(resolve)));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    // setImmediate, not a microtask: it runs after the I/O callbacks of this loop turn, so
    // requests that arrived together are committed together.
    setImmediate(() => {
      this.scheduled = false;
      this.inFlight = this.flush().finally(() => {
        this.inFlight = undefined;
        if (this.queue.length > 0) this.schedule();
      });
    });
  }

  private async flush(): Promise<void> {
    const group = takeGroup(this.queue, this.maxBatch);
    const items = group.flatMap((call) => call.items);
    const accepts = this.kind === 'accepts';
    let results: O[];
    try {
      results = await observed(
        this.onCommit,
        {
          accepts: accepts ? items.length : 0,
          outcomes: accepts ? 0 : items.length,
          acceptsQueuedAt: group[0]!.queuedAt,
        },
        () => this.commit(items),
      );
      checkCount(results, items);
    } catch (err) {
      if (group.length === 1) group[0]!.reject(err);
      else for (const call of group) await commitAlone(call, this.commit);
      return;
    }
    answer(group, results);
  }
}

/** Intake and outcomes each in groups of their own, committed independently. */
function separateCommits(store: Store, maxBatch: number, onCommit: CommitObserver | undefined): Committer {
  const accepts = new CommitGroups<NewMessage, AcceptResult>(
    (messages) => store.accept(messages),
    maxBatch,
    'accepts',
    onCommit,
  );
  const completions = new CommitGroups<TimedOutcome, boolean>(
    (items) => completeTimed(store, items),
    maxBatch,
    'outcomes',
    onCommit,
  );
  return {
    accept: (messages) => accepts.submit(messages),
    complete: (outcomes, now) => completions.submit(outcomes.map((outcome) => ({ outcome, now }))),
    async drain() {
      await Promise.all([accepts.drain(), completions.drain()]);
    },
  };
}

type SharingStore = Store & Pick<Required<Store>, 'acceptAndComplete'>;

function sharesCommits(store: Store): store is SharingStore {
  return typeof store.acceptAndComplete === 'function';
}

/**
 * Intake and outcomes in shared commits, for a store with `acceptAndComplete`. Accepts are
 * committed as CommitGroups does (after the turn they arrived in, one group at a time), but no
 * sooner than `intervalMs` after the previous commit started. While applications come in (one
 * arrived within the last `waitMs`), outcomes wait up to `waitMs` and ride along with the next
 * of those commits, or are committed on their own when none comes (or once `maxBatch` of them
 * are waiting); while none come in — a backlog draining — they are committed at once.
 *
 * A SQLite commit costs per page it touches, and a commit of one new message touches about 20
 * (the message row, its payload, its history, a leaf of each index, the file header), one of
 * eight not many more: `npm run bench:store` counts the WAL pages per application. Unpaced, at
 * a steady thousand applications a second, commits followed each other as fast as they finished
 * and carried one or two calls each; paced, and with the outcomes aboard, a commit carries a few
 * of both (docs/performance.md).
 */
class SharedCommits implements Committer {
  private accepts: PendingCall<NewMessage, AcceptResult>[] = [];
  private outcomes: PendingCall<TimedOutcome, boolean>[] = [];
  private outcomesDue = false;
  private outcomeTimer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private inFlight: Promise<void> | undefined;
  private lastStart = -Infinity;
  private lastAcceptAt = -Infinity;
  private pace: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(
    private readonly store: SharingStore,
    private readonly maxBatch: number,
    private readonly waitMs: number,
    private readonly intervalMs: number,
    private readonly onCommit: CommitObserver | undefined,
  ) {}

  accept(messages: readonly NewMessage[]): Promise<AcceptResult[]> {
    if (messages.length === 0) return Promise.resolve([]);
    this.lastAcceptAt = performance.now();
    return new Promise<AcceptResult[]>((resolve, reject) => {
      this.accepts.push({ items: messages, queuedAt: this.lastAcceptAt, resolve, reject });
      this.schedule();
    });
  }

  complete(outcomes: readonly Outcome[], now: number): Promise<boolean[]> {
    if (outcomes.length === 0) return Promise.resolve([]);
    return new Promise<boolean[]>((resolve, reject) => {
      this.outcomes.push({ items: outcomes.map((outcome) => ({ outcome, now })), resolve, reject });
      // Waiting only pays while applications come in; draining a backlog, nothing would come.
      const intakeQuiet = performance.now() - this.lastAcceptAt > this.waitMs;
      if (intakeQuiet || this.waitingOutcomeCount() >= this.maxBatch) this.outcomesAreDue();
      else this.outcomeTimer ??= setTimeout(() => this.outcomesAreDue(), this.waitMs);
    });
  }

  /** For close(): what is queued is committed at once, without waiting or pacing. */
  async drain(): Promise<void> {
    this.closing = true;
    if (this.pace !== undefined) {
      clearTimeout(this.pace);
      this.pace = undefined;
      this.scheduled = false;
      this.schedule();
    }
    while (this.inFlight || this.scheduled || this.accepts.length > 0 || this.outcomes.length > 0) {
      if (this.outcomes.length > 0) this.outcomesAreDue();
      await (this.inFlight ?? new Promise<void>((resolve) => setImmediate(resolve)));
    }
  }

  private waitingOutcomeCount(): number {
    return this.outcomes.reduce((n, call) => n + call.items.length, 0);
  }

  private outcomesAreDue(): void {
    clearTimeout(this.outcomeTimer);
    this.outcomeTimer = undefined;
    this.outcomesDue = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    if (this.accepts.length === 0 && !this.outcomesDue) return;
    this.scheduled = true;
    const wait = this.closing ? 0 : this.lastStart + this.intervalMs - performance.now();
    if (wait > 0) this.pace = setTimeout(() => this.start(), wait);
    else setImmediate(() => this.start());
  }

  private start(): void {
    this.pace = undefined;
    this.scheduled = false;
    this.lastStart = performance.now();
    this.inFlight = this.flush().finally(() => {
      this.inFlight = undefined;
      this.schedule();
    });
  }

  private async flush(): Promise<void> {
    const accepts = takeGroup(this.accepts, this.maxBatch);
    // Outcomes go along whether or not they are due yet.
    const outcomes = takeGroup(this.outcomes, this.maxBatch);
    const messages = accepts.flatMap((call) => call.items);
    const timed = outcomes.flatMap((call) => call.items);
    if (messages.length === 0 && timed.length === 0) return;
    if (this.outcomes.length === 0) {
      clearTimeout(this.outcomeTimer);
      this.outcomeTimer = undefined;
      this.outcomesDue = false;
    }
    let accepted: AcceptResult[];
    let completed: boolean[];
    try {
      ({ accepted, completed } = await observed(
        this.onCommit,
        { accepts: messages.length, outcomes: timed.length, acceptsQueuedAt: accepts[0]?.queuedAt },
        () => this.commit(messages, timed),
      ));
      checkCount(accepted, messages);
      checkCount(completed, timed);
    } catch (err) {
      if (accepts.length + outcomes.length === 1) [...accepts, ...outcomes][0]!.reject(err);
      else {
        for (const call of accepts) await commitAlone(call, (items) => this.store.accept(items));
        for (const call of outcomes) await commitAlone(call, (items) => completeTimed(this.store, items));
      }
      return;
    }
    answer(accepts, accepted);
    answer(outcomes, completed);
  }

  /** One store call for the group: accepts, outcomes, or both in one transaction. */
  private async commit(
    messages: readonly NewMessage[],
    timed: readonly TimedOutcome[],
  ): Promise<{ accepted: AcceptResult[]; completed: boolean[] }> {
    if (timed.length === 0) return { accepted: await this.store.accept(messages), completed: [] };
    if (messages.length === 0) return { accepted: [], completed: await completeTimed(this.store, timed) };
    return this.store.acceptAndComplete(
      messages,
      timed.map((item) => item.outcome),
      latestNow(timed),
    );
  }
}

/**
 * Wraps a store so concurrent `accept()` and `complete()` calls are committed in groups. Other
 * methods pass through. `close()` first waits for queued calls.
 */
export function withGroupCommit(store: Store, options: GroupCommitOptions = {}): Store {
  const maxBatch = Math.max(1, options.maxBatch ?? 256);
  const { onCommit } = options;
  const committer: Committer = sharesCommits(store)
    ? new SharedCommits(
        store,
        maxBatch,
        Math.max(0, options.outcomeWaitMs ?? 5),
        Math.max(0, options.commitIntervalMs ?? 3),
        onCommit,
      )
    : separateCommits(store, maxBatch, onCommit);

  return {
    migrate: () => store.migrate(),
    ping: () => store.ping(),
    async close() {
      await committer.drain();
      await store.close();
    },
    accept: (messages) => committer.accept(messages),
    findByIdempotencyKey: (clientId, key) => store.findByIdempotencyKey(clientId, key),
    getMessage: (id) => store.getMessage(id),
    history: (id) => store.history(id),
    attempts: (id) => store.attempts(id),
    listMessages: (filter) => store.listMessages(filter),
    deadLetters: (filter) => store.deadLetters(filter),
    stats: () => store.stats(),
    claimDue: (owner, limit, leaseMs, now) => store.claimDue(owner, limit, leaseMs, now),
    complete: (outcomes, now) => committer.complete(outcomes, now),
    releaseLeases: (owner, now) => store.releaseLeases(owner, now),
    replay: (ids, now, by) => store.replay(ids, now, by),
    recordRemoteStatus: (messageId, status, detail, now) =>
      store.recordRemoteStatus(messageId, status, detail, now),
    awaitingRemoteStatus: (target, finalStatuses, limit) =>
      store.awaitingRemoteStatus(target, finalStatuses, limit),
    rememberOnce: (namespace, key, expiresAt, now) => store.rememberOnce(namespace, key, expiresAt, now),
    recordStatus: (report, followUps, now) => store.recordStatus(report, followUps, now),
    citizenStatus: (messageId) => store.citizenStatus(messageId),
    findMessages: (lookup, limit) => store.findMessages(lookup, limit),
    claimJobOccurrence: (job, scheduledAt, owner, leaseMs, now, trigger) =>
      store.claimJobOccurrence(job, scheduledAt, owner, leaseMs, now, trigger),
    heartbeatJobRun: (runId, owner, leaseMs, now) => store.heartbeatJobRun(runId, owner, leaseMs, now),
    finishJobRun: (runId, owner, outcome, now) => store.finishJobRun(runId, owner, outcome, now),
    jobRuns: (job, limit, cursor) => store.jobRuns(job, limit, cursor),
    runningJobRuns: (job) => store.runningJobRuns(job),
    lastJobOccurrence: (job) => store.lastJobOccurrence(job),
    purgePayloads: (filter, now) => store.purgePayloads(filter, now),
    referencedAttachments: (sha256s) => store.referencedAttachments(sha256s),
    deadLetterCounts: (since) => store.deadLetterCounts(since),
  };
}
