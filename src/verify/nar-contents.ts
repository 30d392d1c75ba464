// `--check-contents`: a NAR streamed back from the cache, hashed as stored (FileHash, FileSize),
// decoded, and hashed again (NarHash, NarSize): what Nix checks when it substitutes the path
// (it refuses a NAR whose hash does not match). Memory stays bounded whatever the NAR's size.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hashEquals, sha256Hash, formatHashNix32 } from '../format/hash.js';
import type { NarInfo } from '../format/narinfo.js';
import type { ObjectStore } from '../storage/object-store.js';
import { createDecompressor } from '../upload/decompression.js';
import { HashMeter } from '../upload/hash-meter.js';

export type ContentsOutcome =
  | { checked: true; problems: string[]; bytesRead: number }
  | { checked: false; reason: string; bytesRead: number };

export async function checkNarContents(
  store: ObjectStore,
  narKey: string,
  n: NarInfo,
  signal?: AbortSignal,
): Promise<ContentsOutcome> {
  const decoder = createDecompressor(n.compression);
  if (decoder === undefined) {
    return { checked: false, reason: `no decoder for Compression ${n.compression}`, bytesRead: 0 };
  }
  const body = await openBody(store, narKey, signal);
  if (body === undefined) {
    decoder.destroy();
    return { checked: true, problems: [`its NAR ${narKey} vanished while checking`], bytesRead: 0 };
  }
  const file = new HashMeter();
  const nar = new HashMeter();
  const discard = new Writable({ write: (_c, _e, cb) => cb() });
  try {
    await pipeline(body, file, decoder, nar, discard, ...(signal ? [{ signal }] : []));
  } catch (err) {
    if (signal?.aborted) throw err;
    const why = err instanceof Error ? err.message : String(err);
    return {
      checked: true,
      problems: [`its NAR ${narKey} does not decode as ${n.compression}: ${why}`],
      bytesRead: file.bytes,
    };
  }
  return { checked: true, problems: mismatches(n, narKey, file, nar), bytesRead: file.bytes };
}

async function openBody(
  store: ObjectStore,
  key: string,
  signal?: AbortSignal,
): Promise<Readable | undefined> {
  if (store.getStream) return store.getStream(key, signal);
  const whole = await store.get(key, signal);
  return whole === undefined ? undefined : Readable.from([whole]);
}

function mismatches(n: NarInfo, narKey: string, file: HashMeter, nar: HashMeter): string[] {
  const out: string[] = [];
  if (n.fileSize !== undefined && file.bytes !== n.fileSize) {
    out.push(`its NAR ${narKey} has ${file.bytes} bytes, FileSize says ${n.fileSize}`);
  }
  if (n.fileHash?.algorithm === 'sha256' && !hashEquals(sha256Hash(file.digest()), n.fileHash)) {
    out.push(`its NAR ${narKey} does not match FileHash ${formatHashNix32(n.fileHash)}`);
  }
  if (nar.bytes !== n.narSize) out.push(`its NAR decodes to ${nar.bytes} bytes, NarSize says ${n.narSize}`);
  if (n.narHash.algorithm === 'sha256' && !hashEquals(sha256Hash(nar.digest()), n.narHash)) {
    out.push(`its NAR does not match NarHash ${formatHashNix32(n.narHash)}`);
  }
  return out;
}
