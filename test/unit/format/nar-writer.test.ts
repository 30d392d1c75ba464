// encodeNar over an in-memory NarSource, compared with NAR files written by real Nix
// (test/fixtures/golden, see its README) and with a naive reference encoder for random trees.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  encodeNar,
  encodeNarSync,
  NAR_COPIED_CHUNK,
  type NarEntry,
  type NarNode,
  type NarSlab,
  type NarSource,
  type NarSyncSource,
} from '../../../src/format/nar-writer.js';
import { CorruptPathError, FormatError, UnsupportedFileError } from '../../../src/errors.js';

type Tree =
  | { kind: 'file'; data: Buffer; executable: boolean }
  | { kind: 'link'; target: Buffer }
  | { kind: 'dir'; entries: Array<[Buffer, Tree]> };

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const file = (s: string | Buffer, executable = false): Tree => ({
  kind: 'file',
  data: typeof s === 'string' ? b(s) : s,
  executable,
});
const link = (t: string): Tree => ({ kind: 'link', target: b(t) });
const dir = (entries: Record<string, Tree> | Array<[Buffer, Tree]>): Tree => ({
  kind: 'dir',
  entries: Array.isArray(entries) ? entries : Object.entries(entries).map(([k, v]) => [b(k), v]),
});

/**
 * A fake source. Entries come back in reverse JavaScript-string order (never bytewise order), and
 * contents in `chunk`-byte pieces, so the encoder's sorting and chunk handling are exercised.
 */
function memorySource(root: Tree, chunk = 3): NarSource {
  const byPath = new Map<string, Tree>();
  const walk = (p: Buffer, t: Tree): void => {
    byPath.set(p.toString('latin1'), t);
    if (t.kind === 'dir') for (const [n, c] of t.entries) walk(Buffer.concat([p, b('/'), n]), c);
  };
  walk(b('/root'), root);
  const get = (p: Buffer): Tree => {
    const t = byPath.get(p.toString('latin1'));
    if (t === undefined) throw new Error(`fake source: no ${p.toString('latin1')}`);
    return t;
  };
  return {
    node(p): Promise<NarNode> {
      const t = get(p);
      if (t.kind === 'file')
        return Promise.resolve({ type: 'regular', executable: t.executable, size: t.data.length });
      if (t.kind === 'link') return Promise.resolve({ type: 'symlink', target: t.target });
      return Promise.resolve({ type: 'directory' });
    },
    entries(p): Promise<Buffer[]> {
      const t = get(p);
      assert.equal(t.kind, 'dir');
      const names = t.kind === 'dir' ? t.entries.map(([n]) => n) : [];
      return Promise.resolve(names.sort((x, y) => y.toString('utf8').localeCompare(x.toString('utf8'))));
    },
    async *contents(p) {
      await Promise.resolve(); // a real source awaits I/O between chunks
      const t = get(p);
      if (t.kind !== 'file') throw new Error('not a file');
      for (let i = 0; i < t.data.length; i += chunk) yield t.data.subarray(i, i + chunk);
    },
  };
}

/** Collects every chunk without copying: if the encoder later overwrote a chunk it handed out, the result would differ. */
async function encodeAll(source: NarSource): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of encodeNar(source, b('/root'))) chunks.push(c);
  return Buffer.concat(chunks);
}

const golden = (name: string): Buffer =>
  readFileSync(new URL(`../../fixtures/golden/${name}`, import.meta.url));

