/**
 * Helpers for bench/upload-memory.ts and bench/backlog.ts: resident memory of another process read
 * from /proc (Linux), sampled in a worker thread so that a busy event loop here does not stretch
 * the sampling interval, and a receiver that streams request bodies away instead of keeping them.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';

export const MiB = 1024 * 1024;

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]) * 1024;
}

/** Resident set size of `pid` in bytes. */
export function readRss(pid: number): number {
  return statusField(pid, 'VmRSS');
}

/** The kernel's resident high-water mark of `pid` in bytes (since start or the last `resetPeakRss`). */
export function readPeakRss(pid: number): number {
  return statusField(pid, 'VmHWM');
}

/**
 * Resets the kernel's high-water mark to the current RSS (`clear_refs` value 5, Linux ≥ 4.0), so a
 * later `readPeakRss` covers exactly what happened in between, samples or not. False where refused.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface RssSampler {
  /** Starts a new phase; samples from now on count towards it (phase 0 runs from the start). */
  phase(n: number): void;
  /** Stops sampling; the highest sample per phase (bytes, NaN for a phase without samples). */
  stop(): Promise<{ peaks: number[]; samples: number[] }>;
}

const MAX_PHASES = 8;

/**
 * Plain JavaScript for the worker (no TypeScript loader there). Control words: [0] stop flag,
 * [1] current phase. Per phase: highest RSS in kB and number of samples.
 */
const SAMPLER_SOURCE = `
const { readFileSync } = require('node:fs');
const { workerData } = require('node:worker_threads');
const control = new Int32Array(workerData.control);
const peaks = new Float64Array(workerData.peaks);
const counts = new Float64Array(workerData.counts);
const file = '/proc/' + workerData.pid + '/status';
while (Atomics.load(control, 0) === 0) {
  let text;
  try { text = readFileSync(file, 'utf8'); } catch { break; }
  const match = /^VmRSS:\\s+(\\d+) kB/m.exec(text);
  if (match) {
    const phase = Atomics.load(control, 1);
    const kb = Number(match[1]);
    if (kb > peaks[phase]) peaks[phase] = kb;
    counts[phase] += 1;
  }
  Atomics.wait(control, 0, 0, workerData.intervalMs);
}
`;

/** Reads VmRSS of `pid` every `intervalMs` in a worker thread until stopped. */
export function sampleRss(pid: number, intervalMs: number): RssSampler {
  const control = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const peaks = new SharedArrayBuffer(MAX_PHASES * Float64Array.BYTES_PER_ELEMENT);
  const counts = new SharedArrayBuffer(MAX_PHASES * Float64Array.BYTES_PER_ELEMENT);
  const worker = new Worker(SAMPLER_SOURCE, {
    eval: true,
    execArgv: [],
    workerData: { pid, intervalMs, control, peaks, counts },
  });
  const exited = new Promise<void>((resolve, reject) => {
    worker.once('exit', () => resolve());
    worker.once('error', reject);
  });
  const words = new Int32Array(control);
  return {
    phase(n) {
      if (n < 0 || n >= MAX_PHASES) throw new Error(`phase ${n} out of range`);
      Atomics.store(words, 1, n);
    },
    async stop() {
      Atomics.store(words, 0, 1);
      Atomics.notify(words, 0);
      await exited;
      const counted = [...new Float64Array(counts)];
      return {
        peaks: [...new Float64Array(peaks)].map((kb, i) => (counted[i]! > 0 ? kb * 1024 : NaN)),
        samples: counted,
      };
    },
  };
}

export interface CountingReceiver {
  readonly url: string;
  /** Delivery id (Idempotency-Key) → how many requests carried it. */
  readonly receiptsByDeliveryId: Map<string, number>;
  /** Requests whose body was read to the end and answered. */
  readonly completed: number;
  readonly bytes: number;
  /** performance.now() of the first and the latest completed request. */
  readonly firstAt: number | undefined;
  readonly lastAt: number | undefined;
  reset(): void;
  close(): Promise<void>;
}

/**
 * A receiver that answers 200 (with a Location, as the http adapter expects a reference) as soon
 * as a body has been read, keeping only its length: a 200 MB delivery costs it a socket buffer.
 */
export async function startCountingReceiver(): Promise<CountingReceiver> {
  const state = {
    completed: 0,
    bytes: 0,
    firstAt: undefined as number | undefined,
    lastAt: undefined as number | undefined,
  };
  const receiptsByDeliveryId = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const deliveryId = String(req.headers['idempotency-key'] ?? '');
    req.on('data', (chunk: Buffer) => (state.bytes += chunk.length));
    req.on('end', () => {
      receiptsByDeliveryId.set(deliveryId, (receiptsByDeliveryId.get(deliveryId) ?? 0) + 1);
      state.completed += 1;
      state.lastAt = performance.now();
      state.firstAt ??= state.lastAt;
      res.writeHead(200, { location: `/vorgaenge/${encodeURIComponent(deliveryId)}` });
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    receiptsByDeliveryId,
    get completed() {
      return state.completed;
    },
    get bytes() {
      return state.bytes;
    },
    get firstAt() {
      return state.firstAt;
    },
    get lastAt() {
      return state.lastAt;
    },
    reset() {
      receiptsByDeliveryId.clear();
      state.completed = 0;
      state.bytes = 0;
      state.firstAt = undefined;
      state.lastAt = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Replaces `from` by `to` in a generated config text, failing loudly when `from` is not there. */
export function replaceOnce(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the generated gateway config no longer contains ${from}`);
  return text.replace(from, to);
}

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';

/** Bytes as MB (2^20) with one decimal. */
export const mb = (bytes: number): string => fmt(bytes / MiB, 1);

/** CPU time of a process so far, in ms: its main thread and all its other threads (Linux /proc). */
export interface ThreadCpu {
  readonly mainMs: number;
  readonly othersMs: number;
}

/**
 * Reads utime + stime of every thread of `pid` from /proc (in USER_HZ ticks of 10 ms); undefined
 * where there is no /proc. Threads that ended in between are missing from a later reading.
 */
export function readThreadCpu(pid: number): ThreadCpu | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let mainMs = 0;
  let othersMs = 0;
  for (const task of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (Number(fields[11]) + Number(fields[12])) * 10;
    if (task === String(pid)) mainMs += ms;
    else othersMs += ms;
  }
  return { mainMs, othersMs };
}
