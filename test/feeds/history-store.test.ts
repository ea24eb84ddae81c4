// The paged history store: a history comes back exactly as saved, a read that changed one event writes
// one page (and the head), and a crash between the pages and the head leaves the previous history whole.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHistoryStore } from '../../src/feeds/history-store.ts';
import { applyAnalysis, type FeedHistory } from '../../src/feeds/history.ts';
import { createLogger } from '../../src/log.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { packCalendar } from '../../src/work/feed-tasks.ts';
import { createCrashStore } from '../helpers/crash-store.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { createFakeClock } from '../store/fake-clock.ts';

// A history with its entities as a plain Map: a version read in place shares its keys with the one before
// (history.ts), which is the same content in another shape.
function plain<T extends { entities: ReadonlyMap<string, unknown> } | undefined>(history: T): T {
  return (history === undefined ? history : { ...history, entities: new Map(history.entities) }) as T;
}

const now = Date.UTC(2026, 0, 1);
const ttlMs = 60 * 86_400_000;
const logger = createLogger({ level: 'silent' });
const events = (n: number, changed = -1) => Array.from({ length: n }, (_, i) =>
  stay(`e${i}`, '20300101', '20300103', i === changed ? ['LOCATION:changed'] : []));
const read = (history: FeedHistory | undefined, n: number, changed = -1, at = now) =>
  applyAnalysis(history, packCalendar(Buffer.from(calendarOf(...events(n, changed)))), at).history;

/** Counts the store writes per namespace. */
function counting(real: Store): { store: Store; writes: Map<string, number> } {
  const writes = new Map<string, number>();
  return {
    writes,
    store: {
      ...real,
      namespace(name) {
        const inner = real.namespace(name);
        const count = () => writes.set(name, (writes.get(name) ?? 0) + 1);
        return { ...inner, set: (k, v, ttl) => {
          count();
          return inner.set(k, v, ttl);
        }, setIfStamp: (k, expected, v, ttl) => {
          count();
          return inner.setIfStamp(k, expected, v, ttl);
        } };
      },
    },
  };
}

test('a saved history loads back equal, entities, tombstones and all', async (t) => {
  const store = await openStore('memory');
  t.after(() => store.close());
  const histories = createHistoryStore(store, logger);
  const first = read(undefined, 3000);
  const second = read(first, 2990, 5, now + 1000);
  await histories.save('/f.ics', first, undefined, ttlMs);
  await histories.save('/f.ics', second, first, ttlMs);
  const loaded = await createHistoryStore(store, logger).load('/f.ics');
  assert.deepEqual(plain(loaded), plain(second));
  assert.equal(loaded?.tombstones.size, 10);
});

test('a read that changed one of 3,000 events rewrites one page and the head', async (t) => {
  const real = await openStore('memory');
  t.after(() => real.close());
  const { store, writes } = counting(real);
  const histories = createHistoryStore(store, logger);
  const first = read(undefined, 3000);
  await histories.save('/f.ics', first, undefined, ttlMs);
  const pages = writes.get('feed_pages') ?? 0;
  assert.ok(pages >= 8, `${pages} pages for 3,000 events`);
  await histories.save('/f.ics', read(first, 3000, 1234, now + 1000), first, ttlMs);
  assert.equal((writes.get('feed_pages') ?? 0) - pages, 1);
  assert.equal(writes.get('feed_history'), 2);
});

test('a history loaded late (an older head) is never saved over a newer one; nor is one of unknown origin', async (t) => {
  const store = await openStore('memory');
  t.after(() => store.close());
  const histories = createHistoryStore(store, logger);
  const first = read(undefined, 50);
  await histories.save('/f.ics', first, undefined, ttlMs);
  const stale = await histories.load('/f.ics');
  assert.ok(stale);
  const second = read(first, 50, 3, now + 1000);
  assert.equal(await histories.save('/f.ics', second, first, ttlMs), 'saved');
  // The same process now diffs from the older copy it loaded: the stamp it was read with no longer holds.
  assert.equal(await histories.save('/f.ics', read(stale, 50, 4, now + 2000), stale, ttlMs), 'conflict');
  assert.equal(await histories.compare('/f.ics', stale), 'changed');
  assert.equal(await histories.compare('/f.ics', second), 'current');
  assert.equal(await histories.save('/f.ics', read(second, 50, 5, now + 3000), { ...second }, ttlMs), 'conflict');
  assert.deepEqual(plain(await createHistoryStore(store, logger).load('/f.ics')), plain(second));
});

