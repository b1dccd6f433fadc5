/**
 * The store contract. Two implementations (SQLite, PostgreSQL) pass one contract test suite
 * (`test/store/contract.ts`). Every method that changes state does so atomically: after a crash
 * either all of it happened or none of it did.
 */
import type { Ars, Leistungsschluessel } from '../domain.js';

export type MessageStatus =
  | 'received' // durably accepted, waiting for a worker
  | 'delivering' // claimed by a worker holding a lease
  | 'retrying' // a delivery failed, the next attempt is scheduled
  | 'delivered' // the receiver confirmed
  | 'dead'; // permanent failure, kept as a dead letter

export const FINAL_STATUSES: readonly MessageStatus[] = ['delivered', 'dead'];

export type Direction = 'outbound' | 'inbound';

export interface AttachmentRef {
  /** SHA-256 of the content, hex; also the content-addressed file name. */
  readonly sha256: string;
  readonly size: number;
  readonly filename: string;
  readonly mediaType: string;
  /** Free text from the portal, e.g. `Nachweis Wohnsitz`. */
  readonly purpose?: string | undefined;
}

export interface NewMessage {
  readonly id: string;
  readonly deliveryId: string;
  readonly direction: Direction;
  readonly tenantId: string;
  readonly ars: Ars;
  readonly service: Leistungsschluessel;
  readonly reference: string | undefined;
  readonly clientId: string;
  readonly routeId: string;
  /** Adapter instance the message is delivered to, fixed at intake so a route change does not move messages in flight. */
  readonly target: string;
  /** The canonical JSON text of the application as received. */
  readonly payload: string;
  readonly attachments: readonly AttachmentRef[];
  /** When an Idempotency-Key was sent: the key and the hash of the request it came with. */
  readonly idempotency: { readonly key: string; readonly requestHash: string } | undefined;
  readonly receivedAt: number;
  /**
   * Stores the message already claimed by this lease owner (status `delivering`, first attempt,
   * history `received` then `claimed`), as if `claimDue` had taken it at `receivedAt`: a worker
   * with a free slot takes over what it just accepted without reading it back. Ignored when the
   * call answers `existing` or `conflict`.
   */
  readonly claim?: { readonly owner: string; readonly leaseExpiresAt: number };
}

export interface MessageRecord {
  readonly id: string;
  readonly deliveryId: string;
  readonly direction: Direction;
  readonly tenantId: string;
  readonly ars: Ars;
  readonly service: Leistungsschluessel;
  readonly reference: string | undefined;
  readonly clientId: string;
  readonly routeId: string;
  /** Adapter instance the message is delivered to, fixed at intake. */
  readonly target: string;
  readonly status: MessageStatus;
  readonly payload: string;
  readonly attachments: readonly AttachmentRef[];
  readonly attempts: number;
  readonly runAt: number;
  readonly leaseOwner: string | undefined;
  readonly leaseExpiresAt: number | undefined;
  readonly remoteReference: string | undefined;
  /** The latest status the receiver reported after delivery (e.g. `forwarded`, `accepted`, `PROCESSING`). */
  readonly remoteStatus: string | undefined;
  readonly lastError: ErrorInfo | undefined;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  readonly details?: unknown;
}

export interface HistoryEvent {
  readonly seq: number;
  readonly at: number;
  readonly status: MessageStatus;
  /** Short machine-readable name: `received`, `claimed`, `attempt-failed`, `delivered`, `replayed` … */
  readonly event: string;
  readonly detail: Readonly<Record<string, unknown>> | undefined;
}

export interface AttemptRecord {
  readonly n: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly target: string;
  readonly outcome: 'delivered' | 'retry' | 'failed';
  readonly error: ErrorInfo | undefined;
  readonly remoteReference: string | undefined;
}

export type AcceptResult =
  | { readonly kind: 'created'; readonly message: MessageRecord }
  | { readonly kind: 'existing'; readonly message: MessageRecord }
  | { readonly kind: 'conflict'; readonly messageId: string };

