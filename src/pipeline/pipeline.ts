/**
 * The delivery pipeline: claim due messages with a lease, map, deliver through the target adapter,
 * record the outcome. A crashed worker's leases expire and other workers take the messages over;
 * the delivery id stays the same across attempts, so an idempotent receiver sees each message once.
 */
import { randomUUID } from 'node:crypto';
import type { AdapterInstance, Delivery, DeliveryResult } from '../adapter-contract.js';
import type { AttachmentStore } from '../attachments.js';
import type { GatewayConfig, RetryPolicy } from '../config/types.js';
import { AmtError, isAmtError, type ErrorCode } from '../errors.js';
import type { VerifiedIdentity } from '../identity/identity.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Router } from '../routing.js';
import {
  MAX_REMOTE_REFERENCE_LENGTH,
  type ErrorInfo,
  type MessageRecord,
  type NewMessage,
  type Outcome,
  type Store,
} from '../store/types.js';
import { backoffDelay } from './backoff.js';
import { applicationFor, passThrough, type MappedBody, type MappingStep } from './mapping-step.js';
import { isPlainApplication, readStoredMessage } from './stored-message.js';

export interface PipelineDeps {
  readonly config: GatewayConfig;
  readonly store: Store;
  readonly router: Router;
  readonly adapters: ReadonlyMap<string, AdapterInstance>;
  readonly attachments: AttachmentStore;
  readonly loadMapping: (file: string) => Promise<MappingStep>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Identifies this worker's leases; unique per process. */
  readonly owner?: string;
  readonly now?: () => number;
}

/** A delivery slot held for a message that is being accepted (see `Pipeline.reserve`). */
export interface SlotReservation {
  /** What the message is to be stored with: claimed by this pipeline. */
  readonly claim: NonNullable<NewMessage['claim']>;
  /** The message was stored with the claim: deliver it from here. */
  take(message: MessageRecord): void;
  /** The message was not stored with the claim (a duplicate, a conflict, a failure): free the slot. */
  release(): void;
}

export class Pipeline {
  readonly owner: string;
  private readonly deps: PipelineDeps;
  /**
   * How many slots must be free before a claim when some are busy: a quarter of them (at most a
   * batch). Under load a claim then takes several messages in one transaction instead of one
   * message per finished delivery.
   */
  private readonly refill: number;
  private readonly now: () => number;
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly controllers = new Set<AbortController>();
  private wakeUp: (() => void) | undefined;
  private wakeRequested = false;
  /** Slots held by `reserve` whose message is not yet stored. */
  private reserved = 0;
  private reservationsSettled: (() => void) | undefined;
  /**
   * The last claim found nothing more due, and nothing has been queued since: a new message may
   * take a free slot directly without overtaking one that waits.
   */
  private caughtUp = false;

