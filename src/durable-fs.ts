/** Durability of directory entries: what makes a rename or a newly created file survive a crash. */
import { promises as fsp } from 'node:fs';

/** Makes renames, links and new files inside `directory` durable (fsync of the directory). */
export async function syncDirectory(directory: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(directory, 'r');
    await handle.sync();
  } catch (err) {
    // Windows cannot open directories and some network file systems refuse fsync on them;
    // there the entry is as durable as the file system makes it.
    const code = (err as NodeJS.ErrnoException).code;
    if (
      code !== 'EISDIR' &&
      code !== 'EINVAL' &&
      code !== 'EPERM' &&
      code !== 'ENOTSUP' &&
      code !== 'EBADF'
    ) {
      throw err;
    }
  } finally {
    await handle?.close();
  }
}
