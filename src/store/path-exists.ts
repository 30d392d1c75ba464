// Whether a store path is still on disk. lstat, not stat: a store path may be a symlink (to
// another store path, or dangling), and it is the entry itself that matters. Used where a path
// seen earlier may have been garbage-collected since (a watcher hint, a queued upload).
import { lstat } from 'node:fs/promises';

export async function storePathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
