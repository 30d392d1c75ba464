// verify's pure judgement of extras (src/format/extra-check.ts): a realisation that does not
// parse, names another id, realises a path without a narinfo or lacks our signature; a listing
// without its narinfo; a debug-info entry whose NAR is gone. Each case first passes when intact.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkExtra, isCheckedExtraKey } from '../../../src/format/extra-check.js';
import {
  realisationKeyV1,
  realisationKeyV2,
  renderRealisationV1,
  renderRealisationV2,
  signRealisationV1,
  signRealisationV2,
} from '../../../src/format/realisation.js';
import { parseSecretKey, publicKeyOf } from '../../../src/format/signing-key.js';

const KEY = parseSecretKey(
  readFileSync(new URL('../../fixtures/narinfo/TEST-ONLY-loft-test-1.secret-key', import.meta.url), 'utf8'),
);
const H = 'a'.repeat(32);
const OUT = `${H}-thing`;
const ID = `sha256:${'1'.repeat(64)}!out`;
const DRV = `${'d'.repeat(32)}-thing.drv`;
const withNarinfo = new Map([[`${H}.narinfo`, 100]]);
const check = (key: string, text: string, sizes: ReadonlyMap<string, number> = withNarinfo) =>
  checkExtra({ key, text, sizes, storeDir: '/nix/store', publicKey: publicKeyOf(KEY) });

void describe('extra-check', () => {
  const v1 = signRealisationV1({ id: ID, outPath: OUT, signatures: [], dependentRealisations: {} }, KEY);
  const v2 = signRealisationV2({ drvPath: DRV, outputName: 'out', outPath: OUT, signatures: [] }, KEY);

  void test('intact realisations in both layouts pass', () => {
    assert.deepEqual(check(realisationKeyV1(ID), renderRealisationV1(v1)), []);
    assert.deepEqual(check(realisationKeyV2(DRV, 'out'), renderRealisationV2(v2)), []);
  });

  void test('broken realisations are named', () => {
    assert.match(check(realisationKeyV1(ID), '{')[0]!, /does not parse/);
    const other = `sha256:${'2'.repeat(64)}!out`;
    assert.match(check(realisationKeyV1(other), renderRealisationV1(v1))[0]!, /is not the one its key names/);
    assert.deepEqual(check(realisationKeyV1(ID), renderRealisationV1(v1), new Map()), [
      `realises ${OUT}, which has no narinfo in the cache`,
    ]);
    const unsigned = renderRealisationV1({ ...v1, signatures: [] });
    assert.deepEqual(check(realisationKeyV1(ID), unsigned), ['has no valid signature by loft-test-1']);
    // A v2 signature does not verify as v1's and the other way round: the fingerprints differ.
    const swapped = renderRealisationV2({ ...v2, signatures: v1.signatures });
    assert.deepEqual(check(realisationKeyV2(DRV, 'out'), swapped), ['has no valid signature by loft-test-1']);
  });

  void test('listings and debug-info entries', () => {
    const ls = '{"version":1,"root":{"type":"regular","size":1,"narOffset":96}}';
    assert.deepEqual(check(`${H}.ls`, ls), []);
    assert.deepEqual(check(`${H}.ls`, ls, new Map()), ['a listing of a path that has no narinfo']);
    assert.match(check(`${H}.ls`, '{"version":1}')[0]!, /does not parse/);
    const debug = '{"archive":"../nar/x.nar.zst","member":"lib/debug/.build-id/ab/c.debug"}';
    assert.deepEqual(check('debuginfo/abc.debug', debug, new Map([['nar/x.nar.zst', 1]])), []);
    assert.deepEqual(check('debuginfo/abc.debug', debug), [
      'names the NAR nar/x.nar.zst, which is not in the cache',
    ]);
  });

  void test('which keys are judged', () => {
    for (const k of [`${H}.ls`, 'debuginfo/x', realisationKeyV1(ID), realisationKeyV2(DRV, 'out')])
      assert.ok(isCheckedExtraKey(k), k);
    for (const k of [`log/${DRV}`, `${H}.narinfo`, 'x.ls', 'nar/x.nar']) assert.ok(!isCheckedExtraKey(k), k);
  });
});
