// Regressions found by reading the push decision against SPEC "Push", each through the real app:
// - a booking near the far end of the window after weeks without a change was compared over a window
//   that ended weeks early (the nights were counted at the last change): never pushed;
// - a listing with a zone counted its own timed events by local dates and its peers' by UTC dates: an
//   imported timed stay looked primary (an echo back to the peer it came from);
// - a change recovered after a crash was explained by a peer that had imported it from us while we were
//   down: the other peers were never told;
// - an operator notify after a peer refused the change's HEAD sent nothing ("already told").
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { request } from 'undici';
import { openStore } from '../../src/store/open-store.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { createCrashStore } from '../helpers/crash-store.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { eventually } from '../helpers/network.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock } from '../store/fake-clock.ts';

const dayMs = 86_400_000;
const ymd = (ms: number) => new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');
const decisions = (app: TestApp) => app.logs.filter((l) => l.msg === 'listing change classified');

async function get(app: TestApp, listing = 'x'): Promise<void> {
  const res = await request(`${app.url}/calendar/${listing}.ics`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
}

/** An upstream serving `feed.text`, and peers counting HEADs (each serves its own `text`). */
async function servers(t: TestContext, names: string[], status: () => number = () => 200) {
  const feed = { text: calendarOf() };
  const upstream = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(feed.text);
  });
  const heads: string[] = [];
  const peers = await Promise.all(names.map(async (name) => {
    const state = { name, text: calendarOf(), url: '' };
    const server = await startServer(t, (req, res) => {
      if (req.method === 'HEAD') {
        heads.push(name);
        res.writeHead(status()).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/calendar' }).end(state.text);
    });
    state.url = `${server.url}/ical/x.ics`;
    return state;
  }));
  return { feed, upstream, heads, peers };
}

test('a booking 725 days ahead after 60 days without a change is primary: one HEAD', async (t) => {
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12));
  const { feed, upstream, heads, peers } = await servers(t, ['peer']);
  feed.text = calendarOf(stay('dec@test', '20261220', '20261223'));
  const app = await startApp(t, upstream.url, {
    listings: { x: { peers: peers.map((p) => ({ name: p.name, url: p.url })) } }, push: { watch: 0 },
  }, undefined, clock);
  await get(app);
  await eventually(() => decisions(app).length >= 1);
  for (let i = 0; i < 60; i += 1) {
    clock.advance(dayMs);
    await get(app);
  }
  const start = clock.now() + 725 * dayMs;
  feed.text = calendarOf(stay('dec@test', '20261220', '20261223'), stay('far@test', ymd(start), ymd(start + 2 * dayMs)));
  await get(app);
  await eventually(() => decisions(app).length >= 2);
  const decision = decisions(app)[1] as { kind: string; nights: { added: string[] } };
  assert.equal(decision.kind, 'primary');
  assert.deepEqual(decision.nights.added, [`${new Date(start).toISOString().slice(0, 10)}/${
    new Date(start + 2 * dayMs).toISOString().slice(0, 10)}`]);
  clock.advance(10);
  await eventually(() => heads.length >= 1);
  assert.deepEqual(heads, ['peer']);
});

