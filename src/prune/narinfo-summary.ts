// From a narinfo's text to what pruning needs (its URL, References, Deriver). A narinfo that
// parseNarInfo refuses is still read line by line for those three fields: pruning keeps such a path
// and everything it might name, so the lenient reading only ever keeps more.
import { parseNarInfo } from '../format/narinfo.js';
import { narKeyOfUrl } from '../format/narinfo-check.js';
import { parseStorePath } from '../format/store-path.js';
import type { NarinfoMeta } from '../state/prune-db.js';

export { narKeyOfUrl };

const HASH_PART = /^([0-9a-df-np-sv-z]{32})-/;

export interface NarinfoObject {
  hashPart: string;
  size: number;
  lastModified: number;
}

export type SummaryResult = { meta: NarinfoMeta; problem?: string };

export function summarizeNarinfo(obj: NarinfoObject, text: string, storeDir: string): SummaryResult {
  const base = { hashPart: obj.hashPart, narinfoSize: obj.size, lastModified: obj.lastModified };
  try {
    const n = parseNarInfo(text, storeDir);
    if (parseStorePath(n.storePath, storeDir).hashPart !== obj.hashPart) {
      return { meta: lenient(base, text), problem: `its StorePath ${n.storePath} does not match the key` };
    }
    const meta: NarinfoMeta = {
      ...base,
      references: hashParts(n.references).filter((h) => h !== obj.hashPart),
      malformed: false,
    };
    const key = narKeyOfUrl(n.url);
    if (key !== undefined) meta.narUrl = key;
    if (n.deriver !== undefined && n.deriver !== 'unknown-deriver') meta.deriver = n.deriver;
    return { meta };
  } catch (err) {
    return { meta: lenient(base, text), problem: err instanceof Error ? err.message : String(err) };
  }
}

function lenient(base: Omit<NarinfoMeta, 'references' | 'malformed'>, text: string): NarinfoMeta {
  const meta: NarinfoMeta = { ...base, references: [], malformed: true };
  for (const line of text.split('\n')) {
    const m = /^(URL|References|Deriver): ?(.*?)\r?$/.exec(line);
    if (!m) continue;
    const value = m[2] ?? '';
    if (m[1] === 'URL') {
      const key = narKeyOfUrl(value.trim());
      if (key) meta.narUrl = key;
    } else if (m[1] === 'References') {
      meta.references.push(...hashParts(value.split(/\s+/)).filter((h) => h !== base.hashPart));
    } else if (value.trim() !== '') meta.deriver = value.trim();
  }
  return meta;
}

function hashParts(baseNames: readonly string[]): string[] {
  const out: string[] = [];
  for (const b of baseNames) {
    const m = HASH_PART.exec(b);
    if (m?.[1] !== undefined) out.push(m[1]);
  }
  return out;
}
