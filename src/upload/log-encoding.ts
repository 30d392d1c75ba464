// A build log compressed for `log_compression`, as Nix's `log-compression` (2.32+) sends it: the
// body compressed, the object's Content-Encoding naming the method, so an HTTP client (Nix >= 2.34
// decodes br, zstd, gzip and deflate) receives the plain log. Compressed off the main thread
// (node:zlib's async calls run on libuv's pool): a log may be tens of MiB.
import { promisify } from 'node:util';
import { brotliCompress, gzip, zstdCompress } from 'node:zlib';
import type { LogCompression } from '../format/bucket-layout.js';

const COMPRESS: Record<Exclude<LogCompression, 'none'>, (b: Buffer) => Promise<Buffer>> = {
  br: promisify(brotliCompress),
  zstd: promisify(zstdCompress),
  gzip: promisify(gzip),
};

/** The body to store and its Content-Encoding (none for `none`). */
export async function encodeBuildLog(
  log: Buffer,
  method: LogCompression,
): Promise<{ body: Buffer; contentEncoding?: string }> {
  if (method === 'none') return { body: log };
  return { body: await COMPRESS[method](log), contentEncoding: method };
}
