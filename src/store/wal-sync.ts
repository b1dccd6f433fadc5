/**
 * Durable SQLite commits without blocking the event loop.
 *
 * With `synchronous=FULL`, SQLite fsyncs the WAL inside every COMMIT — on the JavaScript thread,
 * since better-sqlite3 is synchronous — and the whole gateway stands still for the length of a
 * disk flush. Instead the connection runs at `synchronous=NORMAL` (SQLite itself still syncs the
 * WAL before each checkpoint, the database file after it, and the WAL header when the WAL is
 * reused), and every commit that must survive a power failure is followed by an fdatasync of
 * the WAL file on libuv's thread pool before its caller is answered. The outcome is the same
 * as FULL: nothing is acknowledged before its WAL frames are on disk. An fdatasync flushes the
 * file, whichever descriptor wrote it, so the descriptor here may be read-only.
 *
 * Syncs are shared: a `sync()` joins the next flush that has not started yet, so a burst of
 * commits costs one flush. A flush already running may have started before the caller's commit
 * and is never joined.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { syncDirectory } from '../durable-fs.js';

type Handle = Pick<fsp.FileHandle, 'datasync' | 'close'>;

export interface WalSyncOptions {
  /** Opens the WAL file for syncing (tests observe the flushes through it). */
  readonly open?: (file: string) => Promise<Handle>;
}

export class WalSync {
  private handle: Handle | undefined;
  private queued: Promise<void> | undefined;
  private tail: Promise<void> = Promise.resolve();
  private readonly open: (file: string) => Promise<Handle>;

  /** `walFile`: the database file's `-wal` companion, which exists once the first commit ran. */
  constructor(
    private readonly walFile: string,
    options: WalSyncOptions = {},
  ) {
    this.open = options.open ?? ((file) => fsp.open(file, 'r'));
  }

  /** Resolves once everything committed to the WAL before this call is on disk. */
  sync(): Promise<void> {
    if (this.queued) return this.queued;
    const queued = this.tail.then(() => {
      // From here on the flush may already be running: later callers queue the next one.
      this.queued = undefined;
      return this.flush();
    });
    this.queued = queued;
    this.tail = queued.catch(() => undefined);
    return queued;
  }

  /** Waits for the flushes asked for so far, then lets the file go. */
  async close(): Promise<void> {
    await this.tail;
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  private async flush(): Promise<void> {
    if (!this.handle) {
      let handle: Handle;
      try {
        handle = await this.open(this.walFile);
      } catch (err) {
        // No WAL file, no frames in it: whatever was committed is in the database file, which
        // SQLite synced when it checkpointed and removed the WAL.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      // The WAL file may have just been created: its directory entry must be durable too.
      await syncDirectory(path.dirname(this.walFile));
      this.handle = handle;
    }
    try {
      await this.handle.datasync();
    } catch (err) {
      // The next attempt opens the file afresh.
      const handle = this.handle;
      this.handle = undefined;
      await handle.close().catch(() => undefined);
      throw err;
    }
  }
}
