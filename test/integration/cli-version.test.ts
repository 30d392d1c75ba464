// loft says which Node it runs on, and the suite itself runs the CLI on a supported one (>= 22):
// a checkout whose bootstrap fell back to an end-of-life Node fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { runLoft } from '../helpers/loft-cli.js';

const { version, engines } = createRequire(import.meta.url)('../../package.json') as {
  version: string;
  engines: { node: string };
};

test('--version prints loft and Node versions, and the Node is one package.json supports', async () => {
  const run = await runLoft(['--version']);
  assert.equal(run.code, 0, run.stderr);
  const m = /^(\S+) \(Node v(\d+)\.\d+\.\d+\)\n$/.exec(run.stdout);
  assert.ok(m, `unexpected --version output: ${JSON.stringify(run.stdout)}`);
  assert.equal(m[1], version);
  const minimum = Number(/^>=(\d+)$/.exec(engines.node)?.[1]);
  assert.ok(minimum >= 22, `engines.node is ${engines.node}`);
  assert.ok(Number(m[2]) >= minimum, `the CLI ran on Node ${m[2]}, below engines.node ${engines.node}`);
});

test('the built entry point is executable: `npx loft` (the README quick start) runs it directly', async () => {
  // tsc writes dist/ without the execute bit; npm only sets it when it links an installed
  // package's bin, never for the checkout's own package, so the build sets it.
  const main = new URL('../../dist/cli/main.js', import.meta.url);
  assert.equal(statSync(main).mode & 0o111, 0o111, 'dist/cli/main.js is executable');
  const { stdout } = await promisify(execFile)(main.pathname, ['--version']);
  assert.match(stdout, new RegExp(`^${version.replace(/\./g, '\\.')} \\(Node v`));
});
