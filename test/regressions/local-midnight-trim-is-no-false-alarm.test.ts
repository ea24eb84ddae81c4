// Regression: Booking.com re-keys every stay in progress at the property's local midnight (a new
// `<32 hex>@booking.com` UID) and trims it to start "today". "Today" was the UTC date, so in Rome the
// trim at 23:00Z (22:00Z in summer) freed a night that was still "tomorrow" in UTC and every such
// listing told its peers about a cancellation that never happened, every night; in Auckland (11:00Z)
// it was the other way round. Now (SPEC "Push": what today means) nights are the listing's local dates
// (`listings.<id>.timezone`), and without a zone the conservative rule holds: a night that became free
// counts only while it is still ahead everywhere (UTC+14), one that became busy while it is still today
// somewhere (UTC−12). So the midnight trim notifies nobody (no-night-change, its night "passed"), and a
// same-day booking of tonight always does. Through the real app on a fake clock set around midnight.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { request } from 'undici';
import type { TestApp } from '../helpers/app.ts';
import { decisionsLogged, listingJson, type LoggedDecision, readFeed, rigListing as listing, startListingRig } from '../helpers/listing-rig.ts';
import { eventually } from '../helpers/network.ts';
import type { FakeClock } from '../store/fake-clock.ts';

const minute = 60_000;

type Decision = LoggedDecision & { passed?: { added: string[]; removed: string[] } };

/** One Booking.com-style stay: all-day dates (YYYYMMDD, DTEND exclusive), a 32-hex UID. */
function bookingStay(hex: string, start: string, end: string): string {
  assert.match(hex, /^[0-9a-f]{32}$/);
  return ['BEGIN:VEVENT', 'DTSTAMP:20270101T000000Z', `DTSTART;VALUE=DATE:${start}`, `DTEND;VALUE=DATE:${end}`,
    `UID:${hex}@booking.com`, 'SUMMARY:CLOSED - Not available', 'END:VEVENT'].join('\r\n');
}

/** A Booking.com-style export. */
function bookingExport(...events: string[]): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//admin.booking.com//EN', 'CALSCALE:GREGORIAN',
    ...events, 'END:VCALENDAR', ''].join('\r\n');
}

const hexA = '3f2b9c0d4e5f60718293a4b5c6d7e8f9';
const hexB = '9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b';
const hexLater = '0123456789abcdef0123456789abcdef';

/** The real app at `startMs`, `zone` for the listing or none, an upstream serving `feed.text`, one peer. */
const setup = (t: TestContext, startMs: number, zone: string | undefined) => startListingRig(t, {
  startMs, feed: bookingExport(), peerFeed: bookingExport(), listing: zone ? { timezone: zone } : {},
});

const read = (app: TestApp, n: number) => readFeed(app, n) as Promise<Decision>;

async function pendingOf(app: TestApp): Promise<unknown[]> {
  return (await listingJson<{ pending: unknown[] }>(app)).pending;
}

/** Moves past the notifier's coalescing window: anything queued would be on its way (and still pending). */
function settle(clock: FakeClock): void {
  clock.advance(10);
}

/** `YYYYMMDD` `days` later (earlier when negative). */
function addDays(day: string, days: number): string {
  const ms = Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6))) + days * 86_400_000;
  return new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');
}

/** `YYYYMMDD` → `YYYY-MM-DD`. */
const iso = (day: string) => `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6)}`;

type Midnight = {
  name: string;
  zone: string;
  /** The instant of the property's local midnight. */
  at: number;
  /** The stay in progress, then as the export has it after midnight (trimmed to start today, re-keyed). */
  stay: [string, string];
  trimmed: [string, string];
  /** A stay later on, untouched. */
  later: [string, string];
  /** Nights the trim freed that are no longer ahead (as runs), by rule. */
  passed: { zone: string[]; conservative: string[] };
};

