import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { type EventSpan, maxIterationsPerEvent, parseEventSpans } from '../../src/ical/parse.ts';
import { assertDirectMatchesNodeIcal, feedsDir, readFixture } from './feeds.ts';

const calendar = (...components: string[]) => `BEGIN:VCALENDAR\nVERSION:2.0\n${components.join('\n')}\nEND:VCALENDAR\n`;
const vevent = (...lines: string[]) => `BEGIN:VEVENT\n${lines.join('\n')}\nEND:VEVENT`;
const window = { from: new Date('2015-01-01T00:00:00Z'), expandUntil: new Date('2030-01-01T00:00:00Z') };
const iso = (spans: EventSpan[]) => spans.map((s) => [s.start.toISOString(), s.end.toISOString()]);
const fixtureText = async (name: string) => (await readFixture(name)).decoded.text;

test('parseEventSpans reads an all-day range with its exclusive DTEND as midnight UTC dates', async () => {
  const { spans, unreadable } = await parseEventSpans(calendar(
    vevent('UID:a', 'DTSTART;VALUE=DATE:20260301', 'DTEND;VALUE=DATE:20260304'),
  ), window);
  assert.equal(unreadable, 0);
  assert.deepEqual(spans, [{
    uid: 'a',
    start: new Date('2026-03-01T00:00:00Z'),
    end: new Date('2026-03-04T00:00:00Z'),
    allDay: true,
    status: undefined,
    transparent: false,
  }]);
});

test('parseEventSpans reads the Airbnb fixture as the nights it blocks', async () => {
  const { spans } = await parseEventSpans(await fixtureText('airbnb-dtstamp-fetch-time'), window);
  assert.deepEqual(iso(spans), [
    ['2025-11-01T00:00:00.000Z', '2025-11-04T00:00:00.000Z'],
    ['2025-11-10T00:00:00.000Z', '2025-11-12T00:00:00.000Z'],
    ['2026-10-10T00:00:00.000Z', '2026-10-24T00:00:00.000Z'],
  ]);
  assert.ok(spans.every((s) => s.allDay));
});

test('parseEventSpans treats an 8-digit DTSTART without VALUE=DATE as all-day', async () => {
  const { spans } = await parseEventSpans(calendar(vevent('UID:d', 'DTSTART:20260301', 'DTEND:20260302')), window);
  assert.equal(spans[0]?.allDay, true);
  assert.deepEqual(iso(spans), [['2026-03-01T00:00:00.000Z', '2026-03-02T00:00:00.000Z']]);
});

test('parseEventSpans converts a timed event with a TZID to UTC', async () => {
  const { spans } = await parseEventSpans(calendar(vevent(
    'UID:t', 'DTSTART;TZID=America/New_York:20260701T100000', 'DTEND;TZID=America/New_York:20260701T113000',
  )), window);
  assert.equal(spans[0]?.allDay, false);
  assert.deepEqual(iso(spans), [['2026-07-01T14:00:00.000Z', '2026-07-01T15:30:00.000Z']]);
});

test('parseEventSpans resolves a Windows TZID through its VTIMEZONE', async () => {
  const { spans } = await parseEventSpans(await fixtureText('exchange-windows-tzid'), window);
  // W. Europe Standard Time is UTC+1 in January: the 10:00 meeting is 09:00 UTC.
  assert.deepEqual(iso(spans.slice(0, 1)), [['2023-01-02T09:00:00.000Z', '2023-01-02T09:15:00.000Z']]);
});

test('parseEventSpans ends a timed event without DTEND after its DURATION', async () => {
  const { spans } = await parseEventSpans(calendar(vevent('UID:d', 'DTSTART:20260301T100000Z', 'DURATION:PT2H30M')), window);
  assert.deepEqual(iso(spans), [['2026-03-01T10:00:00.000Z', '2026-03-01T12:30:00.000Z']]);
});

test('parseEventSpans ends an all-day event without DTEND after its DURATION in whole days', async () => {
  const { spans } = await parseEventSpans(calendar(vevent('UID:d', 'DTSTART;VALUE=DATE:20260307', 'DURATION:P3D')), window);
  assert.deepEqual(iso(spans), [['2026-03-07T00:00:00.000Z', '2026-03-10T00:00:00.000Z']]);
});

test('parseEventSpans gives an all-day event without DTEND or DURATION one day', async () => {
  const { spans } = await parseEventSpans(calendar(vevent('UID:d', 'DTSTART;VALUE=DATE:20260301')), window);
  assert.deepEqual(iso(spans), [['2026-03-01T00:00:00.000Z', '2026-03-02T00:00:00.000Z']]);
});

