// The skip policy of scripts/run-tests.mjs: every skip is listed after the run, and under CI only a
// skip for the choice of S3 server passes. First the pure judgement, then the real runner on a
// planted test file whose skips it must list, and under CI fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CI_MAY_SKIP, isCI, judgeSkips, needOf, skipReason } from '../../scripts/skip-policy.mjs';
import { skipOption } from '../helpers/skip.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('judgeSkips', () => {
  const skip = (reason: string | boolean) => ({ file: 'test/x.test.ts', name: 'x', reason });

  test('a tagged reason names its need; an untagged or unknown one names none', () => {
    assert.equal(needOf(skipOption('nix', 'nix is not on PATH')), 'nix');
    assert.equal(needOf(skipReason('in-process-s3', 'counts requests')), 'in-process-s3');
    assert.equal(needOf('nix is not on PATH'), undefined);
    assert.equal(needOf('[needs the internet] downloads'), undefined);
    assert.equal(needOf(true), undefined);
    assert.throws(() => skipReason('internet' as never, 'downloads'), /unknown need "internet"/);
  });

  test('only the S3 choice (and a missing build, or an old Node to refuse) may skip under CI', () => {
    assert.deepEqual([...CI_MAY_SKIP].sort(), ['built-cli', 'external-s3', 'in-process-s3', 'old-node']);
    const skips = [
      skip(skipReason('in-process-s3', 'counts requests')),
      skip(skipReason('external-s3', 's3rver lacks ListMultipartUploads')),
      skip(skipReason('nix', 'no nix')),
      skip(skipReason('root', 'not root')),
      skip(skipReason('nginx', 'no nginx')),
      skip(skipReason('moto', 'no moto')),
      skip(skipReason('python3', 'no python3')),
      skip('no tag at all'),
      skip(true),
    ];
    const ci = judgeSkips(skips, true);
    assert.deepEqual(
      ci.failures.map((f) => f.need),
      ['nix', 'root', 'nginx', 'moto', 'python3', undefined, undefined],
    );
    assert.equal(ci.lines.filter((l) => l.startsWith('  FAILED ')).length, 7);
    assert.match(ci.lines.join('\n'), /x: \(no reason given\)/);
    const local = judgeSkips(skips, false);
    assert.deepEqual(local.failures, []);
    assert.equal(local.lines[0], 'skipped tests: 9');
    assert.deepEqual(judgeSkips([], true), { lines: [], failures: [] });
  });

  test('CI counts as set unless empty, 0 or false', () => {
    assert.equal(isCI({ CI: 'true' }), true);
    assert.equal(isCI({ CI: '1' }), true);
    for (const off of [undefined, '', '0', 'false']) assert.equal(isCI({ CI: off }), false);
  });
});

describe('scripts/run-tests.mjs on a planted file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-planted-skips-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = pathToFileURL(join(ROOT, 'scripts', 'skip-policy.mjs')).href;
  const planted = join(dir, 'planted.test.ts');
  writeFileSync(
    planted,
    [
      `import { test } from 'node:test';`,
      `import { skipReason } from ${JSON.stringify(policy)};`,
      `test('runs', () => {});`,
      `test('wants nix', (t) => { t.skip(skipReason('nix', 'nix is not on PATH')); });`,
      `test('wants s3rver', (t) => { t.skip(skipReason('in-process-s3', 'counts requests')); });`,
      `test('says nothing', (t) => { t.skip(); });`,
      '',
    ].join('\n'),
  );
  const run = (ci: string) => {
    const env: NodeJS.ProcessEnv = { ...process.env, CI: ci };
    delete env['NODE_TEST_CONTEXT'];
    return spawnSync(process.execPath, [join(ROOT, 'scripts', 'run-tests.mjs'), planted], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    });
  };

  test('without CI: exit 0, and each skip listed with its reason after node summary', () => {
    const r = run('');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const summary = r.stdout.indexOf('ℹ skipped 3');
    const list = r.stdout.indexOf('skipped tests: 3');
    assert.ok(summary >= 0 && list > summary, r.stdout);
    assert.match(r.stdout, /planted\.test\.ts > wants nix: \[needs nix\] nix is not on PATH/);
    assert.match(r.stdout, /planted\.test\.ts > wants s3rver: \[needs in-process-s3\] counts requests/);
    assert.match(r.stdout, /planted\.test\.ts > says nothing: \(no reason given\)/);
    assert.doesNotMatch(r.stdout, /FAILED/);
  });

  test('under CI: the skips CI could have avoided fail the run, the S3 one does not', () => {
    const r = run('true');
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const failed = r.stdout.split('\n').filter((l) => l.startsWith('  FAILED ') && l.includes('planted'));
    assert.deepEqual(
      failed.map((l) => l.replace(/^.*> /, '')),
      [
        'wants nix: needs nix',
        'says nothing: the skip names no need; use skipTest() of test/helpers/skip.ts',
      ],
    );
  });
});
