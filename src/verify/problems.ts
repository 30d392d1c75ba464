// The problems `loft verify` reports: one per broken invariant, each about one object of the cache.
import type { NarinfoProblemKind } from '../format/narinfo-check.js';

export type ProblemKind =
  | NarinfoProblemKind
  /** --check-contents: the NAR's bytes do not match FileHash/FileSize/NarHash/NarSize, or do not decode. */
  | 'nar-contents'
  /** nix-cache-info missing (while narinfos exist), unreadable, or for another store directory. */
  | 'cache-info'
  /** `loft verify PATH...`: a path asked about has no narinfo in the cache. */
  | 'not-in-cache'
  /** A realisation, listing or debug-info entry that does not parse or names what is not there. */
  | 'extra';

export interface Problem {
  kind: ProblemKind;
  /** The object the problem is about: `<hash>.narinfo`, or `nix-cache-info`. */
  key: string;
  /** The hash part of the narinfo's path (absent for nix-cache-info). */
  hashPart?: string;
  /** missing-reference: the base name of the reference without a narinfo. */
  reference?: string;
  detail: string;
}

/**
 * One line per problem: `<key>: <detail>`. A detail can quote a bucket's bytes (a signature's key
 * name), so control characters are shown as `?`: a forged narinfo must not split or forge a line.
 */
export function problemLine(p: Problem): string {
  // eslint-disable-next-line no-control-regex
  return `${p.key}: ${p.detail}`.replace(/[\x00-\x1f\x7f]/g, '?');
}
