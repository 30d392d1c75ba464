// Runs the test suite with node's own runner. Node 20 did not expand globs for --test, so this
// collects the *.test.ts files itself. Arguments narrow the folders (default: test/).
//
// Every loft child process the tests start writes its output into a fresh log directory named by
// LOFT_TEST_LOG_DIR, and the helpers that create secrets register them there. After all other test
// files, FINAL_CHECK greps every collected log for every registered secret; it always runs last.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const FINAL_CHECK = join('test', 'final', 'secrets-in-logs.test.ts');

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
const logDir = mkdtempSync(join(tmpdir(), 'loft-test-logs-'));
const env = { ...process.env, NODE_OPTIONS: nodeOptions, LOFT_TEST_LOG_DIR: logDir };

function runNodeTest(list) {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-reporter=${reporter}`, ...passThrough, ...list],
    { stdio: 'inherit', env },
  );
  return result.status ?? 1;
}

// Ctrl-C reaches the test runner too (same process group); this process then only cleans up.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => (interrupted = true));

const status = testFiles.length > 0 ? runNodeTest(testFiles) : 0;
if (interrupted) {
  rmSync(logDir, { recursive: true, force: true });
  process.exit(130);
}
const finalStatus = runNodeTest([FINAL_CHECK]);
if (finalStatus === 0) rmSync(logDir, { recursive: true, force: true });
else console.error(`the logs and registered test secrets are kept in ${logDir} for inspection`);
process.exit(status !== 0 ? status : finalStatus);