// The `tree` attribute of test/fixtures/closure.nix built with salt "golden".
const pads: Record<string, Tree> = {};
for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17]) pads[String(n)] = file('x'.repeat(n));
const fixtureTree = dir([
  [b('regular.txt'), file('hello golden\n')],
  [b('run.sh'), file('#!/bin/sh\necho hi\n', true)],
  [b('empty-file'), file('')],
  [b('empty-executable'), file('', true)],
  [b('empty-dir'), dir({})],
  [
    b('nested'),
    dir({
      deeper: dir({ deepest: dir({ file: file('deep\n') }), 'link-up': link('../nested/file') }),
      file: file('mid\n'),
    }),
  ],
  [b('pad'), dir(pads)],
  [b('link-relative'), link('regular.txt')],
  [b('link-absolute'), link('/bin/sh')],
  [b('link-dangling'), link('does/not/exist')],
  [b('link-to-dir'), link('nested')],
  [b('café-✓.txt'), file('utf8\n')],
  [Buffer.from('latin1-\xe9', 'latin1'), file('latin1\n')],
  [b('w-\uff21'), file('ff21\n')],
  [b('w-\u{1f600}'), file('emoji\n')],
  [b('README'), file('upper\n')],
  [b('Readme'), file('mixed\n')],
  [b('readme'), file('lower\n')],
  [b('with space'), file('space\n')],
]);

describe('encodeNar against NARs written by nix-store --dump', () => {
  test('a directory with every file kind and name edge case (tree.nar)', async () => {
    for (const chunk of [1, 3, 1000])
      assert.ok((await encodeAll(memorySource(fixtureTree, chunk))).equals(golden('tree.nar')));
  });
  test('a single file (leaf.nar)', async () => {
    assert.ok((await encodeAll(memorySource(file('leaf golden\n')))).equals(golden('leaf.nar')));
  });
  test('a symlink (symlink-out.nar)', async () => {
    const target = '/nix/store/dd1vkcd0hcypgk85l5fwmmx9jqqab60c-loft-fixture-leaf';
    assert.ok((await encodeAll(memorySource(link(target)))).equals(golden('symlink-out.nar')));
  });
  test('a difference in one byte of a file or one executable bit changes the NAR', async () => {
    assert.ok(!(await encodeAll(memorySource(file('leaf golden!')))).equals(golden('leaf.nar')));
    assert.ok(!(await encodeAll(memorySource(file('leaf golden\n', true)))).equals(golden('leaf.nar')));
  });
});

/** A deliberately simple encoder: one Buffer.concat per token, recursion, no batching. */
function referenceNar(t: Tree): Buffer {
  const str = (x: Buffer): Buffer => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(x.length));
    return Buffer.concat([len, x, Buffer.alloc((8 - (x.length % 8)) % 8)]);
  };
  const s = (...w: string[]): Buffer => Buffer.concat(w.map((x) => str(b(x))));
  const node = (n: Tree): Buffer => {
    if (n.kind === 'file')
      return Buffer.concat([
        s('(', 'type', 'regular'),
        n.executable ? s('executable', '') : Buffer.alloc(0),
        s('contents'),
        str(n.data),
        s(')'),
      ]);
    if (n.kind === 'link') return Buffer.concat([s('(', 'type', 'symlink', 'target'), str(n.target), s(')')]);
    const sorted = [...n.entries].sort(([x], [y]) => Buffer.compare(x, y));
    return Buffer.concat([
      s('(', 'type', 'directory'),
      ...sorted.map(([name, c]) =>
        Buffer.concat([s('entry', '(', 'name'), str(name), s('node'), node(c), s(')')]),
      ),
      s(')'),
    ]);
  };
  return Buffer.concat([s('nix-archive-1'), node(t)]);
}

function pseudoRandom(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const nameArb = fc
  .uint8Array({ minLength: 1, maxLength: 12 })
  .map((a) => Buffer.from(a.map((x) => (x === 0 || x === 0x2f ? 0x61 : x))))
  .filter((n) => !n.equals(b('.')) && !n.equals(b('..')));
const treeArb: fc.Arbitrary<Tree> = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({
      kind: fc.constant('file' as const),
      data: fc.oneof(
        fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
        // Big files as (length, seed): shrinking two integers stays fast, 300,000 bytes would not.
        fc
          .tuple(fc.integer({ min: 60_000, max: 300_000 }), fc.integer())
          .map(([n, seed]) => pseudoRandom(n, seed)),
      ),
      executable: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant('link' as const),
      target: fc.uint8Array({ minLength: 1, maxLength: 30 }).map((a) => Buffer.from(a)),
    }),
    fc
      .uniqueArray(fc.tuple(nameArb, tie('tree')), { maxLength: 6, selector: ([n]) => n.toString('latin1') })
      .map((entries) => ({ kind: 'dir' as const, entries })),
  ),
})).tree;

