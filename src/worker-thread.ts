/**
 * What the gateway's worker threads (mapping, SQLite) share: starting a worker on a module beside
 * the caller, from `dist/` or from source under tsx, and errors taken apart for the trip between
 * threads and rebuilt on the other side.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AmtError, ERROR_CATALOG, isAmtError, type ErrorCode, type Problem } from './errors.js';

/**
 * Starts a worker on `<name>.js` beside `caller` (`dist/`), or — run from source under tsx — on
 * `<name>.ts`. tsx's `--import` registers its hooks in worker threads only on some Node versions
 * (not on 20), so the worker gets the parent's flags without tsx and registers tsx itself, once,
 * on every version.
 */
export function startModuleWorker(caller: string, name: string, workerData?: unknown): Worker {
  const here = new URL(caller);
  const options = workerData === undefined ? {} : { workerData };
  if (path.extname(here.pathname) !== '.ts') return new Worker(new URL(`./${name}.js`, here), options);
  const entry = new URL(`./${name}.ts`, here).href;
  const starter = new URL('./tsx-worker.mjs', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(starter)}).then((m) => m.start(${JSON.stringify(entry)}));`;
  try {
    return new Worker(bootstrap, { ...options, eval: true, execArgv: withoutTsx(process.execArgv) });
  } catch (err) {
    // Process-wide flags (--trace-gc, --max-old-space-size, …) are refused for a worker.
    if ((err as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
    return new Worker(bootstrap, { ...options, eval: true, execArgv: [] });
  }
}

const PRELOAD_FLAG = /^(--import|--loader|--experimental-loader|--require|-r)$/;
const PRELOAD_ASSIGNMENT = /^(--import|--loader|--experimental-loader|--require)=/;

/** The Node flags without the ones that preload tsx (`--import tsx`, tsx CLI's `--require …/tsx/…`). */
function withoutTsx(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i += 1) {
    const flag = execArgv[i]!;
    if (PRELOAD_FLAG.test(flag) && /\btsx\b/.test(execArgv[i + 1] ?? '')) i += 1;
    else if (!(PRELOAD_ASSIGNMENT.test(flag) && /\btsx\b/.test(flag))) kept.push(flag);
  }
  return kept;
}

/** An error as it crosses the thread boundary. */
export type WireError =
  | {
      readonly kind: 'amt';
      readonly code: ErrorCode;
      readonly message: string;
      readonly problems: readonly Problem[];
      readonly details: unknown;
      readonly retryable: boolean;
      readonly retryAfterSeconds: number | undefined;
    }
  | { readonly kind: 'other'; readonly message: string; readonly code?: string };

/**
 * The error as it can cross to the other thread: `details` holding something that cannot be
 * cloned (a function, a socket …) is reduced to what JSON keeps, so that it does not take the
 * other answers of its batch down with it.
 */
export function toWireError(err: unknown): WireError {
  if (isAmtError(err)) {
    const error: WireError = {
      kind: 'amt',
      code: err.code,
      message: err.message,
      problems: err.problems.map((p) => ({ path: p.path, message: p.message })),
      details: err.details,
      retryable: err.retryable,
      retryAfterSeconds: err.retryAfterSeconds,
    };
    try {
      structuredClone(error.details);
      return error;
    } catch {
      return { ...error, details: jsonCopy(error.details) };
    }
  }
  const code = (err as { code?: unknown } | null)?.code;
  return {
    kind: 'other',
    message: err instanceof Error ? err.message : String(err),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

/** Rebuilds an AmtError with everything the pipeline and the message history read from it. */
export function fromWireError(error: WireError): Error {
  if (error.kind === 'amt' && Object.hasOwn(ERROR_CATALOG, error.code)) {
    return new AmtError(error.code, error.message, {
      problems: error.problems,
      details: error.details,
      retryable: error.retryable,
      ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
    });
  }
  const rebuilt = new Error(error.message);
  if (error.kind === 'other' && error.code !== undefined) Object.assign(rebuilt, { code: error.code });
  return rebuilt;
}

function jsonCopy(value: unknown): unknown {
  try {
    return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
  } catch {
    return undefined;
  }
}
