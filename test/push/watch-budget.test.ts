// The adaptive watch (src/push/watch.ts, SPEC "Push": the watch must not cost the platform more than its
// polling), on a fake clock, as properties over tables of cases: the budget is never exceeded over any
// window, active listings go before idle ones, a listing read by anyone within its interval is not read
// again, the map is reconciled when it changes, and replicas share the budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ListingPlan } from '../../src/push/plans.ts';
import { createWatch, type Watch, type WatchOptions, type WatchReason } from '../../src/push/watch.ts';
import { createFakeClock, type FakeClock } from '../store/fake-clock.ts';

const t0 = Date.UTC(2026, 11, 1);
const plan = (id: string) => ({ id, target: `/calendar/${id}.ics`, key: `/calendar/${id}.ics`, peers: [],
  headers: {} }) as ListingPlan;
const mapOf = (ids: readonly string[]) => new Map(ids.map((id) => [id, plan(id)]));
const ids = (n: number, prefix = 'l') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const settle = () => new Promise((resolve) => setImmediate(resolve));

type Run = { clock: FakeClock; watch: Watch; reads: { id: string; at: number }[]; reasons: WatchReason[];
  until(ms: number): Promise<void>; close(): Promise<void>; };

/** A watch over `map()` whose reads answer after `answerMs` (0: at once), driven in 50 ms steps. */
function run(options: Partial<WatchOptions> & { map: () => ReadonlyMap<string, ListingPlan>; answerMs?: number }): Run {
  const clock = createFakeClock(t0);
  const reads: { id: string; at: number }[] = [];
  const reasons: WatchReason[] = [];
  const watch = createWatch({
    plans: options.map, clock, intervalMs: 1_000, concurrency: 1_000,
    ...options,
    read: options.read ?? ((p) => {
      reads.push({ id: p.id, at: clock.now() - t0 });
      if (!options.answerMs) return Promise.resolve('read');
      return new Promise((resolve) => clock.setTimeout(() => resolve('read'), options.answerMs as number));
    }),
    onRead: (reason) => reasons.push(reason),
  });
  watch.start();
  return {
    clock, watch, reads, reasons,
    async until(ms) {
      while (clock.now() - t0 < ms) {
        clock.advance(50);
        await settle();
      }
    },
    async close() {
      const closing = watch.close();
      // Reads under way answer on the fake clock.
      clock.advance(options.answerMs ?? 0);
      await closing;
    },
  };
}

