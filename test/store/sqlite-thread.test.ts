/**
 * The SQLite store thread on its own: what a caller sees when the thread dies, and that an
 * open thread does not keep a process alive. Its behaviour as a store is the contract suite's
 * ("SQLite with group commit and a store thread" in sqlite.test.ts).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { isAmtError } from '../../src/errors.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { StoreThread } from '../../src/store/sqlite-thread.js';
import type { NewMessage } from '../../src/store/types.js';

const T0 = 1_750_000_000_000;
let n = 0;

function message(): NewMessage {
  n += 1;
  const id = `t${String(n).padStart(8, '0')}`;
  return {
    id,
    deliveryId: `d-${id}`,
    direction: 'outbound',
    tenantId: 'muenster',
    ars: '055150000000',
    service: '99123456789012',
    reference: undefined,
    clientId: 'portal',
    routeId: 'route',
    target: 'fachverfahren',
    payload: JSON.stringify({ applicant: { familyName: 'Müller' }, n }),
    attachments: [],
    idempotency: undefined,
    receivedAt: T0,
  };
}

describe('SQLite store thread', () => {
  let dir: string;
  let file: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-thread-'));
    file = path.join(dir, 'amtsbote.db');
    const store = SqliteStore.open(file);
    await store.migrate();
    await store.close();
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes through its own connection what the caller’s connection then reads', async () => {
    const store = SqliteStore.open(file, { writerThread: true });
    try {
      const m = message();
      const [result] = await store.accept([m]);
      expect(result?.kind).to.equal('created');
      expect((await store.getMessage(m.id))?.payload).to.equal(m.payload);
      const [claimed] = await store.claimDue('w1', 10, 1000, T0);
      expect(claimed?.id).to.equal(m.id);
    } finally {
      await store.close();
    }
  });

  it('fails the calls of a thread that died with AMT_STORE_UNAVAILABLE, and starts a new one for the next', async () => {
    const thread = new StoreThread({ file, busyTimeoutMs: undefined });
    try {
      await thread.ping();
      const worker = thread.workerForTest()!;
      const pending = thread.accept([message()]);
      await worker.terminate();
      const err = await pending.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isAmtError(err) && err.code).to.equal('AMT_STORE_UNAVAILABLE');
      const m = message();
      const [result] = await thread.accept([m]);
      expect(result?.kind).to.equal('created');
      expect(thread.workerForTest()).to.not.equal(worker);
    } finally {
      await thread.close();
    }
  });

  it('keeps no process alive once its calls are answered', async () => {
    const here = fileURLToPath(new URL('../../src/store/sqlite.ts', import.meta.url));
    const code = `
      const { SqliteStore } = await import(${JSON.stringify(here)});
      const store = SqliteStore.open(${JSON.stringify(file)}, { writerThread: true });
      await store.ping();
      console.log('answered');`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', code],
      { timeout: 15_000 },
    );
    expect(stdout.trim()).to.equal('answered');
  });

  it('is closed for good: later calls fail, a second close is harmless', async () => {
    const thread = new StoreThread({ file, busyTimeoutMs: undefined });
    await thread.ping();
    await thread.close();
    await thread.close();
    const err = await thread.ping().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAmtError(err) && err.code).to.equal('AMT_STORE_UNAVAILABLE');
  });
});
