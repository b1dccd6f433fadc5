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
 */
import type { AcceptResult, NewMessage, Outcome, Store } from './types.js';

export interface GroupCommitOptions {
  /** Most items (messages or outcomes) merged into one store call. Default 256. */
  readonly maxBatch?: number;
}

interface TimedOutcome {
  readonly outcome: Outcome;
  readonly now: number;
}

interface PendingCall<I, O> {
  readonly items: readonly I[];
  readonly resolve: (results: O[]) => void;
  readonly reject: (err: unknown) => void;
}

/** Queues calls of one kind and commits them in groups, one group at a time. */
class CommitGroups<I, O> {
  private queue: PendingCall<I, O>[] = [];
  private scheduled = false;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly commit: (items: readonly I[]) => Promise<O[]>,
    private readonly maxBatch: number,
  ) {}

  submit(items: readonly I[]): Promise<O[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<O[]>((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once every call submitted so far has been committed (or has failed). */
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
    const group: PendingCall<I, O>[] = [];
    let size = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (group.length > 0 && size + next.items.length > this.maxBatch) break;
      group.push(next);
      size += next.items.length;
      this.queue.shift();
    }
    const items = group.flatMap((call) => call.items);
    let results: O[];
    try {
      results = await this.commit(items);
      if (results.length !== items.length) {
        throw new Error(`store answered ${results.length} results for ${items.length} items`);
      }
    } catch (err) {
      if (group.length === 1) group[0]!.reject(err);
      else for (const call of group) await this.commitAlone(call);
      return;
    }
    let offset = 0;
    for (const call of group) {
      call.resolve(results.slice(offset, offset + call.items.length));
      offset += call.items.length;
    }
  }

  private async commitAlone(call: PendingCall<I, O>): Promise<void> {
    try {
      call.resolve(await this.commit(call.items));
    } catch (err) {
      call.reject(err);
    }
  }
}

/**
 * Wraps a store so concurrent `accept()` and `complete()` calls are committed in groups. Other
 * methods pass through. `close()` first waits for queued calls.
 */
export function withGroupCommit(store: Store, options: GroupCommitOptions = {}): Store {
  const maxBatch = Math.max(1, options.maxBatch ?? 256);
  const accepts = new CommitGroups<NewMessage, AcceptResult>((messages) => store.accept(messages), maxBatch);
  // One commit has one clock: a merged group is recorded at the latest `now` of its calls (a
  // few milliseconds at most); each attempt's own timing travels in its outcome.
  const completions = new CommitGroups<TimedOutcome, boolean>(
    (items) =>
      store.complete(
        items.map((item) => item.outcome),
        Math.max(...items.map((item) => item.now)),
      ),
    maxBatch,
  );

  return {
    migrate: () => store.migrate(),
    ping: () => store.ping(),
    async close() {
      await Promise.all([accepts.drain(), completions.drain()]);
      await store.close();
    },
    accept: (messages) => accepts.submit(messages),
    findByIdempotencyKey: (clientId, key) => store.findByIdempotencyKey(clientId, key),
    getMessage: (id) => store.getMessage(id),
    history: (id) => store.history(id),
    attempts: (id) => store.attempts(id),
    listMessages: (filter) => store.listMessages(filter),
    deadLetters: (filter) => store.deadLetters(filter),
    stats: () => store.stats(),
    claimDue: (owner, limit, leaseMs, now) => store.claimDue(owner, limit, leaseMs, now),
    complete: (outcomes, now) => completions.submit(outcomes.map((outcome) => ({ outcome, now }))),
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
    isAttachmentReferenced: (sha256) => store.isAttachmentReferenced(sha256),
    deadLetterCounts: (since) => store.deadLetterCounts(since),
  };
}
