/**
 * A mapping worker thread (started by `createMappingPool`): runs the inline mapping step for
 * batches of `{file, input}` requests — compiled once per file, recompiled when the file changes,
 * exactly as on the main thread — and answers the mapped bodies or the errors, taken apart for
 * the trip back, in batches as well.
 */
import { parentPort } from 'node:worker_threads';
import type { MappedBody } from '../pipeline/mapping-step.js';
import { loadMappingStep } from './index.js';
import type { MappingReply, MappingRequest } from './pool.js';
import { ReplyGatherer } from './reply-gathering.js';
import { parseStoredPayload } from '../pipeline/stored-message.js';
import { toWireError } from '../worker-thread.js';

const port = parentPort;
if (port === null)
  throw new Error('src/mapping/worker is a worker thread entry; start it with createMappingPool');

/**
 * Requests are mapped one after another in the order they came. Started all at once, a batch's
 * mappings would each stop at their first `await` and resume in turn, so that every mapping of
 * the batch ran before the first answer was posted: the main thread then got the whole batch at
 * its end, its deliveries all at once, and the two threads took turns instead of working side
 * by side. One at a time, each answer leaves as its mapping ends (gathered as `ReplyGatherer` says).
 */
let queue: MappingRequest[] = [];
let draining = false;

port.on('message', (requests: readonly MappingRequest[]) => {
  queue.push(...requests);
  if (!draining) void drain();
});

/** A failure here (an answer that cannot be posted) ends the worker; the pool retries its mappings. */
async function drain(): Promise<void> {
  draining = true;
  while (queue.length > 0) {
    const batch = queue;
    queue = [];
    for (const request of batch) await handle(request);
  }
  draining = false;
}

/** Answers leave in messages as `ReplyGatherer` says: at once, or gathered for at most 2 ms. */
const replies = new ReplyGatherer<MappingReply>((batch, transfers) => port.postMessage(batch, transfers), 2);

async function handle({ id, file, input }: MappingRequest): Promise<void> {
  let body: MappedBody;
  try {
    const step = await loadMappingStep(file);
    if (input === undefined) body = { contentType: '', content: '' };
    else if ('applicationJson' in input) {
      const { applicationJson, ...rest } = input;
      body = await step({ ...rest, application: parseStoredPayload(applicationJson, input.message.id) });
    } else body = await step(input);
  } catch (err) {
    replies.add({ id, ok: false, error: toWireError(err) });
    return;
  }
  const { contentType, content } = body;
  if (typeof content === 'string') {
    replies.add({ id, ok: true, contentType, content });
    return;
  }
  // A Buffer cut from Node's shared pool must not be transferred (that would detach the pool): copy it.
  const owned =
    content.byteOffset === 0 &&
    content.byteLength === content.buffer.byteLength &&
    content.buffer instanceof ArrayBuffer
      ? content
      : new Uint8Array(content);
  replies.add({ id, ok: true, contentType, content: owned }, owned.buffer as ArrayBuffer);
}