/** What a worker reports after one delivery attempt of a claimed message. */
export type Outcome =
  | {
      readonly kind: 'delivered';
      readonly messageId: string;
      readonly leaseOwner: string;
      readonly attempt: AttemptTiming;
      readonly remoteReference: string | undefined;
      readonly detail?: Record<string, unknown>;
    }
  | {
      readonly kind: 'retry';
      readonly messageId: string;
      readonly leaseOwner: string;
      readonly attempt: AttemptTiming;
      readonly error: ErrorInfo;
      readonly runAt: number;
    }
  | {
      readonly kind: 'dead';
      readonly messageId: string;
      readonly leaseOwner: string;
      /** Undefined when the message died before any delivery attempt (e.g. mapping failed). */
      readonly attempt: AttemptTiming | undefined;
      readonly error: ErrorInfo;
    };

export interface AttemptTiming {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly target: string;
}

export interface MessageFilter {
  readonly tenantIds?: readonly string[];
  readonly service?: string;
  readonly status?: MessageStatus;
  readonly reference?: string;
  readonly since?: number;
  readonly until?: number;
  readonly limit: number;
  /** Opaque cursor from the previous page. */
  readonly cursor?: string;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly nextCursor: string | undefined;
}

export interface DeadLetter {
  readonly message: MessageRecord;
  readonly diedAt: number;
  readonly error: ErrorInfo;
}

export interface QueueStats {
  readonly byStatus: Readonly<Record<MessageStatus, number>>;
}

export interface Store {
  /** Creates or upgrades the schema; safe to call from several instances at once. */
  migrate(): Promise<void>;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;

  /**
   * Durably stores new messages in one commit. Per message with an idempotency key: the same
   * client + key + request hash returns the existing message; a different hash is a conflict.
   */
  accept(messages: readonly NewMessage[]): Promise<AcceptResult[]>;
  /** Looks up an idempotency key of a client without writing anything. */
  findByIdempotencyKey(
    clientId: string,
    key: string,
  ): Promise<{ messageId: string; requestHash: string } | undefined>;

  getMessage(id: string): Promise<MessageRecord | undefined>;
  history(id: string): Promise<HistoryEvent[]>;
  attempts(id: string): Promise<AttemptRecord[]>;
  listMessages(filter: MessageFilter): Promise<Page<MessageRecord>>;
  deadLetters(filter: MessageFilter): Promise<Page<DeadLetter>>;
  stats(): Promise<QueueStats>;

  /**
   * Claims up to `limit` messages that are due (`received`/`retrying` with runAt ≤ now, or
   * `delivering` whose lease expired) for `owner`, oldest first, with a lease until now + leaseMs.
   */
  claimDue(owner: string, limit: number, leaseMs: number, now: number): Promise<MessageRecord[]>;
  /**
   * Records outcomes in one commit. An outcome whose lease is no longer held by its owner is
   * ignored (another worker took the message over); the result says which were applied.
   */
  complete(outcomes: readonly Outcome[], now: number): Promise<boolean[]>;
  /**
   * Optional: `accept(messages)` and `complete(outcomes, now)` in one durable commit, with the
   * results each of them would have given. Offered by a store whose cost is per commit rather
   * than per row (SQLite writes every page a commit touched to the WAL and flushes it: a new
   * message and another's outcome touch mostly the same pages); the group-commit wrapper then
   * lets outcomes ride along with the next intake commit.
   */
  acceptAndComplete?(
    messages: readonly NewMessage[],
    outcomes: readonly Outcome[],
    now: number,
  ): Promise<{ readonly accepted: AcceptResult[]; readonly completed: boolean[] }>;
  /** Gives up leases held by `owner` (graceful shutdown): the messages become due at once. */
  releaseLeases(owner: string, now: number): Promise<number>;

  /**
   * Moves dead letters, and messages waiting for their next retry, back to `received`, due at
   * `now`, keeping their delivery id; their attempts count from 0 again. Purged dead letters and
   * messages in any other status are `notReplayable`.
   */
  replay(
    ids: readonly string[],
    now: number,
    by: string,
  ): Promise<{ replayed: string[]; notReplayable: string[] }>;

