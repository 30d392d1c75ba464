// The listing made from the NAR encoder's entries in the same pass: its shape (Nix's key order,
// bytewise entry order, no narOffset for directories and symlinks) and, for every file, that
// narOffset points at the file's contents in the NAR itself, including files large enough to pass
// through the encoder without a copy. Byte-for-byte equality with Nix's own `.ls` is checked by
// test/integration/cache-extras.test.ts. Also the debug-info index derived from a listing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encodeNar, NAR_COPIED_CHUNK, type NarNode, type NarSource } from '../../../src/format/nar-writer.js';
import {
  listingFiles,
  NarListingBuilder,
  parseNarListing,
  renderNarListing,
} from '../../../src/format/nar-listing.js';
import { debugInfoLinks, parseDebugInfo } from '../../../src/format/debug-info.js';
import { FormatError } from '../../../src/errors.js';

type Tree = Buffer | { link: string } | { exe: Buffer } | { [name: string]: Tree };

function source(root: Tree): NarSource {
  const at = (p: Buffer): Tree => {
    let t: Tree = root;
    for (const seg of p.toString('utf8').split('/').slice(2)) t = (t as Record<string, Tree>)[seg]!;
    return t;
  };
  return {
    node(p): Promise<NarNode> {
      const t = at(p);
      if (Buffer.isBuffer(t)) return Promise.resolve({ type: 'regular', executable: false, size: t.length });
      if ('exe' in t && Buffer.isBuffer(t['exe']))
        return Promise.resolve({ type: 'regular', executable: true, size: t['exe'].length });
      if ('link' in t && typeof t['link'] === 'string')
        return Promise.resolve({ type: 'symlink', target: Buffer.from(t['link']) });
      return Promise.resolve({ type: 'directory' });
    },
    entries(p) {
      return Promise.resolve(Object.keys(at(p) as object).map((n) => Buffer.from(n)));
    },
    async *contents(p) {
      await Promise.resolve();
      const t = at(p);
      const data = Buffer.isBuffer(t) ? t : (t as { exe: Buffer }).exe;
      // Large files in reads that pass through the encoder; small ones in a single chunk.
      for (let i = 0; i < data.length; i += NAR_COPIED_CHUNK) yield data.subarray(i, i + NAR_COPIED_CHUNK);
    },
  };
}

async function encodeWithListing(tree: Tree): Promise<{ nar: Buffer; builder: NarListingBuilder }> {
  const builder = new NarListingBuilder();
  const chunks: Buffer[] = [];
  for await (const c of encodeNar(source(tree), Buffer.from('/root'), builder.onEntry)) chunks.push(c);
  return { nar: Buffer.concat(chunks), builder };
}

void describe('NAR listing from the encoder', () => {
  void test("Nix's shape: version, root; type, size, executable, narOffset; entries in bytewise order", async () => {
    const tree = {
      b: Buffer.from('bb'),
      a: { x: Buffer.from('') },
      Z: { link: '../b' },
      c: { exe: Buffer.from('#!') },
    };
    const { nar, builder } = await encodeWithListing(tree);
    const text = renderNarListing(builder.listing());
    const offsets = [...listingFiles(builder.listing().root)].flatMap(([, n]) =>
      n.type === 'regular' ? [n.narOffset] : [],
    );
    assert.equal(
      text,
      '{"version":1,"root":{"type":"directory","entries":{' +
        '"Z":{"type":"symlink","target":"../b"},' +
        `"a":{"type":"directory","entries":{"x":{"type":"regular","size":0,"narOffset":${offsets[0]}}}},` +
        `"b":{"type":"regular","size":2,"narOffset":${offsets[1]}},` +
        `"c":{"type":"regular","size":2,"executable":true,"narOffset":${offsets[2]}}}}}`,
    );
    assert.equal(nar.subarray(offsets[1], offsets[1]! + 2).toString(), 'bb');
    assert.deepEqual(parseNarListing(text), builder.listing());
  });

  void test('every narOffset points at its file in the NAR, past large files that skipped the assembler', async () => {
    const files: Record<string, Buffer> = {};
    const tree: Record<string, Tree> = {};
    for (const [i, size] of [
      0,
      1,
      7,
      NAR_COPIED_CHUNK - 1,
      NAR_COPIED_CHUNK,
      3 * NAR_COPIED_CHUNK + 5,
      9,
    ].entries()) {
      files[`f${i}`] = randomBytes(size);
      tree[`f${i}`] = { [`g${i}`]: files[`f${i}`]! };
    }
    const { nar, builder } = await encodeWithListing(tree);
    let checked = 0;
    for (const [path, node] of listingFiles(builder.listing().root)) {
      if (node.type !== 'regular') continue;
      const data = files[path.split('/')[0]!]!;
      assert.equal(node.size, data.length);
      assert.ok(nar.subarray(node.narOffset, node.narOffset! + node.size).equals(data), path);
      checked++;
    }
    assert.equal(checked, 7);
  });

  void test('a single file or symlink as the root', async () => {
    const file = await encodeWithListing(Buffer.from('hello'));
    assert.deepEqual(file.builder.listing(), {
      version: 1,
      root: { type: 'regular', size: 5, narOffset: 96 },
    });
    const link = await encodeWithListing({ link: '/nix/store/x' });
    assert.deepEqual(link.builder.listing().root, { type: 'symlink', target: '/nix/store/x' });
  });

  void test('parseNarListing refuses what is not a listing', () => {
    for (const bad of [
      '',
      '[]',
      '{"version":2,"root":{"type":"regular","size":1}}',
      '{"version":1,"root":{"type":"fifo"}}',
    ])
      assert.throws(() => parseNarListing(bad), FormatError, bad);
  });
});

void describe('debug-info index', () => {
  const id = 'cdef0123456789abcdef0123456789abcdef01';
  void test('one entry per lib/debug/.build-id/xx/<38 hex>.debug, keyed as Nix keys it', async () => {
    const tree = {
      lib: {
        debug: {
          '.build-id': {
            ab: {
              [`${id}.debug`]: Buffer.from('d'),
              'short.debug': Buffer.from('x'),
              [id]: Buffer.from('x'),
            },
            zz: { [`${id}.debug`]: Buffer.from('d') },
            cd: { link: 'x' },
          },
        },
      },
    };
    const { builder } = await encodeWithListing(tree);
    const links = debugInfoLinks(builder.listing().root, 'nar/abc.nar.zst');
    assert.deepEqual(links, [
      {
        key: `debuginfo/ab${id}.debug`,
        body: `{"archive":"../nar/abc.nar.zst","member":"lib/debug/.build-id/ab/${id}.debug"}`,
      },
    ]);
    assert.deepEqual(parseDebugInfo(links[0]!.body), {
      narKey: 'nar/abc.nar.zst',
      member: `lib/debug/.build-id/ab/${id}.debug`,
    });
    assert.deepEqual(debugInfoLinks({ type: 'directory', entries: {} }, 'nar/x'), []);
  });
});
