import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parseEventSpans } from '../../src/ical/parse.ts';
import { addDays } from '../../src/push/decide/dates.ts';
import {
  busyNights, defaultHorizonDays, withoutNodeIcalWarnings,
} from '../../src/push/availability.ts';

const calendar = (...components: string[]) => `BEGIN:VCALENDAR\nVERSION:2.0\n${components.join('\n')}\nEND:VCALENDAR\n`;
const vevent = (...lines: string[]) => `BEGIN:VEVENT\n${lines.join('\n')}\nEND:VEVENT`;
const fixture = (name: string) => readFile(new URL(`../fixtures/feeds/${name}.ics`, import.meta.url), 'utf8');

const compact = (date: string) => date.replaceAll('-', '');
/** The nights from `first` up to, not including, `end`. */
const nightsFrom = (first: string, end: string) => {
  const nights: string[] = [];
  for (let night = first; night < end; night = addDays(night, 1)) nights.push(night);
  return nights;
};
const sorted = (nights: Set<string>) => [...nights].sort();
const nightsOf = async (text: string, today: string, horizonDays?: number) =>
  sorted((await busyNights(text, { today, ...(horizonDays === undefined ? {} : { horizonDays }) })).nights);

const allDay = (uid: string, start: string, end: string, ...more: string[]) =>
  vevent(`UID:${uid}`, `DTSTART;VALUE=DATE:${compact(start)}`, `DTEND;VALUE=DATE:${compact(end)}`, ...more);

// node-ical prints a warning for a DURATION it cannot read.
const warningFeed = calendar(vevent('UID:w', 'DTSTART:20260301T100000Z', 'DURATION:garbage'));

/** Replaces console.warn with a recorder for the test, restoring the original after it. */
function spyOnWarn(t: { after(fn: () => void): void }): { spy: typeof console.warn; lines: unknown[][] } {
  const original = console.warn;
  const lines: unknown[][] = [];
  const spy = (...args: unknown[]) => {
    lines.push(args);
  };
  console.warn = spy;
  t.after(() => {
    console.warn = original;
  });
  return { spy, lines };
}

test('busyNights blocks an all-day stay from check-in through the night before check-out', async () => {
  const text = calendar(allDay('a', '2026-03-01', '2026-03-04'));
  assert.deepEqual(await nightsOf(text, '2026-02-01'), ['2026-03-01', '2026-03-02', '2026-03-03']);
});

test('busyNights counts a stay in progress from today', async () => {
  const text = calendar(allDay('a', '2026-08-20', '2026-08-25'));
  assert.deepEqual(await nightsOf(text, '2026-08-22'), ['2026-08-22', '2026-08-23', '2026-08-24']);
});

test('busyNights reads the Booking.com fixture with its stay in progress and its far block', async () => {
  const today = '2026-08-22';
  const expected = [...nightsFrom(today, '2026-08-25'), ...nightsFrom('2027-08-01', '2028-08-22')];
  assert.deepEqual(await nightsOf(await fixture('booking-dtstamp-churn-t0'), today, 800), expected);
});

test('busyNights gives nothing for events that ended before today', async () => {
  const { nights, unreadable } = await busyNights(await fixture('vrbo-uuid-uids-date-derived-owner-block'),
    { today: '2026-01-01' });
  assert.equal(unreadable, 0);
  assert.deepEqual(sorted(nights), []);
});

test('busyNights does not change when a past event expires out of the feed', async () => {
  const past = allDay('past', '2026-08-01', '2026-08-05');
  const future = allDay('future', '2026-09-01', '2026-09-03');
  const before = await nightsOf(calendar(past, future), '2026-08-22');
  assert.deepEqual(before, ['2026-09-01', '2026-09-02']);
  assert.deepEqual(await nightsOf(calendar(future), '2026-08-22'), before);
});

test('busyNights gives identical nights for the DTSTAMP churn pair', async () => {
  const today = '2026-08-22';
  const t0 = await nightsOf(await fixture('booking-dtstamp-churn-t0'), today);
  const t1 = await nightsOf(await fixture('booking-dtstamp-churn-t1'), today);
  assert.ok(t0.length > 0);
  assert.deepEqual(t1, t0);
});

test('busyNights gives identical nights for a stay re-keyed under a new UID', async () => {
  const original = await fixture('airbnb-dtstamp-fetch-time');
  const rekeyed = original.replaceAll(/^UID:.*$/gm, (line) => `${line}-rekeyed`);
  assert.notEqual(rekeyed, original);
  const today = '2025-10-23';
  const before = await nightsOf(original, today);
  assert.deepEqual(before.slice(0, 5), ['2025-11-01', '2025-11-02', '2025-11-03', '2025-11-10', '2025-11-11']);
  assert.deepEqual(await nightsOf(rekeyed, today), before);
});

