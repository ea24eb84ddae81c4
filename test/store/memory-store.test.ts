// The memory backend: the conformance suite, plus its bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedMap, EntryBudget } from '../../src/store/bounded-map.ts';
import { openStore } from '../../src/store/open-store.ts';
import { collect, storeConformance } from './conformance.ts';

storeConformance('memory', async (t, options) => {
  const store = await openStore('memory', options);
  t.after(() => store.close());
  return store;
});

test('memory store reports its kind', async (t) => {
  const store = await openStore('memory');
  t.after(() => store.close());
  assert.equal(store.kind, 'memory');
});

test('memory store evicts the least recently written entry past its bound', async (t) => {
  const store = await openStore('memory', { maxMemoryEntries: 3 });
  t.after(() => store.close());
  const feeds = store.namespace('feeds');
  await feeds.set('a', 1);
  await feeds.set('b', 2);
  await feeds.set('c', 3);
  await feeds.get('b');
  await feeds.set('a', 10);
  await feeds.set('d', 4);
  assert.deepEqual(await collect(feeds), [
    ['a', 10],
    ['c', 3],
    ['d', 4],
  ]);
});

test('memory store bound covers all namespaces together', async (t) => {
  const store = await openStore('memory', { maxMemoryEntries: 2 });
  t.after(() => store.close());
  const feeds = store.namespace('feeds');
  const tokens = store.namespace('tokens');
  await feeds.set('a', 1);
  await tokens.set('b', 2);
  await tokens.set('c', 3);
  assert.deepEqual(await collect(feeds), []);
  assert.deepEqual(await collect(tokens), [
    ['b', 2],
    ['c', 3],
  ]);
});

test('memory store deletes and clears free room under the bound', async (t) => {
  const store = await openStore('memory', { maxMemoryEntries: 2 });
  t.after(() => store.close());
  const feeds = store.namespace('feeds');
  const tokens = store.namespace('tokens');
  await feeds.set('a', 1);
  await feeds.delete('a');
  await tokens.set('b', 2);
  await tokens.clear();
  await feeds.set('c', 3);
  await feeds.set('d', 4);
  assert.deepEqual(await collect(feeds), [
    ['c', 3],
    ['d', 4],
  ]);
});

test('bounded map holds 100,000 entries by default', () => {
  const budget = new EntryBudget();
  assert.equal(budget.maxEntries, 100_000);
  const map = new BoundedMap<number>(budget);
  for (let i = 0; i < 100_001; i += 1) map.set(`k${i}`, i);
  assert.equal(map.size, 100_000);
  assert.equal(budget.size, 100_000);
  assert.equal(map.has('k0'), false);
  assert.equal(map.get('k100000'), 100_000);
});

test('bounded map refuses a bound that is not a positive integer', () => {
  for (const maxEntries of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new EntryBudget(maxEntries), RangeError, String(maxEntries));
  }
});
