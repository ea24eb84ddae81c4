// The held-drops gauge (icalpush_feed_held_drops{state}): a drop being held counts within its span, then past
// it until a read applies or discards it, so an alert can tell a drop nobody has read again.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { createFeedEngine, feedKey } from '../../src/feeds/engine.ts';
import { createFeedMetrics, registerHeldDropsGauge } from '../../src/feeds/feed-metrics.ts';
import { createFeedFetcher } from '../../src/feeds/fetch.ts';
import { createUpstreamPool } from '../../src/http/clients.ts';
import { createLogger } from '../../src/log.ts';
import { renderExposition } from '../../src/metrics/exposition.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { openStore } from '../../src/store/open-store.ts';
import { inlineAnalyzer } from '../helpers/analysis.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock } from '../store/fake-clock.ts';

const minute = 60_000;
const event = (uid: string) =>
  `BEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260110\r\nSUMMARY:${uid}\r\nEND:VEVENT\r\n`;
const calendar = (...uids: string[]) =>
  `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n${uids.map(event).join('')}END:VCALENDAR\r\n`;

/** An engine with a 10-minute hold span in front of an upstream serving `text` (mutable). */
async function setup(t: TestContext) {
  const served = { text: calendar('a', 'b', 'c', 'd') };
  const fake = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(served.text);
  });
  const upstream = createUpstreamPool({ origin: fake.url, connectTimeoutMs: 1_000, timeoutMs: 5_000 });
  t.after(() => upstream.destroy());
  const clock = createFakeClock();
  const registry = createRegistry();
  const engine = createFeedEngine({
    store: await openStore('memory'),
    analyzer: inlineAnalyzer(),
    fetcher: createFeedFetcher({ upstream, maxBodyBytes: 1_000_000, clock }),
    clock,
    logger: createLogger({ level: 'silent' }),
    metrics: createFeedMetrics(registry),
    retentionMs: 30 * 24 * 60 * minute,
    maxFeeds: 100,
    hold: { spanMs: 10 * minute, fraction: 0.5 },
  });
  registerHeldDropsGauge(registry, () => engine.heldDrops());
  const gauge = () => {
    const text = renderExposition(registry);
    const value = (state: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`icalpush_feed_held_drops{state="${state}"} `));
      return line === undefined ? undefined : Number(line.split(' ')[1]);
    };
    return { within: value('within_span'), past: value('past_span') };
  };
  return { served, clock, engine, gauge, feed: feedKey('/calendar/a.ics', 'a', {}) };
}

test('a held drop counts within its span, then past it until the next read applies it', async (t) => {
  const { served, clock, engine, gauge, feed } = await setup(t);
  await engine.read(feed, {});
  assert.deepEqual(gauge(), { within: 0, past: 0 });
  served.text = calendar('a');
  const held = await engine.read(feed, {});
  assert.ok(held.kind === 'calendar' && held.held);
  assert.deepEqual(gauge(), { within: 1, past: 0 });
  clock.advance(10 * minute);
  assert.deepEqual(gauge(), { within: 0, past: 1 });
  const applied = await engine.read(feed, {});
  assert.ok(applied.kind === 'calendar' && !applied.held);
  assert.deepEqual(gauge(), { within: 0, past: 0 });
});

test('a held drop that goes away stops counting', async (t) => {
  const { served, engine, gauge, feed } = await setup(t);
  await engine.read(feed, {});
  served.text = calendar();
  await engine.read(feed, {});
  assert.deepEqual(gauge(), { within: 1, past: 0 });
  served.text = calendar('a', 'b', 'c', 'd');
  const back = await engine.read(feed, {});
  assert.ok(back.kind === 'calendar' && !back.held);
  assert.deepEqual(gauge(), { within: 0, past: 0 });
});
