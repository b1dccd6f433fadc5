/**
 * A mapping worker thread (started by `createMappingPool`): runs the inline mapping step for
 * `{file, input}` requests — compiled once per file, recompiled when the file changes, exactly as
 * on the main thread — and answers the mapped body or the error, taken apart for the trip back.
 */
import { parentPort } from 'node:worker_threads';
import { isAmtError } from '../errors.js';
import type { MappedBody } from '../pipeline/mapping-step.js';
import { loadMappingStep } from './index.js';
import type { MappingReply, MappingRequest, WireError } from './pool.js';

const port = parentPort;
if (port === null)
  throw new Error('src/mapping/worker is a worker thread entry; start it with createMappingPool');

port.on('message', (request: MappingRequest) => {
  void handle(request);
});

async function handle({ id, file, input }: MappingRequest): Promise<void> {
  let body: MappedBody;
  try {
    const step = await loadMappingStep(file);
    body = await step(input);
  } catch (err) {
    answerError(id, err);
    return;
  }
  const { contentType, content } = body;
  if (typeof content === 'string') {
    port!.postMessage({ id, ok: true, contentType, content } satisfies MappingReply);
    return;
  }
  // A Buffer cut from Node's shared pool must not be transferred (that would detach the pool): copy it.
  const owned =
    content.byteOffset === 0 &&
    content.byteLength === content.buffer.byteLength &&
    content.buffer instanceof ArrayBuffer
      ? content
      : new Uint8Array(content);
  port!.postMessage({ id, ok: true, contentType, content: owned } satisfies MappingReply, [
    owned.buffer as ArrayBuffer,
  ]);
}

function answerError(id: number, err: unknown): void {
  const error = toWireError(err);
  try {
    port!.postMessage({ id, ok: false, error } satisfies MappingReply);
  } catch {
    // `details` held something that cannot be cloned (a function, a socket …): keep what JSON keeps.
    const plain = error.kind === 'amt' ? { ...error, details: jsonCopy(error.details) } : error;
    port!.postMessage({ id, ok: false, error: plain } satisfies MappingReply);
  }
}

function toWireError(err: unknown): WireError {
  if (isAmtError(err)) {
    return {
      kind: 'amt',
      code: err.code,
      message: err.message,
      problems: err.problems.map((p) => ({ path: p.path, message: p.message })),
      details: err.details,
      retryable: err.retryable,
      retryAfterSeconds: err.retryAfterSeconds,
    };
  }
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

function jsonCopy(value: unknown): unknown {
  try {
    return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
  } catch {
    return undefined;
  }
}
