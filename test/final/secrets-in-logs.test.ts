// Runs after every other test file (scripts/run-tests.mjs): greps the output of every loft process
// the suite started for every secret the suite configured (S3 keys, session tokens, signing keys,
// extra header values). A failure names the log file and the kind of secret, never the secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBuilt, runLoft } from '../helpers/loft-cli.js';
import { skipTest } from '../helpers/skip.js';
import {
  findLeaks,
  LEAK_WINDOW,
  LOG_DIR_ENV,
  readLogs,
  readRegisteredSecrets,
  registerSecretWithEncodings,
  type RegisteredSecret,
} from '../helpers/test-secrets.js';

test('the grep finds a planted secret, whole, cut short, or among many logs', () => {
  const secrets: RegisteredSecret[] = [
    { kind: 'S3 secret key', value: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY' },
    { kind: 'short header value', value: 'x9Q2' },
  ];
  const cut = secrets[0]!.value.slice(3, 3 + LEAK_WINDOW);
  const logs = [
    { file: 'clean.log', text: 'uploaded 3 paths\n{"msg":"refused: check the secret key"}' },
    { file: 'whole.log', text: `{"err":{"message":"bad ${secrets[0]!.value}"}}` },
    { file: 'cut.log', text: `got "${cut}..."` },
    { file: 'short.log', text: 'header=x9Q2;' },
  ];
  assert.deepEqual(findLeaks(logs, secrets), [
    { file: 'whole.log', kind: 'S3 secret key' },
    { file: 'cut.log', kind: 'S3 secret key' },
    { file: 'short.log', kind: 'short header value' },
  ]);
  // One character short of a window is not a match (no false alarms on common prefixes).
  assert.deepEqual(findLeaks([{ file: 'a', text: cut.slice(1) }], secrets), []);
});

test('end to end: a secret the real CLI echoes is found in the log runLoft wrote', async (t) => {
  // `node scripts/run-tests.mjs test/unit` (the Nix package's check) runs without a build.
  if (!isBuilt())
    return skipTest(t, 'built-cli', 'the CLI is not built (npm run build); no loft process ran either');
  // A private log directory, so the planted leak never reaches the suite's own check below.
  const saved = process.env[LOG_DIR_ENV];
  const dir = await mkdtemp(join(tmpdir(), 'loft-planted-leak-'));
  process.env[LOG_DIR_ENV] = dir;
  try {
    const planted = `planted-${randomBytes(12).toString('hex')}`;
    registerSecretWithEncodings('planted secret', planted);
    // loft quotes a bad bucket name (not a secret setting) in its error: the leak to find.
    const config = join(dir, 'loft.toml');
    await writeFile(config, `[s3]\nbucket = "a/${planted}"\n`);
    const leaky = await runLoft(['-c', config, '--status'], { cwd: dir });
    assert.equal(leaky.code, 3, leaky.stderr);
    const clean = await runLoft(['--version'], { cwd: dir });
    assert.equal(clean.code, 0, clean.stderr);
    const logs = readLogs(dir);
    assert.equal(logs.length, 2);
    const leaks = findLeaks(logs, readRegisteredSecrets(dir));
    assert.deepEqual(
      leaks.map((l) => l.kind),
      ['planted secret'],
    );
    assert.match(leaks[0]!.file, /--status\.log$/);
  } finally {
    if (saved === undefined) delete process.env[LOG_DIR_ENV];
    else process.env[LOG_DIR_ENV] = saved;
    await rm(dir, { recursive: true, force: true });
  }
});

test('no log of any loft process in this run contains a registered secret', (t) => {
  const dir = process.env[LOG_DIR_ENV];
  if (dir === undefined || dir === '') {
    const message = `${LOG_DIR_ENV} is not set: run the suite with scripts/run-tests.mjs`;
    if (process.env['CI']) throw new Error(message);
    skipTest(t, 'test-runner', message);
    return;
  }
  const secrets = readRegisteredSecrets(dir);
  const logs = readLogs(dir);
  const bytes = logs.reduce((n, l) => n + l.text.length, 0);
  t.diagnostic(`scanned ${logs.length} logs (${bytes} characters) for ${secrets.length} registered secrets`);
  const leaks = findLeaks(logs, secrets);
  assert.deepEqual(
    leaks.map((l) => `${l.file}: ${l.kind}`),
    [],
    `secrets found in loft's output (logs kept in ${dir})`,
  );
});