/** The most reads in any window of `windowMs` (sliding over the read times). */
function busiest(at: readonly number[], windowMs: number): number {
  const sorted = [...at].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i += 1) {
    while ((sorted[i] as number) - (sorted[j] as number) >= windowMs) j += 1;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

const budgets = [
  { name: '200 listings every 1 s, 5 reads/s', listings: 200, intervalMs: 1_000, rate: 5 },
  { name: '50 listings every 2 s, 20 reads/s', listings: 50, intervalMs: 2_000, rate: 20 },
  { name: '1,000 listings every 10 s, 1 read/s', listings: 1_000, intervalMs: 10_000, rate: 1 },
  { name: '30 listings every 1 s, 100 reads/s (not short)', listings: 30, intervalMs: 1_000, rate: 100 },
];

for (const c of budgets) {
  test(`the budget holds over every window: ${c.name}`, async () => {
    const map = mapOf(ids(c.listings));
    const r = run({ map: () => map, intervalMs: c.intervalMs, maxRatePerSecond: c.rate, answerMs: 20 });
    await r.until(30_000);
    const at = r.reads.map((read) => read.at);
    for (const windowMs of [1_000, 5_000, 20_000]) {
      // A token bucket of one tick's worth (at least one read) and one more: rate × window, plus that.
      const bound = Math.floor((c.rate * windowMs) / 1000) + Math.max(1, Math.ceil(c.rate / 20)) + 2;
      const most = busiest(at, windowMs);
      assert.ok(most <= bound, `${most} reads in some ${windowMs} ms window, bound ${bound}`);
    }
    const demand = c.listings / (c.intervalMs / 1000);
    const expected = Math.min(demand, c.rate) * 30;
    assert.ok(at.length >= 0.85 * expected, `uses its budget: ${at.length} reads of ~${expected}`);
    await r.close();
  });
}

test('a replica reads with its share of the budget: the fleet total stays within maxRate', async () => {
  const map = mapOf(ids(300));
  const owned = (replica: number) => (p: ListingPlan) => Number(p.id.slice(1)) % 3 === replica;
  const runs = [0, 1, 2].map((replica) => run({ map: () => map, maxRatePerSecond: 6, replicas: () => 3,
    isMine: owned(replica), answerMs: 20 }));
  for (let ms = 0; ms < 20_000; ms += 50) {
    for (const r of runs) r.clock.advance(50);
    await settle();
  }
  const all = runs.flatMap((r) => r.reads.map((read) => read.at));
  assert.ok(busiest(all, 5_000) <= 6 * 5 + 3 + 1, `fleet: ${busiest(all, 5_000)} reads in 5 s, at most ~33`);
  for (const r of runs) {
    assert.ok(r.reads.every((read) => Number(read.id.slice(1)) % 3 === runs.indexOf(r)), 'only its own share');
    assert.ok(r.reads.length >= 0.85 * 2 * 20, `each replica reads ~2/s: ${r.reads.length} in 20 s`);
    await r.close();
  }
});

test('when the budget is short, active listings are read first, the most overdue first', async () => {
  const map = mapOf([...ids(20, 'a'), ...ids(200, 'i')]);
  const r = run({ map: () => map, intervalMs: 2_000, idleIntervalMs: 20_000, maxRatePerSecond: 10,
    isActive: (p) => p.id.startsWith('a') });
  await r.until(20_000);
  const byId = Map.groupBy(r.reads, (read) => read.id);
  // 20 active listings every 2 s need exactly the 10/s: idle ones get what is left, i.e. nothing.
  for (const id of ids(20, 'a')) {
    const at = (byId.get(id) ?? []).map((read) => read.at);
    assert.ok(at.length >= 8, `${id} read every ~2 s: ${at.length} reads in 20 s`);
    for (let i = 1; i < at.length; i += 1) assert.ok((at[i] as number) - (at[i - 1] as number) <= 3_000, `${id}: gap ${at}`);
  }
  const idle = r.reads.filter((read) => read.id.startsWith('i')).length;
  assert.ok(idle <= 10, `idle listings read only with what active ones leave: ${idle}`);
  assert.ok(r.reasons.filter((x) => x === 'active').length >= 160);
  await r.close();
});

test('with budget to spare, idle listings are read every idleInterval and active ones every interval', async () => {
  const map = mapOf([...ids(5, 'a'), ...ids(40, 'i')]);
  const r = run({ map: () => map, intervalMs: 1_000, idleIntervalMs: 10_000, maxRatePerSecond: 50,
    isActive: (p) => p.id.startsWith('a') });
  await r.until(40_000);
  const count = (prefix: string) => r.reads.filter((read) => read.id.startsWith(prefix)).length;
  assert.ok(Math.abs(count('a') - 5 * 40) <= 10, `active: ${count('a')} reads, ~200`);
  assert.ok(Math.abs(count('i') - 40 * 4) <= 45, `idle: ${count('i')} reads, ~160`);
  const per = Map.groupBy(r.reads.filter((read) => read.id.startsWith('i')), (read) => read.id);
  for (const [id, list] of per) {
    for (let i = 1; i < list.length; i += 1) {
      assert.ok((list[i] as { at: number }).at - (list[i - 1] as { at: number }).at >= 10_000 - 100, `${id} read early`);
    }
  }
  await r.close();
});

test('a listing read by anyone within its interval is not read again by the watch', async () => {
  const map = mapOf(ids(10));
  const clockRef: { now?: () => number } = {};
  // l0..l4 are read by a client every 700 ms (a peer polling through the sidecar); the interval is 1 s.
  const lastReadAt = (p: ListingPlan) => {
    const now = clockRef.now?.() ?? t0;
    return Number(p.id.slice(1)) < 5 ? now - ((now - t0) % 700) : undefined;
  };
  const r = run({ map: () => map, intervalMs: 1_000, lastReadAt });
  clockRef.now = () => r.clock.now();
  await r.until(20_000);
  const polled = r.reads.filter((read) => Number(read.id.slice(1)) < 5);
  assert.ok(polled.length <= 5, `read by clients every 700 ms: the watch leaves them be (${polled.length} reads)`);
  assert.ok(r.reasons.includes('skipped-recently-read'));
  const others = r.reads.filter((read) => Number(read.id.slice(1)) >= 5);
  assert.ok(others.length >= 5 * 19, `the others keep their interval: ${others.length}`);
  await r.close();
});

test('the map is a getter: on change, staying listings keep their slot, new ones are spread, removed ones stop', async () => {
  let map: ReadonlyMap<string, ListingPlan> = mapOf(ids(10));
  const r = run({ map: () => map, intervalMs: 10_000 });
  await r.until(10_000);
  const firstRound = new Map(r.reads.map((read) => [read.id, read.at]));
  assert.equal(firstRound.size, 10);
  // Reload: l0..l4 stay, l5..l9 go, n0..n4 come.
  map = mapOf([...ids(5), ...ids(5, 'n')]);
  const reloadedAt = 10_000;
  await r.until(40_000);
  const after = r.reads.filter((read) => read.at > reloadedAt);
  assert.ok(after.every((read) => !/^l[5-9]$/.test(read.id)), 'removed listings are not read');
  for (const id of ids(5)) {
    const at = after.filter((read) => read.id === id).map((read) => read.at);
    // Same place in the spread: every 10 s from its first read.
    assert.ok(at.every((ms) => (ms - (firstRound.get(id) as number)) % 10_000 <= 1_000), `${id} kept its slot: ${at}`);
  }
  const newcomers = ids(5, 'n').map((id) => after.find((read) => read.id === id)?.at ?? -1);
  assert.ok(newcomers.every((ms) => ms > reloadedAt && ms <= reloadedAt + 10_000 + 1_000), `new ones read within an interval: ${newcomers}`);
  assert.ok(new Set(newcomers.map((ms) => Math.floor(ms / 1_000))).size >= 4, `spread: ${newcomers}`);
  await r.close();
});

test('a listing becoming active moves to the active interval: at once when touched, else at the promotion pass',
  async () => {
    const active = new Set<string>();
    const map = mapOf(ids(4));
    const r = run({ map: () => map, intervalMs: 1_000, idleIntervalMs: 60_000, isActive: (p) => active.has(p.id) });
    await r.until(5_000);
    assert.ok(r.reads.filter((read) => read.id === 'l3').length <= 1);
    active.add('l3');
    r.watch.touched('l3');
    await r.until(15_000);
    const l3 = r.reads.filter((read) => read.id === 'l3' && read.at > 5_000);
    assert.ok(l3.length >= 9, `read every ~1 s from the touch on: ${l3.length}`);
    // Activity nobody told the watch of (a change known from before a restart) is found by the pass, every
    // idleInterval / 4 at most.
    active.add('l2');
    await r.until(45_000);
    const l2 = r.reads.filter((read) => read.id === 'l2' && read.at > 15_000);
    assert.ok(l2.length >= 10, `read every ~1 s from the pass on: ${l2.length}`);
    await r.close();
  });

test('a stuck read and an erring upstream under a budget: the others still get the budget', async () => {
  const map = mapOf(ids(20));
  const clock0: { r?: Run } = {};
  const reads: string[] = [];
  const r = run({ map: () => map, intervalMs: 2_000, maxRatePerSecond: 10, concurrency: 4,
    read: (p) => {
      reads.push(p.id);
      if (p.id === 'l0') return new Promise(() => {});
      if (p.id === 'l1') return Promise.resolve('failed');
      return Promise.resolve('read');
    } });
  clock0.r = r;
  await r.until(20_000);
  const count = (id: string) => reads.filter((x) => x === id).length;
  assert.equal(count('l0'), 1, 'the stuck read is not started again');
  assert.ok(count('l1') <= 4, `the failing listing backs off: ${count('l1')}`);
  assert.ok(count('l5') >= 8, `the others keep their interval: ${count('l5')}`);
  void r.close();
});
