// Runs the test suite with node's own runner. Node 20 did not expand globs for --test, so this
// collects the *.test.ts files itself. Arguments narrow the folders (default: test/).
//
// Every loft child process the tests start writes its output into a fresh log directory named by
// LOFT_TEST_LOG_DIR, and the helpers that create secrets register them there. After all other test
// files, FINAL_CHECK greps every collected log for every registered secret; it always runs last.
//
// Beside node's own reporter a second one (skip-reporter.mjs) notes every skipped test. After the
// suite, before FINAL_CHECK's short run, the runner lists each skip with its reason; under CI
// (CI=true) a skip of a test whose tool or privilege CI provides fails the run (skip-policy.mjs).
// node's own output, its closing summary included, is left as it is.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { isCI, judgeSkips } from './skip-policy.mjs';

const FINAL_CHECK = join('test', 'final', 'secrets-in-logs.test.ts');
// The environment's values are for the runner's own test (test/unit/test-runner.test.ts).
const TEST_TIMEOUT_MS = Number(process.env.LOFT_TEST_TIMEOUT_MS ?? 5 * 60 * 1000);
const RUN_LIMIT_MS = Number(process.env.LOFT_TEST_RUN_LIMIT_MS ?? 40 * 60 * 1000);

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(p);
  }
}
for (const root of roots.length > 0 ? roots : ['test']) {
  if (statSync(root).isDirectory()) walk(root);
  else files.push(root);
}
const isFinal = (f) => resolve(f) === resolve(FINAL_CHECK);
const testFiles = files.filter((f) => !isFinal(f));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// s3rver paginates with DES continuation tokens, which OpenSSL 3 (Node 20 and 24) only has in the legacy provider.
const nodeOptions = [process.env.NODE_OPTIONS ?? '', '--openssl-legacy-provider'].join(' ').trim();
const reporter = process.env.LOFT_TEST_REPORTER ?? 'spec';
const skipReporter = fileURLToPath(new URL('./skip-reporter.mjs', import.meta.url));
const logDir = mkdtempSync(join(tmpdir(), 'loft-test-logs-'));
const skipDir = mkdtempSync(join(tmpdir(), 'loft-test-skips-'));
const env = { ...process.env, NODE_OPTIONS: nodeOptions, LOFT_TEST_LOG_DIR: logDir };
// Set in node:test's own child processes: a runner started under one (this script's own test)
// must run as a top-level runner, with its reporters, not report to the parent.
delete env.NODE_TEST_CONTEXT;

/** Runs node's test runner on `list`; resolves to its exit status and the skips it reported. */
async function runNodeTest(list, name) {
  const skipFile = join(skipDir, `${name}.jsonl`);
  // Not spawnSync: a signal's handler below runs only while this process's event loop turns.
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-reporter=${reporter}`,
      '--test-reporter-destination=stdout',
      `--test-reporter=${skipReporter}`,
      `--test-reporter-destination=${skipFile}`,
      // A hang must fail its test, not use up CI's time: no test or hook runs longer than this (the
      // longest takes about a minute here). Not --test-force-exit: its files exit before their
      // last results reach the runner (42 of one file's 68 tests went unreported with Node 24).
      `--test-timeout=${TEST_TIMEOUT_MS}`,
      ...passThrough,
      ...list,
    ],
    { stdio: 'inherit', env },
  );
  // A file whose servers or timers outlive its tests (a teardown that timed out) never ends, and
  // node's runner waits for it: the whole run is stopped past RUN_LIMIT_MS (the suite takes about
  // 13 minutes here), and node's runner then names the file it was waiting for.
  let overran = false;
  const limit = setTimeout(() => {
    overran = true;
    console.error(
      `run-tests: still running after ${RUN_LIMIT_MS / 1000} s: stopped; the file that did not end is named below ("Interrupted while running")`,
    );
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  }, RUN_LIMIT_MS);
  const [code] = await once(child, 'close');
  clearTimeout(limit);
  return { status: overran ? 1 : (code ?? 1), skips: readSkips(skipFile) };
}

function readSkips(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line))
    .map((s) => ({ ...s, file: s.file === '' ? '(unknown file)' : relative(process.cwd(), s.file) }));
}

/** Prints the skips; returns 1 when CI must fail for them, else 0. */
function reportSkips(skips) {
  const { lines, failures } = judgeSkips(skips, isCI(process.env));
  for (const line of lines) console.log(line);
  return failures.length > 0 ? 1 : 0;
}

// Ctrl-C reaches the test runner too (same process group); this process then only cleans up.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => (interrupted = true));

const suite = testFiles.length > 0 ? await runNodeTest(testFiles, 'suite') : { status: 0, skips: [] };
if (interrupted) {
  rmSync(logDir, { recursive: true, force: true });
  rmSync(skipDir, { recursive: true, force: true });
  process.exit(130);
}
const skipStatus = reportSkips(suite.skips);
const final = await runNodeTest([FINAL_CHECK], 'final');
// FINAL_CHECK skips only outside a normal run (no build, no log directory): judged the same way.
const finalSkipStatus = final.skips.length > 0 ? reportSkips(final.skips) : 0;
rmSync(skipDir, { recursive: true, force: true });
if (final.status === 0) rmSync(logDir, { recursive: true, force: true });
else console.error(`the logs and registered test secrets are kept in ${logDir} for inspection`);
process.exit([suite.status, final.status, skipStatus, finalSkipStatus].find((s) => s !== 0) ?? 0);