  constructor(deps: PipelineDeps) {
    this.deps = deps;
    const { concurrency, batchSize } = deps.config.pipeline;
    this.refill = Math.max(1, Math.min(batchSize, Math.floor(concurrency / 4)));
    this.owner = deps.owner ?? `worker-${randomUUID()}`;
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Asks the loop to look for due work now (after an intake, a replay, a notification). */
  wake(): void {
    this.wakeRequested = true;
    this.caughtUp = false;
    this.wakeUp?.();
  }

  /**
   * Holds a free delivery slot for a message about to be accepted, so that it is stored already
   * claimed (`NewMessage.claim`) and delivered from memory: no claim transaction, no reading the
   * message back, no wait for the loop. Only while no other message waits, so that a new
   * application does not overtake a queued one (a retry that falls due meanwhile is found by
   * the next poll, within `pipeline.pollInterval`); undefined otherwise, and the message is
   * queued and claimed as usual. A crash after the commit loses nothing: the lease expires and
   * the message is reclaimed like any other.
   */
  reserve(): SlotReservation | undefined {
    const { concurrency, leaseMs } = this.deps.config.pipeline;
    if (!this.running || !this.caughtUp || this.inFlight.size + this.reserved >= concurrency)
      return undefined;
    this.reserved++;
    let settled = false;
    const settle = (): void => {
      if (settled) throw new Error('a slot reservation was settled twice');
      settled = true;
      this.reserved--;
      if (this.reserved === 0) this.reservationsSettled?.();
    };
    return {
      claim: { owner: this.owner, leaseExpiresAt: this.now() + leaseMs },
      take: (message) => {
        settle();
        this.track(this.process(message));
      },
      release: () => {
        settle();
        this.slotFreed();
      },
    };
  }

  /**
   * Stops claiming, waits up to the drain timeout for deliveries in flight, aborts the rest and
   * gives their leases back so another instance (or the next start) continues at once.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wakeUp?.();
    await this.loop;
    // A message accepted with a reservation is delivered like one the loop claimed.
    if (this.reserved > 0)
      await new Promise<void>((resolve) => {
        this.reservationsSettled = resolve;
      });
    const drained = await Promise.race([
      Promise.allSettled([...this.inFlight]).then(() => true),
      sleep(this.deps.config.pipeline.drainTimeoutMs).then(() => false),
    ]);
    if (!drained) {
      for (const controller of this.controllers) controller.abort(new AmtError('AMT_SHUTTING_DOWN'));
      await Promise.allSettled([...this.inFlight]);
    }
    await this.deps.store.releaseLeases(this.owner, this.now());
  }

  private async run(): Promise<void> {
    const { concurrency, batchSize, leaseMs, pollIntervalMs } = this.deps.config.pipeline;
    const { refill } = this;
    while (this.running) {
      const free = concurrency - this.inFlight.size - this.reserved;
      let claimed: MessageRecord[] = [];
      if (free >= refill) {
        this.wakeRequested = false;
        const limit = Math.min(batchSize, free);
        try {
          claimed = await this.deps.store.claimDue(this.owner, limit, leaseMs, this.now());
          // Nothing more was due, unless something was queued while the claim ran.
          this.caughtUp = claimed.length < limit && !this.wakeRequested;
        } catch (err) {
          this.caughtUp = false;
          this.deps.logger.error('claiming due messages failed', { error: err });
        }
        for (const message of claimed) this.track(this.process(message));
      }
      const full = concurrency - this.inFlight.size - this.reserved < refill;
      // When (nearly) every slot is busy a pending wake-up must wait for free slots: looping on
      // it without awaiting would starve the event loop the deliveries in flight need.
      if (full || (claimed.length === 0 && !this.wakeRequested)) {
        await this.idle(full ? undefined : pollIntervalMs);
      }
    }
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => {
      this.inFlight.delete(work);
      this.slotFreed();
    });
  }

  /** Wakes the loop waiting for free slots once enough are free for a claim. */
  private slotFreed(): void {
    if (this.deps.config.pipeline.concurrency - this.inFlight.size - this.reserved === this.refill)
      this.wakeUp?.();
  }

  /** Waits for a wake-up, enough finished deliveries (when full) or the poll interval. */
  private idle(timeoutMs: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      function done(): void {
        if (timer) clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
    });
  }

  private async process(message: MessageRecord): Promise<void> {
    const { metrics, logger } = this.deps;
    const startedAt = this.now();
    let outcome: Outcome;
    try {
      outcome = await this.attempt(message, startedAt);
    } catch (err) {
      // A bug in our own code must not lose the message: it is retried like a network failure.
      logger.error('unexpected error while processing a message', { messageId: message.id, error: err });
      outcome = this.failure(message, startedAt, toErrorInfo(err), true, undefined);
    }
    metrics.deliveriesTotal.inc({ adapter: message.target, outcome: outcome.kind });
    metrics.deliveryDuration.observe({ adapter: message.target }, (this.now() - startedAt) / 1000);
    if (outcome.kind === 'dead') metrics.deadLettersTotal.inc({ adapter: message.target });
    await this.record(message, outcome);
    const level = outcome.kind === 'delivered' ? 'debug' : outcome.kind === 'retry' ? 'warn' : 'error';
    logger.log(level, `message ${outcome.kind}`, {
      messageId: message.id,
      deliveryId: message.deliveryId,
      target: message.target,
      attempt: message.attempts,
      ...(outcome.kind === 'delivered'
        ? {}
        : { error: { code: outcome.error.code, message: outcome.error.message } }),
    });
  }