test('parseEventSpans gives a timed event without DTEND or DURATION zero length', async () => {
  const { spans } = await parseEventSpans(calendar(vevent('UID:d', 'DTSTART:20260301T100000Z')), window);
  assert.deepEqual(iso(spans), [['2026-03-01T10:00:00.000Z', '2026-03-01T10:00:00.000Z']]);
});

test('parseEventSpans reads a DTEND before DTSTART (Airbnb 0.8.8) as a missing DTEND', async () => {
  const { spans } = await parseEventSpans(await fixtureText('airbnb-blank-lines'), window);
  assert.deepEqual(iso(spans), [
    ['2019-03-12T00:00:00.000Z', '2019-03-13T00:00:00.000Z'],
    ['2019-03-20T00:00:00.000Z', '2019-03-25T00:00:00.000Z'],
  ]);
});

test('parseEventSpans carries STATUS', async () => {
  const { spans } = await parseEventSpans(await fixtureText('apple-tentative-cancelled'), window);
  assert.deepEqual(spans.map((s) => [s.uid, s.status]), [
    ['tentative@example.test', 'TENTATIVE'],
    ['cancelled@example.test', 'CANCELLED'],
    ['no-status@example.test', undefined],
  ]);
});

test('parseEventSpans carries TRANSP:TRANSPARENT and an upper-cased STATUS', async () => {
  const { spans } = await parseEventSpans(calendar(
    vevent('UID:free', 'DTSTART:20260301T100000Z', 'TRANSP:TRANSPARENT', 'STATUS:confirmed'),
    vevent('UID:busy', 'DTSTART:20260302T100000Z', 'TRANSP:OPAQUE', 'STATUS:X-UNKNOWN'),
  ), window);
  assert.deepEqual(spans.map((s) => [s.uid, s.transparent, s.status]), [['free', true, 'CONFIRMED'], ['busy', false, undefined]]);
});

test('parseEventSpans expands an RRULE minus EXDATE, with a moved and a cancelled override', async () => {
  const { spans, capped } = await parseEventSpans(calendar(
    vevent('UID:w', 'DTSTART;TZID=Europe/Paris:20260105T100000', 'DTEND;TZID=Europe/Paris:20260105T110000',
      'RRULE:FREQ=WEEKLY;COUNT=5', 'EXDATE;TZID=Europe/Paris:20260112T100000'),
    vevent('UID:w', 'RECURRENCE-ID;TZID=Europe/Paris:20260119T100000',
      'DTSTART;TZID=Europe/Paris:20260120T150000', 'DTEND;TZID=Europe/Paris:20260120T170000'),
    vevent('UID:w', 'RECURRENCE-ID;TZID=Europe/Paris:20260126T100000',
      'DTSTART;TZID=Europe/Paris:20260126T100000', 'STATUS:CANCELLED'),
  ), window);
  assert.equal(capped, 0);
  assert.deepEqual(spans.map((s) => [s.start.toISOString(), s.end.toISOString(), s.recurrenceId]), [
    ['2026-01-05T09:00:00.000Z', '2026-01-05T10:00:00.000Z', undefined],
    ['2026-01-20T14:00:00.000Z', '2026-01-20T16:00:00.000Z', '2026-01-19T09:00:00.000Z'],
    ['2026-02-02T09:00:00.000Z', '2026-02-02T10:00:00.000Z', undefined],
  ]);
  assert.ok(spans.every((s) => s.uid === 'w'));
});

test('parseEventSpans expands an all-day RRULE with a DATE EXDATE', async () => {
  const { spans } = await parseEventSpans(calendar(vevent(
    'UID:n', 'DTSTART;VALUE=DATE:20260306', 'DTEND;VALUE=DATE:20260308', 'RRULE:FREQ=WEEKLY;COUNT=3',
    'EXDATE;VALUE=DATE:20260313',
  )), window);
  assert.deepEqual(iso(spans), [
    ['2026-03-06T00:00:00.000Z', '2026-03-08T00:00:00.000Z'],
    ['2026-03-20T00:00:00.000Z', '2026-03-22T00:00:00.000Z'],
  ]);
});

test('parseEventSpans drops the occurrence a cancelled override removes (Thunderbird)', async () => {
  const { spans } = await parseEventSpans(await fixtureText('thunderbird-cancelled-occurrence'), window);
  assert.deepEqual(spans.map((s) => s.start.toISOString()), ['2019-01-07T10:00:00.000Z', '2019-01-09T10:00:00.000Z']);
});

