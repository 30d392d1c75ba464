// One zstd frame compressed on a context (src/upload/zstd-contexts.ts), for unit tests: the pieces
// its sink receives, in order, once the frame has ended.
import type { ZstdContext } from '../../src/upload/zstd-contexts.js';
import type { OutputSource } from '../../src/upload/zstd-output.js';

/** The pieces of one frame of `input`, compressed in one step (into `output`'s slabs when given). */
export function framePieces(ctx: ZstdContext, input: Buffer, output?: OutputSource): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    ctx.start({ piece: (p) => pieces.push(p), done: (err) => (err ? reject(err) : resolve(pieces)) }, output);
    ctx.compress(input);
  });
}