describe('encodeNar against a naive reference encoder', () => {
  test('random trees, including files larger than the batching slab, in random chunk sizes', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.integer({ min: 1, max: 200_000 }), async (tree, chunk) => {
        assert.ok((await encodeAll(memorySource(tree, chunk))).equals(referenceNar(tree)));
      }),
      { numRuns: 60 },
    );
  });
  test('20,000 small files in one directory', async () => {
    const entries: Array<[Buffer, Tree]> = [];
    for (let i = 0; i < 20_000; i++) entries.push([b(`f${i}`), file(`content ${i}`, i % 7 === 0)]);
    const tree = dir(entries);
    assert.ok((await encodeAll(memorySource(tree, 4096))).equals(referenceNar(tree)));
  });
});

describe('encodeNar and a source that reuses its buffers', () => {
  test('chunks shorter than NAR_COPIED_CHUNK may be overwritten once the encoder asks for more', async () => {
    // The file source reads every small file into one buffer (src/store/nar-source-fs.ts): this fake
    // does the same and scribbles over the buffer before each next chunk, so a kept reference shows.
    const entries: Array<[Buffer, Tree]> = [];
    for (let i = 0; i < 300; i++) entries.push([b(`f${i}`), file(`small file ${i} `.repeat(i % 40))]);
    entries.push([b('big'), file(Buffer.alloc(NAR_COPIED_CHUNK * 3, 7))]);
    const tree = dir(entries);
    const plain = memorySource(tree, NAR_COPIED_CHUNK - 1);
    const scratch = Buffer.alloc(NAR_COPIED_CHUNK);
    const reusing: NarSource = {
      ...plain,
      async *contents(p, size) {
        for await (const chunk of plain.contents(p, size)) {
          if (chunk.length >= NAR_COPIED_CHUNK) {
            yield chunk;
            continue;
          }
          chunk.copy(scratch);
          yield scratch.subarray(0, chunk.length);
          scratch.fill(0xee);
        }
      },
    };
    assert.ok((await encodeAll(reusing)).equals(referenceNar(tree)));
  });
});

describe('encodeNar errors', () => {
  const withNode = (node: (p: Buffer) => Promise<NarNode>, contents?: NarSource['contents']): NarSource => ({
    ...memorySource(file('abc')),
    node,
    ...(contents ? { contents } : {}),
  });
  test('an UnsupportedFileError from the source propagates', async () => {
    const src = withNode(() => Promise.reject(new UnsupportedFileError('/root', 'FIFO')));
    await assert.rejects(encodeAll(src), UnsupportedFileError);
  });
  test('an unknown node type is an UnsupportedFileError', async () => {
    const src = withNode(() => Promise.resolve({ type: 'socket' } as unknown as NarNode));
    await assert.rejects(
      encodeAll(src),
      (e: unknown) => e instanceof UnsupportedFileError && /socket/.test(e.message),
    );
  });
  test('a file yielding fewer or more bytes than its size is a CorruptPathError', async () => {
    for (const size of [2, 4]) {
      const src = withNode(() => Promise.resolve({ type: 'regular', executable: false, size }));
      await assert.rejects(
        encodeAll(src),
        (e: unknown) => e instanceof CorruptPathError && e.path === '/root',
      );
    }
  });
  test('entry names Nix refuses are a FormatError', async () => {
    for (const bad of ['', '.', '..', 'a/b', 'nul\0']) {
      await assert.rejects(
        encodeAll(memorySource(dir([[b(bad), file('x')]]))),
        FormatError,
        JSON.stringify(bad),
      );
    }
    await assert.rejects(
      encodeAll(
        memorySource(
          dir([
            [b('x'), file('1')],
            [b('x'), file('2')],
          ]),
        ),
      ),
      FormatError,
    );
  });
  test('a negative or fractional size is a FormatError', async () => {
    for (const size of [-1, 1.5]) {
      const src = withNode(() => Promise.resolve({ type: 'regular', executable: false, size }));
      await assert.rejects(encodeAll(src), FormatError);
    }
  });
});