test('busyNights ignores cancelled events and counts tentative ones', async () => {
  // Timed events without DTEND: tentative on 5 July, cancelled on 6 July, no status on 7 July.
  assert.deepEqual(await nightsOf(await fixture('apple-tentative-cancelled'), '2022-07-01'),
    ['2022-07-05', '2022-07-07']);
});

test('busyNights ignores transparent events', async () => {
  const text = calendar(
    allDay('free', '2026-03-01', '2026-03-03', 'TRANSP:TRANSPARENT'),
    allDay('busy', '2026-03-05', '2026-03-06', 'TRANSP:OPAQUE'),
  );
  assert.deepEqual(await nightsOf(text, '2026-02-01'), ['2026-03-05']);
});

test('busyNights expands a weekly rule without its EXDATE occurrence', async () => {
  const text = calendar(allDay('weekly', '2026-03-07', '2026-03-08',
    'RRULE:FREQ=WEEKLY;COUNT=4', 'EXDATE;VALUE=DATE:20260314'));
  assert.deepEqual(await nightsOf(text, '2026-03-01'), ['2026-03-07', '2026-03-21', '2026-03-28']);
  assert.deepEqual(await nightsOf(text, '2026-03-15'), ['2026-03-21', '2026-03-28']);
});

test('busyNights blocks the night of a timed event that starts and ends the same day', async () => {
  const text = calendar(vevent('UID:m', 'DTSTART:20260310T120000Z', 'DTEND:20260310T140000Z'));
  assert.deepEqual(await nightsOf(text, '2026-03-01'), ['2026-03-10']);
});

test('busyNights does not block the date of a timed end at exactly 00:00', async () => {
  const text = calendar(vevent('UID:m', 'DTSTART:20260310T150000Z', 'DTEND:20260312T000000Z'));
  assert.deepEqual(await nightsOf(text, '2026-03-01'), ['2026-03-10', '2026-03-11']);
});

test('busyNights blocks the date of a timed end after 00:00', async () => {
  const text = calendar(vevent('UID:m', 'DTSTART:20260310T150000Z', 'DTEND:20260312T110000Z'));
  assert.deepEqual(await nightsOf(text, '2026-03-01'), ['2026-03-10', '2026-03-11', '2026-03-12']);
});

test('busyNights reads a timed event with a TZID by its UTC dates', async () => {
  // 23:30 in Paris (UTC+2 in July) is 21:30 UTC on the same date; 01:00 on the 2nd is 23:00 UTC on the 1st.
  const text = calendar(vevent('UID:z',
    'DTSTART;TZID=Europe/Paris:20260701T233000', 'DTEND;TZID=Europe/Paris:20260702T010000'));
  assert.deepEqual(await nightsOf(text, '2026-06-01'), ['2026-07-01']);
});

test('busyNights counts nights only up to today + horizonDays', async () => {
  const today = '2026-01-01';
  const text = calendar(allDay('long', '2025-06-01', '2030-01-01'));
  assert.deepEqual(await nightsOf(text, today, 10), nightsFrom(today, '2026-01-11'));
  assert.deepEqual(await nightsOf(text, today, 0), []);
  assert.equal((await busyNights(text, { today })).nights.size, defaultHorizonDays);
});

test('busyNights leaves out an event that starts on the horizon', async () => {
  const text = calendar(allDay('in', '2026-01-10', '2026-01-11'), allDay('out', '2026-01-11', '2026-01-12'));
  assert.deepEqual(await nightsOf(text, '2026-01-01', 10), ['2026-01-10']);
});

test('busyNights gives an empty set for garbage text and never throws', async () => {
  const garbage = [
    '',
    'hello',
    '{"error":"internal server error"}',
    'BEGIN:VCALENDAR',
    calendar(vevent('UID:x', 'DTSTART:not-a-date', 'DTEND:20260101')),
    '\u0000\uFFFD'.repeat(1000),
    'BEGIN:VEVENT\n'.repeat(500),
  ];
  for (const text of garbage) {
    assert.deepEqual(sorted((await busyNights(text, { today: '2026-01-01' })).nights), [], JSON.stringify(text.slice(0, 40)));
  }
});

test('busyNights rejects a today that is not a YYYY-MM-DD date', async () => {
  await assert.rejects(busyNights('', { today: '2026-02-30' }), RangeError);
  await assert.rejects(busyNights('', { today: '1 March 2026' }), RangeError);
  await assert.rejects(busyNights('', { today: '2026-03-01', horizonDays: -1 }), RangeError);
});

