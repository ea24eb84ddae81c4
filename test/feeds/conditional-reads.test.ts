// The sidecar's own reads are conditional (SPEC "Push": If-None-Match / If-Modified-Since with the upstream's
// own validators): against a real upstream on 127.0.0.1 that keeps an ETag / Last-Modified per content, a
// 304 is a read of the unchanged feed, a client's GET is never conditional, validators survive a restart,
// and an upstream that answers 304 unasked, or while a drop is held, breaks nothing.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { createFeedEngine, feedKey } from '../../src/feeds/engine.ts';
import { createFeedMetrics } from '../../src/feeds/feed-metrics.ts';
import { createFeedFetcher } from '../../src/feeds/fetch.ts';
import { validatorsOf } from '../../src/feeds/upstream-validators.ts';
import { createUpstreamPool } from '../../src/http/clients.ts';
import { createLogger } from '../../src/log.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { inlineAnalyzer } from '../helpers/analysis.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock, type FakeClock } from '../store/fake-clock.ts';

const minute = 60_000;
const event = (uid: string) =>
  `BEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260110\r\nSUMMARY:${uid}\r\nEND:VEVENT\r\n`;
const calendar = (...uids: string[]) => `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n${uids.map(event).join('')}END:VCALENDAR\r\n`;

type Mode = 'etag' | 'weak-etag' | 'last-modified' | 'none' | 'always-304';

/** An upstream serving `text`, with validators per `mode`, answering conditionals with 304; it records the
 * conditional headers of every request. */
async function startUpstream(t: TestContext, text: string, mode: Mode) {
  const state = { text, mode, version: 1, seen: [] as { inm?: string; ims?: string }[] };
  const fake = await startServer(t, (req, res) => {
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    state.seen.push({ ...(inm ? { inm } : {}), ...(ims ? { ims } : {}) });
    const etag = `${state.mode === 'weak-etag' ? 'W/' : ''}"v${state.version}"`;
    const modified = new Date(Date.UTC(2026, 0, 1) + state.version * minute).toUTCString();
    if (state.mode === 'always-304' || (inm !== undefined && inm === etag) || (ims !== undefined && ims === modified)) {
      res.writeHead(304, state.mode === 'etag' || state.mode === 'weak-etag' ? { etag } : {});
      res.end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/calendar',
      ...(state.mode === 'etag' || state.mode === 'weak-etag' ? { etag } : {}),
      ...(state.mode === 'last-modified' ? { 'last-modified': modified } : {}),
    });
    res.end(state.text);
  });
  return Object.assign(state, {
    url: fake.url,
    set(next: string) {
      state.text = next;
      state.version += 1;
    },
  });
}

async function engineFor(t: TestContext, origin: string, store: Store, clock: FakeClock) {
  const upstream = createUpstreamPool({ origin, connectTimeoutMs: 1_000, timeoutMs: 5_000 });
  t.after(() => upstream.destroy());
  const changes: number[] = [];
  const engine = createFeedEngine({
    store, clock, analyzer: inlineAnalyzer(),
    fetcher: createFeedFetcher({ upstream, maxBodyBytes: 1_000_000, clock }),
    logger: createLogger({ level: 'silent' }),
    metrics: createFeedMetrics(createRegistry()),
    retentionMs: 30 * 24 * 60 * minute, maxFeeds: 100, hold: { spanMs: 10 * minute, fraction: 0.5 },
  });
  engine.onChange(async (change) => {
    changes.push(change.version ?? 0);
  });
  return { engine, changes };
}

const feed = feedKey('/calendar/a.ics', 'a', {});

for (const mode of ['etag', 'weak-etag', 'last-modified'] as const) {
  test(`own reads send the upstream's ${mode} back; a 304 is a read of the unchanged feed`, async (t) => {
    const upstream = await startUpstream(t, calendar('x', 'y'), mode);
    const clock = createFakeClock(Date.UTC(2026, 0, 5));
    const { engine, changes } = await engineFor(t, upstream.url, await openStore('memory'), clock);
    const first = await engine.readIfChanged(feed, {});
    assert.equal(first.kind, 'calendar');
    clock.advance(minute);
    const second = await engine.readIfChanged(feed, {});
    assert.equal(second.kind, 'not-modified');
    if (second.kind === 'not-modified' && first.kind === 'calendar') assert.equal(second.tag, first.tag);
    const sent = upstream.seen[1] ?? {};
    if (mode === 'last-modified') assert.ok(sent.ims, 'If-Modified-Since sent');
    else assert.equal(sent.inm, mode === 'weak-etag' ? 'W/"v1"' : '"v1"');
    assert.equal(engine.lastRead(feed.key)?.readAt, clock.now(), 'the 304 counts as a read, now');
    assert.equal((await engine.state(feed.key))?.lastReadAt, clock.now());
    await engine.settled();
    assert.deepEqual(changes, [1], 'no new version, no change processed');

    // A change: the upstream answers 200 to the old validators; the new content is applied.
    upstream.set(calendar('x', 'y', 'z'));
    const third = await engine.readIfChanged(feed, {});
    assert.equal(third.kind, 'calendar');
    await engine.settled();
    assert.deepEqual(changes, [1, 2]);
    // A client's GET is never conditional: its body is the upstream's.
    const plain = await engine.read(feed, {});
    assert.equal(plain.kind, 'calendar');
    assert.deepEqual(upstream.seen.at(-1), {}, 'no conditional header on a client read');
    if (plain.kind === 'calendar') assert.equal(plain.answer.body.toString(), calendar('x', 'y', 'z'));
  });
}