/**
 * The fake source with the synchronous forms a local file source has: small files (shorter than
 * `smallLimit`) come whole from one shared buffer, scribbled over at each call as a reused read
 * buffer would be; larger ones still go through contents().
 */
function syncSource(root: Tree, smallLimit: number, chunk = 7): NarSource & { asyncCalls: number } {
  const inner = memorySource(root, chunk);
  const shared = Buffer.alloc(NAR_COPIED_CHUNK);
  const byPath = new Map<string, Tree>();
  const walk = (p: Buffer, t: Tree): void => {
    byPath.set(p.toString('latin1'), t);
    if (t.kind === 'dir') for (const [n, c] of t.entries) walk(Buffer.concat([p, b('/'), n]), c);
  };
  walk(b('/root'), root);
  const get = (p: Buffer): Tree => byPath.get(p.toString('latin1'))!;
  const source = {
    asyncCalls: 0,
    node: (p: Buffer) => {
      source.asyncCalls++;
      return inner.node(p);
    },
    entries: (p: Buffer) => {
      source.asyncCalls++;
      return inner.entries(p);
    },
    contents: inner.contents.bind(inner),
    nodeSync(p: Buffer): NarNode {
      const t = get(p);
      if (t.kind === 'file') return { type: 'regular', executable: t.executable, size: t.data.length };
      if (t.kind === 'link') return { type: 'symlink', target: t.target };
      return { type: 'directory' };
    },
    entriesSync(p: Buffer): Buffer[] {
      const t = get(p);
      return t.kind === 'dir' ? t.entries.map(([n]) => n).reverse() : [];
    },
    smallSync(p: Buffer, size: number): Buffer | undefined {
      if (size >= smallLimit) return undefined;
      shared.fill(0xee);
      const t = get(p);
      if (t.kind !== 'file') throw new Error('not a file');
      t.data.copy(shared);
      return shared.subarray(0, t.data.length);
    },
  };
  return source;
}

describe('encodeNar over a source with synchronous forms', () => {
  test('the same bytes as through the asynchronous calls, which it no longer makes', async () => {
    const src = syncSource(fixtureTree, NAR_COPIED_CHUNK);
    assert.ok((await encodeAll(src)).equals(golden('tree.nar')));
    assert.equal(src.asyncCalls, 0);
  });
  test('random trees, small files read synchronously and large ones in chunks', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.integer({ min: 0, max: NAR_COPIED_CHUNK }), async (tree, limit) => {
        assert.ok((await encodeAll(syncSource(tree, limit))).equals(referenceNar(tree)));
      }),
      { numRuns: 60 },
    );
  });
  test('a small file read with a length other than its size is a CorruptPathError', async () => {
    for (const read of ['ab', 'abcd']) {
      const src: NarSource = { ...syncSource(file('abc'), NAR_COPIED_CHUNK), smallSync: () => b(read) };
      await assert.rejects(
        encodeAll(src),
        (e: unknown) => e instanceof CorruptPathError && e.path === '/root',
      );
    }
  });
});

