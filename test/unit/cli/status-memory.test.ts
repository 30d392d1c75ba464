import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryBudgetLine, recordMemoryUse } from '../../../src/cli/memory-use.js';
import { MemoryBudget } from '../../../src/memory-budget.js';
import type { Runtime } from '../../../src/cli/runtime.js';

const MiB = 1024 * 1024;

describe('--status: the memory budget line', () => {
  test('budget, in use and peak from the record the last upload wrote', () => {
    const budget = new MemoryBudget(96 * MiB);
    budget.reserve(32 * MiB);
    void budget.take(40 * MiB).then((n) => budget.give(n));
    const state = new Map<string, string>();
    const rt = { uploads: { memoryBudget: budget } } as unknown as Runtime;
    recordMemoryUse({ setState: (k, v) => void state.set(k, v) }, rt);
    const line = memoryBudgetLine(96 * MiB, state.get('memory_budget'));
    assert.match(
      line,
      new RegExp(
        `^memory budget: 96\\.0 MiB \\(loft\\.memory_budget\\); in use 72\\.0 MiB, peak 72\\.0 MiB \\(pid ${process.pid} at \\d{4}-`,
      ),
    );
  });

  test('no record, a damaged one, or one under another budget: the budget alone', () => {
    for (const stored of [
      undefined,
      '',
      '{',
      JSON.stringify({ total: 1, inUse: 0, peak: 0, pid: 1, at: 0 }),
    ]) {
      assert.equal(
        memoryBudgetLine(96 * MiB, stored),
        'memory budget: 96.0 MiB (loft.memory_budget); no upload has reported its use yet',
      );
    }
  });
});