test('parseEventSpans places an override that comes before its master (Google)', async () => {
  const { spans } = await parseEventSpans(await fixtureText('google-override-before-master'), window);
  const moved = spans.filter((s) => s.recurrenceId !== undefined);
  assert.deepEqual(moved.map((s) => [s.recurrenceId, s.start.toISOString()]), [['2024-03-12T14:00:00.000Z', '2024-03-12T15:00:00.000Z']]);
  assert.ok(!spans.some((s) => s.start.toISOString() === '2024-03-12T14:00:00.000Z'));
});

test('parseEventSpans reads overrides without a master (Google) as events', async () => {
  const { spans, unreadable } = await parseEventSpans(await fixtureText('google-orphan-overrides'), window);
  assert.equal(unreadable, 0);
  assert.deepEqual(iso(spans), [
    ['2018-01-05T00:00:00.000Z', '2018-01-06T00:00:00.000Z'],
    ['2018-01-12T00:00:00.000Z', '2018-01-13T00:00:00.000Z'],
  ]);
});

test('parseEventSpans keeps only the later copy of a twice-moved all-day occurrence (Exchange 2010)', async () => {
  const { spans } = await parseEventSpans(await fixtureText('exchange-allday-master-datetime-recurrence-id'), window);
  const moved = spans.filter((s) => s.recurrenceId !== undefined);
  assert.deepEqual(moved.map((s) => [s.recurrenceId, s.start.toISOString()]), [['2026-02-26T00:00:00.000Z', '2026-03-03T00:00:00.000Z']]);
  assert.ok(!spans.some((s) => s.start.toISOString() === '2026-02-26T00:00:00.000Z'));
});

test('parseEventSpans expands only between from and expandUntil', async () => {
  const { spans } = await parseEventSpans(
    calendar(vevent('UID:d', 'DTSTART:20200101T100000Z', 'DTEND:20200101T110000Z', 'RRULE:FREQ=DAILY')),
    { from: new Date('2026-03-01T10:30:00Z'), expandUntil: new Date('2026-03-04T00:00:00Z') },
  );
  // The occurrence in progress at `from` counts: it is busy time from `from` on.
  assert.deepEqual(spans.map((s) => s.start.toISOString()), [
    '2026-03-01T10:00:00.000Z', '2026-03-02T10:00:00.000Z', '2026-03-03T10:00:00.000Z',
  ]);
});

test('parseEventSpans expands from a day ago to two years on by default', async () => {
  const { spans } = await parseEventSpans(calendar(vevent('UID:y', 'DTSTART;VALUE=DATE:20000101', 'RRULE:FREQ=MONTHLY')));
  const now = Date.now();
  assert.ok(spans.length >= 23 && spans.length <= 26, `${spans.length} occurrences`);
  assert.ok(spans[0]!.end.getTime() > now - 2 * 86_400_000 && spans[0]!.start.getTime() <= now + 31 * 86_400_000);
  assert.ok(spans.at(-1)!.start.getTime() < now + 2 * 366 * 86_400_000);
});

test('parseEventSpans stands a FREQ=MINUTELY rule past its budget as one busy-safe span to the window end', async () => {
  const from = new Date('2026-01-01T00:00:00Z');
  const { spans, capped } = await parseEventSpans(calendar(
    vevent('UID:m', 'DTSTART:20200101T000000Z', 'RRULE:FREQ=MINUTELY'),
    vevent('UID:after', 'DTSTART:20260301T000000Z'),
  ), { from });
  assert.equal(capped, 1);
  const minutely = spans.filter((s) => s.uid === 'm');
  assert.ok(minutely.length <= maxIterationsPerEvent, `${minutely.length} occurrences`);
  const safe = minutely.filter((s) => s.busySafe);
  assert.equal(safe.length, 1);
  assert.equal(safe[0]!.start.getTime(), from.getTime());
  assert.equal(safe[0]!.end.toISOString(), '2028-01-01T00:00:00.000Z');
  assert.ok(spans.some((s) => s.uid === 'after'), 'the events after a capped one are still read');
});

test('parseEventSpans ends a budget-cut rule at its UNTIL', async () => {
  const { spans } = await parseEventSpans(calendar(
    vevent('UID:h', 'DTSTART:20200101T000000Z', 'DTEND:20200101T003000Z', 'RRULE:FREQ=HOURLY;UNTIL=20260310T000000Z'),
  ), { from: new Date('2026-03-01T00:00:00Z'), expandUntil: new Date('2027-01-01T00:00:00Z') });
  const safe = spans.filter((s) => s.busySafe);
  assert.equal(safe.length, 1);
  assert.equal(safe[0]!.end.toISOString(), '2026-03-11T00:00:00.000Z');
});

