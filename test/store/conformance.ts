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
