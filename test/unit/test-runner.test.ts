// scripts/run-tests.mjs bounds every test and hook and the whole run, and stops when it is stopped.
// A teardown that never ended once held a whole CI run until CI's own limit; the signal that then
// ended it did not stop the runner, which went on to its final check. The real runner on planted
// files, with the limits lowered to a second per test and 8 s per run, in a process group of its
// own that a hung run is killed with.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FINAL_CHECK_LINE = /no log of any loft process in this run contains a registered secret/;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The run had to be killed: it was still going after 60 s. */
  hung: boolean;
}

describe('scripts/run-tests.mjs on a planted hang', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-planted-hang-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const plant = (name: string, lines: string[]) => {
    const file = join(dir, name);
    writeFileSync(file, [`import { after, describe, test } from 'node:test';`, ...lines, ''].join('\n'));
    return file;
  };
  /** Runs the runner on `file`; `signalWhen` sends SIGTERM to its group once stdout matches. */
  const run = async (file: string, signalWhen?: RegExp): Promise<Run> => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CI: '',
      LOFT_TEST_TIMEOUT_MS: '1000',
      LOFT_TEST_RUN_LIMIT_MS: '8000',
    };
    delete env['NODE_TEST_CONTEXT'];
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'run-tests.mjs'), file], {
      cwd: ROOT,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (signalWhen && !signalled && signalWhen.test(stdout)) {
        signalled = true;
        process.kill(-child.pid!, 'SIGTERM');
      }
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let hung = false;
    const closed = once(child, 'close');
    await Promise.race([closed, sleep(60_000)]);
    if (child.exitCode === null && child.signalCode === null) {
      hung = true;
      process.kill(-child.pid!, 'SIGKILL');
      await closed;
    }
    return { code: child.exitCode, stdout, stderr, hung };
  };

  test('a hook that never ends fails its suite; a file its handles keep alive is stopped, named', async () => {
    const file = plant('hung-teardown.test.ts', [
      `describe('suite', () => {`,
      `  after(() => new Promise(() => setInterval(() => {}, 1000)));`,
      `  test('passes', () => {});`,
      `});`,
    ]);
    const r = await run(file);
    assert.equal(r.hung, false, `still going after 60 s:\n${r.stdout}`);
    assert.equal(r.code, 1, r.stdout);
    // The hook fails at its limit; the file, kept alive by the timer, is stopped at the run's.
    const suiteMs = Number(/✖ suite \((\d+)\.\d+ms\)/.exec(r.stdout)?.[1]);
    assert.ok(suiteMs >= 1000 && suiteMs < 8000, `the suite failed at its hook's limit:\n${r.stdout}`);
    assert.match(r.stderr, /still running after 8 s: stopped/);
    assert.match(r.stdout, /Interrupted while running:\s*\n\s*⚠ .*hung-teardown\.test\.ts/);
  });

  test('a test past its limit fails, and the tests after it still run', async () => {
    const file = plant('hung-test.test.ts', [
      `test('hangs', () => new Promise((resolve) => setTimeout(resolve, 3000)));`,
      `test('runs after it', () => {});`,
    ]);
    const r = await run(file);
    assert.equal(r.hung, false, `still going after 60 s:\n${r.stdout}`);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /✖ hangs .*\n\s*'test timed out after 1000ms'/);
    assert.match(r.stdout, /✔ runs after it/);
  });

  test('every result of a file reaches the report (no --test-force-exit, which loses some)', async () => {
    const n = 200;
    const file = plant('many.test.ts', [`for (let i = 0; i < ${n}; i++) test(\`case \${i}\`, () => {});`]);
    const r = await run(file);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`ℹ tests ${n}\\n`));
  });

  test('SIGTERM to the run stops it with 130, without the final check', async () => {
    const file = plant('slow.test.ts', [
      `test('started', () => {});`,
      `test('slow', () => new Promise((resolve) => setTimeout(resolve, 900)));`,
    ]);
    const r = await run(file, /✔ started/);
    assert.equal(r.hung, false, `still going after 60 s:\n${r.stdout}`);
    assert.equal(r.code, 130, r.stdout);
    assert.match(r.stdout, /Interrupted while running/);
    assert.doesNotMatch(r.stdout, FINAL_CHECK_LINE);
  });
});
