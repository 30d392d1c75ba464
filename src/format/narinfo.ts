// `<hash>.narinfo`: one `Key: value` per line, '\n' after each (libstore nar-info.cc). Nix writes:
//   StorePath: /nix/store/<hash>-<name>
//   URL: nar/<FileHash nix32>.nar[.xz|.zst]       (the original Loft: nar/<hash>-<NarHash>.nar.zst)
//   Compression: none|xz|zstd|bzip2|br            (missing means bzip2, as Nix reads it)
//   FileHash: sha256:<nix32>    FileSize: <bytes of the compressed file>
//   NarHash: sha256:<nix32>     NarSize: <bytes of the NAR>
//   References: <base names, space-separated>    ("References: " when there are none)
//   Deriver: <base name>        System: <system>   (optional)
//   Sig: <key>:<base64>         (zero or more lines)
//   CA: fixed:r:sha256:<nix32>  (optional, content-addressed paths)
// Keys are case-sensitive. Unknown keys are kept in order and written back after the known ones.
import { FormatError } from '../errors.js';
import { formatHashNix32, parseHash, type Hash } from './hash.js';
import { DEFAULT_STORE_DIR, parseStorePath, parseStorePathBaseName } from './store-path.js';

export interface NarInfo {
  storePath: string;
  url: string;
  compression: string;
  fileHash?: Hash;
  fileSize?: number;
  narHash: Hash;
  narSize: number;
  /** Base names (`<hash>-<name>`) as in the file, in file order. */
  references: string[];
  /** Base name of the .drv, as in the file. */
  deriver?: string;
  system?: string;
  ca?: string;
  /** `keyName:base64`, in file order. */
  signatures: string[];
  /** Unknown keys with their values, in file order. */
  extra: Array<[string, string]>;
}

const SINGLE_KEYS = [
  'StorePath',
  'URL',
  'Compression',
  'FileHash',
  'FileSize',
  'NarHash',
  'NarSize',
  'References',
  'Deriver',
  'System',
  'CA',
] as const;
type SingleKey = (typeof SINGLE_KEYS)[number];

/** Renders in the order Nix's NarInfo::to_string uses; every line ends with '\n'. */
export function renderNarInfo(n: NarInfo): string {
  const lines: Array<[string, string]> = [
    ['StorePath', n.storePath],
    ['URL', n.url],
    ['Compression', n.compression],
  ];
  if (n.fileHash !== undefined) lines.push(['FileHash', formatHashNix32(n.fileHash)]);
  if (n.fileSize !== undefined) lines.push(['FileSize', String(n.fileSize)]);
  lines.push(['NarHash', formatHashNix32(n.narHash)], ['NarSize', String(n.narSize)]);
  lines.push(['References', n.references.join(' ')]);
  if (n.deriver !== undefined) lines.push(['Deriver', n.deriver]);
  if (n.system !== undefined) lines.push(['System', n.system]);
  for (const sig of n.signatures) lines.push(['Sig', sig]);
  if (n.ca !== undefined) lines.push(['CA', n.ca]);
  lines.push(...n.extra);
  return lines.map(([k, v]) => renderLine(k, v)).join('');
}

function renderLine(key: string, value: string): string {
  if (/[\r\n]/.test(key + value) || key.includes(': ') || key === '') {
    throw new FormatError(
      `cannot write narinfo field ${JSON.stringify(key)}: a key or value breaks the line format`,
    );
  }
  return `${key}: ${value}\n`;
}

/**
 * Parses a narinfo as Nix and the original Loft write it. Throws FormatError when StorePath, URL,
 * NarHash or NarSize is missing, a number or hash is malformed, a path is not a store path, a key
 * other than Sig repeats, or a line has no ': '.
 */
export function parseNarInfo(text: string, storeDir: string = DEFAULT_STORE_DIR): NarInfo {
  const single = new Map<SingleKey, string>();
  const signatures: string[] = [];
  const extra: Array<[string, string]> = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const sep = line.indexOf(': ');
    if (sep <= 0) throw new FormatError(`invalid narinfo: line ${i + 1} is not "Key: value"`);
    const key = line.slice(0, sep);
    const value = line.slice(sep + 2);
    if (key === 'Sig') signatures.push(value);
    else if (isSingleKey(key)) {
      if (single.has(key)) throw new FormatError(`invalid narinfo: ${key} appears twice`);
      single.set(key, value);
    } else extra.push([key, value]);
  });
  return buildNarInfo(single, signatures, extra, storeDir);
}

function buildNarInfo(
  f: Map<SingleKey, string>,
  signatures: string[],
  extra: Array<[string, string]>,
  storeDir: string,
): NarInfo {
  const storePath = required(f, 'StorePath');
  guard('StorePath', () => parseStorePath(storePath, storeDir));
  const url = required(f, 'URL');
  if (url === '') throw new FormatError('invalid narinfo: URL is empty');
  const referencesText = f.get('References') ?? '';
  const references = referencesText === '' ? [] : referencesText.split(' ');
  for (const r of references) guard('References', () => parseStorePathBaseName(r, storeDir));
  const n: NarInfo = {
    storePath,
    url,
    // Nix's NarInfo parser: "if (compression == "") compression = "bzip2";"
    compression: f.get('Compression') || 'bzip2',
    narHash: guard('NarHash', () => parseHash(required(f, 'NarHash'))),
    narSize: size(required(f, 'NarSize'), 'NarSize'),
    references,
    signatures,
    extra,
  };
  const fileHash = f.get('FileHash');
  if (fileHash !== undefined) n.fileHash = guard('FileHash', () => parseHash(fileHash));
  const fileSize = f.get('FileSize');
  if (fileSize !== undefined) n.fileSize = size(fileSize, 'FileSize');
  const deriver = f.get('Deriver');
  if (deriver !== undefined) {
    // Old Nix wrote "unknown-deriver"; keep it verbatim so the file round-trips.
    if (deriver !== 'unknown-deriver') guard('Deriver', () => parseStorePathBaseName(deriver, storeDir));
    n.deriver = deriver;
  }
  const system = f.get('System');
  if (system !== undefined) n.system = system;
  const ca = f.get('CA');
  if (ca !== undefined && ca !== '') n.ca = ca;
  return n;
}

function isSingleKey(key: string): key is SingleKey {
  return (SINGLE_KEYS as readonly string[]).includes(key);
}

function required(f: Map<SingleKey, string>, key: SingleKey): string {
  const v = f.get(key);
  if (v === undefined) throw new FormatError(`invalid narinfo: the ${key} line is missing`);
  return v;
}

function size(text: string, key: string): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new FormatError(`invalid narinfo: ${key} is not a whole number of bytes`);
  }
  return n;
}

function guard<T>(key: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new FormatError(`invalid narinfo: ${key}: ${msg}`, { cause: err });
  }
}