  /**
   * Records an outcome. A store that fails for a moment (a full disk, a database failover) is
   * asked again while this worker holds the lease and runs, so a delivery that was made is not
   * made again once the lease expires. Should it still fail, the lease expires and the message
   * is delivered again: at least once, never lost.
   */
  private async record(message: MessageRecord, outcome: Outcome): Promise<void> {
    const { logger } = this.deps;
    let delayMs = RECORD_RETRY_FIRST_MS;
    for (;;) {
      try {
        const [applied] = await this.deps.store.complete([outcome], this.now());
        if (!applied)
          logger.warn('outcome not recorded: lease lost to another worker', { messageId: message.id });
        return;
      } catch (err) {
        const leaseLeftMs = (message.leaseExpiresAt ?? 0) - this.now();
        if (!this.running || leaseLeftMs <= delayMs) {
          logger.error('recording an outcome failed', { messageId: message.id, error: err });
          return;
        }
        logger.warn('recording an outcome failed; trying again', {
          messageId: message.id,
          error: err,
          retryInMs: delayMs,
        });
        await sleep(delayMs);
        delayMs = Math.min(delayMs * 2, RECORD_RETRY_MAX_MS);
      }
    }
  }

  private async attempt(message: MessageRecord, startedAt: number): Promise<Outcome> {
    const route = this.deps.router.routeById(message.routeId);
    const adapter = this.deps.adapters.get(message.target);
    const tenant = this.deps.router.tenantById(message.tenantId);
    if (!route || !tenant) {
      return this.dead(message, undefined, {
        code: 'AMT_ROUTE_GONE',
        message: `route ${message.routeId} or tenant ${message.tenantId} is no longer configured`,
      });
    }
    if (!adapter?.deliver) {
      return this.dead(message, undefined, {
        code: 'AMT_ADAPTER_UNKNOWN',
        message: `adapter instance ${message.target} is not configured or cannot deliver`,
      });
    }

    let step: MappingStep;
    try {
      step = route.mapping ? await this.deps.loadMapping(route.mapping) : passThrough;
    } catch (err) {
      // The route's mapping file does not compile: the configuration is at fault, not the
      // message. It waits, retried by the policy, and goes out once the file is fixed (picked up
      // without a restart) instead of becoming a dead letter that needs a replay.
      const info = toErrorInfo(err, 'AMT_MAPPING_COMPILE_FAILED');
      return this.failure(message, startedAt, info, true, undefined);
    }
    let body: MappedBody;
    let identity: VerifiedIdentity | undefined;
    try {
      const context = {
        id: message.id,
        deliveryId: message.deliveryId,
        tenant: { id: tenant.id, name: tenant.name, ars: tenant.ars },
        service: message.service,
        reference: message.reference,
        receivedAt: message.createdAt,
      };
      if (step.fromJsonText && isPlainApplication(message)) {
        // Mapped on a worker thread: the stored text goes there and is parsed there.
        body = await step.fromJsonText({
          applicationJson: message.payload,
          message: context,
          attachments: message.attachments,
        });
      } else {
        const stored = readStoredMessage(message);
        identity = stored.identity;
        body = await step({
          application: applicationFor(step, stored, route.mapping ?? 'pass-through'),
          message: context,
          attachments: message.attachments,
        });
      }
    } catch (err) {
      // Mapping and validation errors are permanent: the raw payload is never passed on unmapped.
      // So is a message of the wrong kind for the mapping. What is not the message's fault — a
      // mapping worker that died, a pool closed by shutdown, a bug — is retried like a network
      // failure, so the message is not lost to a dead letter it did not earn.
      if (isAmtError(err) ? err.retryable : true) {
        const info = toErrorInfo(err);
        const retryAfter = isAmtError(err) ? err.retryAfterSeconds : undefined;
        return this.failure(message, startedAt, info, true, retryAfter);
      }
      return this.dead(message, undefined, toErrorInfo(err, 'AMT_MAPPING_FAILED'));
    }

    const delivery: Delivery = {
      messageId: message.id,
      deliveryId: message.deliveryId,
      tenant: { id: tenant.id, ars: message.ars, name: tenant.name },
      service: message.service,
      reference: message.reference,
      attempt: message.attempts,
      body,
      ...(identity ? { identity } : {}),
      attachments: message.attachments.map((ref) => ({
        ref,
        path: this.deps.attachments.pathOf(ref.sha256),
        open: () => this.deps.attachments.open(ref.sha256),
      })),
    };
    const controller = new AbortController();
    this.controllers.add(controller);
    const timer = setTimeout(
      () =>
        controller.abort(
          new AmtError(
            'AMT_DELIVERY_TIMEOUT',
            `no answer within ${this.deps.config.pipeline.deliveryTimeoutMs} ms`,
          ),
        ),
      this.deps.config.pipeline.deliveryTimeoutMs,
    );
    try {
      const result: DeliveryResult = await adapter.deliver(delivery, controller.signal);
      const { remoteReference, note } = keptReference(result.remoteReference);
      if (note) {
        this.deps.logger.warn('remote reference not recorded', {
          messageId: message.id,
          target: message.target,
          reason: note,
        });
      }
      const detail = { ...result.detail, ...(note ? { remoteReferenceNotRecorded: note } : {}) };
      return {
        kind: 'delivered',
        messageId: message.id,
        leaseOwner: this.owner,
        attempt: { startedAt, endedAt: this.now(), target: message.target },
        remoteReference,
        ...(Object.keys(detail).length > 0 ? { detail } : {}),
      };
    } catch (err) {
      const reason = controller.signal.aborted && !isAmtError(err) ? controller.signal.reason : err;
      const retryable = isAmtError(reason) ? reason.retryable : true;
      const retryAfter = isAmtError(reason) ? reason.retryAfterSeconds : undefined;
      return this.failure(
        message,
        startedAt,
        toErrorInfo(reason, 'AMT_DELIVERY_RETRYABLE'),
        retryable,
        retryAfter,
      );
    } finally {
      clearTimeout(timer);
      this.controllers.delete(controller);
    }
  }