test('validators are kept in the store: after a restart the first own read is conditional', async (t) => {
  const upstream = await startUpstream(t, calendar('x'), 'etag');
  const store = await openStore('memory');
  const clock = createFakeClock(Date.UTC(2026, 0, 5));
  const before = await engineFor(t, upstream.url, store, clock);
  assert.equal((await before.engine.readIfChanged(feed, {})).kind, 'calendar');
  const after = await engineFor(t, upstream.url, store, clock);
  assert.equal((await after.engine.readIfChanged(feed, {})).kind, 'not-modified');
  assert.equal(upstream.seen.at(-1)?.inm, '"v1"');
});

test('an upstream whose validators never change (a constant ETag) still has its booking found within the hour',
  async (t) => {
    const upstream = await startUpstream(t, calendar('x'), 'etag');
    const clock = createFakeClock(Date.UTC(2026, 0, 5));
    const { engine, changes } = await engineFor(t, upstream.url, await openStore('memory'), clock);
    assert.equal((await engine.readIfChanged(feed, {})).kind, 'calendar');
    // The export changes but keeps answering 304 to its old ETag (it never bumps it).
    upstream.text = calendar('x', 'booked');
    for (let i = 0; i < 59; i += 1) {
      clock.advance(minute);
      assert.equal((await engine.readIfChanged(feed, {})).kind, 'not-modified', `minute ${i + 1}`);
    }
    clock.advance(minute);
    const whole = await engine.readIfChanged(feed, {});
    assert.equal(whole.kind, 'calendar', 'an hour after the last whole read, the read is whole');
    assert.deepEqual(upstream.seen.at(-1), {}, 'sent without validators');
    await engine.settled();
    assert.deepEqual(changes, [1, 2], 'the booking is found');
  });

test('an upstream without validators is read in full; one that answers 304 unasked breaks nothing', async (t) => {
  const upstream = await startUpstream(t, calendar('x', 'y'), 'none');
  const clock = createFakeClock(Date.UTC(2026, 0, 5));
  const { engine, changes } = await engineFor(t, upstream.url, await openStore('memory'), clock);
  assert.equal((await engine.readIfChanged(feed, {})).kind, 'calendar');
  assert.equal((await engine.readIfChanged(feed, {})).kind, 'calendar');
  assert.deepEqual(upstream.seen, [{}, {}], 'nothing to send back');
  upstream.mode = 'always-304';
  const odd = await engine.readIfChanged(feed, {});
  assert.equal(odd.kind, 'not-calendar', 'a 304 nobody asked for is no calendar');
  const state = await engine.state(feed.key);
  assert.equal(state?.version, 1, 'the snapshot stands');
  assert.notEqual(state?.notCalendar, true, 'HEAD still answers from the snapshot');
  upstream.mode = 'none';
  upstream.set(calendar('x', 'y', 'z'));
  assert.equal((await engine.readIfChanged(feed, {})).kind, 'calendar');
  await engine.settled();
  assert.deepEqual(changes, [1, 2]);
});

test('while a drop is held, own reads are whole, so the hold is confirmed by the body it holds', async (t) => {
  const upstream = await startUpstream(t, calendar('a', 'b', 'c', 'd'), 'etag');
  const clock = createFakeClock(Date.UTC(2026, 0, 5));
  const { engine, changes } = await engineFor(t, upstream.url, await openStore('memory'), clock);
  await engine.readIfChanged(feed, {});
  upstream.set(calendar('a'));
  const held = await engine.readIfChanged(feed, {});
  assert.ok(held.kind === 'calendar' && held.held, 'the drop is held');
  clock.advance(5 * minute);
  const again = await engine.readIfChanged(feed, {});
  assert.ok(again.kind === 'calendar' && again.held, 'read whole while held, still held');
  assert.equal(upstream.seen.at(-1)?.inm, undefined, 'no validator of the held body is sent');
  clock.advance(6 * minute);
  const confirmed = await engine.readIfChanged(feed, {});
  assert.ok(confirmed.kind === 'calendar' && !confirmed.held, 'confirmed after the span, applied');
  await engine.settled();
  assert.deepEqual(changes, [1, 2]);
  // From then on, the applied content's validators are sent back.
  assert.equal((await engine.readIfChanged(feed, {})).kind, 'not-modified');
  assert.equal(upstream.seen.at(-1)?.inm, '"v2"');
});

test('a Last-Modified within a second of the answer is not used as a validator (RFC 9110 §8.8.2.2)', () => {
  const at = Date.UTC(2026, 0, 5, 12);
  const date = new Date(at).toUTCString();
  assert.equal(validatorsOf({ 'last-modified': date, date }, at), undefined);
  assert.deepEqual(validatorsOf({ 'last-modified': new Date(at - 5_000).toUTCString(), date }, at),
    { lastModified: new Date(at - 5_000).toUTCString() });
  assert.deepEqual(validatorsOf({ etag: 'W/"x"' }, at), { etag: 'W/"x"' });
  assert.equal(validatorsOf({ 'last-modified': 'garbage' }, at), undefined);
});