const midnights: Midnight[] = [
  {
    name: 'Rome in winter (23:00Z)', zone: 'Europe/Rome', at: Date.UTC(2027, 0, 15, 23),
    stay: ['20270113', '20270118'], trimmed: ['20270116', '20270118'], later: ['20270210', '20270214'],
    passed: { zone: ['2027-01-15/2027-01-16'], conservative: ['2027-01-15/2027-01-16'] },
  },
  {
    name: 'Rome in summer (22:00Z)', zone: 'Europe/Rome', at: Date.UTC(2027, 6, 15, 22),
    stay: ['20270713', '20270718'], trimmed: ['20270716', '20270718'], later: ['20270810', '20270814'],
    passed: { zone: ['2027-07-15/2027-07-16'], conservative: ['2027-07-15/2027-07-16'] },
  },
  {
    // NZDT is UTC+13: Auckland's midnight of 16 January is 11:00Z on the 15th. By the conservative rule
    // the nights are counted from the UTC−12 date, the 14th, so the trim frees two nights, both past.
    name: 'Auckland in summer (11:00Z)', zone: 'Pacific/Auckland', at: Date.UTC(2027, 0, 15, 11),
    stay: ['20270113', '20270118'], trimmed: ['20270116', '20270118'], later: ['20270210', '20270214'],
    passed: { zone: ['2027-01-15/2027-01-16'], conservative: ['2027-01-14/2027-01-16'] },
  },
];

for (const midnight of midnights) {
  for (const rule of ['zone', 'conservative'] as const) {
    const zone = rule === 'zone' ? midnight.zone : undefined;
    const label = rule === 'zone' ? `timezone ${midnight.zone}` : 'no timezone (conservative rule)';

    test(`${midnight.name}, ${label}: the midnight re-key and trim of the stay in progress notifies nobody`,
      async (t) => {
        const { clock, feed, heads, app } = await setup(t, midnight.at - 5 * minute, zone);
        feed.text = bookingExport(bookingStay(hexA, ...midnight.stay), bookingStay(hexLater, ...midnight.later));
        assert.equal((await read(app, 1)).rule, 'first-read');
        // The export job ran: a new UID for the stay in progress, trimmed to start today.
        clock.advance(10 * minute);
        feed.text = bookingExport(bookingStay(hexB, ...midnight.trimmed), bookingStay(hexLater, ...midnight.later));
        const decision = await read(app, 2);
        assert.equal(decision.kind, 'no-night-change', decision.why);
        assert.equal(decision.rule, 'night-passing');
        assert.deepEqual(decision.nights, { added: [], removed: [] });
        assert.deepEqual(decision.passed, { added: [], removed: midnight.passed[rule] });
        assert.deepEqual(decision.notified, []);
        settle(clock);
        assert.deepEqual(await pendingOf(app), []);
        assert.equal(heads.length, 0, 'no HEAD for the midnight trim');
        assert.ok(!app.logs.some((l) => l.msg === 'feed drop held'), 'the trim is no drop either');
      });

    test(`${midnight.name}, ${label}: an export trimmed ten minutes before midnight notifies nobody either`,
      async (t) => {
        const { clock, feed, heads, app } = await setup(t, midnight.at - 20 * minute, zone);
        feed.text = bookingExport(bookingStay(hexA, ...midnight.stay), bookingStay(hexLater, ...midnight.later));
        await read(app, 1);
        // The upstream's clock runs ahead of ours: its midnight job already ran at 23:50 our time.
        clock.advance(10 * minute);
        feed.text = bookingExport(bookingStay(hexB, ...midnight.trimmed), bookingStay(hexLater, ...midnight.later));
        const decision = await read(app, 2);
        assert.equal(decision.kind, 'no-night-change', decision.why);
        assert.deepEqual(decision.notified, []);
        settle(clock);
        assert.deepEqual(await pendingOf(app), []);
        assert.equal(heads.length, 0);
      });

    test(`${midnight.name}, ${label}: a same-day booking of tonight read at 23:30 local is primary, one HEAD`,
      async (t) => {
        const { clock, feed, heads, app } = await setup(t, midnight.at - 40 * minute, zone);
        feed.text = bookingExport(bookingStay(hexLater, ...midnight.later));
        await read(app, 1);
        clock.advance(10 * minute);
        // Tonight: the local date before midnight, checking out tomorrow.
        const tomorrow = midnight.trimmed[0];
        const tonight = addDays(tomorrow, -1);
        feed.text = bookingExport(bookingStay(hexA, tonight, tomorrow), bookingStay(hexLater, ...midnight.later));
        const decision = await read(app, 2);
        assert.equal(decision.kind, 'primary', decision.why);
        assert.equal(decision.rule, 'unexplained-nights');
        assert.deepEqual(decision.nights, { added: [`${iso(tonight)}/${iso(tomorrow)}`], removed: [] });
        assert.deepEqual(decision.notified, ['peer']);
        clock.advance(10);
        await eventually(() => heads.length >= 1, 10_000);
        await eventually(() => app.logs.some((l) => l.msg === 'push notification sent'), 10_000);
        assert.deepEqual(await pendingOf(app), []);
        assert.equal(heads.length, 1);
      });
  }
}

