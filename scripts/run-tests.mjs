// Runs the test suite with node's own runner. Node 20 does not expand globs for --test, so this
// collects the *.test.ts files itself. Arguments narrow the folders (default: test/).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

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
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// s3rver paginates with DES continuation tokens, which Node 20's OpenSSL 3 only has in the legacy provider.
const nodeOptions = [process.env.NODE_OPTIONS ?? '', '--openssl-legacy-provider'].join(' ').trim();
const reporter = process.env.LOFT_TEST_REPORTER ?? 'spec';
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-reporter=${reporter}`, ...passThrough, ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: nodeOptions } },
);
process.exit(result.status ?? 1);
