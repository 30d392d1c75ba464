// The GitHub Action (action.yml) run here end to end: its two JavaScript wrappers, as the runner
// starts them (node, with the INPUT_* variables a workflow's `with:` sets, hyphens included, and
// GITHUB_STATE/GITHUB_ENV/GITHUB_OUTPUT files), the checkout's bin/loft as the installed loft (the
// install from the flake needs nixpkgs, which this machine lacks), a real nix-build in between,
// s3rver, and Nix substituting the result with the signing key required. Nix uses a PRIVATE store
// (as in daemon.test.ts), so the daemon sees only this file's builds.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { randomSalt } from '../helpers/fixtures.js';
import { isBuilt } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import { recordChildOutput } from '../helpers/test-secrets.js';
import {
  bucketObjects,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
} from '../helpers/upload-env.js';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SEQUENCE_NIX = join(ROOT, 'test', 'fixtures', 'sequence.nix');
const nixStore = usePrivateNixStore('loft-action-nix-');
const STORE_DIR = nixStore.storeDir;

interface StepRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one of the action's entry points the way the runner does: `node <file>` with `env`. */
async function runStep(file: string, env: NodeJS.ProcessEnv): Promise<StepRun> {
  let r: StepRun;
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [join(ROOT, file)], { env });
    r = { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    r = { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
  // The secrets legitimately appear in ::add-mask:: commands (the runner swallows those lines);
  // everything else goes to the suite-wide secret check.
  const shown = r.stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n');
  recordChildOutput(`action-${file}`, Buffer.from(shown), Buffer.from(r.stderr));
  return r;
}

/** GITHUB_STATE's `name=value` lines as the STATE_* variables the post step gets. */
async function stateEnv(stateFile: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(stateFile, 'utf8')).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[`STATE_${line.slice(0, eq)}`] = line.slice(eq + 1);
  }
  return env;
}

after(() => nixStore.remove());

void describe('the GitHub Action', { concurrency: false }, () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  let signingKey: string;

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-action-', 'loft-test-1');
    ({ dir, s3, key } = testEnv);
    signingKey = (await readFile(key.secretPath, 'utf8')).trim();
    await nixBin(['nix-store', '--init']); // the daemon watches the private store from the start
  });
  after(async () => {
    await testEnv?.close();
  });

  /** The environment of a job step: the runner's files plus the action's inputs. */
  async function runnerEnv(name: string, inputs: Record<string, string>) {
    const runnerTemp = await mkdtemp(join(dir, `${name}-`));
    const files = {
      GITHUB_STATE: join(runnerTemp, 'state'),
      GITHUB_ENV: join(runnerTemp, 'env'),
      GITHUB_OUTPUT: join(runnerTemp, 'output'),
      GITHUB_STEP_SUMMARY: join(runnerTemp, 'summary'),
    };
    for (const f of Object.values(files)) await writeFile(f, '');
    const env: NodeJS.ProcessEnv = { ...nixEnv(), RUNNER_TEMP: runnerTemp, ...files };
    for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
    return { env, files, runnerTemp };
  }

  test('main starts loft, the build is pushed, post drains and stops it; secrets stay masked', async (t) => {
    if (!requireNix(t)) return;
    assert.ok(isBuilt(), "run 'npm run build' first");
    const secrets = [s3.accessKeyId, s3.secretAccessKey, signingKey];
    const { env, files, runnerTemp } = await runnerEnv('ok', {
      bucket: s3.bucket,
      region: s3.region,
      endpoint: s3.endpoint,
      'access-key-id': s3.accessKeyId,
      'secret-access-key': s3.secretAccessKey,
      'signing-key': signingKey,
      'wait-timeout': '60',
      'loft-command': join(ROOT, 'bin', 'loft'),
    });
    const main = await runStep('ci/action/main.mjs', env);
    assert.equal(main.code, 0, main.stdout + main.stderr);
    for (const s of secrets) assert.ok(main.stdout.includes(`::add-mask::${s}\n`), 'each secret is masked');
    const state = await stateEnv(files.GITHUB_STATE);
    const pid = Number(state.STATE_pid);
    assert.ok(pid > 0, 'the daemon pid is saved for the post step');
    const config = (await readFile(files.GITHUB_ENV, 'utf8')).match(/^LOFT_CONFIG=(.*)$/m)?.[1];
    assert.ok(config, 'LOFT_CONFIG for later steps');
    assert.equal((await stat(config)).mode & 0o077, 0, 'the config is private');
    const toml = await readFile(config, 'utf8');
    for (const s of secrets) assert.ok(!toml.includes(s), 'secrets live in files of their own');

    // The job's build step.
    const salt = randomSalt();
    const build = ['nix-build', '--no-out-link', SEQUENCE_NIX, '-A', 'last', '--argstr', 'salt', salt];
    const last = (await nixBin(build)).stdout.trim();
    const all = (await nixBin(['nix-store', '--query', '--requisites', last])).stdout.trim().split('\n');
    assert.equal(all.length, 4);

    const post = await runStep('ci/action/post.mjs', { ...env, ...state });
    assert.equal(post.code, 0, post.stdout + post.stderr);
    assert.match(
      post.stdout,
      /^the daemon has uploaded everything queued before the wait$/m,
      'the drain ran',
    );
    assert.throws(() => process.kill(pid, 0), 'the daemon has stopped');
    const objects = await bucketObjects(s3);
    assert.deepEqual(
      all.filter((p) => !objects.has(`${hashPartOfPath(p)}.narinfo`)),
      [],
      'every path of the build is in the cache',
    );
    assert.match(await readFile(files.GITHUB_STEP_SUMMARY, 'utf8'), /queued: 0 paths/);
    const daemonLog = await readFile(join(runnerTemp, 'loft-action', 'daemon.log'), 'utf8');
    for (const text of [post.stdout, post.stderr, main.stderr, daemonLog])
      for (const s of secrets) assert.ok(!text.includes(s), 'no secret in any output');
    assert.deepEqual(
      (await checkBucket(s3, { storeDir: STORE_DIR, publicKey: key.publicKey })).violations,
      [],
    );
    await deleteLocally(all);
    await substitute([last], httpCacheUrl(s3), key.publicKey);
  });

  test('a bad input fails the main step with the reason; a post step after it does nothing', async (t) => {
    if (!requireNix(t)) return;
    const { env, files } = await runnerEnv('bad', {
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      compression: 'brotli',
      'loft-command': join(ROOT, 'bin', 'loft'),
    });
    const main = await runStep('ci/action/main.mjs', env);
    assert.equal(main.code, 1);
    assert.match(main.stdout, /^loft: .*compression/m, "the daemon log with loft's own line is shown");
    assert.match(main.stdout, /^::error::loft: the loft daemon did not start/m);
    const post = await runStep('ci/action/post.mjs', { ...env, ...(await stateEnv(files.GITHUB_STATE)) });
    assert.equal(post.code, 0);
    assert.match(post.stdout, /started no daemon/);
  });
});
