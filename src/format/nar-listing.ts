// A NAR's file listing, `<hashPart>.ls`, as Nix's binary cache store writes it when
// `write-nar-listing` is set (binary-cache-store.cc, listNar in nar-accessor.cc):
//   {"version":1,"root":NODE}
//   NODE = {"type":"regular","size":N[,"executable":true],"narOffset":N}
//        | {"type":"directory","entries":{"<name>":NODE,...}}     names in bytewise order
//        | {"type":"symlink","target":"<target>"}
// Keys in that order (Nix's JSONObject writes them as it goes). `narOffset` is where the file's
// contents start in the uncompressed NAR, so a reader can fetch one file with a range request.
// Built from the NAR encoder's entries (nar-writer.ts), in the same pass that uploads the NAR.
import { FormatError } from '../errors.js';
import type { NarEntry } from './nar-writer.js';

export const CONTENT_TYPE_LISTING = 'application/json';

export type ListingNode =
  | { type: 'regular'; size: number; executable?: true; narOffset?: number }
  | { type: 'directory'; entries: Record<string, ListingNode> }
  | { type: 'symlink'; target: string };

export interface NarListing {
  version: 1;
  root: ListingNode;
}

function nodeOf(entry: NarEntry): ListingNode {
  const n = entry.node;
  if (n.type === 'directory') return { type: 'directory', entries: {} };
  if (n.type === 'symlink') return { type: 'symlink', target: n.target.toString('utf8') };
  return {
    type: 'regular',
    size: n.size,
    ...(n.executable ? { executable: true as const } : {}),
    // Nix leaves out a zero offset; a file's contents never start at 0.
    ...(entry.narOffset ? { narOffset: entry.narOffset } : {}),
  };
}

/**
 * Collects the encoder's entries into a listing. The encoder visits a directory before its
 * entries and entries in bytewise order, so each entry's parent exists when it arrives and
 * insertion order is Nix's order.
 */
export class NarListingBuilder {
  private root: ListingNode | undefined;
  private readonly dirs = new Map<string, Record<string, ListingNode>>();

  readonly onEntry = (entry: NarEntry): void => {
    const path = entry.path.toString('utf8');
    const node = nodeOf(entry);
    if (node.type === 'directory') this.dirs.set(path, node.entries);
    if (path === '') {
      this.root = node;
      return;
    }
    const slash = path.lastIndexOf('/');
    const parent = this.dirs.get(slash < 0 ? '' : path.slice(0, slash));
    if (parent === undefined) throw new FormatError(`NAR entry ${path} arrived before its directory`);
    parent[path.slice(slash + 1)] = node;
  };

  listing(): NarListing {
    if (this.root === undefined) throw new FormatError('the NAR listing has no root');
    return { version: 1, root: this.root };
  }
}

export function renderNarListing(listing: NarListing): string {
  return JSON.stringify(listing);
}

/** Every regular file of a listing with its path ('/'-joined, relative to the root). */
export function* listingFiles(node: ListingNode, prefix = ''): Generator<[string, ListingNode]> {
  yield [prefix, node];
  if (node.type !== 'directory') return;
  for (const [name, child] of Object.entries(node.entries))
    yield* listingFiles(child, prefix === '' ? name : `${prefix}/${name}`);
}

/** Parses a `.ls` body enough to trust its shape (verify); FormatError otherwise. */
export function parseNarListing(text: string): NarListing {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FormatError('the listing is not JSON');
  }
  const o = json as { version?: unknown; root?: unknown } | null;
  if (typeof o !== 'object' || o === null || o.version !== 1)
    throw new FormatError('the listing is not version 1');
  checkNode(o.root, '');
  return o as NarListing;
}

function checkNode(n: unknown, at: string): void {
  const o = n as Record<string, unknown> | null;
  const where = at === '' ? 'the root' : at;
  if (typeof o !== 'object' || o === null) throw new FormatError(`listing node ${where} is not an object`);
  if (o['type'] === 'regular' && typeof o['size'] === 'number') return;
  if (o['type'] === 'symlink' && typeof o['target'] === 'string') return;
  if (o['type'] === 'directory' && typeof o['entries'] === 'object' && o['entries'] !== null) {
    for (const [name, child] of Object.entries(o['entries']))
      checkNode(child, at === '' ? name : `${at}/${name}`);
    return;
  }
  throw new FormatError(`listing node ${where} has no valid type`);
}
