import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { WalSync } from '../../src/store/wal-sync.js';

describe('WalSync', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-walsync-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('flushes the real file through a descriptor of its own, one flush for the calls of one turn', async () => {
    const wal = path.join(dir, 'amtsbote.db-wal');
    fs.writeFileSync(wal, 'frames');
    let opened = 0;
    let flushed = 0;
    const sync = new WalSync(wal, {
      open: async (file) => {
        opened += 1;
        const handle = await fs.promises.open(file, 'r');
        return {
          datasync: async () => {
            flushed += 1;
            await handle.datasync();
          },
          close: () => handle.close(),
        };
      },
    });
    await Promise.all([sync.sync(), sync.sync(), sync.sync()]);
    await sync.sync();
    expect([opened, flushed]).to.deep.equal([1, 2]);
    await sync.close();
  });

  it('has nothing to flush while there is no WAL file, and flushes once there is one', async () => {
    const wal = path.join(dir, 'amtsbote.db-wal');
    let flushed = 0;
    const sync = new WalSync(wal, {
      open: async (file) => {
        const handle = await fs.promises.open(file, 'r'); // ENOENT while there is no file
        return { datasync: async () => void (flushed += 1), close: () => handle.close() };
      },
    });
    await sync.sync();
    expect(flushed).to.equal(0);
    fs.writeFileSync(wal, 'frames');
    await sync.sync();
    expect(flushed).to.equal(1);
    await sync.close();
  });

  it('passes on any other failure to open the WAL', async () => {
    const sync = new WalSync(dir, {
      open: async () => {
        throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      },
    });
    const error = await sync.sync().then(
      () => undefined,
      (e: unknown) => e as NodeJS.ErrnoException,
    );
    expect(error?.code).to.equal('EACCES');
    await sync.close();
  });

  describe('blocking (the store thread)', () => {
    /** A WalSync whose blocking flushes are counted; `failNext` makes the next flush fail. */
    function counted(wal: string): {
      sync: WalSync;
      counts: { opened: number; flushed: number; closed: number };
      failNext(): void;
    } {
      const counts = { opened: 0, flushed: 0, closed: 0 };
      let fail = false;
      const sync = new WalSync(wal, {
        blocking: true,
        // The asynchronous path must not be taken at all.
        open: () => Promise.reject(new Error('the thread pool was asked to flush')),
        openBlocking: (file) => {
          const fd = fs.openSync(file, 'r'); // ENOENT while there is no file
          counts.opened += 1;
          return {
            datasync: () => {
              if (fail) {
                fail = false;
                throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
              }
              fs.fdatasyncSync(fd);
              counts.flushed += 1;
            },
            close: () => {
              counts.closed += 1;
              fs.closeSync(fd);
            },
          };
        },
      });
      return { sync, counts, failNext: () => (fail = true) };
    }

    it('flushes the real file before sync() returns, once per call', async () => {
      const wal = path.join(dir, 'amtsbote.db-wal');
      fs.writeFileSync(wal, 'frames');
      const { sync, counts } = counted(wal);
      const first = sync.sync();
      expect(counts.flushed, 'flushed on the calling thread, before the promise').to.equal(1);
      await first;
      await Promise.all([sync.sync(), sync.sync()]);
      expect([counts.opened, counts.flushed]).to.deep.equal([1, 3]);
      await sync.close();
      expect(counts.closed).to.equal(1);
    });

    it('has nothing to flush while there is no WAL file, and flushes once there is one', async () => {
      const wal = path.join(dir, 'amtsbote.db-wal');
      const { sync, counts } = counted(wal);
      await sync.sync();
      expect(counts.flushed).to.equal(0);
      fs.writeFileSync(wal, 'frames');
      await sync.sync();
      expect(counts.flushed).to.equal(1);
      await sync.close();
    });

    it('rejects when a flush fails, and opens the file afresh for the next', async () => {
      const wal = path.join(dir, 'amtsbote.db-wal');
      fs.writeFileSync(wal, 'frames');
      const { sync, counts, failNext } = counted(wal);
      failNext();
      const error = await sync.sync().then(
        () => undefined,
        (e: unknown) => e as NodeJS.ErrnoException,
      );
      expect(error?.code).to.equal('EIO');
      expect(counts.closed).to.equal(1);
      await sync.sync();
      expect([counts.opened, counts.flushed]).to.deep.equal([2, 1]);
      await sync.close();
    });
  });
});
