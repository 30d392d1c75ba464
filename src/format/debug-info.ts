// The debug-info index Nix's binary cache store writes when `index-debug-info` is set
// (binary-cache-store.cc), read by dwarffs and debuginfod front ends: for every
//   lib/debug/.build-id/<2 hex>/<38 hex>.debug            a regular file in the NAR
// one object
//   debuginfo/<2 hex><38 hex>.debug   {"archive":"../<narinfo URL>","member":"lib/debug/.build-id/xx/yyy.debug"}
// The key is Nix's `"debuginfo/" + s1 + s2`, so it keeps the `.debug` suffix; the archive is
// relative to the key's folder. Nix writes a key only when it does not exist yet.
import { FormatError } from '../errors.js';
import type { ListingNode } from './nar-listing.js';

export const CONTENT_TYPE_DEBUG_INFO = 'application/json';

const DIR = /^[0-9a-f]{2}$/;
const FILE = /^[0-9a-f]{38}\.debug$/;

export interface DebugInfoLink {
  key: string;
  body: string;
}

/** The index entries of one path, from its listing's root; [] when it has no build-id folder. */
export function debugInfoLinks(root: ListingNode, narUrl: string): DebugInfoLink[] {
  let node: ListingNode | undefined = root;
  for (const name of ['lib', 'debug', '.build-id']) {
    node = node?.type === 'directory' ? node.entries[name] : undefined;
  }
  if (node?.type !== 'directory') return [];
  const links: DebugInfoLink[] = [];
  for (const [s1, dir] of Object.entries(node.entries)) {
    if (dir.type !== 'directory' || !DIR.test(s1)) continue;
    for (const [s2, file] of Object.entries(dir.entries)) {
      if (file.type !== 'regular' || !FILE.test(s2)) continue;
      links.push({
        key: debugInfoKey(s1 + s2),
        body: JSON.stringify({ archive: `../${narUrl}`, member: `lib/debug/.build-id/${s1}/${s2}` }),
      });
    }
  }
  return links;
}

export function debugInfoKey(buildId: string): string {
  return `debuginfo/${buildId}`;
}

/** The NAR key a debuginfo body points at (its archive, relative to `debuginfo/`); FormatError otherwise. */
export function parseDebugInfo(text: string): { narKey: string; member: string } {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new FormatError('the debuginfo entry is not JSON');
  }
  const { archive, member } = (o ?? {}) as { archive?: unknown; member?: unknown };
  if (typeof archive !== 'string' || !archive.startsWith('../') || typeof member !== 'string')
    throw new FormatError('the debuginfo entry lacks "archive" or "member"');
  return { narKey: archive.slice(3), member };
}