test('a timed stay imported from a peer, in a listing with a zone, is imported: no echo', async (t) => {
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 20));
  const { feed, upstream, heads, peers } = await servers(t, ['peer']);
  const timed = (uid: string) => [
    'BEGIN:VEVENT', `UID:${uid}`, 'DTSTAMP:20261201T000000Z', 'DTSTART;TZID=America/Los_Angeles:20270110T160000',
    'DTEND;TZID=America/Los_Angeles:20270112T100000', 'SUMMARY:Reserved', 'END:VEVENT',
  ].join('\r\n');
  const app = await startApp(t, upstream.url, {
    listings: { x: { timezone: 'America/Los_Angeles', peers: peers.map((p) => ({ name: p.name, url: p.url })) } },
    push: { watch: 0 },
  }, undefined, clock);
  await get(app);
  await eventually(() => decisions(app).length >= 1);
  // 16:00 on the 10th to 10:00 on the 12th in Los Angeles touches the 10th to the 12th there (a timed event
  // blocks every date it touches), but by UTC dates (00:00Z on the 11th to 18:00Z on the 12th) only the
  // 11th and the 12th: the 10th was a night no peer explained.
  (peers[0] as { text: string }).text = calendarOf(timed('peer-booking'));
  feed.text = calendarOf(timed('imported-from-peer'));
  await get(app);
  await eventually(() => decisions(app).length >= 2);
  const decision = decisions(app)[1] as { kind: string; nights: { added: string[] } };
  assert.equal(decision.kind, 'imported');
  assert.deepEqual(decision.nights.added, ['2027-01-10/2027-01-13']);
  await app.app.close();
  assert.deepEqual(heads, []);
});

test('a change recovered after a crash is primary even when a peer imported it from us meanwhile', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'icalpush-recovered-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'icalpush.db');
  const { feed, upstream, heads, peers } = await servers(t, ['A', 'B']);
  feed.text = calendarOf(stay('a@test', '20270110', '20270113'));
  const config = {
    listings: { x: { peers: peers.map((p) => ({ name: p.name, url: p.url })) } }, push: { watch: 0 as const },
  };
  const real = await openStore(path);
  const crash = createCrashStore(real, { reject: true });
  const first = await startApp(t, upstream.url, config, crash.store);
  await get(first);
  // The direct booking is journaled, then the process dies before its snapshot (and any HEAD).
  crash.crashAfterNext('feed_history', 'set');
  feed.text = calendarOf(stay('a@test', '20270110', '20270113'), stay('b@test', '20270120', '20270124'));
  await get(first);
  await first.waitForLog((l) => l.msg === 'feed snapshot not applied');
  await first.app.close();
  await real.close();
  assert.deepEqual(heads, []);
  // While we were down, peer A polled our feed and imported the booking.
  (peers[0] as { text: string }).text = calendarOf(stay('imported-from-x', '20270120', '20270124'));
  const second = await startApp(t, upstream.url, config, await openStore(path));
  const decision = await second.waitForLog((l) => l.msg === 'listing change classified');
  assert.equal(decision.kind, 'primary', String(decision.why));
  await eventually(() => heads.length >= 2);
  assert.deepEqual([...heads].sort(), ['A', 'B']);
});

test('an operator notify after a peer refused the change\'s HEAD tells that peer again', async (t) => {
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12));
  let refusing = true;
  const { feed, upstream, heads, peers } = await servers(t, ['peer'], () => (refusing ? 404 : 200));
  feed.text = calendarOf(stay('a@test', '20270110', '20270115'));
  const app = await startApp(t, upstream.url, {
    listings: { x: { peers: peers.map((p) => ({ name: p.name, url: p.url })) } }, push: { watch: 0 },
  }, undefined, clock);
  await get(app);
  feed.text = calendarOf(stay('a@test', '20270110', '20270115'), stay('b@test', '20270301', '20270305'));
  await get(app);
  await eventually(() => decisions(app).length >= 2);
  clock.advance(10);
  await app.waitForLog((l) => l.msg === 'push notification refused by peer');
  refusing = false;
  const res = await request(`${app.url}/_icalpush/listings/x/changed`, { method: 'POST' });
  assert.equal(res.statusCode, 202);
  assert.deepEqual(((await res.body.json()) as { notified: string[] }).notified, ['peer']);
  clock.advance(10);
  await app.waitForLog((l) => l.msg === 'push notification sent');
  assert.deepEqual(heads, ['peer', 'peer']);
  // Told now: another notify sends nothing.
  const again = await request(`${app.url}/_icalpush/listings/x/changed`, { method: 'POST' });
  assert.deepEqual(((await again.body.json()) as { notified: string[] }).notified, []);
});