  private failure(
    message: MessageRecord,
    startedAt: number,
    error: ErrorInfo,
    retryable: boolean,
    retryAfterSeconds: number | undefined,
  ): Outcome {
    const attempt = { startedAt, endedAt: this.now(), target: message.target };
    if (!retryable) return this.dead(message, attempt, error);
    const policy: RetryPolicy = this.deps.router.routeById(message.routeId)?.retry ?? this.deps.config.retry;
    if (message.attempts >= policy.maxAttempts) {
      return this.dead(message, attempt, {
        code: 'AMT_RETRIES_EXHAUSTED',
        message: `gave up after ${message.attempts} attempts; last error ${error.code}: ${error.message}`,
        details: { last: error },
      });
    }
    return {
      kind: 'retry',
      messageId: message.id,
      leaseOwner: this.owner,
      attempt,
      error,
      runAt: this.now() + backoffDelay(policy, message.attempts, retryAfterSeconds),
    };
  }

  private dead(message: MessageRecord, attempt: Outcome['attempt'], error: ErrorInfo): Outcome {
    return { kind: 'dead', messageId: message.id, leaseOwner: this.owner, attempt, error };
  }
}

function toErrorInfo(err: unknown, fallback: ErrorCode = 'AMT_INTERNAL'): ErrorInfo {
  if (isAmtError(err)) {
    const details = {
      ...(err.problems.length > 0 ? { problems: err.problems } : {}),
      ...(err.details !== undefined ? { peer: err.details } : {}),
    };
    return { code: err.code, message: err.message, ...(Object.keys(details).length > 0 ? { details } : {}) };
  }
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}

/** Waits between tries to record an outcome: doubling from the first, up to the most. */
const RECORD_RETRY_FIRST_MS = 250;
const RECORD_RETRY_MAX_MS = 5_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * The receiver's reference as it is recorded: one longer than a store keeps and finds again
 * (`MAX_REMOTE_REFERENCE_LENGTH`) is left out, and the delivery's detail says so — the delivery
 * itself succeeded and must not be tried again for it.
 */
function keptReference(reference: string | undefined): {
  remoteReference: string | undefined;
  note?: string;
} {
  if (reference === undefined || reference.length <= MAX_REMOTE_REFERENCE_LENGTH)
    return { remoteReference: reference };
  return {
    remoteReference: undefined,
    note: `the receiver's reference has ${reference.length} characters, more than ${MAX_REMOTE_REFERENCE_LENGTH}`,
  };
}
