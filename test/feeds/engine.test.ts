// The feed engine over a real fetcher and a fake upstream: shared reads applied once, holding
// sudden drops, the feed cap, and a failing store that costs the client nothing.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFeedEngine, type FeedEngineOptions, feedKey } from '../../src/feeds/engine.ts';
import { createFeedMetrics } from '../../src/feeds/feed-metrics.ts';
import { createFeedFetcher } from '../../src/feeds/fetch.ts';
import { createUpstreamPool } from '../../src/http/clients.ts';
import { createLogger } from '../../src/log.ts';
import { renderExposition } from '../../src/metrics/exposition.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { inlineAnalyzer } from '../helpers/analysis.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock } from '../store/fake-clock.ts';

const minute = 60_000;
const event = (uid: string) =>
  `BEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260110\r\nSUMMARY:${uid}\r\nEND:VEVENT\r\n`;
const calendar = (...uids: string[]) => `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n${uids.map(event).join('')}END:VCALENDAR\r\n`;

/** An upstream serving `body.text` (mutable), optionally slowly, counting requests. */
async function startUpstream(t: TestContext, text: string, delayMs = 0) {
  const state = { text, requests: 0 };
  const fake = await startServer(t, async (_req, res) => {
    state.requests += 1;
    if (delayMs > 0) await sleep(delayMs);
    res.writeHead(200, { 'content-type': 'text/calendar' });
    res.end(state.text);
  });
  return Object.assign(state, { url: fake.url });
}

async function engineFor(
  t: TestContext,
  origin: string,
  overrides: Partial<FeedEngineOptions> & { store?: Store } = {},
) {
  const upstream = createUpstreamPool({ origin, connectTimeoutMs: 1_000, timeoutMs: 5_000 });
  t.after(() => upstream.destroy());
  const store = overrides.store ?? (await openStore('memory'));
  const clock = overrides.clock ?? createFakeClock();
  const registry = createRegistry();
  const engine = createFeedEngine({
    store,
    analyzer: inlineAnalyzer(),
    fetcher: createFeedFetcher({ upstream, maxBodyBytes: 1_000_000, clock }),
    clock,
    logger: createLogger({ level: 'silent' }),
    metrics: createFeedMetrics(registry),
    retentionMs: 30 * 24 * 60 * minute,
    maxFeeds: 100,
    hold: { spanMs: 10 * minute, fraction: 0.5 },
    ...overrides,
  });
  return { engine, metrics: () => renderExposition(registry) };
}

const feed = (target = '/calendar/a.ics') => feedKey(target, 'a', {});

test('concurrent reads share one upstream fetch and apply it once', async (t) => {
  const upstream = await startUpstream(t, calendar('x', 'y'), 50);
  const { engine } = await engineFor(t, upstream.url);
  const reads = await Promise.all(Array.from({ length: 10 }, () => engine.read(feed(), {})));
  assert.equal(upstream.requests, 1);
  for (const read of reads) {
    assert.equal(read.kind, 'calendar');
    if (read.kind === 'calendar') assert.equal(read.history?.version, 1);
  }
});

test('a sudden drop is held for the span, then applied when it persists', async (t) => {
  const upstream = await startUpstream(t, calendar('a', 'b', 'c', 'd'));
  const clock = createFakeClock();
  const { engine, metrics } = await engineFor(t, upstream.url, { clock });
  await engine.read(feed(), {});
  upstream.text = calendar('a');
  const held = await engine.read(feed(), {});
  assert.ok(held.kind === 'calendar' && held.held);
  assert.equal(held.history?.version, 1);
  assert.equal(held.history?.entities.size, 4);
  assert.deepEqual((await engine.state(feed().key))?.hold, { since: clock.now(), entities: 1 });
  assert.match(metrics(), /icalpush_feed_upstream_reads_total\{outcome="held"\} 1/);

  clock.advance(9 * minute);
  const stillHeld = await engine.read(feed(), {});
  assert.ok(stillHeld.kind === 'calendar' && stillHeld.held);

  clock.advance(2 * minute);
  const applied = await engine.read(feed(), {});
  assert.ok(applied.kind === 'calendar' && !applied.held);
  assert.equal(applied.history?.version, 2);
  assert.deepEqual([...applied.history?.tombstones.keys() ?? []].sort(), ['b', 'c', 'd']);
  assert.equal((await engine.state(feed().key))?.hold, undefined);
});

test('a drop that goes away is discarded: no version, no tombstone', async (t) => {
  const upstream = await startUpstream(t, calendar('a', 'b'));
  const clock = createFakeClock();
  const { engine } = await engineFor(t, upstream.url, { clock });
  await engine.read(feed(), {});
  upstream.text = calendar();
  assert.ok((await engine.read(feed(), {})).kind === 'calendar');
  upstream.text = calendar('a', 'b');
  clock.advance(20 * minute);
  const back = await engine.read(feed(), {});
  assert.ok(back.kind === 'calendar' && !back.held);
  assert.equal(back.history?.version, 1);
  assert.equal(back.history?.tombstones.size, 0);
  assert.equal((await engine.state(feed().key))?.hold, undefined);
});