test('two writers of one feed: the second save over the same head is a conflict and writes nothing', async (t) => {
  const store = await openStore('memory');
  t.after(() => store.close());
  const a = createHistoryStore(store, logger);
  const b = createHistoryStore(store, logger);
  const first = read(undefined, 50);
  assert.equal(await a.save('/f.ics', first, undefined, ttlMs), 'saved');
  const base = await b.load('/f.ics');
  assert.ok(base);
  assert.equal(await b.compare('/f.ics', base), 'current');
  const fromA = read(first, 50, 3, now + 1000);
  const fromB = read(first, 50, 4, now + 2000);
  assert.equal(await a.save('/f.ics', fromA, first, ttlMs), 'saved');
  assert.equal(await b.compare('/f.ics', base), 'changed');
  assert.equal(await b.save('/f.ics', fromB, base, ttlMs), 'conflict');
  assert.deepEqual(plain(await createHistoryStore(store, logger).load('/f.ics')), plain(fromA), 'the winner’s history, whole');
  // The loser re-reads, then its save goes through over the winner's head.
  const reread = await b.load('/f.ics');
  assert.deepEqual(plain(reread), plain(fromA));
  const next = read(fromA, 50, 5, now + 3000);
  assert.equal(await b.save('/f.ics', next, reread, ttlMs), 'saved');
  assert.deepEqual(plain(await createHistoryStore(store, logger).load('/f.ics')), plain(next));
  // Two first saves of a feed nobody had: one wins.
  const outcomes = await Promise.all([a.save('/g.ics', first, undefined, ttlMs), b.save('/g.ics', fromB, undefined, ttlMs)]);
  assert.deepEqual(outcomes.toSorted(), ['conflict', 'saved']);
});

test('a crash after the new pages and before the new head leaves the previous history whole', async (t) => {
  const real = await openStore('memory');
  t.after(() => real.close());
  const first = read(undefined, 3000);
  await createHistoryStore(real, logger).save('/f.ics', first, undefined, ttlMs);
  const crash = createCrashStore(real, { reject: true });
  crash.crashAfterNext('feed_pages', 'set');
  const histories = createHistoryStore(crash.store, logger);
  const before = await histories.load('/f.ics');
  await assert.rejects(histories.save('/f.ics', read(first, 3000, 7, now + 1000), before, ttlMs));
  assert.deepEqual(plain(await createHistoryStore(real, logger).load('/f.ics')), plain(first));
});

test('pages nothing changed in are rewritten before their TTL: a feed changing every 10 days keeps its history', async (t) => {
  const clock = createFakeClock(now);
  const store = await openStore('memory', { clock });
  t.after(() => store.close());
  const histories = createHistoryStore(store, logger);
  const day = 86_400_000;
  let history = read(undefined, 2000, -1, clock.now());
  await histories.save('/f.ics', history, undefined, ttlMs, { now: clock.now() });
  for (let i = 1; i <= 10; i += 1) {
    clock.advance(10 * day);
    const next = read(history, 2000, i, clock.now());
    await histories.save('/f.ics', next, history, ttlMs, { now: clock.now() });
    history = next;
  }
  assert.deepEqual(plain(await createHistoryStore(store, logger).load('/f.ics')), plain(history), 'whole after 100 days');
});

test('a history re-made with the same content (a new fingerprint) still saves only the pages that changed', async (t) => {
  const real = await openStore('memory');
  t.after(() => real.close());
  const { store, writes } = counting(real);
  const histories = createHistoryStore(store, logger);
  const first = read(undefined, 3000);
  await histories.save('/f.ics', first, undefined, ttlMs);
  const pagesAtFirst = writes.get('feed_pages') ?? 0;
  // The engine keeps this copy (same content, new fingerprint) without saving it, and says what it stands for.
  const same = { ...first, fingerprint: 'another' };
  histories.carry(first, same);
  await histories.save('/f.ics', read(same, 3000, 1234, now + 1000), same, ttlMs);
  assert.equal((writes.get('feed_pages') ?? 0) - pagesAtFirst, 1);
  let stored = 0;
  for await (const _ of real.namespace('feed_pages').entries()) stored += 1;
  assert.equal(stored, pagesAtFirst, 'the superseded page is gone, no page is orphaned');
});
