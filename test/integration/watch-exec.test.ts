// `loft --watch-exec -- CMD...` around real builds: the built CLI as a child process, the machine's
// Nix building test/fixtures/sequence.nix into a PRIVATE store (as daemon.test.ts does, so builds of
// other test files cannot show up in this store), s3rver, and real Nix substituting the result.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { randomSalt } from '../helpers/fixtures.js';
import { LOFT_MAIN, runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import {
  bucketObjects,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  verifyClosure,
  writeConfig,
} from '../helpers/upload-env.js';

const SEQUENCE_NIX = fileURLToPath(new URL('../fixtures/sequence.nix', import.meta.url));
const nixStore = usePrivateNixStore('loft-watch-exec-nix-');
const STORE_DIR = nixStore.storeDir;

const STEPS = ['one', 'two', 'three', 'last'] as const;

/** The store paths sequence.nix gives for `salt` (evaluation only: nothing is built). */
async function sequencePaths(salt: string, fail: boolean): Promise<Record<(typeof STEPS)[number], string>> {
  const expr = `builtins.mapAttrs (n: v: "\${v}") (import ${SEQUENCE_NIX} { salt = "${salt}"; fail = ${fail}; })`;
  const { stdout } = await nixBin(['nix-instantiate', '--eval', '--strict', '--json', '-E', expr]);
  return JSON.parse(stdout) as Record<(typeof STEPS)[number], string>;
}

function buildArgs(salt: string, fail: boolean): string[] {
  return [
    'nix-build',
    '--no-out-link',
    SEQUENCE_NIX,
    '-A',
    'last',
    '--argstr',
    'salt',
    salt,
    '--arg',
    'fail',
    String(fail),
  ];
}

async function narinfosIn(s3: TestS3, paths: string[]): Promise<string[]> {
  const objects = await bucketObjects(s3);
  return paths.filter((p) => objects.has(`${hashPartOfPath(p)}.narinfo`));
}

/** Resolves once the command printed its first line; rejects if loft ended before that. */
function untilReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('close', (code) => reject(new Error(`loft ended (${code}) before the command was ready`)));
  });
}

after(() => nixStore.remove());

