// The bucket checker used by the fault tests (test/helpers/bucket-invariants.ts) must be able to
// fail: damage of every kind it looks for is planted by hand into a real S3 server (s3rver), and
// each is reported, for the damaged path only. No Nix needed: narinfos are written with loft's
// format code and signed with the test-only key in test/fixtures/config.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { fingerprintPath } from '../../src/format/fingerprint.js';
import { sha256Hash } from '../../src/format/hash.js';
import { NIX_BASE32_ALPHABET } from '../../src/format/nix-base32.js';
import { renderNarInfo } from '../../src/format/narinfo.js';
import {
  formatPublicKey,
  parseSecretKey,
  publicKeyOf,
  signFingerprint,
  type SecretKey,
} from '../../src/format/signing-key.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { checkBucket, committedWrites, keysWrittenTwice } from '../helpers/bucket-invariants.js';
import type { FaultRecord } from '../helpers/fault-proxy.js';
import { startS3Server, storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';

describe('checkBucket finds every kind of damage', () => {
  const TEST_KEY = fileURLToPath(new URL('../fixtures/config/test-only-signing-key.sec', import.meta.url));
  let s3: TestS3;
  let store: S3ObjectStore;
  let sk: SecretKey;

  before(async () => {
    s3 = await startS3Server();
    store = new S3ObjectStore(storeOptionsFor(s3));
    sk = parseSecretKey(await readFile(TEST_KEY, 'utf8'));
  });
  after(async () => {
    await store.close();
    await s3.close();
  });

  const hashPart = () => [...randomBytes(32)].map((b) => NIX_BASE32_ALPHABET[b % 32]).join('');
  const sha = (b: Buffer) => sha256Hash(createHash('sha256').update(b).digest());

  interface Damage {
    refs?: string[];
    skipNar?: boolean;
    narSuffix?: string;
    wrongNarHash?: boolean;
    signOver?: string;
    unsigned?: boolean;
    garbage?: boolean;
  }

  /** Writes one path's narinfo and zstd NAR (made by the CLI), damaged as asked; returns its hash part. */
  async function plant(d: Damage = {}): Promise<{ hash: string; path: string }> {
    const hash = hashPart();
    const path = `/nix/store/${hash}-planted`;
    const nar = randomBytes(3000);
    const file = spawnSync('zstd', ['-c', '-q'], { input: nar }).stdout;
    const url = `nar/${hash}.nar.zst`;
    const narHash = d.wrongNarHash ? sha(Buffer.from('other')) : sha(nar);
    const refs = d.refs ?? [];
    const fp = fingerprintPath(d.signOver ?? path, narHash, nar.length, refs);
    const text = renderNarInfo({
      storePath: path,
      url,
      compression: 'zstd',
      fileHash: sha(file),
      fileSize: file.length,
      narHash,
      narSize: nar.length,
      references: refs.map((r) => r.slice('/nix/store/'.length)),
      signatures: d.unsigned ? [] : [signFingerprint(sk, fp)],
      extra: [],
    });
    const put = (k: string, b: Buffer | string) =>
      store.putBytes(k, b, { contentType: 'application/octet-stream' });
    if (!d.skipNar) await put(url, d.narSuffix ? Buffer.concat([file, Buffer.from(d.narSuffix)]) : file);
    await put(`${hash}.narinfo`, d.garbage ? 'StorePath: nonsense\n' : text);
    return { hash, path };
  }

  test('a sound path passes; each damaged one is named with what is wrong', async () => {
    const good = await plant();
    const before = await checkBucket(s3, { publicKey: formatPublicKey(publicKeyOf(sk)) });
    assert.deepEqual(before.violations, ['nix-cache-info: missing while the bucket holds narinfos']);
    await store.putBytes('nix-cache-info', 'StoreDir: /nix/store\nWantMassQuery: 1\n', {
      contentType: 'text/x-nix-cache-info',
    });
    const referrer = await plant({ refs: [good.path] });
    const cases: Array<[Damage, RegExp]> = [
      [{ skipNar: true }, /its NAR nar\/\S+ does not exist/],
      [{ narSuffix: 'x' }, /has \d+ bytes, FileSize says/],
      [{ wrongNarHash: true }, /does not match NarHash/],
      [{ refs: [`/nix/store/${hashPart()}-gone`] }, /reference \S+-gone has no narinfo/],
      [{ signOver: `/nix/store/${hashPart()}-other` }, /a signature by loft-config-test-1 does not verify/],
      [{ unsigned: true }, /no signature by loft-config-test-1/],
      [{ garbage: true }, /does not parse/],
    ];
    const planted = await Promise.all(cases.map(([d]) => plant(d)));
    const check = await checkBucket(s3, { publicKey: formatPublicKey(publicKeyOf(sk)) });
    const about = (h: string) => check.violations.filter((v) => v.startsWith(`${h}.narinfo:`));
    assert.deepEqual(about(good.hash), []);
    assert.deepEqual(about(referrer.hash), []);
    cases.forEach(([, pattern], i) => {
      const found = about(planted[i]!.hash);
      assert.ok(
        found.some((v) => pattern.test(v)),
        `${pattern} not in ${JSON.stringify(found)}`,
      );
    });
    assert.equal(check.narinfos, cases.length + 2);
  });
});

describe('committedWrites', () => {
  const rec = (
    method: string,
    key: string,
    query: string,
    extra: Partial<FaultRecord> = {},
  ): FaultRecord => ({
    method,
    url: `/b/${key}?${query}`,
    bucket: 'b',
    key,
    query: new URLSearchParams(query),
    headers: {},
    forwarded: true,
    ...extra,
  });

  test('counts whole PUTs and completed multipart uploads, not parts, refusals or unforwarded requests', () => {
    const writes = committedWrites([
      rec('PUT', 'a.narinfo', '', { status: 200 }),
      rec('PUT', 'a.narinfo', '', { status: 200, fault: 'reset-response' }),
      rec('PUT', 'b.narinfo', '', { status: 500 }),
      rec('PUT', 'c.narinfo', '', { forwarded: false, fault: 'http-500' }),
      rec('POST', 'nar/x.nar.zst', 'uploads', { status: 200 }),
      rec('PUT', 'nar/x.nar.zst', 'partNumber=1&uploadId=u', { status: 200 }),
      rec('POST', 'nar/x.nar.zst', 'uploadId=u', { status: 200 }),
      rec('HEAD', 'd.narinfo', '', { status: 404 }),
    ]);
    assert.deepEqual([...writes].sort(), [
      ['a.narinfo', 2],
      ['nar/x.nar.zst', 1],
    ]);
    assert.deepEqual(keysWrittenTwice(writes), ['a.narinfo']);
  });

  test('requests recorded without a status (a plain recording proxy) count as done', () => {
    const { forwarded: _f, ...plain } = rec('PUT', 'e.narinfo', '');
    assert.deepEqual([...committedWrites([plain, plain])], [['e.narinfo', 2]]);
  });
});
