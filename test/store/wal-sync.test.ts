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
});
