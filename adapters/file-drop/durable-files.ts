/**
 * File operations that survive a crash or power loss at any instant: content is fsynced before
 * it gets its final name, the directory is fsynced after, and the final name of the main file
 * is taken with `link`, which — unlike `rename` — never replaces a file that is already there.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { addAbortSignal, type Readable } from 'node:stream';

export { syncDirectory } from '../../src/durable-fs.js';

/** Writes `content` to `file` (replacing a leftover), sets `mode` exactly, and fsyncs it. */
export async function writeDurably(file: string, content: Buffer, mode: number): Promise<void> {
  const handle = await fsp.open(file, 'w', mode);
  try {
    await handle.writeFile(content);
    await handle.chmod(mode); // the open mode is reduced by the umask
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Streams `source` into `file`, hashing on the way; fsyncs before returning. */
export async function streamDurably(
  file: string,
  source: Readable,
  mode: number,
  signal: AbortSignal,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  addAbortSignal(signal, source);
  const handle = await fsp.open(file, 'w', mode);
  try {
    for await (const chunk of source) {
      const buffer = chunk as Buffer;
      hash.update(buffer);
      size += buffer.length;
      for (let offset = 0; offset < buffer.length;) {
        const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset);
        offset += bytesWritten;
      }
    }
    await handle.chmod(mode);
    await handle.sync();
  } finally {
    source.destroy();
    await handle.close();
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * Gives the fsynced `temp` file its final name unless that name exists; returns false then.
 * Where the file system has no hard links (FAT, some SMB mounts) it falls back to
 * check-then-rename, which is only racy against a second writer of the same name.
 */
export async function publishWithoutReplacing(temp: string, target: string): Promise<boolean> {
  try {
    await fsp.link(temp, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (
      code !== 'EPERM' &&
      code !== 'ENOTSUP' &&
      code !== 'EOPNOTSUPP' &&
      code !== 'ENOSYS' &&
      code !== 'EXDEV'
    ) {
      throw err;
    }
    if (await exists(target)) return false;
    await fsp.rename(temp, target);
    return true;
  }
  await fsp.unlink(temp);
  return true;
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Removes files or directories if present. */
export async function removeAll(paths: readonly string[]): Promise<void> {
  await Promise.all(paths.map((p) => fsp.rm(p, { recursive: true, force: true })));
}
