// Streaming decoders for NARs read back from a cache (`loft verify --check-contents`): the three
// compressions loft writes, plus br and gzip, which node:zlib decodes and `nix copy` can write.
// bzip2, lz4 and lzip (which Nix also reads) have no decoder here: such a NAR is reported as not
// checked rather than as broken.
import { createRequire } from 'node:module';
import { PassThrough, type Duplex } from 'node:stream';
import zlib from 'node:zlib';

const requireCjs = createRequire(import.meta.url);

/** A decoder for a narinfo's Compression value; undefined when loft has none for it. */
export function createDecompressor(compression: string): Duplex | undefined {
  switch (compression) {
    case 'none':
      return new PassThrough();
    case 'zstd':
      // 1 MiB output buffers, as for compression: the default 16 KiB costs a pool round trip each.
      return zlib.createZstdDecompress({ chunkSize: 1 << 20 });
    case 'xz':
      // lzma-native's decoder is a readable-stream Transform, which node's pipeline() accepts.
      return (requireCjs('lzma-native') as { createDecompressor(): Duplex }).createDecompressor();
    case 'br':
      return zlib.createBrotliDecompress();
    case 'gzip':
      return zlib.createGunzip();
    default:
      return undefined;
  }
}
