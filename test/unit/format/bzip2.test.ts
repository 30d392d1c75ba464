// The in-process bzip2 decoder (src/format/bzip2.ts) against the bzip2 program: whatever `bzip2`
// compresses (every block size, runs long and short, several blocks, concatenated streams) decodes
// to the same bytes; damage is refused with a FormatError, never wrong bytes.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Bzip2TooLarge, decodeBzip2 } from '../../../src/format/bzip2.js';
import { FormatError } from '../../../src/errors.js';

function hasBzip2(): boolean {
  try {
    execFileSync('bzip2', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const bzip2 = (data: Buffer, level = 9): Buffer =>
  execFileSync('bzip2', [`-${level}`, '-c'], { input: data, maxBuffer: 1 << 28 });

/** A build log's shape: repeated lines, numbers, runs of one byte, a little binary noise. */
function logLike(lines: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < lines; i++) {
    parts.push(`building step ${i % 97}: gcc -O2 -c src/file${i}.c -o obj/file${i}.o\n`);
    if (i % 13 === 0) parts.push('='.repeat(i % 300) + '\n');
  }
  return Buffer.concat([Buffer.from(parts.join('')), randomBytes(3000)]);
}

function needBzip2(t: TestContext): boolean {
  if (hasBzip2()) return true;
  t.skip('bzip2 is not installed');
  return false;
}

void describe('bzip2 decoder', () => {
  void test('decodes what the bzip2 program writes, at every block size', (t) => {
    if (!needBzip2(t)) return;
    const inputs = [
      Buffer.from('x'),
      Buffer.from('aaaa'),
      Buffer.from('aaaaa'),
      Buffer.alloc(1000, 7), // one long run: RUNA/RUNB and the four-plus-count step
      Buffer.alloc(300000, 0x41), // runs over 255 bytes
      Buffer.from('line\n'.repeat(1000)),
      randomBytes(5000), // every byte value, little repetition
      logLike(2000),
    ];
    for (const data of inputs) {
      for (const level of [1, 9]) {
        assert.ok(decodeBzip2(bzip2(data, level)).equals(data), `${data.length} bytes at -${level}`);
      }
    }
  });

  void test('several blocks and concatenated streams', (t) => {
    if (!needBzip2(t)) return;
    const big = logLike(40000); // about 2.6 MB: several 100 kB blocks at -1
    assert.ok(decodeBzip2(bzip2(big, 1)).equals(big));
    const a = Buffer.from('first stream\n');
    const b = logLike(10);
    assert.ok(decodeBzip2(Buffer.concat([bzip2(a), bzip2(b)])).equals(Buffer.concat([a, b])));
  });

  void test('an empty file compressed by bzip2 is empty', (t) => {
    if (!needBzip2(t)) return;
    assert.equal(decodeBzip2(bzip2(Buffer.alloc(0))).length, 0);
  });

  void test('damage is a FormatError: a flipped bit, a cut, not bzip2 at all', (t) => {
    if (!needBzip2(t)) return;
    const data = logLike(500);
    const packed = bzip2(data);
    assert.throws(() => decodeBzip2(Buffer.from('not bzip2')), FormatError);
    assert.throws(() => decodeBzip2(packed.subarray(0, packed.length >> 1)), FormatError);
    // Flip one bit at a time across the compressed body: each is refused (the block and stream
    // CRCs), or decodes to the original bytes when the bit was padding.
    for (let i = 10; i < packed.length; i += Math.max(1, packed.length >> 5)) {
      const bad = Buffer.from(packed);
      bad[i] = bad[i]! ^ 0x10;
      let out: Buffer | undefined;
      try {
        out = decodeBzip2(bad);
      } catch (err) {
        assert.ok(err instanceof FormatError, `byte ${i}: ${String(err)}`);
        continue;
      }
      assert.ok(out.equals(data), `byte ${i} decoded to different bytes without an error`);
    }
  });

  void test('output over the limit stops with Bzip2TooLarge', (t) => {
    if (!needBzip2(t)) return;
    const packed = bzip2(Buffer.alloc(100000, 1));
    assert.throws(() => decodeBzip2(packed, 99999), Bzip2TooLarge);
    assert.equal(decodeBzip2(packed, 100000).length, 100000);
  });
});
