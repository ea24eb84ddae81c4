// Regression: far-future bookings went unpushed. A "horizon" rule rate-limited nights far ahead (the
// first far booking of a while notified, the ones after it were folded into "later"), so the second to
// tenth August bookings made in December reached the peers only when they polled: the overbooking
// icalpush exists to prevent. Now (SPEC "Push": no horizon rule) every night in the window (today …
// today + 2 years) that becomes busy and that no peer explains is primary, and each primary change sends
// exactly one HEAD to the peer. Only the window roll (the far edge block moving later) notifies nobody.
// Through the real app on a fake clock: an upstream serving the listing's export, a peer counting HEADs.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { TestApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { listingJson, type LoggedDecision, readFeed, startListingRig } from '../helpers/listing-rig.ts';
import { eventually } from '../helpers/network.ts';
import type { FakeClock } from '../store/fake-clock.ts';

type Decision = LoggedDecision;

/** The real app in front of an upstream serving `feed.text`, one peer counting the HEADs it gets (it shows
 * none of the listing's nights: nothing it could explain). */
const setup = (t: TestContext) => startListingRig(t, {
  startMs: Date.UTC(2026, 11, 1, 12), feed: calendarOf(stay('dec@test', '20261220', '20261223')),
});

const sentCount = (app: TestApp) => app.logs.filter((l) => l.msg === 'push notification sent').length;

const read = readFeed;

/** Lets the notifier's coalescing window pass, then waits for the `total`-th HEAD delivered. */
async function flushHeads(clock: FakeClock, app: TestApp, total: number): Promise<void> {
  clock.advance(10);
  await eventually(() => sentCount(app) >= total, 10_000);
}

const listingState = (app: TestApp) => listingJson<{ decisions: Decision[]; pending: unknown[] }>(app);

/** `YYYYMMDD` → `YYYY-MM-DD`. */
const iso = (day: string) => `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6)}`;

/** The date `days` after 2026-12-01 as YYYYMMDD. */
const ahead = (days: number) => new Date(Date.UTC(2026, 11, 1) + days * 86_400_000).toISOString().slice(0, 10)
  .replaceAll('-', '');

test('a June 2027 booking and ten August 2027 bookings made in December each send exactly one HEAD', async (t) => {
  const { clock, feed, heads, app } = await setup(t);
  const baseline = await read(app, 1);
  assert.equal(baseline.rule, 'first-read');
  assert.equal(heads.length, 0);

  const stays = [stay('dec@test', '20261220', '20261223')];
  // Two nights each, a free night between them: no run of nights long enough to be an edge block.
  const bookings: Array<[string, string]> = [['20270612', '20270619']];
  for (let i = 0; i < 10; i += 1) {
    const from = 1 + 3 * i;
    bookings.push([`202708${String(from).padStart(2, '0')}`, `202708${String(from + 2).padStart(2, '0')}`]);
  }
  for (const [i, [start, end]] of bookings.entries()) {
    stays.push(stay(`b${i}@test`, start, end));
    feed.text = calendarOf(...stays);
    const decision = await read(app, i + 2);
    assert.equal(decision.kind, 'primary', `booking ${start}: ${decision.why}`);
    assert.equal(decision.rule, 'unexplained-nights');
    assert.deepEqual(decision.nights, { added: [`${iso(start)}/${iso(end)}`], removed: [] });
    assert.deepEqual(decision.notified, ['peer']);
    await flushHeads(clock, app, i + 1);
    assert.equal(heads.length, i + 1, `booking ${start}: exactly one HEAD per primary change`);
    // An hour between bookings: the peer's snapshot goes stale and is read again before each decision.
    clock.advance(60 * 60 * 1000);
  }

  const state = await listingState(app);
  assert.equal(heads.length, 11);
  assert.deepEqual(state.pending, []);
  assert.equal(state.decisions.filter((d) => d.kind === 'primary').length, 11);
  assert.equal(state.decisions.filter((d) => d.kind === 'roll').length, 0, 'no booking was taken for a window roll');
  assert.ok(!app.logs.some((l) => l.msg === 'feed drop held'));
});

test('bookings 600 days ahead and on the last night of the two-year window are primary, one HEAD each', async (t) => {
  const { clock, feed, heads, app } = await setup(t);
  await read(app, 1);
  const far = [ahead(600), ahead(603)];
  // 2026-12-01 + 2 years is 2028-12-01: the night of 2028-11-30 is the window's last.
  const last = ['20281129', '20281201'];
  const stays = [stay('dec@test', '20261220', '20261223')];
  for (const [i, [start, end]] of [far, last].entries()) {
    stays.push(stay(`far${i}@test`, start as string, end as string));
    feed.text = calendarOf(...stays);
    const decision = await read(app, i + 2);
    assert.equal(decision.kind, 'primary', decision.why);
    assert.deepEqual(decision.nights, { added: [`${iso(start as string)}/${iso(end as string)}`], removed: [] });
    assert.deepEqual(decision.notified, ['peer']);
    await flushHeads(clock, app, i + 1);
    assert.equal(heads.length, i + 1);
  }
  assert.equal(far[0], '20280723');
  assert.deepEqual((await listingState(app)).pending, []);
});

test('a booking back to back after a fully booked far-future month is primary, not a window roll', async (t) => {
  // SPEC "Push": "a back-to-back booking after the last stay" is primary. August 2027 booked solid by ten
  // stays of three nights makes a run of 30 nights ending 270 days ahead, which is as long and as far as
  // an exporter's edge block; a real two-night booking right after it must still be pushed.
  const { clock, feed, heads, app } = await setup(t);
  await read(app, 1);
  const stays = [stay('dec@test', '20261220', '20261223')];
  for (let i = 0; i < 10; i += 1) {
    const from = 1 + 3 * i;
    stays.push(stay(`aug${i}@test`, `202708${String(from).padStart(2, '0')}`, `202708${String(from + 3).padStart(2, '0')}`));
    feed.text = calendarOf(...stays);
    const decision = await read(app, i + 2);
    assert.equal(decision.kind, 'primary', decision.why);
    await flushHeads(clock, app, i + 1);
  }
  assert.equal(heads.length, 10);
  stays.push(stay('sep@test', '20270831', '20270902'));
  feed.text = calendarOf(...stays);
  const decision = await read(app, 12);
  assert.equal(decision.kind, 'primary', `a real booking was suppressed: ${decision.rule}: ${decision.why}`);
  assert.deepEqual(decision.nights, { added: ['2027-08-31/2027-09-02'], removed: [] });
  await flushHeads(clock, app, 11);
  assert.equal(heads.length, 11);
});