test('the warning feed makes node-ical warn when parsed directly', async (t) => {
  // The precondition of the tests below: without the filter the warning reaches console.warn.
  const { lines } = spyOnWarn(t);
  await parseEventSpans(warningFeed);
  assert.ok(lines.some(([first]) => typeof first === 'string' && first.startsWith('[node-ical]')));
});

test('busyNights keeps node-ical warnings off console.warn and restores it', async (t) => {
  const { spy, lines } = spyOnWarn(t);
  const { nights } = await busyNights(warningFeed, { today: '2026-03-01' });
  assert.deepEqual(sorted(nights), ['2026-03-01']);
  assert.deepEqual(lines, []);
  assert.equal(console.warn, spy);
});

test('withoutNodeIcalWarnings restores console.warn after a run that throws', async (t) => {
  const { spy } = spyOnWarn(t);
  await assert.rejects(withoutNodeIcalWarnings(async () => {
    assert.notEqual(console.warn, spy);
    throw new Error('boom');
  }), /boom/);
  assert.equal(console.warn, spy);
});

test('withoutNodeIcalWarnings passes other warnings on while a parse runs', async (t) => {
  const { spy, lines } = spyOnWarn(t);
  await withoutNodeIcalWarnings(async () => {
    console.warn('[node-ical] dropped');
    console.warn('kept', 1);
  });
  assert.deepEqual(lines, [['kept', 1]]);
  assert.equal(console.warn, spy);
});

test('concurrent parses leave console.warn restored, including one that throws', async (t) => {
  const { spy, lines } = spyOnWarn(t);
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  // The slow run starts first and ends last, after the others finished in between.
  const slow = withoutNodeIcalWarnings(async () => {
    await gate;
    console.warn('[node-ical] late');
  });
  const parses = Array.from({ length: 5 }, () => busyNights(warningFeed, { today: '2026-03-01' }));
  const failing = withoutNodeIcalWarnings(async () => {
    throw new Error('boom');
  });
  const settled = await Promise.allSettled([...parses, failing]);
  assert.deepEqual(settled.map((s) => s.status), [...parses.map(() => 'fulfilled'), 'rejected']);
  assert.notEqual(console.warn, spy);
  release();
  await slow;
  assert.equal(console.warn, spy);
  assert.deepEqual(lines, []);
});

test('withoutNodeIcalWarnings leaves a console.warn replaced during the run in place', async (t) => {
  spyOnWarn(t);
  const replacement = () => {};
  await withoutNodeIcalWarnings(async () => {
    console.warn = replacement;
  });
  assert.equal(console.warn, replacement);
});

test('with the listing\'s zone, a timed event falls on its local dates', async () => {
  // 23:30 in Paris on July 1st is 21:30 UTC: the night of July 1st either way; 00:30 in Paris on the 2nd is
  // 22:30 UTC on the 1st: by UTC dates the night of the 1st, by Paris dates the night of the 2nd.
  const text = calendar(vevent('UID:z',
    'DTSTART;TZID=Europe/Paris:20260702T003000', 'DTEND;TZID=Europe/Paris:20260702T020000'));
  assert.deepEqual(sorted((await busyNights(text, { today: '2026-06-01' })).nights), ['2026-07-01']);
  assert.deepEqual(sorted((await busyNights(text, { today: '2026-06-01', zone: 'Europe/Paris' })).nights),
    ['2026-07-02']);
});

test('calendarNights counts the events that make the furthest run: one for an exporter\'s far block', async () => {
  const { analyzeCalendar, calendarNights } = await import('../../src/ical/analyze.ts');
  const nightsOfText = (text: string) => calendarNights(analyzeCalendar(Buffer.from(text)), { today: '2026-12-01' });
  const block = allDay('block', '2027-09-01', '2027-11-01', 'SUMMARY:Airbnb (Not available)');
  assert.equal((await nightsOfText(calendar(allDay('s', '2026-12-10', '2026-12-12'), block))).edgeEvents, 1);
  // Ten back-to-back stays, then one more: bookings, not a block.
  const stays = Array.from({ length: 10 }, (_, i) => allDay(`b${i}`, addDays('2027-08-01', 3 * i), addDays('2027-08-01', 3 * i + 3)));
  assert.equal((await nightsOfText(calendar(...stays))).edgeEvents, 2);
  assert.equal((await nightsOfText(calendar())).edgeEvents, 0);
  // A cancelled event touching the block does not count.
  const cancelled = allDay('c', '2027-08-25', '2027-09-01', 'STATUS:CANCELLED');
  assert.equal((await nightsOfText(calendar(block, cancelled))).edgeEvents, 1);
});
