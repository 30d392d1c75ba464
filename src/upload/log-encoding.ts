// A build log compressed for `log_compression`, as Nix's `log-compression` (2.32+) sends it: the
// body compressed, the object's Content-Encoding naming the method, so an HTTP client (Nix >= 2.34
// decodes br, zstd, gzip and deflate) receives the plain log. Compressed off the main thread
// (node:zlib's async calls run on libuv's pool): a log may be tens of MiB.
import { brotliCompress, gzip, zstdCompress } from 'node:zlib';
import type { LogCompression } from '../format/bucket-layout.js';

type Compress = (b: Buffer, done: (err: Error | null, out: Buffer) => void) => void;

/**
 * node:zlib's callback as a promise. Not util.promisify: an ES import of node:util evaluates every
 * export of it (about 1 MB of a daemon's resident memory), for one function.
 */
const promised =
  (compress: Compress) =>
  (b: Buffer): Promise<Buffer> =>
    new Promise((resolve, reject) => compress(b, (err, out) => (err ? reject(err) : resolve(out))));

const COMPRESS: Record<Exclude<LogCompression, 'none'>, (b: Buffer) => Promise<Buffer>> = {
  br: promised(brotliCompress),
  zstd: promised(zstdCompress),
  gzip: promised(gzip),
};

/** The body to store and its Content-Encoding (none for `none`). */
export async function encodeBuildLog(
  log: Buffer,
  method: LogCompression,
): Promise<{ body: Buffer; contentEncoding?: string }> {
  if (method === 'none') return { body: log };
  return { body: await COMPRESS[method](log), contentEncoding: method };
}
