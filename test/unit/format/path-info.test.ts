// Every path-info JSON shape in test/fixtures/path-info/ (see its README: the 2.8 files are real
// Nix output, the 2.19 and 2.33 files are written from Nix's documented shapes) must normalize to
// the same facts about the same paths.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { normalizePathInfoJson, type PathInfoResult } from '../../../src/format/path-info.js';
import { formatHashSri } from '../../../src/format/hash.js';
import { FormatError, InvalidPathError } from '../../../src/errors.js';

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../fixtures/path-info/${name}`, import.meta.url), 'utf8'));

const S = '/nix/store/';
const LEAF = `${S}7jiapimsqgra5j51il78hjgz8rfjgpri-loft-fixture-leaf.txt`;
const DEP = `${S}bfxh95z7bcxlr0q9x9d0nqypgwlsf36x-loft-fixture-dep`;
const TOP = `${S}y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-loft-fixture-top`;
const FILE = `${S}fid14rzhsmnh0gnybql68w3capggz9ih-fixture-file.txt`;
const GONE = `${S}fgpzjsi2k887crm6aqqslvki095qg445-gone.txt`;

interface Expected {
  narHash: string;
  narSize: number;
  references: string[];
  deriver?: string;
  ca?: string;
  signatures: string[];
}
// Copied from `nix path-info --json` and the narinfos `nix copy` wrote for these paths.
const EXPECTED: Record<string, Expected> = {
  [LEAF]: {
    narHash: 'sha256-nzu0K0LIc/eJSNM8l/pYb7KLlDijumkULMBe+H0CXgI=',
    narSize: 152,
    references: [],
    ca: 'text:sha256:130v0iq5nlvfw5kv76p7rk0zpjm1zkyhwlx5pq1v2m4h71p29vzh',
    signatures: [
      'loft-test-1:rm4CfuC3c+b7RZgIkYWuzG7vMukOkAnKIK71jvMvZeROzdGz5B9zeKY2MZ1Ln/Nu3LxaXT4TkX2z8mJ8wngtDg==',
    ],
  },
  [DEP]: {
    narHash: 'sha256-wMtk4iZcLD5eX0prDraxbztIvD4gatxeNRBz2kUZSmQ=',
    narSize: 544,
    references: [LEAF],
    deriver: `${S}a2h7dz29ljhk141lycmnfs2dma19fbp1-loft-fixture-dep.drv`,
    signatures: [
      'loft-test-1:cYkYIPJeQHmj1RHus8sYWVi6c80/Y/6NE+G1TQ3+79OjdIp1n0rJHJysUcZ78MZc5VDJpLcXAmhdsncZ/coxAA==',
    ],
  },
  [TOP]: {
    narHash: 'sha256-Sdwbm7v/z3foyj7jZx92hdNb/ESk2AoemwH3D9htwTY=',
    narSize: 600,
    references: [DEP, TOP],
    deriver: `${S}vkinr4di40x8zlnxx215divgxn6mk5a0-loft-fixture-top.drv`,
    signatures: [
      'loft-test-1:eDhUuMthF/D1Slj6G7YHMwVruLvkLsdpHFh9R71oPugpA5n4Y04nqoTyAnuOLfUGgWuu8UK+kswF/jqsHDkuCA==',
    ],
  },
  [FILE]: {
    narHash: 'sha256-cdbbQdVr5yy9of8DGhT+tLfnM1LQF+BW6TZftcixKpA=',
    narSize: 144,
    references: [],
    ca: 'fixed:r:sha256:141an74baprnx5bf05yha8rygdxlzqa1l0zzl6yjrrvbsm0xpmki',
    signatures: [
      'loft-test-1:DKq0RriRkG7R1akTXRubFpXAsc7tU88bFWUGMpRt4+x9ZD2DQAOCdU9whcjQH2jicNNbASklcIlqFPUC9cXlBw==',
    ],
  },
};

function checkResults(results: PathInfoResult[], paths: string[], invalid: string[]): void {
  assert.deepEqual(results.map((r) => (r.ok ? r.info.path : r.path)).sort(), [...paths, ...invalid].sort());
  for (const r of results) {
    if (!r.ok) {
      assert.ok(invalid.includes(r.path), `${r.path} should be valid`);
      assert.ok(r.error instanceof InvalidPathError);
      assert.equal(r.error.path, r.path);
      continue;
    }
    const want = EXPECTED[r.info.path];
    assert.ok(want !== undefined, r.info.path);
    const got: Expected = {
      narHash: formatHashSri(r.info.narHash),
      narSize: r.info.narSize,
      references: r.info.references,
      signatures: r.info.signatures,
      ...(r.info.deriver !== undefined ? { deriver: r.info.deriver } : {}),
      ...(r.info.ca !== undefined ? { ca: r.info.ca } : {}),
    };
    assert.deepEqual(got, want, r.info.path);
    assert.equal(r.info.hashPart, r.info.path.slice(11, 43), 'the hash part comes with the one parse');
    assert.equal(r.info.registrationTime, 1795249868);
  }
}

const ALL = [LEAF, DEP, TOP, FILE];

void describe('normalizePathInfoJson', () => {
  void test('Nix 2.8 array (real): single file with CA', () => {
    const results = normalizePathInfoJson(fixture('nix-2.8-array-file.json'));
    checkResults(results, [FILE], []);
    assert.equal(results[0]!.ok && results[0]!.info.ultimate, undefined);
  });

  void test('Nix 2.8 array (real): recursive closure with self-reference, deriver, ultimate', () => {
    const results = normalizePathInfoJson(fixture('nix-2.8-array-closure.json'));
    checkResults(results, [LEAF, DEP, TOP], []);
    const top = results.find((r) => r.ok && r.info.path === TOP);
    assert.equal(top?.ok && top.info.ultimate, true);
  });

  void test('Nix 2.8 array (real): {"valid": false} becomes an error for that path only', () => {
    checkResults(normalizePathInfoJson(fixture('nix-2.8-array-invalid.json')), [FILE], [GONE]);
  });

  void test('Nix 2.19 object keyed by path, null for an invalid path', () => {
    checkResults(normalizePathInfoJson(fixture('nix-2.19-object.json')), ALL, [GONE]);
  });

  void test('Nix 2.33 JSON v2: structured hashes in all formats, base-name references, structured CA', () => {
    checkResults(normalizePathInfoJson(fixture('nix-2.33-json-format-v2.json')), ALL, [GONE]);
  });

  void test('Nix 2.33 JSON v3: structured signatures, SRI CA hash, a base-name key', () => {
    checkResults(normalizePathInfoJson(fixture('nix-2.33-json-format-v3.json')), ALL, [GONE]);
  });

  void test('references come out sorted whatever order Nix gave', () => {
    const [r] = normalizePathInfoJson([
      { path: TOP, narHash: EXPECTED[TOP]!.narHash, narSize: 600, references: [TOP, DEP, LEAF] },
    ]);
    assert.deepEqual(r!.ok && r!.info.references, [DEP, LEAF, TOP].sort());
  });

  void test('honours a non-default store dir (and rejects JSON for another store)', () => {
    const dir = '/srv/store';
    const path = `${dir}/y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-x`;
    const json = {
      [path]: {
        narHash: EXPECTED[TOP]!.narHash,
        narSize: 1,
        references: ['y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-x'],
        storeDir: dir,
      },
    };
    const [r] = normalizePathInfoJson(json, dir);
    assert.deepEqual(r!.ok && r!.info.references, [path]);
    assert.throws(() => normalizePathInfoJson(json), FormatError);
  });

  void test('malformed documents throw FormatError', () => {
    const ok = { path: TOP, narHash: EXPECTED[TOP]!.narHash, narSize: 600, references: [] };
    const bad: unknown[] = [
      'text',
      null,
      42,
      [42],
      [{ ...ok, path: undefined }],
      [{ ...ok, path: '/var/lib/x' }],
      [{ ...ok, narHash: 'sha256-short' }],
      [{ ...ok, narHash: undefined }],
      [{ ...ok, narSize: -1 }],
      [{ ...ok, narSize: '600' }],
      [{ ...ok, references: 'x' }],
      [{ ...ok, references: ['not-a-store-path'] }],
      [{ ...ok, signatures: 'x' }],
      [{ ...ok, signatures: [{ keyName: 'k' }] }],
      [{ ...ok, deriver: 5 }],
      [{ ...ok, ca: { method: 'weird', hash: EXPECTED[TOP]!.narHash } }],
      [{ ...ok, ultimate: 'yes' }],
      { [TOP]: 'x' },
      { 'not a path': null },
    ];
    for (const json of bad)
      assert.throws(() => normalizePathInfoJson(json), FormatError, JSON.stringify(json));
  });
});