test('parseEventSpans spends one budget across a feed: 300 FREQ=MINUTELY rules stay bounded and busy-safe', async () => {
  const events = Array.from({ length: 300 }, (_, i) => vevent(`UID:m${i}`, 'DTSTART:20200101T000000Z', 'RRULE:FREQ=MINUTELY'));
  const { spans, capped } = await parseEventSpans(calendar(...events), { from: new Date('2026-01-01T00:00:00Z') });
  assert.equal(capped, 300);
  assert.equal(spans.filter((s) => s.busySafe).length, 300);
});

test('parseEventSpans reads a DAILY;COUNT=100000 rule from 2020 in one pass', async () => {
  const { spans, capped } = await parseEventSpans(calendar(
    vevent('UID:d', 'DTSTART:20200101T100000Z', 'DTEND:20200101T110000Z', 'RRULE:FREQ=DAILY;COUNT=100000'),
  ), { from: new Date('2026-03-01T00:00:00Z'), expandUntil: new Date('2026-03-11T00:00:00Z') });
  assert.equal(capped, 0);
  assert.equal(spans.length, 10);
});

test('parseEventSpans gives nothing for text that is not a calendar, without throwing', async () => {
  for (const text of ['', 'not a calendar', '{"error":"HTTP 500"}', 'BEGIN:VCALENDAR', 'END:VCALENDAR\nBEGIN:VEVENT']) {
    assert.deepEqual(await parseEventSpans(text, window), { spans: [], unreadable: 0, capped: 0 });
  }
});

test('parseEventSpans counts an event with no or an unreadable DTSTART as unreadable', async () => {
  const { spans, unreadable } = await parseEventSpans(calendar(
    vevent('UID:none', 'SUMMARY:no start'),
    vevent('UID:junk', 'DTSTART:tomorrow'),
    vevent('UID:ok', 'DTSTART:20260301T100000Z'),
  ), window);
  assert.equal(unreadable, 2);
  assert.deepEqual(spans.map((s) => s.uid), ['ok']);
});

test('parseEventSpans counts an event node-ical rejects and reads the others (late error)', async () => {
  const { spans, unreadable } = await parseEventSpans(await fixtureText('late-error'), window);
  assert.equal(unreadable, 1);
  assert.deepEqual(spans.map((s) => s.uid), ['event1@example.com', 'event2@example.com']);
});

test('parseEventSpans counts an event with a broken RRULE and reads the others', async () => {
  const { spans, unreadable } = await parseEventSpans(calendar(
    vevent('UID:bad', 'DTSTART:20260301T100000Z', 'RRULE:FREQ=SOMETIMES'),
    vevent('UID:ok', 'DTSTART:20260302T100000Z'),
  ), window);
  assert.equal(unreadable, 1);
  assert.deepEqual(spans.map((s) => s.uid), ['ok']);
});

test('parseEventSpans reads the complete events of a truncated calendar', async () => {
  const text = calendar(vevent('UID:ok', 'DTSTART;VALUE=DATE:20260301')).replace('END:VCALENDAR\n', 'BEGIN:VEVENT\nUID:cut\nDTST');
  const { spans } = await parseEventSpans(text, window);
  assert.deepEqual(spans.map((s) => s.uid), ['ok']);
});

test('parseEventSpans reads all-day dates and floating times the same in every host time zone', async (t) => {
  const saved = process.env.TZ;
  t.after(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });
  const text = calendar(
    vevent('UID:range', 'DTSTART;VALUE=DATE:20260307', 'DTEND;VALUE=DATE:20260310'),
    // Europe/London and America/Los_Angeles change to summer time within these three days.
    vevent('UID:dst', 'DTSTART;VALUE=DATE:20260327', 'DURATION:P3D'),
    vevent('UID:weekly', 'DTSTART;VALUE=DATE:20260305', 'RRULE:FREQ=WEEKLY;COUNT=3', 'EXDATE;VALUE=DATE:20260312'),
    vevent('UID:floating', 'DTSTART:20260301T100000', 'DTEND:20260301T113000'),
  );
  const expected = [
    ['2026-03-01T10:00:00.000Z', '2026-03-01T11:30:00.000Z'],
    ['2026-03-05T00:00:00.000Z', '2026-03-06T00:00:00.000Z'],
    ['2026-03-07T00:00:00.000Z', '2026-03-10T00:00:00.000Z'],
    ['2026-03-19T00:00:00.000Z', '2026-03-20T00:00:00.000Z'],
    ['2026-03-27T00:00:00.000Z', '2026-03-30T00:00:00.000Z'],
  ];
  for (const zone of ['UTC', 'America/Los_Angeles', 'Pacific/Auckland', 'Europe/London', 'Pacific/Kiritimati']) {
    process.env.TZ = zone;
    assert.equal(new Date(2026, 2, 1).getTimezoneOffset() === 0, zone === 'UTC' || zone === 'Europe/London', `TZ=${zone} took effect`);
    const { spans } = await parseEventSpans(text, window);
    assert.deepEqual(iso(spans), expected, `TZ=${zone}`);
  }
});