// The trim frees nights that are no longer ahead: they are no loss of the listing's future busy nights,
// so the drop rule must not hold the read either. Without a zone, Auckland's midnight trim of a listing's
// only stay (three nights counted from the UTC−12 date, two of them trimmed) is where that shows.
const auckland = midnights[2] as Midnight;

test('Auckland, no timezone: the midnight trim of the listing\'s only stay is no drop and notifies nobody',
  async (t) => {
    const { clock, feed, heads, app } = await setup(t, auckland.at - 5 * minute, undefined);
    feed.text = bookingExport(bookingStay(hexA, '20270113', '20270117'));
    await read(app, 1);
    clock.advance(10 * minute);
    feed.text = bookingExport(bookingStay(hexB, '20270116', '20270117'));
    const decision = await read(app, 2);
    assert.equal(decision.kind, 'no-night-change', `${decision.rule}: ${decision.why}`);
    assert.deepEqual(decision.passed, { added: [], removed: ['2027-01-14/2027-01-16'] });
    assert.ok(!app.logs.some((l) => l.msg === 'feed drop held'), 'nights no longer ahead are no drop');
    settle(clock);
    assert.deepEqual(await pendingOf(app), []);
    assert.equal(heads.length, 0);
  });

test('Auckland, no timezone: a booking made ten minutes after the midnight trim of the only stay is pushed at once',
  async (t) => {
    const { clock, feed, heads, app } = await setup(t, auckland.at - 5 * minute, undefined);
    feed.text = bookingExport(bookingStay(hexA, '20270113', '20270117'));
    await read(app, 1);
    clock.advance(10 * minute);
    feed.text = bookingExport(bookingStay(hexB, '20270116', '20270117'));
    await (await request(`${app.url}/calendar/${listing}.ics`)).body.dump();
    clock.advance(10 * minute);
    feed.text = bookingExport(bookingStay(hexB, '20270116', '20270117'), bookingStay(hexLater, '20270301', '20270304'));
    await (await request(`${app.url}/calendar/${listing}.ics`)).body.dump();
    // The read is applied by the time its answer is sent: held or not is known now.
    const state = await (await request(`${app.url}/_icalpush/listings/${listing}`)).body.json() as
      { snapshot?: { held?: unknown } };
    assert.equal(state.snapshot?.held, undefined,
      `the March booking is held behind the trim: ${JSON.stringify(decisionsLogged(app).map((d) => [d.kind, d.rule]))}`);
    await eventually(() => decisionsLogged(app).some((d) => d.kind === 'primary'), 10_000);
    const primary = decisionsLogged(app).find((d) => d.kind === 'primary') as Decision;
    assert.deepEqual(primary.nights, { added: ['2027-03-01/2027-03-04'], removed: [] });
    clock.advance(10);
    await eventually(() => heads.length >= 1, 10_000);
    assert.equal(heads.length, 1);
  });