void describe('loft --watch-exec', { concurrency: false }, () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  let config: string;

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-watch-exec-', 'loft-test-1');
    ({ dir, s3, key } = testEnv);
    config = await testEnv.config();
    await nixBin(['nix-store', '--init']); // loft lists the private store before any build made it
  });
  after(async () => {
    await testEnv?.close();
  });

  test('around a nix-build: every path it built is uploaded, exit 0, and Nix substitutes them', async (t) => {
    if (!requireNix(t)) return;
    const salt = randomSalt();
    const seq = await sequencePaths(salt, false);
    const run = await runLoft(['-c', config, '--watch-exec', '--', ...buildArgs(salt, false)], {
      env: nixEnv(),
    });
    assert.equal(run.code, 0, run.stderr);
    // The command's stdout is passed through untouched; loft's summary goes to stderr.
    assert.equal(run.stdout.trim(), seq.last);
    assert.match(run.stderr, /^uploaded 4 paths \(.*\), 0 already present, .* 0 failed, in /m);
    // Uploads run while the command does: the first step is in the cache before the last starts
    // (each step takes a second; nix-build and loft share the stderr pipe, so the order is real).
    const uploadedOne = run.stderr.indexOf(`"path":"${seq.one}"`);
    const lastStarts = run.stderr.search(/building '[^']*loft-seq-last\.drv'/);
    assert.ok(uploadedOne >= 0 && lastStarts >= 0, run.stderr);
    assert.ok(uploadedOne < lastStarts, `${seq.one} uploaded before the last step began:\n${run.stderr}`);
    const all = STEPS.map((s) => seq[s]);
    assert.deepEqual(await narinfosIn(s3, all), all);
    const check = await checkBucket(s3, { storeDir: STORE_DIR, publicKey: key.publicKey });
    assert.deepEqual(check.violations, []);
    await deleteLocally(all);
    await substitute([seq.last], httpCacheUrl(s3), key.publicKey);
    await verifyClosure([seq.last], key.publicKey);
  });

  test("a build that fails halfway: loft exits with the build's code and what was built is in the cache", async (t) => {
    if (!requireNix(t)) return;
    const salt = randomSalt();
    const seq = await sequencePaths(salt, true);
    const run = await runLoft(['-c', config, '--watch-exec', '--', ...buildArgs(salt, true)], {
      env: nixEnv(),
    });
    // The same build again (its first three steps are valid now) tells which code nix-build uses.
    const again = await nixBin(buildArgs(salt, true)).then(
      () => 0,
      (err: { code?: number }) => err.code,
    );
    assert.notEqual(again, 0);
    assert.equal(run.code, again, run.stderr);
    const built = [seq.one, seq.two, seq.three];
    assert.deepEqual(await narinfosIn(s3, [...built, seq.last]), built);
    assert.deepEqual(
      (await checkBucket(s3, { storeDir: STORE_DIR, publicKey: key.publicKey })).violations,
      [],
    );
    await deleteLocally(built);
    await substitute([seq.three], httpCacheUrl(s3), key.publicKey);
    await verifyClosure([seq.three], key.publicKey);
  });

  test('around `nix build` (the new CLI): the same', async (t) => {
    if (!requireNix(t)) return;
    const salt = randomSalt();
    const seq = await sequencePaths(salt, false);
    const cmd = ['nix', 'build', '--no-link', '-f', SEQUENCE_NIX, 'last', '--argstr', 'salt', salt];
    const run = await runLoft(['-c', config, '--watch-exec', '--', ...cmd], { env: nixEnv() });
    assert.equal(run.code, 0, run.stderr);
    const all = STEPS.map((s) => seq[s]);
    assert.deepEqual(await narinfosIn(s3, all), all);
  });

  test("the command's exit code, 128+N for a signal, 127 for a command that does not exist", async (t) => {
    if (!requireNix(t)) return;
    const seven = await runLoft(['-c', config, '--watch-exec', 'sh', '-c', 'exit 7']);
    assert.equal(seven.code, 7, seven.stderr);
    const killed = await runLoft(['-c', config, '--watch-exec', '--', 'sh', '-c', 'kill -TERM $$']);
    assert.equal(killed.code, 128 + 15, killed.stderr);
    const missing = await runLoft(['-c', config, '--watch-exec', '--', 'no-such-command-for-loft']);
    assert.equal(missing.code, 127);
    assert.match(
      missing.stderr,
      /^loft: cannot run "no-such-command-for-loft": ENOENT; check the command and PATH$/m,
    );
    const none = await runLoft(['-c', config, '--watch-exec']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^loft: --watch-exec needs a command/);
  });

  test('a command that succeeds while the store refuses the uploads exits 4, with one loft: line', async (t) => {
    if (!requireNix(t)) return;
    const badDir = await mkdtemp(join(dir, 'bad-'));
    const bad = await writeConfig({
      dir: badDir,
      s3: { ...s3, bucket: 'no-such-bucket' },
      signingKeyPath: key.secretPath,
    });
    const salt = randomSalt();
    const seq = await sequencePaths(salt, false);
    const run = await runLoft(['-c', bad, '--watch-exec', '--', ...buildArgs(salt, false)], {
      env: nixEnv(),
    });
    // A refusal of the whole target is exit 4 (as for --upload-path), not a per-path failure (1).
    assert.equal(run.code, 4, run.stderr);
    assert.equal(run.stdout.trim(), seq.last, 'the build itself ran to the end');
    assert.equal(run.stderr.split('\n').filter((l) => l.startsWith('loft: ')).length, 1, run.stderr);
    assert.match(run.stderr, /^loft: uploads stopped: /m);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });

  test('SIGTERM reaches the command; loft exits with its code once the uploads are done', async (t) => {
    if (!requireNix(t)) return;
    const child = spawn(
      process.execPath,
      [LOFT_MAIN, '-c', config, '--watch-exec', '--', 'sh', '-c', 'echo ready; exec sleep 60'],
      {
        env: nixEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    await untilReady(child);
    const sent = Date.now();
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 128 + 15, stderr);
    assert.ok(Date.now() - sent < 10_000, 'sleep 60 was stopped, not waited for');
    assert.match(stderr, /signal passed on to the command/);
  });

  test('a second signal aborts the uploads: loft exits 130 once the command has ended', async (t) => {
    if (!requireNix(t)) return;
    // The command ignores SIGTERM (and so does its sleep), so it ends by itself, with 0.
    const script = 'trap "" TERM; echo ready; sleep 2';
    const child = spawn(
      process.execPath,
      [LOFT_MAIN, '-c', config, '--watch-exec', '--', 'sh', '-c', script],
      {
        env: nixEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    await untilReady(child);
    child.kill('SIGTERM');
    await sleep(200);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 130, stderr);
    assert.match(stderr, /aborting the uploads in flight/);
  });
});
