import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseByteSize } from '../../../src/config/byte-size.js';
import { DEFAULTS } from '../../../src/config/defaults.js';
import { describeConfig } from '../../../src/config/describe-config.js';
import { errorOf, validate } from './schema-context.js';

const MiB = 1024 * 1024;

describe('loft.memory_budget', () => {
  test('sizes with a unit', () => {
    assert.equal(parseByteSize('192MiB'), 192 * MiB);
    assert.equal(parseByteSize('192 mib'), 192 * MiB);
    assert.equal(parseByteSize('1GiB'), 1024 * MiB);
    assert.equal(parseByteSize('1.5G'), 1536 * MiB);
    assert.equal(parseByteSize('64M'), 64 * MiB);
    assert.equal(parseByteSize('192'), undefined, 'a bare number is ambiguous');
    assert.equal(parseByteSize('192 MiBs'), undefined);
    assert.equal(parseByteSize('-1MiB'), undefined);
  });

  test('is read from [loft], defaults to DEFAULTS, and shows in the described config', () => {
    assert.equal(validate('[loft]\n').config.memoryBudgetBytes, DEFAULTS.memoryBudgetBytes);
    const c = validate('[loft]\nmemory_budget = "192MiB"').config;
    assert.equal(c.memoryBudgetBytes, 192 * MiB);
    assert.equal(describeConfig(c)['memoryBudgetBytes'], 192 * MiB);
  });

  test('a bad value is one line naming the key and what is expected', () => {
    for (const [toml, fragment] of [
      [
        'memory_budget = 192',
        'loft.memory_budget: expected a size with a unit, such as "192MiB" or "1GiB", from 48MiB to 64GiB, got 192',
      ],
      ['memory_budget = "lots"', 'loft.memory_budget: expected a size with a unit'],
      ['memory_budget = "16MiB"', 'from 48MiB to 64GiB, got "16MiB"'],
      ['memory_budget = "65GiB"', 'got "65GiB"'],
    ]) {
      assert.ok(errorOf(`[loft]\n${toml}`).includes(fragment!), `${toml}: ${errorOf(`[loft]\n${toml}`)}`);
    }
  });

  test('with [s3], a budget set too small for the part size is refused; the default grows to fit', () => {
    const s3 = (part: number, loft = '') =>
      `[s3]\nbucket = "b"\nendpoint = "http://127.0.0.1:9"\npart_size_mb = ${part}\n[loft]\n${loft}`;
    const message = errorOf(s3(64, 'memory_budget = "128MiB"'));
    assert.ok(
      message.includes(
        'loft.memory_budget: 128MiB cannot hold one S3 upload\'s parts of 64 MiB and a zstd frame; set at least "260MiB"',
      ),
      message,
    );
    assert.equal(validate(s3(64)).config.memoryBudgetBytes, 260 * MiB);
    assert.equal(validate(s3(8)).config.memoryBudgetBytes, DEFAULTS.memoryBudgetBytes);
  });
});
