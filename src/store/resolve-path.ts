// Turning what a user typed into store paths: `/nix/store/<hash>-name`, a file inside one, or a
// symlink into the store such as `./result`. Anything else is refused with the reason.
import { realpath } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { InvalidPathError, shownPath } from '../errors.js';
import { parseStorePath } from '../format/store-path.js';

/** The top-level store path containing `path`, if `path` lies inside `storeDir`. */
export function topLevelStorePath(path: string, storeDir: string): string | undefined {
  const prefix = storeDir.endsWith(sep) ? storeDir : storeDir + sep;
  if (!path.startsWith(prefix)) return undefined;
  const first = path.slice(prefix.length).split(sep)[0];
  return first ? prefix + first : undefined;
}

export async function resolveStorePath(input: string, storeDir: string): Promise<string> {
  const absolute = resolve(input);
  let candidate = topLevelStorePath(absolute, storeDir);
  if (candidate === undefined) {
    let real: string;
    try {
      real = await realpath(absolute);
    } catch {
      throw new InvalidPathError(
        input,
        `${shownPath(input)} is not in the Nix store (${storeDir}) and does not exist`,
      );
    }
    candidate = topLevelStorePath(real, storeDir);
    if (candidate === undefined) {
      throw new InvalidPathError(input, `${shownPath(input)} is not in the Nix store (${storeDir})`);
    }
  }
  return parseStorePath(candidate, storeDir).path;
}
