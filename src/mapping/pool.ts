/**
 * Mapping on worker threads. Mapping, XML writing and XSD validation are CPU work; run inline
 * they take the one thread that also serves intake, store commits and deliveries. The pool
 * keeps compiling on the main thread (compile errors surface where they did, and the step's
 * source format is known at once) and runs each mapping on the least busy worker, which
 * compiles the same file for itself.
 */
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { AmtError } from '../errors.js';
import type {
  JsonTextMappingInput,
  MappedBody,
  MappingInput,
  MappingStep,
} from '../pipeline/mapping-step.js';
import { loadMapping, loadMappingStep } from './index.js';
import type { CompiledMapping } from './run.js';
import { fromWireError, startModuleWorker, type WireError } from '../worker-thread.js';

export interface MappingPoolOptions {
  /** Worker threads; 0 maps inline on the calling thread. */
  readonly threads: number;
}

export interface MappingPool {
  /** As `loadMappingStep` from `./index.js`; the returned step maps on a worker thread. */
  loadMappingStep(file: string): Promise<MappingStep>;
  /**
   * Starts every worker and has each compile these mapping files and their schemas now, so that
   * the first applications after a start do not wait for it. A file that fails to compile does
   * not fail the warm-up: it is reported, with the error its messages will fail with.
   */
  warmUp(files: readonly string[]): Promise<WarmUpFailure[]>;
  /** Terminates the workers; mappings still pending and later calls fail. Safe to call twice. */
  close(): Promise<void>;
  /** The running workers, so a test can stop one mid-task. */
  workersForTest(): readonly Worker[];
}

/** A mapping file that did not compile at warm-up (its absolute path), and why. */
export interface WarmUpFailure {
  readonly file: string;
  readonly error: Error;
}

/** Each file once, as an absolute path (the key the compiled mappings are kept under). */
function uniqueAbsolute(files: readonly string[]): string[] {
  return [...new Set(files.map((file) => path.resolve(file)))];
}

/** The first failure per file, in the order of the files. */
function failuresOf(
  files: readonly string[],
  results: readonly PromiseSettledResult<unknown>[][],
): WarmUpFailure[] {
  return files.flatMap((file, i) => {
    for (const result of results.map((perFile) => perFile[i]!)) {
      if (result.status === 'rejected') {
        const error = result.reason instanceof Error ? result.reason : new Error(String(result.reason));
        return [{ file, error }];
      }
    }
    return [];
  });
}

/**
 * Main thread → worker, in batches: an idle worker gets a mapping at once, a busy one gets the
 * mappings asked for during one turn of the event loop in one message; the worker maps them one
 * after another and answers as `ReplyGatherer` (reply-gathering.ts) says: quick answers
 * together, for at most 2 ms, the others at once.
 * A message costs a wake-up of the other thread and an event dispatch on each side (together
 * about as much as a fifth of a mapping); under load one of them serves many mappings.
 */
export interface MappingRequest {
  readonly id: number;
  readonly file: string;
  /** Absent: only compile the file (warm-up); the answer then has empty content. */
  readonly input?: MappingInput | JsonTextMappingInput;
}

/** Worker → main thread (in batches, see MappingRequest); a Buffer arrives as a Uint8Array (transferred). */
export type MappingReply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly contentType: string;
      readonly content: string | Uint8Array;
    }
  | { readonly id: number; readonly ok: false; readonly error: WireError };

interface Task {
  resolve(body: MappedBody): void;
  reject(err: Error): void;
}

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, Task>;
  /** Requests of this turn, posted together after it. */
  outbox: MappingRequest[];
  gone: boolean;
}

const inlinePool: MappingPool = {
  loadMappingStep,
  async warmUp(files) {
    const absolute = uniqueAbsolute(files);
    return failuresOf(absolute, [await Promise.allSettled(absolute.map((file) => loadMappingStep(file)))]);
  },
  close: () => Promise.resolve(),
  workersForTest: () => [],
};

