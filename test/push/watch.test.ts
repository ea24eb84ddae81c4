// The watch on its own (src/push/watch.ts), on a fake clock: listings spread over the interval, at most
// `concurrency` reads at once, a failing listing backing off, a slow one never stopping the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ListingPlan } from '../../src/push/plans.ts';
import { createWatch, type WatchReadOutcome } from '../../src/push/watch.ts';
import { createFakeClock } from '../store/fake-clock.ts';

const plansOf = (n: number) => new Map(Array.from({ length: n }, (_, i) => {
  const id = `l${i}`;
  return [id, { id, target: `/calendar/${id}.ics`, key: `/calendar/${id}.ics`, peers: [], headers: {} } as ListingPlan];
}));
const plans10 = plansOf(10);
const plans3 = plansOf(3);
const plans1 = plansOf(1);
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('each listing is read once per interval, spread evenly, at most `concurrency` at once', async () => {
  const clock = createFakeClock(Date.UTC(2026, 11, 1));
  const reads: { id: string; at: number }[] = [];
  let inFlight = 0;
  let most = 0;
  const pending: (() => void)[] = [];
  const watch = createWatch({
    plans: () => plans10, clock, intervalMs: 10_000, concurrency: 2,
    read: (plan) => {
      reads.push({ id: plan.id, at: clock.now() });
      inFlight += 1;
      most = Math.max(most, inFlight);
      return new Promise<WatchReadOutcome>((resolve) => pending.push(() => {
        inFlight -= 1;
        resolve('read');
      }));
    },
  });
  watch.start();
  // Ticks every 1 s (10 s over 10 listings); listing i's slot is at i seconds.
  for (let ms = 50; ms < 20_000; ms += 50) {
    clock.advance(50);
    await settle();
    while (pending.length > 0) (pending.shift() as () => void)();
    await settle();
  }
  const perListing = Map.groupBy(reads, (r) => r.id);
  assert.equal(perListing.size, 10);
  for (const [id, list] of perListing) assert.equal(list.length, 2, `${id}: once per 10 s over 20 s`);
  const firstRound = reads.slice(0, 10).map((r) => (r.at - Date.UTC(2026, 11, 1)) / 1000);
  assert.deepEqual(firstRound, [1, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'spread over the interval, at the first tick of each slot');
  assert.ok(most <= 2, `at most 2 at once, saw ${most}`);
  await watch.close();
});

test('a read that fails backs its listing off; a stuck one holds only its own slot', async () => {
  const clock = createFakeClock(Date.UTC(2026, 11, 1));
  const reads: string[] = [];
  const watch = createWatch({
    plans: () => plans3, clock, intervalMs: 1_000, concurrency: 2,
    read: (plan) => {
      reads.push(plan.id);
      if (plan.id === 'l0') return Promise.resolve('failed');
      if (plan.id === 'l1') return new Promise<WatchReadOutcome>(() => {});
      return Promise.resolve('read');
    },
  });
  watch.start();
  for (let ms = 0; ms < 10_000; ms += 50) {
    clock.advance(50);
    await settle();
  }
  const count = (id: string) => reads.filter((r) => r === id).length;
  assert.equal(count('l1'), 1, 'the stuck read is never started again while it hangs');
  assert.ok(count('l2') >= 9, `the healthy listing keeps its interval (${count('l2')} reads in 10 s)`);
  // l0 fails: 1 s, 2 s, 4 s, 8 s apart (doubling) instead of every second.
  assert.ok(count('l0') <= 4, `the failing listing backs off (${count('l0')} reads in 10 s)`);
  void watch.close();
});

test('a listing whose reads fail backs off, and is back to its interval once a read succeeds', async () => {
  const clock = createFakeClock(Date.UTC(2026, 11, 1));
  const at: number[] = [];
  let failing = true;
  const watch = createWatch({
    plans: () => plans1, clock, intervalMs: 100, concurrency: 1,
    read: () => {
      at.push(clock.now() - Date.UTC(2026, 11, 1));
      return Promise.resolve(failing ? 'failed' : 'read');
    },
  });
  watch.start();
  const run = async (untilMs: number) => {
    while (clock.now() - Date.UTC(2026, 11, 1) < untilMs) {
      clock.advance(50);
      await settle();
    }
  };
  await run(3_000);
  // Every 100 ms would be 30 reads; doubling (200, 400, 800, 1,600, capped at 16×) is 5.
  assert.deepEqual(at, [100, 200, 600, 1400, 3000]);
  failing = false;
  await run(6_000);
  const recovered = at.filter((ms) => ms > 3_000);
  // The next read comes at its backed-off slot (1.6 s on), succeeds, and from then on every 100 ms.
  assert.equal(recovered[0], 4_600);
  assert.deepEqual(recovered.slice(1, 4).map((ms, i) => ms - (recovered[i] as number)), [100, 100, 100]);
  await watch.close();
});
