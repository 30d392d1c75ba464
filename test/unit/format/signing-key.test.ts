// Golden vectors: test keys made by `nix key generate-secret` / `convert-secret-to-public` and
// signatures made by `nix store sign` (read back with `nix path-info --json`); see
// test/fixtures/narinfo/README.md and test/fixtures/path-info/README.md. Ed25519 is
// deterministic, so our signature over the fingerprint must equal Nix's byte for byte.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  formatPublicKey,
  parsePublicKey,
  parseSecretKey,
  publicKeyOf,
  signatureKeyName,
  signFingerprint,
  verifySignature,
} from '../../../src/format/signing-key.js';
import { fingerprintPath } from '../../../src/format/fingerprint.js';
import { parseHash } from '../../../src/format/hash.js';
import { normalizePathInfoJson } from '../../../src/format/path-info.js';
import { parseNarInfo } from '../../../src/format/narinfo.js';
import { FormatError, KeyError } from '../../../src/errors.js';

const read = (p: string): string => readFileSync(new URL(`../../fixtures/${p}`, import.meta.url), 'utf8');
const SECRET_1 = read('narinfo/TEST-ONLY-loft-test-1.secret-key');
const PUBLIC_1 = read('narinfo/TEST-ONLY-loft-test-1.public-key');
const SECRET_2 = read('narinfo/TEST-ONLY-loft-test-2.secret-key');
const PUBLIC_2 = read('narinfo/TEST-ONLY-loft-test-2.public-key');

void describe('signing keys', () => {
  void test('parses Nix key files; the public half matches convert-secret-to-public', () => {
    const sk = parseSecretKey(SECRET_1);
    assert.equal(sk.name, 'loft-test-1');
    assert.equal(sk.seed.length, 32);
    assert.equal(formatPublicKey(publicKeyOf(sk)), PUBLIC_1.trim());
    const pk = parsePublicKey(PUBLIC_1);
    assert.deepEqual(pk, publicKeyOf(sk));
  });

  void test('trims surrounding whitespace and the trailing newline of sops/agenix files', () => {
    const sk = parseSecretKey(`\n  ${SECRET_1}\n`);
    assert.deepEqual(sk, parseSecretKey(SECRET_1));
    assert.equal(parsePublicKey(`${PUBLIC_1}\r\n`).name, 'loft-test-1');
  });

  void test('our signatures equal the ones nix store sign made, for every fixture path', () => {
    const sk = parseSecretKey(SECRET_1);
    const pk = parsePublicKey(PUBLIC_1);
    const results = normalizePathInfoJson(JSON.parse(read('path-info/nix-2.19-object.json')));
    let checked = 0;
    for (const r of results) {
      if (!r.ok) continue;
      const fp = fingerprintPath(r.info.path, r.info.narHash, r.info.narSize, r.info.references);
      const nixSig = r.info.signatures.find((s) => signatureKeyName(s) === 'loft-test-1');
      assert.equal(signFingerprint(sk, fp), nixSig, r.info.path);
      assert.ok(verifySignature(pk, fp, nixSig!));
      checked++;
    }
    assert.equal(checked, 4);
  });

  void test("verifies both Sigs of the original Loft's narinfo with their public keys", () => {
    const n = parseNarInfo(read('narinfo/loft-original-dep.narinfo'));
    const refs = n.references.map((r) => `/nix/store/${r}`);
    const fp = fingerprintPath(n.storePath, n.narHash, n.narSize, refs);
    const [own, existing] = n.signatures;
    assert.ok(verifySignature(parsePublicKey(PUBLIC_2), fp, own!));
    assert.ok(verifySignature(parsePublicKey(PUBLIC_1), fp, existing!));
    assert.equal(signFingerprint(parseSecretKey(SECRET_2), fp), own);
  });

  void test('verification fails for another text, another key, a tampered or malformed signature', () => {
    const sk = parseSecretKey(SECRET_1);
    const pk = publicKeyOf(sk);
    const h = parseHash('sha256-Sdwbm7v/z3foyj7jZx92hdNb/ESk2AoemwH3D9htwTY=');
    const fp = fingerprintPath('/nix/store/y1bzmgmda5pysd2ip1qd1xkc7k5gghv5-loft-fixture-top', h, 600, []);
    const sig = signFingerprint(sk, fp);
    assert.ok(verifySignature(pk, fp, sig));
    assert.ok(!verifySignature(pk, `${fp}x`, sig));
    assert.ok(!verifySignature(parsePublicKey(PUBLIC_2), fp, sig));
    assert.ok(!verifySignature({ ...pk, name: 'other' }, fp, sig));
    const bytes = Buffer.from(sig.slice(sig.indexOf(':') + 1), 'base64');
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    assert.ok(!verifySignature(pk, fp, `loft-test-1:${bytes.toString('base64')}`));
    for (const bad of ['', 'loft-test-1', 'loft-test-1:', 'loft-test-1:!!!!', 'loft-test-1:AAAA', ':abc']) {
      assert.equal(verifySignature(pk, fp, bad), false, bad);
    }
  });

  void test('signatureKeyName', () => {
    assert.equal(signatureKeyName('cache.nixos.org-1:abc=='), 'cache.nixos.org-1');
    assert.throws(() => signatureKeyName('no-colon'), FormatError);
    assert.throws(() => signatureKeyName(':abc'), FormatError);
  });

  void test('rejects bad keys with a KeyError that never shows key material', () => {
    const b64 = SECRET_1.trim().slice(SECRET_1.indexOf(':') + 1);
    const bytes = Buffer.from(b64, 'base64');
    const mismatched = Buffer.concat([bytes.subarray(0, 32), Buffer.from(parsePublicKey(PUBLIC_2).key)]);
    const secrets: Record<string, string> = {
      'no colon': b64,
      'empty name': `:${b64}`,
      'empty key': 'loft-test-1:',
      'bad base64': `loft-test-1:${b64.slice(0, -4)}!!!!`,
      'unpadded base64': `loft-test-1:${b64.replace(/=+$/, '')}`,
      'public key given as secret': PUBLIC_1,
      'too long': `loft-test-1:${Buffer.concat([bytes, Buffer.alloc(3)]).toString('base64')}`,
      'public half of another key': `loft-test-1:${mismatched.toString('base64')}`,
      'space in name': `loft test:${b64}`,
    };
    for (const [what, text] of Object.entries(secrets)) {
      assert.throws(
        () => parseSecretKey(text),
        (e: unknown) =>
          e instanceof KeyError &&
          !e.message.includes(b64.slice(0, 12)) &&
          !e.message.includes(bytes.subarray(0, 32).toString('base64').slice(0, 12)),
        what,
      );
    }
    const pubB64 = PUBLIC_1.trim().slice(PUBLIC_1.indexOf(':') + 1);
    for (const text of [':' + pubB64, 'x', 'loft-test-1:' + pubB64.slice(0, 20), SECRET_1]) {
      assert.throws(() => parsePublicKey(text), KeyError, text.slice(0, 15));
    }
  });
});