export function createMappingPool(options: MappingPoolOptions): MappingPool {
  const { threads } = options;
  if (!Number.isInteger(threads) || threads < 0) {
    throw new RangeError(`mapping threads must be a whole number ≥ 0, got ${threads}`);
  }
  if (threads === 0) return inlinePool;

  const slots: Slot[] = [];
  const steps = new WeakMap<CompiledMapping, MappingStep>();
  let nextId = 0;
  let closing: Promise<void> | undefined;

  const closed = (): AmtError => new AmtError('AMT_SHUTTING_DOWN', 'the mapping worker pool is closed');

  /** Fails what the worker still had and forgets it; the next mapping starts a replacement. */
  const retire = (slot: Slot, reason: Error): void => {
    if (slot.gone) return;
    slot.gone = true;
    const index = slots.indexOf(slot);
    if (index >= 0) slots.splice(index, 1);
    for (const task of slot.pending.values()) task.reject(reason);
    slot.pending.clear();
  };

  const spawn = (): Slot => {
    const worker = startModuleWorker(import.meta.url, 'worker');
    // An idle worker does not keep the process alive; it is referenced while it has work.
    worker.unref();
    const slot: Slot = { worker, pending: new Map(), outbox: [], gone: false };
    worker.on('message', (replies: readonly MappingReply[]) => {
      for (const reply of replies) settle(slot, reply);
    });
    worker.on('error', (err: Error) => {
      retire(slot, new Error(`a mapping worker failed (${err.message}); the mapping will be retried`));
    });
    worker.on('messageerror', () => {
      retire(slot, new Error('a mapping worker sent an unreadable answer; the mapping will be retried'));
      void worker.terminate();
    });
    worker.on('exit', (code: number) => {
      retire(slot, new Error(`a mapping worker stopped (exit code ${code}); the mapping will be retried`));
    });
    slots.push(slot);
    return slot;
  };

  const settle = (slot: Slot, reply: MappingReply): void => {
    const task = slot.pending.get(reply.id);
    if (task === undefined) return;
    slot.pending.delete(reply.id);
    if (slot.pending.size === 0) slot.worker.unref();
    if (reply.ok) {
      const { contentType, content } = reply;
      task.resolve({
        contentType,
        content:
          typeof content === 'string'
            ? content
            : Buffer.from(content.buffer, content.byteOffset, content.byteLength),
      });
    } else {
      task.reject(fromWireError(reply.error));
    }
  };

  /** Starts workers up to `threads`; a worker that died is replaced here. */
  const fill = (): void => {
    while (slots.length < threads) spawn();
  };

  /** Workers are started on demand (see `fill`). */
  const leastBusy = (): Slot => {
    fill();
    let best = slots[0]!;
    for (const slot of slots) if (slot.pending.size < best.pending.size) best = slot;
    return best;
  };

  const run = (
    file: string,
    input: MappingInput | JsonTextMappingInput | undefined,
    on?: Slot,
  ): Promise<MappedBody> => {
    if (closing !== undefined) return Promise.reject(closed());
    const slot = on ?? leastBusy();
    const id = nextId++;
    return new Promise<MappedBody>((resolve, reject) => {
      const idle = slot.pending.size === 0;
      if (idle) slot.worker.ref();
      slot.pending.set(id, { resolve, reject });
      slot.outbox.push({ id, file, input });
      // An idle worker starts at once; what is asked of a busy one waits for the end of the turn.
      if (idle) post(slot);
      else if (slot.outbox.length === 1) setImmediate(() => post(slot));
    });
  };

  /** Posts the requests queued for a worker; one that cannot be cloned fails alone. */
  const post = (slot: Slot): void => {
    const batch = slot.outbox;
    slot.outbox = [];
    if (slot.gone) return; // retire() has failed their tasks already
    try {
      slot.worker.postMessage(batch);
    } catch {
      for (const request of batch) {
        try {
          slot.worker.postMessage([request]);
        } catch (err) {
          const task = slot.pending.get(request.id);
          slot.pending.delete(request.id);
          if (slot.pending.size === 0) slot.worker.unref();
          task?.reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
    }
  };

  const loadStep = async (file: string): Promise<MappingStep> => {
    if (closing !== undefined) throw closed();
    const absolute = path.resolve(file);
    // Compiled here as well: a broken file fails now, and the step declares its source format.
    // The schemas are compiled only where validation runs, in the workers.
    const mapping = await loadMapping(absolute, { schemas: false });
    let step = steps.get(mapping);
    if (step === undefined) {
      const source = mapping.definition.source.format;
      step = Object.assign((input: MappingInput) => run(absolute, input), {
        source,
        ...(source === 'json' ? { fromJsonText: (input: JsonTextMappingInput) => run(absolute, input) } : {}),
      });
      steps.set(mapping, step);
    }
    return step;
  };

  return {
    loadMappingStep: loadStep,
    async warmUp(files: readonly string[]): Promise<WarmUpFailure[]> {
      const absolute = uniqueAbsolute(files);
      if (absolute.length === 0 || closing !== undefined) return [];
      const onMain = await Promise.allSettled(absolute.map((file) => loadStep(file)));
      fill();
      const onWorkers = await Promise.all(
        [...slots].map((slot) => Promise.allSettled(absolute.map((file) => run(file, undefined, slot)))),
      );
      // Closed meanwhile: the failures say nothing about the files.
      return closing === undefined ? failuresOf(absolute, [onMain, ...onWorkers]) : [];
    },
    close(): Promise<void> {
      closing ??= Promise.all(
        [...slots].map((slot) => {
          retire(slot, closed());
          return slot.worker.terminate();
        }),
      ).then(() => undefined);
      return closing;
    },
    workersForTest: () => slots.map((slot) => slot.worker),
  };
}
