/**
 * Content-addressed attachment files: `<dir>/<sha256[0..2]>/<sha256>`. Uploads stream to a temp
 * file while being hashed and counted, are fsynced, then renamed to their hash — the same file
 * uploaded twice is stored once, and a crash leaves at most a temp file, never a half file.
 */
import { createHash, hash, randomUUID } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  promises as fsp,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
} from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { syncDirectory } from './durable-fs.js';
import { AmtError } from './errors.js';

export interface StoredFile {
  readonly sha256: string;
  readonly size: number;
}

export class AttachmentStore {
  readonly dir: string;
  private readonly tmpDir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.tmpDir = path.join(this.dir, '.tmp');
    mkdirSync(this.tmpDir, { recursive: true });
    this.restoreMovedAside();
  }

  /**
   * A purge that stopped (a crash) between moving a file aside and deleting or restoring it left
   * it in the temp directory. A message may have taken it meanwhile: it goes back. Should no
   * message use it, it stays unreferenced, like a file whose purge commit was not followed by
   * its deletion.
   */
  private restoreMovedAside(): void {
    for (const name of readdirSync(this.tmpDir)) {
      const match = /^purged-([0-9a-f]{64})-/.exec(name);
      if (!match) continue;
      const final = this.pathOf(match[1]!);
      mkdirSync(path.dirname(final), { recursive: true });
      if (existsSync(final)) rmSync(path.join(this.tmpDir, name), { force: true });
      else renameSync(path.join(this.tmpDir, name), final);
    }
  }

  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256))
      throw new AmtError('AMT_ATTACHMENT_INVALID', 'not a SHA-256 hex digest');
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  open(sha256: string): Readable {
    return createReadStream(this.pathOf(sha256));
  }

  /** Streams `source` to disk, failing with AMT_ATTACHMENT_TOO_LARGE past `limitBytes`. */
  async save(source: Readable, limitBytes: number): Promise<StoredFile> {
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > limitBytes) {
          done(new AmtError('AMT_ATTACHMENT_TOO_LARGE', `an attachment exceeds ${limitBytes} bytes`));
          return;
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    const tmp = path.join(this.tmpDir, randomUUID());
    try {
      await pipeline(source, meter, createWriteStream(tmp, { flags: 'wx' }));
      const handle = await fsp.open(tmp, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      const sha256 = hash.digest('hex');
      await this.place(tmp, sha256);
      return { sha256, size };
    } catch (err) {
      await removeQuietly(tmp);
      source.resume();
      throw storageFailure(err);
    }
  }

  /**
   * Moves a synced temp file to its content address and makes the new name durable before the
   * message that references it is committed: the rename and, for a new shard, its directory.
   */
  private async place(tmp: string, sha256: string): Promise<void> {
    const final = this.pathOf(sha256);
    const shard = path.dirname(final);
    const created = await fsp.mkdir(shard, { recursive: true });
    await fsp.rename(tmp, final);
    await syncDirectory(shard);
    if (created !== undefined) await syncDirectory(this.dir);
  }

  /** Stores content already in memory (inline attachments): hashed once, written only when new. */
  /** `sha256`: the content's SHA-256 (hex) when the caller has just computed it from `content`. */
  async saveBuffer(content: Buffer, sha256: string = hash('sha256', content)): Promise<StoredFile> {
    const final = this.pathOf(sha256);
    const stored = { sha256, size: content.length };
    // Content-addressed: a file under this name was fsynced before it was renamed there.
    // A synchronous stat: a cached metadata lookup of a few microseconds, where fs.promises'
    // stat costs about twenty times the CPU on the intake path.
    const existing = statSync(final, { throwIfNoEntry: false });
    // Touched, so that a retention purge running now keeps it (see removeUnlessUsed); a file the
    // purge has just moved aside is written anew.
    if (existing?.size === content.length && touch(final)) return stored;
    const tmp = path.join(this.tmpDir, randomUUID());
    try {
      const handle = await fsp.open(tmp, 'wx');
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.place(tmp, sha256);
      return stored;
    } catch (err) {
      await removeQuietly(tmp);
      throw storageFailure(err);
    }
  }

  /** Every stored file: its hash and when it was last written or reused (ms since the epoch). */
  async *storedFiles(): AsyncGenerator<{ readonly sha256: string; readonly modifiedMs: number }> {
    for (const shard of (await fsp.readdir(this.dir)).sort()) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of (await fsp.readdir(path.join(this.dir, shard))).sort()) {
        if (!/^[0-9a-f]{64}$/.test(name) || !name.startsWith(shard)) continue;
        const stat = await fsp.stat(path.join(this.dir, shard, name)).catch(() => undefined);
        if (stat) yield { sha256: name, modifiedMs: stat.mtimeMs };
      }
    }
  }

  /**
   * Deletes the file of `sha256` unless a message uses it, without a lock against intake, which
   * may take the same content for a new message at this very moment: `saveBuffer` finds the file
   * and touches it, `save` writes it anew. The file is first moved aside (one atomic rename), so a
   * save from then on writes it afresh; it is put back when it was touched after `freshAfter` (a
   * save found it before the move) or when `isReferenced` says, asked again after the move, that a
   * message needs it. Putting it back over a newer copy is harmless: the content is the same.
   * True when the file was deleted.
   */
  async removeUnlessUsed(
    sha256: string,
    isReferenced: () => Promise<boolean>,
    freshAfter: number,
  ): Promise<boolean> {
    if (await isReferenced()) return false;
    const final = this.pathOf(sha256);
    const aside = path.join(this.tmpDir, `purged-${sha256}-${randomUUID()}`);
    try {
      await fsp.rename(final, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    let keep = true;
    try {
      keep = (await fsp.stat(aside)).mtimeMs > freshAfter || (await isReferenced());
    } finally {
      if (keep) {
        await fsp.rename(aside, final);
        await syncDirectory(path.dirname(final));
      }
    }
    if (keep) return false;
    await fsp.rm(aside, { force: true });
    return true;
  }
}

/** Sets a file's times to now; false when it is gone. */
function touch(file: string): boolean {
  const now = Date.now() / 1000;
  try {
    utimesSync(file, now, now);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw storageFailure(err);
  }
}

/**
 * A failure of the disk (full, over quota, read-only, an I/O error) is the gateway's, not the
 * request's: 503, to be tried again, never "the body is malformed". What the source stream
 * failed with (a client that went away) and our own errors pass as they are.
 */
function storageFailure(err: unknown): unknown {
  if (err instanceof AmtError) return err;
  const { code, syscall } = err as NodeJS.ErrnoException;
  if (typeof code !== 'string' || syscall === undefined || !FILE_SYSCALLS.has(syscall)) return err;
  return new AmtError('AMT_ATTACHMENTS_UNAVAILABLE', `an attachment file cannot be written: ${code}`, {
    cause: err,
  });
}

const FILE_SYSCALLS = new Set([
  'open',
  'write',
  'writev',
  'fsync',
  'fdatasync',
  'close',
  'rename',
  'mkdir',
  'utime',
]);

/** Removes a temp file after a failure without hiding that failure behind one of its own. */
async function removeQuietly(file: string): Promise<void> {
  await fsp.rm(file, { force: true }).catch(() => undefined);
}
