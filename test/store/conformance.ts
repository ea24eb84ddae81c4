// The one conformance suite of the store port (after keyv's test-suite pattern): every backend
// registers it from its own test file, so all of them are held to the same behaviour.
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../../src/clock.ts';
import type { Store, StoreNamespace } from '../../src/store/store.ts';
import { createFakeClock } from './fake-clock.ts';

/** Opens a fresh, empty store for one test and registers its close (and cleanup) on `t`. */
export type MakeStore = (t: TestContext, options?: { clock?: Clock }) => Promise<Store>;

/** Registers the port's conformance tests for the backend `name`. */
export function storeConformance(name: string, makeStore: MakeStore): void {
  describe(`${name} store conformance`, () => {
    test('set then get returns an equal value for every JSON shape', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      const values: Record<string, unknown> = {
        string: 'DTSTART:20250101T090000Z',
        empty: '',
        colon: ':starts with a colon',
        integer: 42,
        negative: -7.25,
        zero: 0,
        boolean: false,
        null: null,
        array: [1, 'two', { three: [3] }, null],
        nested: { feed: { etag: '"abc"', events: [{ uid: 'e1@x', seq: 2 }] }, empty: {} },
        unicode: 'Café Zürich — 東京 🗓️',
      };
      for (const [key, value] of Object.entries(values)) await feeds.set(key, value);
      for (const [key, value] of Object.entries(values)) {
        assert.deepEqual(await feeds.get(key), value, key);
      }
    });

    test('get of a missing key is undefined', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      assert.equal(await feeds.get('never-set'), undefined);
    });

    test('set overwrites the previous value', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      await feeds.set('k', { version: 1 });
      await feeds.set('k', { version: 2 });
      assert.deepEqual(await feeds.get('k'), { version: 2 });
    });

    test('a stored value is a copy, not the caller’s object', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      const value = { events: ['a'] };
      await feeds.set('k', value);
      value.events.push('b');
      assert.deepEqual(await feeds.get('k'), { events: ['a'] });
    });

    test('delete removes the key and reports whether it was there', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      await feeds.set('k', 'v');
      assert.equal(await feeds.delete('k'), true);
      assert.equal(await feeds.get('k'), undefined);
      assert.equal(await feeds.delete('k'), false);
    });

    test('a value with a ttl lives until the injected clock passes it', async (t) => {
      const clock = createFakeClock();
      const feeds = (await makeStore(t, { clock })).namespace('feeds');
      await feeds.set('short', 'v', 1_000);
      await feeds.set('forever', 'v');
      clock.advance(999);
      assert.equal(await feeds.get('short'), 'v');
      clock.advance(2);
      assert.equal(await feeds.get('short'), undefined);
      clock.advance(365 * 24 * 3600 * 1000);
      assert.equal(await feeds.get('forever'), 'v');
    });

    test('a value with a short ttl expires on the system clock', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      const setAt = Date.now();
      await feeds.set('k', 'v', 30);
      await feeds.set('long', 'v', 60_000);
      // Waits until the ttl has surely passed; only the "gone" side is asserted on real time.
      while (Date.now() - setAt <= 60) await sleep(20);
      assert.equal(await feeds.get('k'), undefined);
      assert.equal(await feeds.get('long'), 'v');
    });

    test('set refuses a ttl that is zero, negative or not finite', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(feeds.set('k', 'v', ttlMs), { code: 'INTERNAL_ERROR' }, String(ttlMs));
      }
      assert.equal(await feeds.get('k'), undefined);
    });

    test('the same key in two namespaces holds two values', async (t) => {
      const store = await makeStore(t);
      const feeds = store.namespace('feeds');
      const tokens = store.namespace('tokens');
      await feeds.set('k', 'feed value');
      await tokens.set('k', 'token value');
      assert.equal(await feeds.get('k'), 'feed value');
      assert.equal(await tokens.get('k'), 'token value');
      await feeds.delete('k');
      assert.equal(await tokens.get('k'), 'token value');
    });

    test('namespaces whose names prefix each other stay apart', async (t) => {
      const store = await makeStore(t);
      const feed = store.namespace('feed');
      const feeds = store.namespace('feeds');
      await feed.set('k', 'feed');
      await feeds.set('k', 'feeds');
      await feeds.set('s:k', 'feeds colon');
      assert.deepEqual(await collect(feed), [['k', 'feed']]);
      await feed.clear();
      assert.deepEqual(await collect(feeds), [
        ['k', 'feeds'],
        ['s:k', 'feeds colon'],
      ]);
    });

    test('clear empties its own namespace only', async (t) => {
      const store = await makeStore(t);
      const feeds = store.namespace('feeds');
      const tokens = store.namespace('tokens');
      await feeds.set('a', 1);
      await feeds.set('b', 2);
      await tokens.set('a', 'kept');
      await feeds.clear();
      assert.equal(await feeds.get('a'), undefined);
      assert.deepEqual(await collect(feeds), []);
      assert.equal(await tokens.get('a'), 'kept');
      assert.deepEqual(await collect(tokens), [['a', 'kept']]);
    });

    test('namespace reuses the instance for a name', async (t) => {
      const store = await makeStore(t);
      assert.equal(store.namespace('feeds'), store.namespace('feeds'));
    });

    test('namespace refuses names outside letters, digits, - and _', async (t) => {
      const store = await makeStore(t);
      for (const name of ['', 'a:b', 'a b', '~ping', 'ü']) {
        assert.throws(() => store.namespace(name), { code: 'INTERNAL_ERROR' }, name);
      }
      store.namespace('Feeds_2-x');
    });

    test('entries lists exactly the live entries of one namespace', async (t) => {
      const clock = createFakeClock();
      const store = await makeStore(t, { clock });
      const feeds = store.namespace('feeds');
      const other = store.namespace('other');
      await feeds.set('a', { n: 1 });
      await feeds.set('b', [2]);
      await feeds.set('gone', 'deleted');
      await feeds.delete('gone');
      await feeds.set('expiring', 'x', 100);
      await feeds.set('lasting', 'y', 10_000);
      await other.set('a', 'other');
      clock.advance(101);
      assert.deepEqual(await collect(feeds), [
        ['a', { n: 1 }],
        ['b', [2]],
        ['lasting', 'y'],
      ]);
    });

    test('entries pages through more entries than fit one page', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      const expected: Array<[string, unknown]> = [];
      for (let i = 0; i < 300; i += 1) {
        expected.push([`k${String(i).padStart(3, '0')}`, i]);
        await feeds.set(`k${String(i).padStart(3, '0')}`, i);
      }
      assert.deepEqual(await collect(feeds), expected);
    });

    test('keys with separators, percent signs, unicode and the namespace prefix stay distinct', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      const keys = [
        '',
        'a:b',
        ':',
        '::x::',
        'feeds:x',
        'x',
        '100%',
        '%_%',
        'a%3Ab',
        '*?[]',
        'quote\'d',
        'ключ',
        '日历/2025',
        '🗓️',
        'feeds;x',
      ];
      for (const [i, key] of keys.entries()) await feeds.set(key, i);
      for (const [i, key] of keys.entries()) assert.equal(await feeds.get(key), i, key);
      const listed = await collect(feeds);
      assert.deepEqual(new Map(listed), new Map(keys.map((key, i) => [key, i])));
      assert.equal(listed.length, keys.length);
    });

    test('a 1 MiB value round-trips', async (t) => {
      const feeds = (await makeStore(t)).namespace('feeds');
      const line = 'DESCRIPTION:0123456789abcdefghijklmnopqrstuvwxyz-Zürich-東京\r\n';
      const big = line.repeat(Math.ceil((1024 * 1024) / line.length)).slice(0, 1024 * 1024);
      await feeds.set('big', { ics: big });
      const read = await feeds.get<{ ics: string }>('big');
      assert.equal(read?.ics.length, big.length);
      assert.equal(read?.ics, big);
    });

    test('ping resolves and leaves no entry behind', async (t) => {
      const store = await makeStore(t);
      await Promise.all([store.ping(), store.ping(), store.ping()]);
      assert.deepEqual(await collect(store.namespace('feeds')), []);
    });

    test('add stores only when absent or expired, atomically among concurrent callers', async (t) => {
      const clock = createFakeClock();
      const leases = (await makeStore(t, { clock })).namespace('leases');
      const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => leases.add('watch', `r${i}`, 1_000)));
      assert.equal(outcomes.filter(Boolean).length, 1);
      const holder = await leases.get<string>('watch');
      assert.equal(holder, `r${outcomes.indexOf(true)}`);
      assert.equal(await leases.add('watch', 'late', 1_000), false);
      clock.advance(1_001);
      assert.equal(await leases.add('watch', 'late', 1_000), true);
      assert.equal(await leases.get('watch'), 'late');
      await leases.set('plain', 1);
      assert.equal(await leases.add('plain', 2), false);
      await assert.rejects(leases.add('bad', 1, 0), { code: 'INTERNAL_ERROR' });
    });

    test('deleteIf removes only the holder’s own value', async (t) => {
      const clock = createFakeClock();
      const leases = (await makeStore(t, { clock })).namespace('leases');
      await leases.add('l', { owner: 'a', n: 1 }, 1_000);
      assert.equal(await leases.deleteIf('l', { owner: 'b', n: 1 }), false);
      assert.equal(await leases.get('l') !== undefined, true);
      assert.equal(await leases.deleteIf('l', { owner: 'a', n: 1 }), true);
      assert.equal(await leases.get('l'), undefined);
      assert.equal(await leases.deleteIf('l', { owner: 'a', n: 1 }), false);
      await leases.add('gone', 'a', 1_000);
      clock.advance(1_001);
      assert.equal(await leases.deleteIf('gone', 'a'), false, 'an expired lease is no longer anyone’s');
    });

    test('increment counts from 0, atomically, and refuses what is not an integer', async (t) => {
      const clock = createFakeClock();
      const counters = (await makeStore(t, { clock })).namespace('counters');
      const sums = await Promise.all(Array.from({ length: 25 }, () => counters.increment('n')));
      assert.deepEqual(sums.toSorted((a, b) => a - b), Array.from({ length: 25 }, (_, i) => i + 1));
      assert.equal(await counters.increment('n', -5), 20);
      assert.equal(await counters.get('n'), 20);
      assert.equal(await counters.increment('t', 3, 1_000), 3);
      clock.advance(1_001);
      assert.equal(await counters.get('t'), undefined);
      assert.equal(await counters.increment('t', 1, 1_000), 1, 'an expired counter starts again from 0');
      await counters.set('text', 'x');
      await assert.rejects(counters.increment('text'), { code: 'INTERNAL_ERROR' });
      await assert.rejects(counters.increment('n', 1.5), { code: 'INTERNAL_ERROR' });
    });

    test('setIfStamp writes only over the stamp it read: one of many concurrent writers wins', async (t) => {
      const heads = (await makeStore(t)).namespace('heads');
      assert.equal(await heads.getStamped('h'), undefined);
      const first = await heads.setIfStamp('h', undefined, { version: 1 });
      assert.ok(typeof first === 'string' && first !== '');
      assert.equal(await heads.setIfStamp('h', undefined, { version: 1 }), undefined, 'absent is expected, but it is there');
      assert.deepEqual(await heads.getStamped('h'), { value: { version: 1 }, stamp: first });
      const racers = await Promise.all(Array.from({ length: 10 }, (_, i) => heads.setIfStamp('h', first, { version: 2, by: i })));
      const winners = racers.filter((stamp) => stamp !== undefined);
      assert.equal(winners.length, 1);
      const now = await heads.getStamped<{ by: number }>('h');
      assert.equal(now?.stamp, winners[0]);
      assert.equal(now?.value.by, racers.findIndex((stamp) => stamp !== undefined));
      await heads.set('h', { version: 3 });
      assert.equal((await heads.getStamped('h'))?.stamp, '', 'a plain set leaves the empty stamp');
      assert.equal(await heads.setIfStamp('h', winners[0], { version: 4 }), undefined);
      assert.ok(await heads.setIfStamp('h', '', { version: 4 }));
      await heads.delete('h');
      assert.ok(await heads.setIfStamp('h', undefined, { version: 5 }), 'after a delete, absent again');
    });

    test('a stamped value with a ttl expires like any other', async (t) => {
      const clock = createFakeClock();
      const heads = (await makeStore(t, { clock })).namespace('heads');
      const stamp = await heads.setIfStamp('h', undefined, 'v', 1_000);
      clock.advance(1_001);
      assert.equal(await heads.getStamped('h'), undefined);
      assert.equal(await heads.setIfStamp('h', stamp, 'w', 1_000), undefined);
      assert.ok(await heads.setIfStamp('h', undefined, 'w', 1_000));
    });

    test('a due queue hands each due member to one claimer, and takes it back after the lease', async (t) => {
      const store = await makeStore(t);
      const queue = store.queue('outbox');
      assert.equal(await queue.next(), undefined);
      await queue.schedule('a', 100);
      await queue.schedule('b', 50);
      await queue.schedule('c', 500);
      await queue.schedule('b', 80); // in the queue already: kept at 50
      await queue.schedule('b', 10); // sooner, but schedule never moves a member
      await queue.hasten('c', 900); // later: kept
      await queue.hasten('c', 500);
      assert.deepEqual(await queue.list(10), [['b', 50], ['a', 100], ['c', 500]]);
      assert.equal(await queue.next(), 50);
      assert.equal(await queue.size(), 3);
      const claims = await Promise.all([queue.claim(200, 1_000, 10), queue.claim(200, 1_000, 10)]);
      const taken = claims.flat().map((c) => c.member).toSorted();
      assert.deepEqual(taken, ['a', 'b'], 'each due member once, among concurrent claimers');
      assert.deepEqual(await queue.claim(300, 1_000, 10), [], 'leased members are not due');
      const [claim] = claims.flat().filter((c) => c.member === 'a');
      assert.equal(claim?.token, 1_200);
      // The claimer "died": once the lease ran out, another takes it.
      const again = await queue.claim(1_200, 1_000, 10);
      assert.deepEqual(again.map((c) => c.member).toSorted(), ['a', 'b', 'c']);
      assert.equal(await queue.complete(claim!), false, 'a lease taken over is no longer the first claimer’s');
      const mine = again.find((c) => c.member === 'a')!;
      assert.equal(await queue.complete(mine), true);
      assert.equal(await queue.complete(mine), false);
      assert.equal(await queue.size(), 2);
    });

    test('a due queue: a member rescheduled during its claim is neither completed nor retried away', async (t) => {
      const queue = (await makeStore(t)).queue('outbox');
      await queue.schedule('m', 10);
      const [claim] = await queue.claim(10, 5_000, 1);
      assert.ok(claim);
      await queue.schedule('m', 20); // claimed: in the queue, so not moved
      assert.deepEqual(await queue.list(5), [['m', 5_010]]);
      await queue.hasten('m', 20); // a restart of the one process taking back what its previous run claimed
      assert.equal(await queue.complete(claim), false);
      assert.equal(await queue.retry(claim, 9_999), false);
      assert.deepEqual(await queue.list(5), [['m', 20]]);
      const [second] = await queue.claim(20, 5_000, 1);
      assert.ok(second);
      assert.equal(await queue.retry(second, 7_000), true);
      assert.deepEqual(await queue.list(5), [['m', 7_000]]);
      await queue.remove('m');
      assert.equal(await queue.size(), 0);
      assert.deepEqual(await queue.claim(10_000, 1, 0), []);
    });

    test('queues and namespaces of one name stay apart', async (t) => {
      const store = await makeStore(t);
      await store.queue('outbox').schedule('k', 1);
      await store.namespace('outbox').set('k', 'v');
      assert.deepEqual(await collect(store.namespace('outbox')), [['k', 'v']]);
      assert.deepEqual(await store.queue('outbox').list(5), [['k', 1]]);
      assert.deepEqual(await store.queue('other').list(5), []);
      assert.throws(() => store.queue('no:colons'), { code: 'INTERNAL_ERROR' });
    });

    test('every call after close rejects with STORE_UNAVAILABLE', async (t) => {
      const store = await makeStore(t);
      const feeds = store.namespace('feeds');
      await feeds.set('k', 'v');
      await store.close();
      const unavailable = { code: 'STORE_UNAVAILABLE' };
      await assert.rejects(feeds.get('k'), unavailable);
      await assert.rejects(feeds.set('k', 'v'), unavailable);
      await assert.rejects(feeds.delete('k'), unavailable);
      await assert.rejects(feeds.clear(), unavailable);
      await assert.rejects(collect(feeds), unavailable);
      await assert.rejects(feeds.add('k', 'v'), unavailable);
      await assert.rejects(feeds.setIfStamp('k', undefined, 'v'), unavailable);
      await assert.rejects(feeds.increment('n'), unavailable);
      await assert.rejects(store.queue('q').claim(0, 1, 1), unavailable);
      await assert.rejects(store.ping(), unavailable);
      await store.close();
    });
  });
}

/** Every entry of `space`, sorted by key so order-free listings compare. */
export async function collect(space: StoreNamespace): Promise<Array<[string, unknown]>> {
  const entries: Array<[string, unknown]> = [];
  for await (const entry of space.entries()) entries.push(entry);
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