  /**
   * Records a status the receiver reported for a delivered message (history event `remote-status`).
   * Returns false when the message does not exist or is not delivered.
   */
  recordRemoteStatus(
    messageId: string,
    status: string,
    detail: Record<string, unknown> | undefined,
    now: number,
  ): Promise<boolean>;
  /** Delivered messages of one target whose remote status is not one of `finalStatuses`, oldest first. */
  awaitingRemoteStatus(
    target: string,
    finalStatuses: readonly string[],
    limit: number,
  ): Promise<MessageRecord[]>;

  /**
   * Scheduled jobs (semantics in `test/store/contract.ts`). Claims the occurrence `scheduledAt` of
   * `job` for `owner` with a lease until now + leaseMs. Exactly one caller gets an occurrence; a
   * run whose lease expired unfinished is taken over (it becomes `abandoned`, the new run names it
   * in `takeoverOf`). Claims of one job are serialised, so `running` lists exactly the other runs
   * of the job that held a live lease at this claim. Undefined when the occurrence is taken.
   */
  claimJobOccurrence(
    job: string,
    scheduledAt: number,
    owner: string,
    leaseMs: number,
    now: number,
    trigger?: JobTrigger,
  ): Promise<JobClaim | undefined>;
  /** Extends the lease of a running run; false when `owner` no longer holds it (taken over, finished). */
  heartbeatJobRun(runId: string, owner: string, leaseMs: number, now: number): Promise<boolean>;
  /** Records how a run ended; false (and nothing written) when `owner` no longer holds it. */
  finishJobRun(runId: string, owner: string, outcome: JobRunOutcome, now: number): Promise<boolean>;
  /** Runs of one job, newest occurrence first (then highest attempt first). */
  jobRuns(job: string, limit: number, cursor?: string): Promise<Page<JobRun>>;
  /** Runs of one job that are `running` (live or with an expired lease), oldest occurrence first. */
  runningJobRuns(job: string): Promise<JobRun[]>;
  /** The latest occurrence of `job` that was ever claimed (any trigger), for the missed-run policy. */
  lastJobOccurrence(job: string): Promise<number | undefined>;

  /**
   * Retention: replaces the payload of messages in a final state since before `filter.before`
   * (by `updatedAt`) with `PURGED_PAYLOAD`, drops their attachment references and adds the history
   * event `purged`; status, ids, history and attempts stay. Oldest first, at most `limit`.
   * Returns how many were purged and the attachment hashes no message references any more.
   */
  purgePayloads(filter: PurgeFilter, now: number): Promise<PurgeResult>;
  /**
   * Which of these attachment hashes (SHA-256) some message references now; one query however
   * many are asked (at most `MAX_ATTACHMENT_LOOKUP` at a time).
   */
  referencedAttachments(sha256s: readonly string[]): Promise<Set<string>>;
  /** Dead letters per route: how many are dead now and how many of those died at or after `since`. */
  deadLetterCounts(since: number): Promise<DeadLetterCount[]>;

  /**
   * Remembers `key` in `namespace` until `expiresAt`. Returns true the first time, false while a
   * live entry exists (assertion ids, callback nonces). Expired entries may be purged.
   */
  rememberOnce(namespace: string, key: string, expiresAt: number, now: number): Promise<boolean>;

  /**
   * Records a status the receiver reported together with the citizen status it maps to, in one
   * commit with the follow-up messages (notifications) of a citizen-status change. A report equal
   * to the latest one (same remote status, citizen status and text) adds no history event; its
   * follow-ups are accepted again, which the idempotency keys make harmless, so a notification
   * lost before its commit is made up by the next identical report.
   */
  recordStatus(
    report: StatusReport,
    followUps: (change: number) => readonly NewMessage[],
    now: number,
  ): Promise<StatusReportResult>;
  /** The latest citizen status of a message, if one was ever recorded. */
  citizenStatus(messageId: string): Promise<CitizenStatusRecord | undefined>;
  /** Messages by delivery id or by remote reference (optionally of one target), oldest first. */
  findMessages(lookup: MessageLookup, limit: number): Promise<MessageRecord[]>;
}