test('plain events read directly give what node-ical gives, edge cases included', async () => {
  const cases = [
    ['UID:a', 'DTSTART;VALUE=DATE:20260301', 'DTEND;VALUE=DATE:20260304'],
    ['UID:b', 'DTSTART:20260301', 'DTEND:20260301'],
    ['UID:c', 'DTSTART;VALUE=DATE:20260305', 'DTEND;VALUE=DATE:20260302'],
    ['UID:d', 'DTSTART;VALUE=DATE:20260306'],
    ['UID:e', 'DTSTART:20260307T100000Z', 'DTEND:20260307T120000Z', 'STATUS:TENTATIVE'],
    ['UID:f', 'DTSTART:20260308T100000Z', 'STATUS:CANCELLED', 'STATUS:CONFIRMED'],
    ['UID:g', 'DTSTART:20260309T100000Z', 'DTEND:20260309T090000Z', 'TRANSP:TRANSPARENT'],
    ['UID:h', 'DTSTART;VALUE=DATE:20260310', 'DTEND:20260311T100000Z'],
    ['UID:i', 'DTSTART:20260231', 'DTEND:20260302'],
    ['UID:j', 'DTSTART:20260312T100000', 'DTEND:20260312T110000'],
    ['UID:k', 'DTSTART;TZID=Europe/Paris:20260313T100000', 'DTEND;TZID=Europe/Paris:20260313T110000'],
    ['UID:l', 'DTSTART;VALUE=DATE:20260314', 'DURATION:P2D'],
    ['UID:m', 'DTSTART;VALUE=DATE:20260315', 'DTEND;VALUE=DATE:20260316', 'STATUS:bogus', 'TRANSP:OPAQUE'],
    ['DTSTART;VALUE=DATE:20260317', 'DTEND;VALUE=DATE:20260318'],
    ['UID:o', 'DTSTART:20260319T235960Z', 'DTEND:20260320T010000Z'],
    ['UID:p', 'DTSTART;VALUE=DATE-TIME:20260321T100000Z', 'DTEND;VALUE=DATE-TIME:20260321T110000Z'],
  ];
  for (const lines of cases) await assertDirectMatchesNodeIcal(calendar(vevent(...lines)), window, lines.join(' '));
  await assertDirectMatchesNodeIcal(calendar(...cases.map((lines) => vevent(...lines))), window, 'all together');
});

test('plain events read directly give what node-ical gives on every fixture feed', async () => {
  const names = (await readdir(feedsDir)).filter((name) => name.endsWith('.ics'));
  assert.ok(names.length >= 20);
  for (const name of names) await assertDirectMatchesNodeIcal(await fixtureText(name.slice(0, -4)), window, name);
});

test('parseEventSpans still reads a short rule as it is once long ones spent the feed\'s budget', async () => {
  const long = Array.from({ length: 60 }, (_, i) => vevent(`d${i}`, 'DTSTART:20230101T100000Z', 'RRULE:FREQ=DAILY;INTERVAL=2'));
  const { spans } = await parseEventSpans(calendar(...long,
    vevent('UID:short', 'DTSTART:20260302T100000Z', 'DTEND:20260302T110000Z', 'RRULE:FREQ=WEEKLY;COUNT=3')),
  { from: new Date('2026-03-01T00:00:00Z'), expandUntil: new Date('2028-03-01T00:00:00Z') });
  const short = spans.filter((s) => s.uid === 'short');
  assert.deepEqual(short.map((s) => [s.start.toISOString(), s.busySafe ?? false]), [
    ['2026-03-02T10:00:00.000Z', false], ['2026-03-09T10:00:00.000Z', false], ['2026-03-16T10:00:00.000Z', false],
  ]);
});
