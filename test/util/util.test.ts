// The shared helpers: the keyed serial queue, single-flight, and the cooperative slices.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createKeyedQueue } from '../../src/util/keyed-queue.ts';
import { createSingleFlight } from '../../src/util/single-flight.ts';
import { createSlice, eachInSlices, sortInSlices } from '../../src/util/yield.ts';

test('a keyed queue runs one key\'s tasks in order, other keys beside them, and a failure does not stop it', async () => {
  const queue = createKeyedQueue();
  const order: string[] = [];
  const gate = Promise.withResolvers<void>();
  const first = queue('a', async () => {
    await gate.promise;
    order.push('a1');
    throw new Error('a1 failed');
  });
  const second = queue('a', async () => order.push('a2'));
  await queue('b', async () => order.push('b1'));
  gate.resolve();
  await assert.rejects(first, /a1 failed/);
  await second;
  await queue.idle();
  assert.deepEqual(order, ['b1', 'a1', 'a2']);
});

test('single-flight shares one run per key while it runs, then starts a new one', async () => {
  const flight = createSingleFlight<number>();
  let runs = 0;
  const gate = Promise.withResolvers<void>();
  const work = async () => {
    runs += 1;
    await gate.promise;
    return runs;
  };
  const both = [flight('k', work), flight('k', work)];
  assert.equal(flight.size, 1);
  gate.resolve();
  assert.deepEqual(await Promise.all(both), [1, 1]);
  assert.equal(flight.size, 0);
  assert.equal(await flight('k', work), 2);
});

test('sortInSlices sorts like Array#sort, across its blocks', async () => {
  const ids = Array.from({ length: 20_000 }, (_, i) => `id-${(i * 7919) % 20_011}-${i % 7}`);
  assert.deepEqual(await sortInSlices(ids, createSlice(0)), [...ids].sort());
});

test('eachInSlices visits every item in order and lets the loop run between slices', async () => {
  const seen: number[] = [];
  let ticks = 0;
  const ticking = setInterval(() => (ticks += 1), 0);
  await eachInSlices(Array.from({ length: 5_000 }, (_, i) => i), (i) => seen.push(i), createSlice(0));
  clearInterval(ticking);
  assert.equal(seen.length, 5_000);
  assert.ok(seen.every((v, i) => v === i));
  assert.ok(ticks > 0, 'timers ran while it worked');
});