/** The fake tree as the synchronous encoder reads it: whole files copied where it asks. */
function readIntoSource(root: Tree): NarSyncSource & { reads: number } {
  const withSync = syncSource(root, 0);
  const byPath = new Map<string, Tree>();
  const walk = (p: Buffer, t: Tree): void => {
    byPath.set(p.toString('latin1'), t);
    if (t.kind === 'dir') for (const [n, c] of t.entries) walk(Buffer.concat([p, b('/'), n]), c);
  };
  walk(b('/root'), root);
  const source = {
    reads: 0,
    nodeSync: withSync.nodeSync!.bind(withSync),
    entriesSync: withSync.entriesSync!.bind(withSync),
    readInto(p: Buffer, size: number, into: Buffer, at: number): void {
      source.reads++;
      const t = byPath.get(p.toString('latin1'));
      if (t?.kind !== 'file' || t.data.length !== size) throw new CorruptPathError('/root', 'changed');
      t.data.copy(into, at);
    },
  };
  return source;
}

/** Slabs of `bytes` each, counted; the encoder's result is checked against them never being reused. */
function slabsOf(bytes: number): { slab: () => NarSlab; made: number } {
  const s = {
    made: 0,
    slab: (): NarSlab => {
      s.made++;
      const buffer = Buffer.alloc(bytes);
      return { buffer, lend: (start, end) => buffer.subarray(start, end), seal: () => undefined };
    },
  };
  return s;
}

describe('encodeNarSync (whole NARs on a worker thread)', () => {
  test('the bytes nix-store --dump wrote for the fixture tree, in one slab of exactly its size', () => {
    const want = golden('tree.nar');
    const slabs = slabsOf(want.length);
    const chunks = encodeNarSync(readIntoSource(fixtureTree), b('/root'), slabs.slab);
    assert.equal(chunks.length, 1);
    assert.ok(chunks[0]!.equals(want));
    assert.equal(slabs.made, 1);
  });
  test('random trees equal the reference encoder, whatever the slab size', () => {
    fc.assert(
      fc.property(treeArb, fc.integer({ min: 8, max: 400_000 }), (tree, slabBytes) => {
        const chunks = encodeNarSync(readIntoSource(tree), b('/root'), slabsOf(slabBytes).slab);
        assert.ok(Buffer.concat(chunks).equals(referenceNar(tree)));
      }),
      { numRuns: 60 },
    );
  });
  test('the listener sees what encodeNar shows it, offsets included', async () => {
    const seen = (list: NarEntry[]) =>
      list.map((e) => `${e.path.toString('latin1')} ${e.node.type} ${e.narOffset}`);
    const sync: NarEntry[] = [];
    encodeNarSync(readIntoSource(fixtureTree), b('/root'), slabsOf(4096).slab, (e) => sync.push(e));
    const streamed: NarEntry[] = [];
    for await (const _ of encodeNar(memorySource(fixtureTree), b('/root'), (e) => streamed.push(e)));
    assert.ok(sync.length > 20);
    assert.deepEqual(seen(sync), seen(streamed));
  });
  test("a source's errors and a slab factory that refuses more propagate", () => {
    const src = readIntoSource(dir({ a: file('abc'), b: file('def') }));
    const corrupt = {
      ...src,
      readInto: () => {
        throw new CorruptPathError('/root/a', 'shrank');
      },
    };
    assert.throws(() => encodeNarSync(corrupt, b('/root'), slabsOf(4096).slab), CorruptPathError);
    const odd = { ...src, nodeSync: () => ({ type: 'socket' }) as unknown as NarNode };
    assert.throws(() => encodeNarSync(odd, b('/root'), slabsOf(4096).slab), UnsupportedFileError);
    const twice = { ...src, entriesSync: () => [b('a'), b('a')] };
    assert.throws(() => encodeNarSync(twice, b('/root'), slabsOf(4096).slab), FormatError);
    // Room for less than the NAR: the factory's second call stops the encoder.
    let given = 0;
    const once = () => {
      if (given++ > 0) throw new RangeError('outgrown');
      return slabsOf(64).slab();
    };
    assert.throws(() => encodeNarSync(src, b('/root'), once), RangeError);
  });
});