test('an empty export is a drop even for a single event; a small removal is not', async (t) => {
  const upstream = await startUpstream(t, calendar('only'));
  const { engine } = await engineFor(t, upstream.url);
  await engine.read(feed(), {});
  upstream.text = calendar();
  const empty = await engine.read(feed(), {});
  assert.ok(empty.kind === 'calendar' && empty.held);

  const other = feed('/calendar/b.ics');
  upstream.text = calendar('a', 'b', 'c');
  await engine.read(other, {});
  upstream.text = calendar('a', 'b');
  const removal = await engine.read(other, {});
  assert.ok(removal.kind === 'calendar' && !removal.held);
  assert.equal(removal.history?.version, 2);
});

test('with a hold span of 0 every answer is applied at once', async (t) => {
  const upstream = await startUpstream(t, calendar('a', 'b'));
  const { engine } = await engineFor(t, upstream.url, { hold: { spanMs: 0, fraction: 0.5 } });
  await engine.read(feed(), {});
  upstream.text = calendar();
  const read = await engine.read(feed(), {});
  assert.ok(read.kind === 'calendar' && !read.held);
  assert.equal(read.history?.version, 2);
});

test('past maxFeeds, a new feed is answered without a snapshot and nothing is stored', async (t) => {
  const upstream = await startUpstream(t, calendar('a'));
  const { engine } = await engineFor(t, upstream.url, { maxFeeds: 1 });
  assert.equal((await engine.read(feed('/calendar/a.ics'), {})).kind, 'calendar');
  const second = await engine.read(feed('/calendar/b.ics'), {});
  assert.ok(second.kind === 'calendar');
  assert.equal(second.history, undefined);
  assert.match(second.tag, /^[A-Za-z0-9_-]{27}$/);
  assert.equal(await engine.state(feed('/calendar/b.ics').key), undefined);
  assert.equal((await engine.states()).length, 1);
});

test('a failing store costs the client nothing: the answer comes back unversioned', async (t) => {
  const upstream = await startUpstream(t, calendar('a'));
  const real = await openStore('memory');
  t.after(() => real.close());
  const broken: Store = {
    ...real,
    kind: 'broken',
    namespace(name) {
      const ns = real.namespace(name);
      return { ...ns, get: () => Promise.reject(new Error('disk on fire')) };
    },
  };
  const { engine, metrics } = await engineFor(t, upstream.url, { store: broken });
  const read = await engine.read(feed(), {});
  assert.ok(read.kind === 'calendar');
  assert.equal(read.history, undefined);
  assert.ok(read.answer.body.toString().includes('UID:a'));
  assert.match(metrics(), /icalpush_feed_upstream_reads_total\{outcome="store_error"\} 1/);
});

test('credentials select separate snapshots; the key never holds the credential', () => {
  const anonymous = feedKey('/calendar/a.ics', 'a', {});
  const alice = feedKey('/calendar/a.ics', 'a', { authorization: 'Bearer alice-secret' });
  const bob = feedKey('/calendar/a.ics', 'a', { authorization: 'Bearer bob-secret' });
  assert.equal(new Set([anonymous.key, alice.key, bob.key]).size, 3);
  assert.ok(!alice.key.includes('alice-secret'));
  assert.equal(alice.target, '/calendar/a.ics');
});

test('an older answer finishing after a newer one is not applied: the snapshot never goes back', async (t) => {
  // Two fetches of one feed that do not share (different Host): the first asked answers last, with the
  // content as it was when it was asked for.
  let current = calendar('stay-1');
  const fake = await startServer(t, (req, res) => {
    const asked = current;
    const delayMs = req.headers.host === 'slow.example' ? 150 : 0;
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/calendar' }).end(asked), delayMs);
  });
  const changes: Array<number | undefined> = [];
  const { engine, metrics } = await engineFor(t, fake.url);
  engine.onChange(async (change) => {
    changes.push(change.version);
  });
  await engine.read(feed(), {});

  const slow = engine.read(feed(), { host: 'slow.example' });
  await sleep(20);
  current = calendar('stay-1', 'stay-2');
  const fast = await engine.read(feed(), { host: 'fast.example' });
  const late = await slow;

  assert.equal(fast.kind === 'calendar' && fast.history?.version, 2);
  assert.ok(late.kind === 'calendar');
  assert.equal(late.history?.version, 2, 'the older answer is answered from the newest history (tokens stay valid)');
  assert.notEqual(late.tag, fast.kind === 'calendar' ? fast.tag : undefined, 'its ETag is its own content\'s');
  assert.equal(late.answer.body.toString(), calendar('stay-1'), 'its caller still got the bytes it asked for');
  const history = await engine.history(feed().key);
  assert.equal(history?.version, 2);
  assert.ok(history?.entities.get('stay-2'));
  assert.equal(history.tombstones.size, 0, 'never a removal');
  await engine.settled();
  // The first read, then the booking.
  assert.deepEqual(changes, [1, 2]);
  assert.match(metrics(), /icalpush_feed_upstream_reads_total\{outcome="superseded"\} 1/);
});
