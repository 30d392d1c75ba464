// Which Node.js versions loft refuses (src/cli/node-version.ts): node:zlib has zstd from 22.15 and
// 23.8, and the pinned native addons need a Node at least that new.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MIN_NODE, nodeIsRecentEnough, nodeTooOldMessage } from '../../../src/cli/node-version.js';

void describe('the Node.js loft runs on', () => {
  void test('22.15 and later 22s, 23.8 and later 23s, and 24 on are enough; older ones are not', () => {
    for (const v of ['22.15.0', '22.22.1', '23.8.0', '23.11.1', '24.0.0', '24.21.0', '25.2.1', '30.0.0'])
      assert.equal(nodeIsRecentEnough(v), true, v);
    for (const v of ['18.19.0', '20.20.2', '21.7.3', '22.0.0', '22.14.0', '23.7.0', '', 'x'])
      assert.equal(nodeIsRecentEnough(v), false, v);
    assert.equal(nodeIsRecentEnough(process.versions.node), true, 'the Node the tests run on');
  });

  void test('the refusal is one line naming the version, where that node is, and what to do', () => {
    const line = nodeTooOldMessage('20.20.2', '/usr/bin/node');
    assert.ok(!line.includes('\n'));
    for (const part of ['20.20.2', '/usr/bin/node', MIN_NODE, 'npx loft'])
      assert.ok(line.includes(part), part);
  });
});
