// What one narinfo must satisfy for Nix to substitute its path, judged from its text and a listing
// of the cache (key -> size), without downloading the NAR:
//   it parses (nar-info.cc), its StorePath is the path its key names (Nix asks <hash>.narinfo and
//   refuses another path), its Compression is one Nix decodes, its URL names an object of FileSize
//   bytes, every reference has a narinfo (Nix refuses a partial closure), and with a public key
//   given, it carries a signature by that key that verifies over the fingerprint (require-sigs).
// Pure: the caller lists, downloads and decides what a missing reference served upstream means.
import { narinfoKey } from './bucket-layout.js';
import { fingerprintPath } from './fingerprint.js';
import { parseNarInfo, type NarInfo } from './narinfo.js';
import { verifySignature, type PublicKey } from './signing-key.js';
import { hashPartOfParsed, parseStorePath } from './store-path.js';

export type NarinfoProblemKind =
  | 'unparsable'
  | 'wrong-path'
  | 'unknown-compression'
  | 'nar-missing'
  | 'nar-size'
  | 'missing-reference'
  | 'unsigned'
  | 'bad-signature';

export interface NarinfoProblem {
  kind: NarinfoProblemKind;
  /** One human sentence, without the key (the caller prefixes it). */
  detail: string;
  /** missing-reference: the reference's base name (`<hash>-<name>`). */
  reference?: string;
}

/**
 * The Compression values Nix's makeDecompressionSink accepts (compression.cc: none, xz, bzip2, br,
 * and libarchive's filters). Anything else makes every substitution of the path fail.
 */
export const NIX_COMPRESSIONS: readonly string[] = [
  'none',
  'xz',
  'bzip2',
  'br',
  'zstd',
  'gzip',
  'lz4',
  'lzip',
];

export interface NarinfoCheckInput {
  hashPart: string;
  text: string;
  /** Every object of the cache by key (relative to the cache root), with its size. */
  sizes: ReadonlyMap<string, number>;
  storeDir: string;
  /** Check signatures by this key; undefined: signatures are not judged. */
  publicKey?: PublicKey;
}

export interface NarinfoCheck {
  narinfo?: NarInfo;
  /** The NAR's key relative to the cache root, when the URL is one (not another host). */
  narKey?: string;
  problems: NarinfoProblem[];
}

export function checkNarinfo(input: NarinfoCheckInput): NarinfoCheck {
  let n: NarInfo;
  try {
    n = parseNarInfo(input.text, input.storeDir);
  } catch (err) {
    return { problems: [{ kind: 'unparsable', detail: `does not parse: ${messageOf(err)}` }] };
  }
  const problems: NarinfoProblem[] = [];
  if (parseStorePath(n.storePath, input.storeDir).hashPart !== input.hashPart) {
    problems.push({ kind: 'wrong-path', detail: `names ${n.storePath}, not the path its key names` });
  }
  if (!NIX_COMPRESSIONS.includes(n.compression)) {
    problems.push({
      kind: 'unknown-compression',
      detail: `Compression ${JSON.stringify(n.compression)} is not one Nix can decode`,
    });
  }
  const narKey = narKeyOfUrl(n.url);
  if (narKey !== undefined) problems.push(...narObjectProblems(n, narKey, input.sizes));
  for (const ref of n.references) {
    if (!input.sizes.has(narinfoKey(hashPartOfParsed(ref)))) {
      problems.push({ kind: 'missing-reference', detail: `reference ${ref} has no narinfo`, reference: ref });
    }
  }
  if (input.publicKey) {
    const p = signatureProblem(n, input.publicKey, input.storeDir);
    if (p) problems.push(p);
  }
  return { narinfo: n, problems, ...(narKey !== undefined ? { narKey } : {}) };
}

function narObjectProblems(n: NarInfo, narKey: string, sizes: ReadonlyMap<string, number>): NarinfoProblem[] {
  const size = sizes.get(narKey);
  if (size === undefined) return [{ kind: 'nar-missing', detail: `its NAR ${narKey} does not exist` }];
  if (n.fileSize !== undefined && size !== n.fileSize) {
    return [{ kind: 'nar-size', detail: `its NAR ${narKey} has ${size} bytes, FileSize says ${n.fileSize}` }];
  }
  return [];
}

/** Nix accepts a narinfo when any one signature by a trusted key verifies (ValidPathInfo::checkSignatures). */
export function signatureProblem(n: NarInfo, pk: PublicKey, storeDir: string): NarinfoProblem | undefined {
  const ours = n.signatures.filter((s) => s.startsWith(`${pk.name}:`));
  if (ours.length === 0) {
    const others = n.signatures.map((s) => s.slice(0, Math.max(0, s.indexOf(':'))) || '?');
    const by = others.length > 0 ? ` (signed by ${[...new Set(others)].join(', ')})` : ' (no signature)';
    return { kind: 'unsigned', detail: `not signed by ${pk.name}${by}` };
  }
  let fingerprint: string;
  try {
    const refs = n.references.map((r) => `${storeDir}/${r}`);
    fingerprint = fingerprintPath(n.storePath, n.narHash, n.narSize, refs, storeDir);
  } catch (err) {
    return { kind: 'bad-signature', detail: `cannot be signed: ${messageOf(err)}` };
  }
  if (ours.some((s) => verifySignature(pk, fingerprint, s))) return undefined;
  return { kind: 'bad-signature', detail: `its signature by ${pk.name} does not verify` };
}

/** The key a narinfo URL names relative to the cache root; undefined for an absolute URL. */
export function narKeyOfUrl(url: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) return undefined;
  return url.replace(/^(\.\/)+/, '');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
