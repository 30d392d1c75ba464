// Real executables and libraries as benchmark input: what store paths mostly hold.
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Up to `limit` bytes of the regular files in `dirs` (each in name order), concatenated. Read
 * straight into one buffer: a transient copy of a large binary would set the peak RSS.
 */
export function readBinaries(limit: number, dirs: readonly string[] = ['/usr/bin']): Buffer {
  const out = Buffer.allocUnsafe(limit);
  let size = 0;
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      if (size >= limit) return out;
      const path = join(dir, name);
      try {
        if (!statSync(path).isFile()) continue;
        const fd = openSync(path, 'r');
        try {
          for (let got = 1; got > 0 && size < limit; size += got)
            got = readSync(fd, out, size, limit - size, null);
        } finally {
          closeSync(fd);
        }
      } catch {
        // unreadable entries are skipped
      }
    }
  }
  return out.subarray(0, size);
}
