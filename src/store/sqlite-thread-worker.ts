/**
 * The store thread (started by `StoreThread`): its own connection to the database file, serving
 * the busy writes one request at a time, in the order they were sent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toWireError } from '../worker-thread.js';
import { SqliteStore } from './sqlite.js';
import type {
  StoreThreadData,
  StoreThreadReply,
  StoreThreadRequest,
  ThreadAcceptResult,
} from './sqlite-thread.js';
import type { AcceptResult, NewMessage, Outcome } from './types.js';

const port = parentPort;
if (port === null)
  throw new Error('src/store/sqlite-thread-worker is a worker thread entry; see StoreThread');

const data = workerData as StoreThreadData;
let store: SqliteStore | undefined;

function open(): SqliteStore {
  // This thread only commits: it may wait for its WAL flushes itself (see WalSync).
  store ??= SqliteStore.open(data.file, {
    walSync: { blocking: true },
    ...(data.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: data.busyTimeoutMs }),
  });
  return store;
}

/** A new message is not sent back: the caller has it (see StoreThread). */
function withoutNewMessages(results: readonly AcceptResult[]): ThreadAcceptResult[] {
  return results.map((r): ThreadAcceptResult => (r.kind === 'created' ? { kind: 'created' } : r));
}

async function run(request: StoreThreadRequest): Promise<unknown> {
  const a = request.args;
  switch (request.method) {
    case 'ping':
      return open().ping();
    case 'accept':
      return withoutNewMessages(await open().accept(a[0] as NewMessage[]));
    case 'acceptAndComplete': {
      const { accepted, completed } = await open().acceptAndComplete(
        a[0] as NewMessage[],
        a[1] as Outcome[],
        a[2] as number,
      );
      return { accepted: withoutNewMessages(accepted), completed };
    }
    case 'claimDue':
      return open().claimDue(a[0] as string, a[1] as number, a[2] as number, a[3] as number);
    case 'complete':
      return open().complete(a[0] as Outcome[], a[1] as number);
    case 'releaseLeases':
      return open().releaseLeases(a[0] as string, a[1] as number);
    case 'close':
      await store?.close();
      store = undefined;
      return undefined;
  }
}

port.on('message', (request: StoreThreadRequest) => {
  run(request).then(
    (value) => port.postMessage({ id: request.id, ok: true, value } satisfies StoreThreadReply),
    (err: unknown) =>
      port.postMessage({ id: request.id, ok: false, error: toWireError(err) } satisfies StoreThreadReply),
  );
});
