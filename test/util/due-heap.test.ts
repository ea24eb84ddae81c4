import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createDueHeap } from '../../src/util/due-heap.ts';

test('property: whatever the order of pushes, pops come earliest first', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 1e9 }), { maxLength: 200 }), (dues) => {
    const heap = createDueHeap();
    dues.forEach((due, i) => heap.push(due, `k${i}`));
    const out: number[] = [];
    for (let item = heap.peek(); item !== undefined; item = heap.peek()) {
      out.push(item.dueAt);
      heap.pop();
    }
    assert.deepEqual(out, [...dues].sort((a, b) => a - b));
  }), { numRuns: 200 });
});
