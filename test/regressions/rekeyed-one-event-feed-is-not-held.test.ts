// Regression: drops were counted in events by UID, so a feed of one event whose UID changed (the
// exporter re-minted it, the nights the same) "lost 100 % of its events": the read was held for
// `snapshots.hold.span` with a `feed drop held` warning, and a real change of that one event's dates
// right after it waited behind the hold for two hours before any peer heard of it. Now (SPEC "Push":
// drops are measured in nights) replacing events one for one is never a drop: the re-key is a
// no-night-change, and a change of the event's dates is applied and pushed at once (one HEAD).
// Through the real app on a fake clock: an upstream serving the export, a peer counting HEADs.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { TestApp } from '../helpers/app.ts';
import { calendarOf, stay } from '../helpers/hostile.ts';
import { decisionsLogged, getFeed, listingJson, type LoggedDecision, readFeed, startListingRig } from '../helpers/listing-rig.ts';
import { eventually } from '../helpers/network.ts';

type Decision = LoggedDecision;

const setup = (t: TestContext) => startListingRig(t, {
  startMs: Date.UTC(2026, 11, 1, 12), feed: calendarOf(stay('first-uid@test', '20270110', '20270115')),
  config: { snapshots: { hold: { span: '2h' } } },
});

const get = getFeed;
const read = readFeed;

type ListingJson = { snapshot?: { version: number; held?: unknown }; pending: unknown[]; decisions: Decision[] };

const listingState = (app: TestApp) => listingJson<ListingJson>(app);

const rekeyed = (uid: string, start: string, end: string) =>
  // Re-minted: a new UID, and the exporter's new summary with it (content that changes the entity).
  stay(uid, start, end, []).replace('SUMMARY:Reserved', 'SUMMARY:CLOSED - Not available');

test('a one-event feed whose UID changes (same nights) is no drop and notifies nobody', async (t) => {
  const { clock, feed, heads, app } = await setup(t);
  assert.equal((await read(app, 1)).rule, 'first-read');

  clock.advance(60_000);
  feed.text = calendarOf(rekeyed('second-uid@test', '20270110', '20270115'));
  const decision = await read(app, 2);
  assert.equal(decision.kind, 'no-night-change', `${decision.rule}: ${decision.why}`);
  assert.equal(decision.rule, 'nights-unchanged');
  assert.deepEqual(decision.nights, { added: [], removed: [] });
  assert.deepEqual(decision.notified, []);
  const state = await listingState(app);
  assert.equal(state.snapshot?.held, undefined, 'the re-keyed read is applied, not held');
  assert.equal(state.snapshot?.version, 2);
  assert.ok(!app.logs.some((l) => l.msg === 'feed drop held'));

  // A UID re-minted with nothing else changed is the same event (keyed by content): no change at all.
  clock.advance(60_000);
  feed.text = calendarOf(rekeyed('third-uid@test', '20270110', '20270115'));
  await get(app);
  const after = await listingState(app);
  assert.equal(after.snapshot?.held, undefined);
  assert.equal(after.snapshot?.version, 2);
  assert.ok(!app.logs.some((l) => l.msg === 'feed drop held'));

  clock.advance(10);
  assert.deepEqual((await listingState(app)).pending, []);
  assert.equal(heads.length, 0);
});

for (const [name, start, end] of [
  ['shifted by two days', '20270112', '20270117'],
  ['moved to another month', '20270310', '20270315'],
] as const) {
  test(`after the re-key, the one event's dates ${name} is applied at once: primary, one HEAD`, async (t) => {
    const { clock, feed, heads, app } = await setup(t);
    await read(app, 1);
    clock.advance(60_000);
    feed.text = calendarOf(rekeyed('second-uid@test', '20270110', '20270115'));
    assert.equal((await read(app, 2)).kind, 'no-night-change');

    clock.advance(60_000);
    feed.text = calendarOf(rekeyed('second-uid@test', start, end));
    await get(app);
    const state = await listingState(app);
    assert.equal(state.snapshot?.held, undefined,
      `the date change is held for snapshots.hold.span: ${JSON.stringify(state.decisions[0])}`);
    await eventually(() => decisionsLogged(app).length >= 3, 10_000);
    const decision = decisionsLogged(app)[2] as Decision;
    assert.equal(decision.kind, 'primary', decision.why);
    assert.equal(decision.rule, 'unexplained-nights');
    assert.deepEqual(decision.notified, ['peer']);
    const iso = (day: string) => `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6)}`;
    if (start === '20270112') {
      assert.deepEqual(decision.nights, { added: ['2027-01-15/2027-01-17'], removed: ['2027-01-10/2027-01-12'] });
    } else {
      assert.deepEqual(decision.nights, { added: [`${iso(start)}/${iso(end)}`], removed: ['2027-01-10/2027-01-15'] });
    }
    clock.advance(10);
    await eventually(() => heads.length >= 1, 10_000);
    await eventually(() => app.logs.some((l) => l.msg === 'push notification sent'), 10_000);
    assert.deepEqual((await listingState(app)).pending, []);
    assert.equal(heads.length, 1);
    assert.ok(!app.logs.some((l) => l.msg === 'feed drop held'), 'nothing was held');
  });
}
