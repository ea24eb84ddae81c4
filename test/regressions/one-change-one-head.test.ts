// Regression: one booking sent its peers two HEADs (or more): the watch (or a GET) found the change and
// notified, and the operator's `POST /_icalpush/listings/{id}/changed` a moment later (the platform's
// hook calls it after every booking) notified again for the same content; when the operator's notify
// arrived while the read that found the change was still waiting for the upstream, both paths decided
// "new" and both sent. Now (SPEC "Push": one primary change sends exactly one HEAD to each peer, however
// many reads or notifies observe it) the log records which content the peers were told about, and an
// operator notify for that content is `already-notified`. An operator notify when the peers were not
// told about the current content (nothing changed yet, or the last change was imported) does notify.
// Through the real app on a fake clock, two peers counting the HEADs they get.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { eventually } from '../helpers/network.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock, type FakeClock } from '../store/fake-clock.ts';

const listing = 'x';

type Decision = {
  kind: string;
  rule: string;
  nights: { added: string[]; removed: string[] };
  notified: string[];
  evidence: unknown[];
  why: string;
};

type ListingJson = { pending: unknown[]; decisions: Decision[] };

const baseline = calendarOf(stay('a@test', '20270110', '20270115'));
const booked = calendarOf(stay('a@test', '20270110', '20270115'), stay('b@test', '20270301', '20270306'));

type Gate = { held: Array<() => void>; arrived: number; closed: boolean };

/** The app in front of an upstream serving `feed.text` (answers wait while `gate.closed`, each until
 * released), two peers `a` and `b` on one server, each HEAD counted by peer. */
async function setup(t: TestContext, overrides: Partial<ConfigInput['push']> = {}) {
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12));
  const feed = { text: baseline };
  const gate: Gate = { held: [], arrived: 0, closed: false };
  const upstream = await startServer(t, (req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === `/calendar/${listing}.ics`) {
      const text = feed.text;
      const answer = () => res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(text);
      gate.arrived += 1;
      if (gate.closed) gate.held.push(answer);
      else answer();
      return;
    }
    if (req.method === 'POST' && req.url?.startsWith(`/bookings/${listing}/`)) {
      req.resume();
      res.writeHead(201).end();
      return;
    }
    res.writeHead(404).end();
  });
  const heads: Record<string, number> = { a: 0, b: 0 };
  const peerFeed = { text: calendarOf() };
  const peerGate: Gate = { held: [], arrived: 0, closed: false };
  const peer = await startServer(t, (req, res) => {
    const name = req.url?.split('/')[1] ?? '';
    if (req.method === 'HEAD') {
      heads[name] = (heads[name] ?? 0) + 1;
      res.writeHead(200).end();
      return;
    }
    const text = peerFeed.text;
    const answer = () => res.writeHead(200, { 'content-type': 'text/calendar' }).end(text);
    peerGate.arrived += 1;
    if (peerGate.closed) peerGate.held.push(answer);
    else answer();
  });
  const app = await startApp(t, upstream.url, {
    listings: {
      [listing]: {
        peers: [{ name: 'a', url: `${peer.url}/a/${listing}.ics` }, { name: 'b', url: `${peer.url}/b/${listing}.ics` }],
      },
    },
    push: { watch: 0, ...overrides },
  }, undefined, clock);
  return { clock, feed, gate, peerFeed, peerGate, heads, app };
}

const decisionsLogged = (app: TestApp) =>
  app.logs.filter((l) => l.msg === 'listing change classified') as unknown as Decision[];

const sentCount = (app: TestApp) => app.logs.filter((l) => l.msg === 'push notification sent').length;

