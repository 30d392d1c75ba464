// Realisations in both layouts. The v1 golden vector was recorded and signed by Nix 2.8 itself
// (test/fixtures/realisation/README.md): Ed25519 is deterministic, so loft's signature over the
// same realisation with the same key must equal Nix's. The v2 shapes follow Nix's source
// (realisation.cc, binary-cache-store.cc of 2.35); no Nix >= 2.35 runs here to record them.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  parseRealisationKey,
  parseRealisationV1,
  parseRealisationV2,
  realisationFingerprintV1,
  realisationFingerprintV2,
  realisationKeyV1,
  realisationKeyV2,
  renderRealisationV1,
  renderRealisationV2,
  signRealisationV1,
  signRealisationV2,
  type RealisationV1,
} from '../../../src/format/realisation.js';
import { parsePublicKey, parseSecretKey, verifySignature } from '../../../src/format/signing-key.js';
import { FormatError } from '../../../src/errors.js';

const read = (p: string): string => readFileSync(new URL(`../../fixtures/${p}`, import.meta.url), 'utf8');
const SECRET_1 = parseSecretKey(read('narinfo/TEST-ONLY-loft-test-1.secret-key'));
const PUBLIC_1 = parsePublicKey(read('narinfo/TEST-ONLY-loft-test-1.public-key'));
const GOLDEN = JSON.parse(read('realisation/nix-2.8-extras-ca.json')) as {
  id: string;
  outPath: string;
  dependentRealisations: Record<string, string>;
  signature: string;
};

const golden: RealisationV1 = {
  id: GOLDEN.id,
  outPath: GOLDEN.outPath,
  signatures: [],
  dependentRealisations: GOLDEN.dependentRealisations,
};

void describe('realisations, Nix <= 2.34 layout', () => {
  void test("loft's signature equals the one Nix 2.8 made with the same key", () => {
    assert.deepEqual(signRealisationV1(golden, SECRET_1).signatures, [GOLDEN.signature]);
    assert.ok(verifySignature(PUBLIC_1, realisationFingerprintV1(golden), GOLDEN.signature));
  });

  void test('the fingerprint is the JSON without signatures, keys sorted, dependents sorted', () => {
    const r: RealisationV1 = {
      ...golden,
      dependentRealisations: { [`sha256:${'b'.repeat(64)}!out`]: 'x', [`sha256:${'a'.repeat(64)}!dev`]: 'y' },
    };
    assert.equal(
      realisationFingerprintV1(r),
      `{"dependentRealisations":{"sha256:${'a'.repeat(64)}!dev":"y","sha256:${'b'.repeat(64)}!out":"x"},` +
        `"id":"${GOLDEN.id}","outPath":"${GOLDEN.outPath}"}`,
    );
  });

  void test('renders what `nix copy` writes and parses it back; a signature by the same key name is replaced', () => {
    const stale = `${SECRET_1.name}:${Buffer.alloc(64).toString('base64')}`;
    const other = `other-1:${Buffer.alloc(64, 1).toString('base64')}`;
    const signed = signRealisationV1({ ...golden, signatures: [stale, other] }, SECRET_1);
    assert.deepEqual(signed.signatures, [GOLDEN.signature, other].sort());
    const text = renderRealisationV1(signed);
    assert.equal(
      text,
      `{"dependentRealisations":{},"id":"${GOLDEN.id}","outPath":"${GOLDEN.outPath}","signatures":${JSON.stringify(signed.signatures)}}`,
    );
    assert.deepEqual(parseRealisationV1(text), signed);
    assert.equal(realisationKeyV1(GOLDEN.id), `realisations/${GOLDEN.id}.doi`);
  });

  void test('refuses what Nix would refuse', () => {
    assert.throws(() => parseRealisationV1('{'), FormatError);
    assert.throws(() => parseRealisationV1('{"outPath":"' + GOLDEN.outPath + '"}'), /no "id"/);
    assert.throws(
      () => parseRealisationV1(JSON.stringify({ ...golden, id: 'sha256:zz!out' })),
      /invalid realisation id/,
    );
    assert.throws(
      () => parseRealisationV1(JSON.stringify({ ...golden, outPath: 'not-a-path' })),
      FormatError,
    );
  });
});

void describe('build traces, Nix >= 2.35 layout', () => {
  const drvPath = 'g4lf0qrv1kbm5sbjkfqi8xv5h1pvmyq4-extras-ca.drv';
  const r = { drvPath, outputName: 'out', outPath: GOLDEN.outPath, signatures: [] as string[] };

  void test('fingerprint {"key":{drvPath,outputName},"value":{outPath}}; body with signature objects', () => {
    assert.equal(
      realisationFingerprintV2(r),
      `{"key":{"drvPath":"${drvPath}","outputName":"out"},"value":{"outPath":"${GOLDEN.outPath}"}}`,
    );
    const signed = signRealisationV2(r, SECRET_1);
    assert.equal(signed.signatures.length, 1);
    assert.ok(verifySignature(PUBLIC_1, realisationFingerprintV2(r), signed.signatures[0]!));
    const text = renderRealisationV2(signed);
    const sig = signed.signatures[0]!.slice(SECRET_1.name.length + 1);
    assert.equal(
      text,
      `{"outPath":"${GOLDEN.outPath}","signatures":[{"keyName":"${SECRET_1.name}","sig":"${sig}"}]}`,
    );
    assert.deepEqual(parseRealisationV2(text, { drvPath, outputName: 'out' }), signed);
    // Nix also reads signatures written as strings.
    const strings = JSON.stringify({ outPath: GOLDEN.outPath, signatures: signed.signatures });
    assert.deepEqual(parseRealisationV2(strings, { drvPath, outputName: 'out' }), signed);
    assert.equal(realisationKeyV2(drvPath, 'out'), `build-trace-v2/${drvPath}/out.doi`);
  });

  void test('keys of both layouts are recognised, others are not', () => {
    assert.deepEqual(parseRealisationKey(`realisations/${GOLDEN.id}.doi`), { layout: 1, id: GOLDEN.id });
    assert.deepEqual(parseRealisationKey(`build-trace-v2/${drvPath}/out.doi`), {
      layout: 2,
      drvPath,
      outputName: 'out',
    });
    for (const k of [
      'realisations/x.doi',
      `realisations/${GOLDEN.id}`,
      'build-trace-v2/a/out.doi',
      'log/x.drv',
    ])
      assert.equal(parseRealisationKey(k), undefined, k);
  });
});
