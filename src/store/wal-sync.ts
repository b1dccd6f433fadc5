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
 *
 * `blocking`: the flush runs on the calling thread instead, before `sync()` returns — for the
 * store thread, which has nothing else to do meanwhile. Handing each flush to the thread pool
 * there only added two thread wake-ups per commit (a pool thread, then the store thread again
 * for the answer), each a system call and a context switch.
 */
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { syncDirectory, syncDirectorySync } from '../durable-fs.js';

type Handle = Pick<fsp.FileHandle, 'datasync' | 'close'>;

/** A WAL file opened for flushing on the calling thread. */
export interface BlockingHandle {
  datasync(): void;
  close(): void;
}

export interface WalSyncOptions {
  /** Opens the WAL file for syncing (tests observe the flushes through it). */
  readonly open?: (file: string) => Promise<Handle>;
  /** Flush on the calling thread (see above). */
  readonly blocking?: boolean;
  /** Opens the WAL file for blocking flushes (tests observe them through it). */
  readonly openBlocking?: (file: string) => BlockingHandle;
}

function openBlocking(file: string): BlockingHandle {
  const fd = fs.openSync(file, 'r');
  return { datasync: () => fs.fdatasyncSync(fd), close: () => fs.closeSync(fd) };
}

export class WalSync {
  private handle: Handle | undefined;
  private blockingHandle: BlockingHandle | undefined;
  private queued: Promise<void> | undefined;
  private tail: Promise<void> = Promise.resolve();
  private readonly open: (file: string) => Promise<Handle>;
  private readonly openBlocking: ((file: string) => BlockingHandle) | undefined;

  /** `walFile`: the database file's `-wal` companion, which exists once the first commit ran. */
  constructor(
    private readonly walFile: string,
    options: WalSyncOptions = {},
  ) {
    this.open = options.open ?? ((file) => fsp.open(file, 'r'));
    this.openBlocking = options.blocking ? (options.openBlocking ?? openBlocking) : undefined;
  }

  /** Resolves once everything committed to the WAL before this call is on disk. */
  sync(): Promise<void> {
    if (this.openBlocking) {
      try {
        this.flushBlocking(this.openBlocking);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
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
    const blocking = this.blockingHandle;
    this.blockingHandle = undefined;
    blocking?.close();
  }

  private flushBlocking(open: (file: string) => BlockingHandle): void {
    if (!this.blockingHandle) {
      let handle: BlockingHandle;
      try {
        handle = open(this.walFile);
      } catch (err) {
        // As in flush(): no WAL file, nothing committed that is not in the synced database file.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      try {
        syncDirectorySync(path.dirname(this.walFile));
      } catch (err) {
        handle.close();
        throw err;
      }
      this.blockingHandle = handle;
    }
    try {
      this.blockingHandle.datasync();
    } catch (err) {
      // The next attempt opens the file afresh.
      const handle = this.blockingHandle;
      this.blockingHandle = undefined;
      try {
        handle.close();
      } catch {
        // already failing with the flush's error
      }
      throw err;
    }
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
      try {
        await syncDirectory(path.dirname(this.walFile));
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
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