export interface StatusReport {
  readonly messageId: string;
  /** The receiver's own status, stored as the message's `remoteStatus`. */
  readonly remoteStatus: string;
  readonly detail: Readonly<Record<string, unknown>> | undefined;
  /** The citizen status and text it maps to; undefined leaves the citizen status as it is. */
  readonly citizen: { readonly status: string; readonly text: string } | undefined;
}

export type StatusReportResult =
  /**
   * A `remote-status` history event was written. `change` numbers the citizen-status changes of
   * the message from 1 when this report made one, and is undefined otherwise.
   */
  | { readonly kind: 'recorded'; readonly change: number | undefined; readonly followUpsCreated: number }
  /** Equal to the latest report: nothing new was written except missing follow-ups. */
  | { readonly kind: 'repeated'; readonly followUpsCreated: number }
  | { readonly kind: 'unknown' }
  /** The message exists but is not delivered (yet): a status cannot be about it. */
  | { readonly kind: 'not-delivered' };

export interface CitizenStatusRecord {
  readonly status: string;
  readonly text: string;
  /** How many citizen-status changes the message has had; the latest is this one. */
  readonly change: number;
  readonly at: number;
}

export type MessageLookup =
  | { readonly deliveryId: string; readonly target?: string }
  | { readonly remoteReference: string; readonly target?: string };

// --- scheduled jobs and retention ---

/** What made a run: its cron schedule, the missed-run policy after downtime, or an operator. */
export type JobTrigger = 'schedule' | 'missed' | 'manual';

export type JobRunStatus =
  | 'running' // claimed and holding a lease (also while queued behind an earlier run)
  | 'succeeded'
  | 'failed'
  | 'timed-out'
  | 'skipped' // recorded without running: overlap or missed-run policy
  | 'abandoned'; // its lease expired unfinished and another run took the occurrence over

export interface JobRun {
  readonly id: string;
  readonly job: string;
  /** The occurrence: the instant the schedule named (for manual runs, when it was asked for). */
  readonly scheduledAt: number;
  /** 1 for the first run of an occurrence, one more for each takeover. */
  readonly attempt: number;
  readonly trigger: JobTrigger;
  readonly owner: string;
  readonly status: JobRunStatus;
  readonly startedAt: number;
  /** While running: until when the owner holds it. */
  readonly leaseExpiresAt: number | undefined;
  readonly finishedAt: number | undefined;
  readonly itemsProcessed: number | undefined;
  /** Why it failed, timed out, was skipped or abandoned. */
  readonly error: ErrorInfo | undefined;
  /** The abandoned run this one took over. */
  readonly takeoverOf: string | undefined;
}

export interface JobClaim {
  readonly run: JobRun;
  /** Other runs of the job that held a live lease when this one was claimed, oldest first. */
  readonly running: readonly JobRun[];
}

export interface JobRunOutcome {
  readonly status: 'succeeded' | 'failed' | 'timed-out' | 'skipped';
  readonly itemsProcessed: number;
  readonly error?: ErrorInfo | undefined;
}

/**
 * The longest remote reference (in UTF-16 code units, as `string.length` counts) a store keeps
 * and finds again: at most 1,500 bytes in UTF-8, well inside what PostgreSQL indexes (2,704).
 * The pipeline records none for a delivery whose receiver answered a longer one.
 */
export const MAX_REMOTE_REFERENCE_LENGTH = 500;

/** The most hashes `Store.referencedAttachments` is asked about at once. */
export const MAX_ATTACHMENT_LOOKUP = 1000;

/** The payload a purged message keeps: valid JSON, recognisable, never an application. */
export const PURGED_PAYLOAD = '{"amtsbote":"purged"}';

export interface PurgeFilter {
  /** Messages in a final state whose last change (`updatedAt`) is before this instant. */
  readonly before: number;
  /** Only messages of these routes; all routes when absent. */
  readonly routeIds?: readonly string[] | undefined;
  readonly limit: number;
}

export interface PurgeResult {
  readonly purged: number;
  /** SHA-256 of attachment contents that no message references any more (files may be deleted). */
  readonly unreferencedAttachments: readonly string[];
}

export interface DeadLetterCount {
  readonly routeId: string;
  readonly dead: number;
  readonly deadSince: number;
}
