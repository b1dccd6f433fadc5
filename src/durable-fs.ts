/** Durability of directory entries: what makes a rename or a newly created file survive a crash. */
import fs, { promises as fsp } from 'node:fs';

/** Makes renames, links and new files inside `directory` durable (fsync of the directory). */
export async function syncDirectory(directory: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(directory, 'r');
    await handle.sync();
  } catch (err) {
    if (!directoryCannotSync(err)) throw err;
  } finally {
    await handle?.close();
  }
}

/** `syncDirectory` on the calling thread, for a thread that may wait for the disk. */
export function syncDirectorySync(directory: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(directory, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    if (!directoryCannotSync(err)) throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Windows cannot open directories and some network file systems refuse fsync on them; there
 * the entry is as durable as the file system makes it.
 */
function directoryCannotSync(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EINVAL' || code === 'EPERM' || code === 'ENOTSUP' || code === 'EBADF';
}
