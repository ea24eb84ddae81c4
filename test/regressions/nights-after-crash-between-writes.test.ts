// Regression: a crash after a change's history was written and before the feed state was (one tick apart)
// left the state with the nights of the version before. The journal still notified the booking after the
// restart, but the next read found the history unchanged and kept those nights, so the booking's later
// cancellation was classified against nights that never held it: "no-night-change", no peer told.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.ts';
import { openStore } from '../../src/store/open-store.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { createCrashStore } from '../helpers/crash-store.ts';
import { startServer } from '../helpers/servers.ts';
import { dayFromNow, staysCalendar } from '../helpers/calendars.ts';

const listing = 'beach-house';
const day = (offset: number) => dayFromNow(offset);

test('a booking\'s cancellation is notified after a crash between its history and state writes', async (t) => {
  const stays = [{ uid: 'stay@test', start: day(35), end: day(38) }];
  const feed = { text: staysCalendar(stays) };
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(feed.text);
  });
  const heads: number[] = [];
  const headed = new EventEmitter();
  const peer = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      heads.push(performance.now());
      headed.emit('head');
    }
    res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : staysCalendar([]));
  });
  const headAfter = (at: number) => new Promise<void>((resolve) => {
    const check = () => {
      if (!heads.some((h) => h > at)) return;
      headed.off('head', check);
      resolve();
    };
    headed.on('head', check);
    check();
  });
  const overrides: Partial<ConfigInput> = {
    listings: { [listing]: { peers: [{ name: 'peer', url: `${peer.url}/ical.ics` }] } },
    push: { watch: 0 },
    hooks: { enabled: false },
    timeouts: { shutdown: '300ms' },
  };
  const get = async (app: TestApp) => {
    const res = await request(`${app.url}/calendar/${listing}.ics`);
    await res.body.dump();
    assert.equal(res.statusCode, 200);
  };

  const base = await openStore('memory');
  const crash = createCrashStore(base);
  const first = await startApp(t, upstream.url, overrides, crash.store);
  await get(first);
  await first.app.feeds.settled();
  // The booking is journaled and its history written; the process dies before the feed state is.
  crash.crashAfterNext('feed_history', 'set');
  feed.text = staysCalendar([...stays, { uid: 'booking@test', start: day(50), end: day(53) }]);
  const reading = new AbortController();
  const read = request(`${first.url}/calendar/${listing}.ics`, { signal: reading.signal }).catch(() => undefined);
  await crash.crashed;
  reading.abort();
  await read;
  await first.app.close();
  assert.deepEqual(crash.writes.slice(-2).map((w) => w.namespace), ['feed_pages', 'feed_history']);

  // The restart notifies the booking from the journal; its read finds the history unchanged.
  const second = await startApp(t, upstream.url, overrides, base);
  await get(second);
  await headAfter(0);
  await second.waitForLog((l) => l.msg === 'push notification sent');
  await second.app.feeds.settled();

  feed.text = staysCalendar(stays);
  const cancelledAt = performance.now();
  await get(second);
  await second.app.feeds.settled();
  const classified = await second.waitForLog((l) => l.msg === 'listing change classified' && l.version === 3);
  assert.equal(classified.kind, 'primary', JSON.stringify(classified));
  await headAfter(cancelledAt);
});
