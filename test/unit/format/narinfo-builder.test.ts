// The narinfo builder against narinfos real `nix copy` wrote (byte for byte) and the original
// Loft's (field for field: it writes CA before Sig and no Deriver), from the same path-info.
// Fixtures: test/fixtures/narinfo/README.md and test/fixtures/path-info/README.md.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Compression } from '../../../src/format/bucket-layout.js';
import { buildNarInfo, type StoredNar } from '../../../src/format/narinfo-builder.js';
import { parseNarInfo, renderNarInfo, type NarInfo } from '../../../src/format/narinfo.js';
import { normalizePathInfoJson, type PathInfo } from '../../../src/format/path-info.js';
import { parseSecretKey } from '../../../src/format/signing-key.js';

const read = (dir: string, name: string) =>
  readFileSync(new URL(`../../fixtures/${dir}/${name}`, import.meta.url), 'utf8');

/** What Nix registered for each fixture path, as `nix path-info --json` printed it. */
const registered = new Map<string, PathInfo>();
for (const file of ['nix-2.8-array-closure.json', 'nix-2.8-array-file.json']) {
  for (const r of normalizePathInfoJson(JSON.parse(read('path-info', file)))) {
    if (r.ok) registered.set(r.info.path, r.info);
  }
}

/** The facts an upload measures of the stored file, taken from the fixture it is compared with. */
function storedNarOf(n: NarInfo): StoredNar {
  assert.ok(n.fileHash && n.fileSize !== undefined, 'the fixture names its file');
  return {
    url: n.url,
    compression: n.compression as Compression,
    fileHash: n.fileHash,
    fileSize: n.fileSize,
  };
}

function infoFor(n: NarInfo): PathInfo {
  const info = registered.get(n.storePath);
  assert.ok(info, `path-info fixture has ${n.storePath}`);
  return info;
}

for (const name of [
  'nix-copy-none-fixture-file.narinfo',
  'nix-copy-none-leaf.narinfo',
  'nix-copy-none-dep.narinfo',
  'nix-copy-none-top.narinfo',
  'nix-copy-xz-top.narinfo',
]) {
  test(`unsigned by us, the narinfo of ${name} is what nix copy wrote, byte for byte`, () => {
    const expected = read('narinfo', name);
    const written = parseNarInfo(expected);
    const built = buildNarInfo(infoFor(written), storedNarOf(written), undefined);
    assert.equal(renderNarInfo(built), expected);
  });
}

for (const name of ['loft-original-dep.narinfo', 'loft-original-fixture-file.narinfo']) {
  test(`signed with loft-test-2, ${name} matches the original Loft's field for field`, () => {
    const key = parseSecretKey(read('narinfo', 'TEST-ONLY-loft-test-2.secret-key'));
    const written = parseNarInfo(read('narinfo', name));
    const built = buildNarInfo(infoFor(written), storedNarOf(written), key);
    // Our signature first (deterministic ed25519, so the same bytes), then the path's own.
    assert.deepEqual(built.signatures, written.signatures);
    const { deriver, ...withoutDeriver } = built;
    assert.deepEqual(withoutDeriver, written);
    // The original Loft drops the Deriver; loft keeps it, as nix copy does.
    assert.equal(deriver, infoFor(written).deriver?.slice('/nix/store/'.length));
  });
}

test('a path signed twice by the same key is not given the signature twice', () => {
  const key = parseSecretKey(read('narinfo', 'TEST-ONLY-loft-test-1.secret-key'));
  const written = parseNarInfo(read('narinfo', 'nix-copy-none-top.narinfo'));
  const built = buildNarInfo(infoFor(written), storedNarOf(written), key);
  assert.deepEqual(built.signatures, written.signatures);
});
