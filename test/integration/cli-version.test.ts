// loft says which Node it runs on, and the suite itself runs the CLI on a supported one (>= 22):
// a checkout whose bootstrap fell back to an end-of-life Node fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
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