async function get(app: TestApp): Promise<void> {
  const res = await request(`${app.url}/calendar/${listing}.ics`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
}

async function read(app: TestApp, n: number): Promise<Decision> {
  await get(app);
  return await nth(app, n);
}

async function nth(app: TestApp, n: number): Promise<Decision> {
  await eventually(() => decisionsLogged(app).length >= n, 10_000);
  return decisionsLogged(app)[n - 1] as Decision;
}

async function operatorNotify(app: TestApp): Promise<string[]> {
  const res = await request(`${app.url}/_icalpush/listings/${listing}/changed`, { method: 'POST' });
  assert.equal(res.statusCode, 202);
  return (await res.body.json() as { notified: string[] }).notified;
}

async function listingJson(app: TestApp): Promise<ListingJson> {
  const res = await request(`${app.url}/_icalpush/listings/${listing}`);
  assert.equal(res.statusCode, 200);
  return await res.body.json() as ListingJson;
}

/** Resolves once a read of the feed made at `ms` was applied (its snapshot says it was last read then). */
async function lastReadIs(app: TestApp, ms: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  const at = new Date(ms).toISOString();
  for (;;) {
    const state = await listingJson(app) as ListingJson & { snapshot?: { lastRead?: string } };
    if (state.snapshot?.lastRead === at) return;
    if (Date.now() > deadline) throw new Error(`no read applied at ${at}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Resolves once the operator notify under way was seen (the listing's activity says so). */
async function operatorSeen(app: TestApp): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const state = await listingJson(app) as ListingJson & { activity?: { operator?: string } };
    if (state.activity?.operator !== undefined) return;
    if (Date.now() > deadline) throw new Error('the operator notify was never seen');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Past the notifier's coalescing window; waits for `total` HEADs delivered in all, then checks that
 * nothing else is queued. */
async function flush(clock: FakeClock, app: TestApp, total: number): Promise<void> {
  clock.advance(10);
  await eventually(() => sentCount(app) >= total, 10_000);
  assert.deepEqual((await listingJson(app)).pending, []);
}

function release(gate: Gate, order: 'first' | 'last' = 'first'): void {
  gate.closed = false;
  const held = order === 'first' ? gate.held : gate.held.reverse();
  gate.held = [];
  for (const answer of held) answer();
}

test('a booking found by the watch, then an operator notify right after: one HEAD per peer', async (t) => {
  const { clock, feed, heads, app } = await setup(t, { watch: '60s' });
  // The watch's first round reads the baseline.
  clock.advance(1_000);
  assert.equal((await nth(app, 1)).rule, 'first-read');
  feed.text = booked;
  clock.advance(60_000);
  const primary = await nth(app, 2);
  assert.equal(primary.kind, 'primary', primary.why);
  assert.deepEqual(primary.notified, ['a', 'b']);

  // Before the HEADs went out, and once more after they did.
  assert.deepEqual(await operatorNotify(app), []);
  await flush(clock, app, 2);
  assert.deepEqual(await operatorNotify(app), []);
  clock.advance(10);
  const state = await listingJson(app);
  assert.deepEqual(state.decisions.slice(0, 2).map((d) => [d.kind, d.rule]),
    [['operator', 'already-notified'], ['operator', 'already-notified']]);
  assert.deepEqual(state.pending, []);
  assert.deepEqual(heads, { a: 1, b: 1 });
});

test('a booking found by a GET, then an operator notify right after: one HEAD per peer', async (t) => {
  const { clock, feed, heads, app } = await setup(t);
  await read(app, 1);
  feed.text = booked;
  assert.equal((await read(app, 2)).kind, 'primary');
  assert.deepEqual(await operatorNotify(app), []);
  await flush(clock, app, 2);
  assert.deepEqual(heads, { a: 1, b: 1 });
});

for (const order of ['first', 'last'] as const) {
  test(`the operator notify arrives while the read that finds the booking waits for the upstream (released ${
    order === 'first' ? 'in order' : 'operator\'s first'}): one HEAD per peer`, async (t) => {
    const { clock, feed, gate, heads, app } = await setup(t);
    await read(app, 1);
    feed.text = booked;
    gate.closed = true;
    const reading = get(app);
    await eventually(() => gate.arrived === 2, 10_000);
    const notifying = operatorNotify(app);
    // The operator's own read of the export waits at the upstream too.
    await eventually(() => gate.arrived === 3, 10_000);
    release(gate, order);
    const [, notified] = await Promise.all([reading, notifying]);
    const primary = await nth(app, 2);
    assert.equal(primary.kind, 'primary', primary.why);
    assert.deepEqual(primary.notified, ['a', 'b']);
    assert.deepEqual(notified, [], 'the operator notify found the peers told about this content');
    await flush(clock, app, 2);
    const state = await listingJson(app);
    assert.deepEqual([state.decisions[0]?.kind, state.decisions[0]?.rule], ['operator', 'already-notified']);
    assert.equal(state.decisions.filter((d) => d.kind === 'primary').length, 1);
    assert.deepEqual(heads, { a: 1, b: 1 });
  });
}

test('the operator notify arrives while the change is being classified (a peer re-read pending): one HEAD per peer',
  async (t) => {
    const { clock, feed, peerGate, heads, app } = await setup(t);
    await read(app, 1);
    feed.text = booked;
    peerGate.closed = true;
    await get(app);
    // Classification re-reads the stale peers before calling the change primary: both wait.
    await eventually(() => peerGate.arrived === 2, 10_000);
    clock.advance(1);
    const notifying = operatorNotify(app);
    // The operator's read of the export is applied (unchanged): it now waits for the change's decision.
    await lastReadIs(app, clock.now());
    release(peerGate);
    const notified = await notifying;
    const primary = await nth(app, 2);
    assert.equal(primary.kind, 'primary', primary.why);
    assert.deepEqual(primary.notified, ['a', 'b']);
    assert.deepEqual(notified, [], 'the operator notify waited for the decision and found the peers told');
    await flush(clock, app, 2);
    assert.deepEqual(heads, { a: 1, b: 1 });
  });

test('the operator notify arrives while the trigger\'s re-read waits for the upstream: one HEAD per peer', async (t) => {
  const { clock, feed, gate, heads, app } = await setup(t, { triggers: [{ method: 'POST', path: '/bookings/{listing}/**' }] });
  await read(app, 1);
  const booking = await request(`${app.url}/bookings/${listing}/new`, { method: 'POST', body: 'nights=5' });
  assert.equal(booking.statusCode, 201);
  await booking.body.dump();
  await app.waitForLog((l) => l.msg === 'request' && (l.req as { method?: string }).method === 'POST');
  feed.text = booked;
  gate.closed = true;
  // The trigger's first re-read is due now; it waits at the upstream.
  clock.advance(0);
  await eventually(() => gate.arrived === 2, 10_000);
  const notifying = operatorNotify(app);
  // The operator's read of the export joins the re-read under way (the same upstream request).
  await operatorSeen(app);
  assert.equal(gate.arrived, 2);
  release(gate);
  const notified = await notifying;
  const primary = await nth(app, 2);
  assert.equal(primary.kind, 'primary', primary.why);
  assert.deepEqual(notified, []);
  await flush(clock, app, 2);
  // The trigger's second re-read, 2 s on, finds nothing new.
  clock.advance(2_000);
  await eventually(() => gate.arrived === 3, 10_000);
  await lastReadIs(app, clock.now());
  clock.advance(10);
  assert.deepEqual((await listingJson(app)).pending, []);
  assert.equal(decisionsLogged(app).length, 2);
  assert.deepEqual(heads, { a: 1, b: 1 });
});

test('an operator notify with no change yet: one HEAD per peer, a second one none', async (t) => {
  const { clock, heads, app } = await setup(t);
  await read(app, 1);
  assert.deepEqual(await operatorNotify(app), ['a', 'b']);
  await flush(clock, app, 2);
  assert.deepEqual(heads, { a: 1, b: 1 });
  assert.deepEqual(await operatorNotify(app), []);
  clock.advance(10);
  assert.deepEqual((await listingJson(app)).pending, []);
  assert.deepEqual(heads, { a: 1, b: 1 });
  const state = await listingJson(app);
  assert.deepEqual(state.decisions.slice(0, 2).map((d) => [d.kind, d.rule]),
    [['operator', 'already-notified'], ['operator', 'operator']]);
});

test('an operator notify on a listing never read: one HEAD per peer', async (t) => {
  const { clock, heads, app } = await setup(t);
  assert.deepEqual(await operatorNotify(app), ['a', 'b']);
  await flush(clock, app, 2);
  assert.deepEqual(heads, { a: 1, b: 1 });
});

test('an operator notify after an imported change (no HEAD for it): one HEAD per peer', async (t) => {
  const { clock, feed, peerFeed, heads, app } = await setup(t);
  await read(app, 1);
  // Peer b has the booking; the upstream imported it: the same nights, under its own UID.
  peerFeed.text = calendarOf(stay('peer-booking-77', '20270301', '20270306'));
  feed.text = booked;
  const imported = await read(app, 2);
  assert.equal(imported.kind, 'imported', imported.why);
  assert.deepEqual(imported.notified, []);
  clock.advance(10);
  assert.deepEqual((await listingJson(app)).pending, []);
  assert.deepEqual(heads, { a: 0, b: 0 });

  assert.deepEqual(await operatorNotify(app), ['a', 'b']);
  await flush(clock, app, 2);
  assert.deepEqual(heads, { a: 1, b: 1 });
});
