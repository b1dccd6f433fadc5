/**
 * The SQLite store's busy writes on a thread of their own. better-sqlite3 is synchronous: every
 * statement runs on the calling thread, and on the gateway's main thread the intake commits,
 * claims and outcomes took a quarter of its time — time in which no request was read and no
 * delivery sent. Here they run on a store thread with its own connection to the same database
 * file; everything else (reads, admin, jobs, status reports) stays on the caller's connection.
 * WAL lets both connections read while one writes, and writes take turns on SQLite's write lock
 * (BEGIN IMMEDIATE with a busy timeout), as they do with several processes on one file.
 *
 * Only plain data crosses: a message accepted as new is not sent back (the caller has it), so
 * its payload is copied once, on the way in. The worker is referenced only while calls are
 * pending (a CLI process ends when its work is done), and a worker that died is started again
 * on the next call; the calls it held fail with AMT_STORE_UNAVAILABLE and are retried by their
 * callers like any store failure.
 */
import type { Worker } from 'node:worker_threads';
import { AmtError } from '../errors.js';
import { fromWireError, startModuleWorker, type WireError } from '../worker-thread.js';
import { newMessageRecord } from './records.js';
import type { AcceptResult, MessageRecord, NewMessage, Outcome } from './types.js';

/** What the store thread does; the arguments and results of the `Store` methods of the same name. */
export interface StoreThreadCalls {
  ping: { args: []; result: void };
  accept: { args: [readonly NewMessage[]]; result: ThreadAcceptResult[] };
  claimDue: { args: [string, number, number, number]; result: MessageRecord[] };
  complete: { args: [readonly Outcome[], number]; result: boolean[] };
  acceptAndComplete: {
    args: [readonly NewMessage[], readonly Outcome[], number];
    result: { accepted: ThreadAcceptResult[]; completed: boolean[] };
  };
  releaseLeases: { args: [string, number]; result: number };
  close: { args: []; result: void };
}

export type StoreThreadMethod = keyof StoreThreadCalls;

/** An accept result without the new message (the caller built it). */
export type ThreadAcceptResult = Exclude<AcceptResult, { kind: 'created' }> | { readonly kind: 'created' };

export interface StoreThreadRequest {
  readonly id: number;
  readonly method: StoreThreadMethod;
  readonly args: readonly unknown[];
}

export type StoreThreadReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: WireError };

export interface StoreThreadData {
  readonly file: string;
  readonly busyTimeoutMs: number | undefined;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** The thread's accept results with the new messages put back in (built from what was sent). */
function withNewMessages(
  messages: readonly NewMessage[],
  results: readonly ThreadAcceptResult[],
): AcceptResult[] {
  return results.map((r, i) =>
    r.kind === 'created' ? { kind: 'created', message: newMessageRecord(messages[i]!) } : r,
  );
}

export class StoreThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  constructor(private readonly data: StoreThreadData) {}

  async ping(): Promise<void> {
    await this.call('ping', []);
  }

  async accept(messages: readonly NewMessage[]): Promise<AcceptResult[]> {
    return withNewMessages(messages, await this.call('accept', [messages]));
  }

  async acceptAndComplete(
    messages: readonly NewMessage[],
    outcomes: readonly Outcome[],
    now: number,
  ): Promise<{ accepted: AcceptResult[]; completed: boolean[] }> {
    const { accepted, completed } = await this.call('acceptAndComplete', [messages, outcomes, now]);
    return { accepted: withNewMessages(messages, accepted), completed };
  }

  claimDue(owner: string, limit: number, leaseMs: number, now: number): Promise<MessageRecord[]> {
    return this.call('claimDue', [owner, limit, leaseMs, now]);
  }

  complete(outcomes: readonly Outcome[], now: number): Promise<boolean[]> {
    return this.call('complete', [outcomes, now]);
  }

  releaseLeases(owner: string, now: number): Promise<number> {
    return this.call('releaseLeases', [owner, now]);
  }

  /** Closes the thread's connection (after its pending WAL flushes) and ends the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    const worker = this.worker;
    try {
      if (worker) await this.call('close', []);
    } finally {
      this.closed = true;
      await worker?.terminate();
    }
  }

  /** The running worker, so a test can stop it mid-task. */
  workerForTest(): Worker | undefined {
    return this.worker;
  }

  private call<M extends StoreThreadMethod>(
    method: M,
    args: StoreThreadCalls[M]['args'],
  ): Promise<StoreThreadCalls[M]['result']> {
    if (this.closed) return Promise.reject(new AmtError('AMT_STORE_UNAVAILABLE', 'SQLite store: closed'));
    const worker = (this.worker ??= this.start());
    const id = this.nextId++;
    if (this.pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ id, method, args } satisfies StoreThreadRequest);
    });
  }

  private start(): Worker {
    const worker = startModuleWorker(import.meta.url, 'sqlite-thread-worker', this.data);
    worker.unref();
    worker.on('message', (reply: StoreThreadReply) => {
      const task = this.pending.get(reply.id);
      if (!task) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) task.resolve(reply.value);
      else task.reject(fromWireError(reply.error));
    });
    const gone = (cause: unknown): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const tasks = [...this.pending.values()];
      this.pending.clear();
      for (const task of tasks)
        task.reject(
          new AmtError('AMT_STORE_UNAVAILABLE', 'SQLite store: the store thread stopped', { cause }),
        );
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`store thread exited with code ${code}`)));
    return worker;
  }
}
