// The layer rule of scripts/check-layers.ts on the real tree, and on the real tree with one bad
// import planted, so a rule that stopped looking would fail here.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { layerViolations, readImportGraph, type ImportGraph } from '../../scripts/check-layers.js';

const SRC = join(import.meta.dirname, '..', '..', 'src');

function planted(file: string, spec: string): ImportGraph {
  const graph = readImportGraph(SRC);
  assert.ok(graph.has(file), `${file} exists in src/`);
  graph.set(file, [...graph.get(file)!, spec]);
  return graph;
}

test('src/ follows the layers: no upward or sideways import, no cycle, guarded modules in place', () => {
  assert.deepEqual(layerViolations(readImportGraph(SRC)), []);
});

test('an upward import is rejected, naming both files and the rule', () => {
  assert.deepEqual(layerViolations(planted('storage/open-store.ts', '../config/schema.js')), [
    'storage/open-store.ts imports config/schema.ts: storage/ sits below config/ (imports point downward only)',
  ]);
  const fromFormat = layerViolations(planted('format/narinfo.ts', '../upload/compression.js'));
  assert.equal(fromFormat.length, 1);
  assert.match(
    fromFormat[0]!,
    /^format\/narinfo\.ts imports upload\/compression\.ts: format\/ sits below upload\//,
  );
});

test('peers of one rank do not import each other', () => {
  const problems = layerViolations(planted('store/nix-cli.ts', '../storage/object-store.js'));
  assert.deepEqual(problems, [
    'store/nix-cli.ts imports storage/object-store.ts: store/ and storage/ are peers and must not import each other',
  ]);
});

test('a downward import and an import inside a folder are allowed', () => {
  assert.deepEqual(layerViolations(planted('cli/main.ts', '../format/hash.js')), []);
  assert.deepEqual(layerViolations(planted('upload/upload-path.ts', './compression.js')), []);
});

test('guarded modules: the AWS SDK outside storage/s3*, a process outside store/, files in format/', () => {
  assert.match(layerViolations(planted('upload/upload-path.ts', '@aws-sdk/client-s3')).join('\n'), /AWS SDK/);
  assert.match(layerViolations(planted('daemon/worker.ts', 'node:child_process')).join('\n'), /only store\//);
  assert.match(layerViolations(planted('format/narinfo.ts', 'node:fs')).join('\n'), /format\/ is pure/);
});

test('a cycle between two files of one folder is reported', () => {
  const problems = layerViolations(planted('prune/path-graph.ts', './policy.js'));
  assert.deepEqual(problems, ['import cycle among prune/path-graph.ts, prune/policy.ts']);
});

test('a folder missing from the layer table is an error, not a pass', () => {
  const graph = readImportGraph(SRC);
  graph.set('newfolder/thing.ts', ['../format/hash.js']);
  assert.throws(() => layerViolations(graph), /src\/newfolder\/ is not in the layer table/);
});
