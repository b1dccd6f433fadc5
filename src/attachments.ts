/**
 * Content-addressed attachment files: `<dir>/<sha256[0..2]>/<sha256>`. Uploads stream to a temp
 * file while being hashed and counted, are fsynced, then renamed to their hash — the same file
 * uploaded twice is stored once, and a crash leaves at most a temp file, never a half file.
 */
import { createHash, hash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, promises as fsp, statSync } from 'node:fs';
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
      await fsp.rm(tmp, { force: true });
      source.resume();
      throw err;
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
    if (existing?.size === content.length) return stored;
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
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }
}
