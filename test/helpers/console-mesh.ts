// A platform in a state worth looking at, through the real app on a fake clock, for the console's tests:
// `rome` (Europe/Rome) got a booking made on the platform (primary) and notified two peers, one of which
// answers 503 (failing, its notification pending a retry); `lisbon` imported a stay its peer shows
// (imported), then got an inbound HEAD from it; `house`'s export suddenly dropped every stay (a held drop).
// An admin token is set, and feed and peer URLs carry secrets in their queries that no page may show.
import type { TestContext } from 'node:test';
import { request } from 'undici';
import { createFakeClock, type FakeClock } from '../store/fake-clock.ts';
import { startApp, type TestApp } from './app.ts';
import { dayFromNow, staysCalendar } from './calendars.ts';
import { eventually } from './network.ts';
import { startServer } from './servers.ts';

/** The admin token of the mesh. */
export const meshToken = 'console-admin-token-7f3a';
/** Secrets the mesh's URLs carry: none may appear on a page. */
export const meshSecrets = [meshToken, 'feed-secret-91c2', 'peer-secret-5d07'];

/** The mesh's start: 23:30Z, which is already tomorrow in Rome. */
export const meshStartMs = Date.UTC(2026, 11, 1, 23, 30);

export type ConsoleMesh = { app: TestApp; clock: FakeClock; auth: string; heads: Record<string, number> };

/** Starts the mesh and brings it to its state (a few seconds of real time, a few minutes of fake). */
export async function startConsoleMesh(t: TestContext): Promise<ConsoleMesh> {
  const clock = createFakeClock(meshStartMs);
  const day = (n: number) => dayFromNow(n, meshStartMs);
  const many = Array.from({ length: 6 }, (_, i) => ({ uid: `house-${i}@pms`, start: day(10 + 3 * i), end: day(12 + 3 * i) }));
  const feeds: Record<string, string> = {
    rome: staysCalendar([{ uid: 'rome-1@pms', start: day(3), end: day(6) }]),
    lisbon: staysCalendar([]),
    house: staysCalendar(many),
  };
  const upstream = await startServer(t, (req, res) => {
    const match = /^\/calendar\/([a-z]+)\.ics$/.exec(req.url?.split('?')[0] ?? '');
    const feed = match ? feeds[match[1] ?? ''] : undefined;
    if (req.method === 'GET' && feed !== undefined) {
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(feed);
      return;
    }
    res.writeHead(404).end();
  });
  const lisbonStay = { uid: 'HMX42@booking', start: day(20), end: day(24) };
  const bookingStays = [lisbonStay];
  const heads: Record<string, number> = {};
  const peer = await startServer(t, (req, res) => {
    const path = req.url?.split('?')[0] ?? '';
    if (req.method === 'HEAD') {
      heads[path] = (heads[path] ?? 0) + 1;
      res.writeHead(path.startsWith('/vrbo/') ? 503 : 200).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar' })
      .end(path === '/booking/lisbon.ics' ? staysCalendar(bookingStays) : staysCalendar([]));
  });
  const peerUrl = (name: string, listing: string) => `${peer.url}/${name}/${listing}.ics?s=peer-secret-5d07`;
  const app = await startApp(t, upstream.url, {
    admin: { token: meshToken },
    listings: {
      rome: { timezone: 'Europe/Rome', feed: '/calendar/rome.ics?key=feed-secret-91c2',
        peers: [{ name: 'airbnb', url: peerUrl('airbnb', 'rome') }, { name: 'vrbo', url: peerUrl('vrbo', 'rome') }] },
      lisbon: { timezone: 'Europe/Lisbon', peers: [{ name: 'booking', url: peerUrl('booking', 'lisbon') }] },
      house: { peers: [{ name: 'airbnb', url: peerUrl('airbnb', 'house') }] },
    },
    push: { watch: 0 },
  }, undefined, clock);
  const auth = `Bearer ${meshToken}`;
  const classified = () => app.logs.filter((l) => l.msg === 'listing change classified' || l.msg === 'feed drop held').length;
  const readAll = async () => {
    for (const id of ['rome', 'lisbon', 'house']) {
      const res = await request(`${app.url}/calendar/${id}.ics${id === 'rome' ? '?key=feed-secret-91c2' : ''}`);
      await res.body.dump();
    }
  };
  await readAll();
  await eventually(() => classified() >= 3, 10_000);
  clock.advance(5 * 60_000);
  // The booking, the import and the drop.
  feeds.rome = staysCalendar([{ uid: 'rome-1@pms', start: day(3), end: day(6) }, { uid: 'rome-2@pms', start: day(200), end: day(203) }]);
  feeds.lisbon = staysCalendar([lisbonStay]);
  feeds.house = staysCalendar([]);
  await readAll();
  await eventually(() => classified() >= 6, 10_000);
  // The notifications' coalescing window, then their answers (vrbo's 503 is retried later).
  clock.advance(5_000);
  await eventually(() => (heads['/airbnb/rome.ics'] ?? 0) >= 1 && (heads['/vrbo/rome.ics'] ?? 0) >= 1, 10_000);
  await eventually(() => app.logs.some((l) => typeof l.msg === 'string' && /^push notification will be retried/.test(l.msg)), 10_000);
  // lisbon's peer takes another booking and pushes: an inbound HEAD, its peer read (changed) and a refresh.
  bookingStays.push({ uid: 'HMX43@booking', start: day(30), end: day(33) });
  const head = await request(`${app.url}/calendar/lisbon.ics`, { method: 'HEAD' });
  await head.body.dump();
  await eventually(() => app.logs.some((l) => l.msg === 'inbound notification: refresh' && l.listing === 'lisbon'), 10_000);
  return { app, clock, auth, heads };
}
