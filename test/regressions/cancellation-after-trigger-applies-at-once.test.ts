// Regression: a guest cancelled the listing's only booking through the platform (a proxied
// `POST /bookings/{id}/cancel`, a push.triggers match) and the export went empty, which is exactly what
// a broken export looks like: the read was held for `snapshots.hold.span` (2 h) and the peers kept the
// nights blocked, losing the rebooking. Now (SPEC "Push": drops are measured in nights) a drop that
// follows within a minute a 2xx on a trigger is a real cancellation: applied at once, primary, one HEAD.
// The same empty export with no trigger is still held (decision `held`, rule `drop-held`, no HEAD) and
// applied only once a read `hold.span` later still shows it. Through the real app on a fake clock.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { request } from 'undici';
import { startApp, type TestApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { eventually } from '../helpers/network.ts';
import { startServer } from '../helpers/servers.ts';
import { createFakeClock } from '../store/fake-clock.ts';

const listing = 'x';
const minute = 60_000;

type Decision = {
  kind: string;
  rule: string;
  nights: { added: string[]; removed: string[] };
  notified: string[];
  drop?: { measure: string; lost: number; of: number };
  why: string;
};

type ListingJson = {
  snapshot?: { version: number; entities: number; held?: { since: string; entities: number } };
  pending: unknown[];
  decisions: Decision[];
};

/** The app in front of a platform with one booking; `POST /bookings/x/cancel` (204) empties its export
 * from then on, at once or (`lag`) only after the next `lag` reads of the feed. */
async function setup(t: TestContext, lag = 0) {
  const clock = createFakeClock(Date.UTC(2026, 11, 1, 12));
  const booked = calendarOf(stay('booking-1@test', '20270310', '20270315'));
  const platform = { cancelled: false, lag, reads: 0 };
  const upstream = await startServer(t, (req, res) => {
    const path = req.url?.split('?')[0];
    if (req.method === 'POST' && path === `/bookings/${listing}/cancel`) {
      platform.cancelled = true;
      req.resume();
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && path === `/calendar/${listing}.ics`) {
      platform.reads += 1;
      const empty = platform.cancelled && (platform.lag === 0 || (platform.lag -= 1) < 0);
      res.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(empty ? calendarOf() : booked);
      return;
    }
    res.writeHead(404).end();
  });
  const heads: number[] = [];
  const peer = await startServer(t, (req, res) => {
    if (req.method === 'HEAD') {
      heads.push(clock.now());
      res.writeHead(200).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/calendar' }).end(calendarOf());
  });
  const app = await startApp(t, upstream.url, {
    listings: { [listing]: { peers: [{ name: 'peer', url: `${peer.url}/ical/${listing}.ics` }] } },
    push: { watch: 0, triggers: [{ method: 'POST', path: '/bookings/{listing}/**' }] },
    snapshots: { hold: { span: '2h' } },
  }, undefined, clock);
  return { clock, platform, heads, app };
}

const decisionsLogged = (app: TestApp) =>
  app.logs.filter((l) => l.msg === 'listing change classified') as unknown as Decision[];

async function get(app: TestApp): Promise<void> {
  const res = await request(`${app.url}/calendar/${listing}.ics`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
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

/** The cancellation through the sidecar; resolves once the sidecar has seen its 2xx (re-reads armed). */
async function cancel(app: TestApp): Promise<void> {
  const res = await request(`${app.url}/bookings/${listing}/cancel`, { method: 'POST', body: 'reason=guest' });
  assert.equal(res.statusCode, 204);
  await res.body.dump();
  // The request line is written after the passthrough returned, i.e. after the trigger was seen.
  await app.waitForLog((l) => l.msg === 'request' && (l.req as { method?: string }).method === 'POST');
}

const expectedRemoval = { added: [], removed: ['2027-03-10/2027-03-15'] };

test('a cancellation through a trigger empties the export: the drop is applied at once, one HEAD', async (t) => {
  const { clock, platform, heads, app } = await setup(t);
  await get(app);
  await eventually(() => decisionsLogged(app).length >= 1, 10_000);

  clock.advance(5 * minute);
  await cancel(app);
  // The trigger's first re-read is due now.
  const readsBefore = platform.reads;
  clock.advance(0);
  await eventually(() => decisionsLogged(app).length >= 2, 10_000);
  assert.equal(platform.reads, readsBefore + 1, 'the trigger re-read the feed');
  const decision = decisionsLogged(app)[1] as Decision;
  assert.equal(decision.kind, 'primary', `${decision.rule}: ${decision.why}`);
  assert.equal(decision.rule, 'unexplained-nights');
  assert.deepEqual(decision.nights, expectedRemoval);
  assert.deepEqual(decision.notified, ['peer']);
  assert.ok(app.logs.some((l) => l.msg === 'feed drop applied at once: it follows a trigger or an operator notify'));
  assert.ok(!app.logs.some((l) => l.msg === 'feed drop held'), 'no two-hour wait');
  const state = await listingJson(app);
  assert.equal(state.snapshot?.held, undefined);
  assert.equal(state.snapshot?.entities, 0);

  clock.advance(10);
  await eventually(() => heads.length >= 1, 10_000);
  await eventually(() => app.logs.some((l) => l.msg === 'push notification sent'), 10_000);
  // The trigger's second re-read (2 s later) finds nothing new.
  const reads = platform.reads;
  clock.advance(2_000);
  await eventually(() => platform.reads > reads, 10_000);
  await get(app);
  clock.advance(10);
  assert.equal(decisionsLogged(app).length, 2);
  assert.deepEqual((await listingJson(app)).pending, []);
  assert.equal(heads.length, 1);
});

test('an export that goes empty only at the trigger\'s second re-read (2 s later) is still applied at once', async (t) => {
  const { clock, platform, heads, app } = await setup(t, 1);
  await get(app);
  await eventually(() => decisionsLogged(app).length >= 1, 10_000);
  clock.advance(5 * minute);
  await cancel(app);
  // The first re-read still shows the booking (the export is rebuilt asynchronously): unchanged.
  const readsBefore = platform.reads;
  clock.advance(0);
  await lastReadIs(app, clock.now());
  assert.equal(platform.reads, readsBefore + 1);
  assert.equal(decisionsLogged(app).length, 1, 'nothing changed at the first re-read');
  clock.advance(2_000);
  await eventually(() => decisionsLogged(app).length >= 2, 10_000);
  const decision = decisionsLogged(app)[1] as Decision;
  assert.equal(decision.kind, 'primary', `${decision.rule}: ${decision.why}`);
  assert.deepEqual(decision.nights, expectedRemoval);
  assert.ok(!app.logs.some((l) => l.msg === 'feed drop held'));
  clock.advance(10);
  await eventually(() => heads.length >= 1, 10_000);
  assert.equal(platform.reads, readsBefore + 2);
  assert.equal(heads.length, 1);
});

test('the same empty export with no trigger is held, no HEAD, until a read hold.span later confirms it', async (t) => {
  const { clock, platform, heads, app } = await setup(t);
  await get(app);
  await eventually(() => decisionsLogged(app).length >= 1, 10_000);

  clock.advance(5 * minute);
  // Emptied behind the sidecar's back: nothing it saw changed the listing.
  platform.cancelled = true;
  const heldAt = clock.now();
  await get(app);
  await eventually(() => decisionsLogged(app).length >= 2, 10_000);
  const held = decisionsLogged(app)[1] as Decision;
  assert.equal(held.kind, 'held');
  assert.equal(held.rule, 'drop-held');
  assert.ok(app.logs.some((l) => l.msg === 'feed drop held'));
  let state = await listingJson(app);
  assert.equal(state.decisions[0]?.kind, 'held');
  assert.equal(state.decisions[0]?.rule, 'drop-held');
  assert.deepEqual(state.decisions[0]?.nights, expectedRemoval);
  assert.deepEqual(state.decisions[0]?.notified, []);
  assert.ok(state.decisions[0]?.drop && state.decisions[0].drop.lost === state.decisions[0].drop.of);
  assert.equal(state.snapshot?.held?.since, new Date(heldAt).toISOString());
  assert.equal(state.snapshot?.entities, 1, 'the last good snapshot stands');

  // Still empty a minute before the span is over: still held, still no HEAD, no second decision.
  clock.advance(2 * 60 * minute - minute);
  await get(app);
  clock.advance(10);
  state = await listingJson(app);
  assert.ok(state.snapshot?.held, 'still held before hold.span');
  assert.equal(decisionsLogged(app).length, 2);
  assert.deepEqual(state.pending, []);
  assert.equal(heads.length, 0);

  // A read hold.span after the drop was first seen still shows it: applied, primary, one HEAD.
  clock.advance(minute);
  await get(app);
  await eventually(() => decisionsLogged(app).length >= 3, 10_000);
  const applied = decisionsLogged(app)[2] as Decision;
  assert.equal(applied.kind, 'primary', `${applied.rule}: ${applied.why}`);
  assert.deepEqual(applied.nights, expectedRemoval);
  assert.deepEqual(applied.notified, ['peer']);
  assert.ok(app.logs.some((l) => l.msg === 'feed drop confirmed'));
  clock.advance(10);
  await eventually(() => heads.length >= 1, 10_000);
  await eventually(() => app.logs.some((l) => l.msg === 'push notification sent'), 10_000);
  state = await listingJson(app);
  assert.equal(state.snapshot?.held, undefined);
  assert.equal(state.snapshot?.entities, 0);
  assert.deepEqual(state.pending, []);
  assert.equal(heads.length, 1);
});

test('an operator notify whose read finds the export empty applies the drop at once, one HEAD in all', async (t) => {
  const { clock, platform, heads, app } = await setup(t);
  await get(app);
  await eventually(() => decisionsLogged(app).length >= 1, 10_000);
  clock.advance(5 * minute);
  platform.cancelled = true;
  const res = await request(`${app.url}/_icalpush/listings/${listing}/changed`, { method: 'POST' });
  assert.equal(res.statusCode, 202);
  const answer = await res.body.json() as { notified: string[] };
  await eventually(() => decisionsLogged(app).length >= 2, 10_000);
  const decision = decisionsLogged(app)[1] as Decision;
  assert.equal(decision.kind, 'primary', `${decision.rule}: ${decision.why}`);
  assert.deepEqual(decision.nights, expectedRemoval);
  assert.ok(!app.logs.some((l) => l.msg === 'feed drop held'));
  // The operator's notify found the peers already told about this very content.
  assert.deepEqual(answer.notified, []);
  const state = await listingJson(app);
  assert.equal(state.decisions[0]?.kind, 'operator');
  assert.equal(state.decisions[0]?.rule, 'already-notified');
  clock.advance(10);
  await eventually(() => heads.length >= 1, 10_000);
  await eventually(() => app.logs.some((l) => l.msg === 'push notification sent'), 10_000);
  assert.deepEqual((await listingJson(app)).pending, []);
  assert.equal(heads.length, 1);
});

test('a drop already held when a trigger comes stays held: a booking made meanwhile does not make a broken export true',
  async (t) => {
    const { clock, platform, heads, app } = await setup(t);
    await get(app);
    await eventually(() => decisionsLogged(app).length >= 1, 10_000);
    clock.advance(5 * minute);
    platform.cancelled = true;
    await get(app);
    await eventually(() => decisionsLogged(app).length >= 2, 10_000);
    assert.equal((decisionsLogged(app)[1] as Decision).kind, 'held');

    // Ten minutes on, a request matching the trigger passes through the sidecar; its re-reads still find the
    // export empty, as it was before the request: the drop did not follow it.
    clock.advance(10 * minute);
    const readsBefore = platform.reads;
    await cancel(app);
    clock.advance(0);
    await eventually(() => platform.reads >= readsBefore + 1, 10_000);
    clock.advance(2_000);
    await eventually(() => platform.reads >= readsBefore + 2, 10_000);
    // A read of our own, answered after the re-reads were applied; then every change they made is processed.
    await get(app);
    await app.app.feeds.settled();
    assert.equal(decisionsLogged(app).length, 2, 'no decision: still held');
    assert.ok((await listingJson(app)).snapshot?.held, 'still held');
    assert.equal(heads.length, 0);

    // Once hold.span has passed since the drop was first seen, a read that still shows it applies it.
    clock.advance(2 * 60 * minute);
    await get(app);
    await eventually(() => decisionsLogged(app).length >= 3, 10_000);
    const applied = decisionsLogged(app)[2] as Decision;
    assert.equal(applied.kind, 'primary', `${applied.rule}: ${applied.why}`);
    assert.deepEqual(applied.nights, expectedRemoval);
    clock.advance(10);
    await eventually(() => heads.length >= 1, 10_000);
    assert.equal(heads.length, 1);
  });
