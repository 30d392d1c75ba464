// `nix-cache-info` at the root of a binary cache (libstore binary-cache-store.cc). Wire format:
//   StoreDir: /nix/store      the store the cache serves; Nix refuses a cache for another store
//   WantMassQuery: 1          1/0: clients may query many narinfos at once
//   Priority: 30              lower is preferred among substituters (cache.nixos.org uses 40)
// One `Key: value` per line. `nix copy` to a file:// store writes only StoreDir; the original Loft
// wrote all three. Unknown keys are kept in order and written back at the end.
import { FormatError } from '../errors.js';
import { DEFAULT_STORE_DIR } from './store-path.js';

export interface NixCacheInfo {
  storeDir: string;
  wantMassQuery: boolean;
  priority?: number;
  extra: Array<[string, string]>;
}

export function renderNixCacheInfo(info: NixCacheInfo): string {
  const lines: Array<[string, string]> = [
    ['StoreDir', info.storeDir],
    ['WantMassQuery', info.wantMassQuery ? '1' : '0'],
  ];
  if (info.priority !== undefined) {
    if (!Number.isSafeInteger(info.priority) || info.priority < 0) {
      throw new FormatError(
        `cannot write nix-cache-info: Priority ${info.priority} is not a non-negative integer`,
      );
    }
    lines.push(['Priority', String(info.priority)]);
  }
  lines.push(...info.extra);
  return lines
    .map(([k, v]) => {
      if (/[\r\n]/.test(k + v) || k.includes(':') || k === '') {
        throw new FormatError(
          `cannot write nix-cache-info field ${JSON.stringify(k)}: it breaks the line format`,
        );
      }
      return `${k}: ${v}\n`;
    })
    .join('');
}

/**
 * Parses like Nix does: split each non-empty line at its first ':' and trim the value. A missing
 * StoreDir means `defaultStoreDir`, a missing WantMassQuery means false. FormatError for a line
 * without ':', a WantMassQuery other than 0/1, or a Priority that is not a whole number.
 */
export function parseNixCacheInfo(text: string, defaultStoreDir: string = DEFAULT_STORE_DIR): NixCacheInfo {
  const info: NixCacheInfo = { storeDir: defaultStoreDir, wantMassQuery: false, extra: [] };
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new FormatError(`invalid nix-cache-info: line ${i + 1} is not "Key: value"`);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === 'StoreDir' || key === 'WantMassQuery' || key === 'Priority') {
      if (seen.has(key)) throw new FormatError(`invalid nix-cache-info: ${key} appears twice`);
      seen.add(key);
    }
    if (key === 'StoreDir') info.storeDir = value;
    else if (key === 'WantMassQuery') info.wantMassQuery = parseFlag(value);
    else if (key === 'Priority') info.priority = parsePriority(value);
    else info.extra.push([key, value]);
  });
  if (!info.storeDir.startsWith('/')) {
    throw new FormatError('invalid nix-cache-info: StoreDir is not an absolute path');
  }
  return info;
}

function parseFlag(value: string): boolean {
  if (value === '1') return true;
  if (value === '0') return false;
  throw new FormatError('invalid nix-cache-info: WantMassQuery must be 1 or 0');
}

function parsePriority(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new FormatError('invalid nix-cache-info: Priority must be a whole number');
  }
  return n;
}
