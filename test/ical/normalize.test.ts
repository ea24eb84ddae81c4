import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { entityHash } from '../../src/ical/normalize.ts';
import { feedsDir, parseFeed, readFixture } from './feeds.ts';

const hashes = (body: string) => parseFeed(Buffer.from(body)).entities.map((e) => [e.id, entityHash(e)]);

test('entityHash ignores DTSTAMP churn (the Booking.com t0/t1 pair)', async () => {
  const t0 = await readFixture('booking-dtstamp-churn-t0');
  const t1 = await readFixture('booking-dtstamp-churn-t1');
  assert.deepEqual(t1.entities.map(entityHash), t0.entities.map(entityHash));
});

test('entityHash ignores property order, folding and line ends', async () => {
  const text = await readFile(new URL('google-override-before-master.ics', feedsDir), 'utf8');
  const reordered = text.replace('SEQUENCE:0\nSUMMARY:Weekly sync\n', 'SUMMARY:Weekly sync\nSEQUENCE:0\n')
    .replace('SUMMARY:Weekly sync (moved)', 'SUMMARY:Weekly s\n ync (moved)')
    .replaceAll('\n', '\r\n');
  assert.notEqual(reordered, text);
  assert.deepEqual(hashes(reordered), hashes(text));
});

const changes: [string, (text: string) => string][] = [
  ['a new DTEND', (t) => t.replace('DTEND;VALUE=DATE:20260825', 'DTEND;VALUE=DATE:20260826')],
  ['a new SUMMARY', (t) => t.replace('SUMMARY:CLOSED - Not available', 'SUMMARY:CLOSED - Reserved')],
  ['a new STATUS', (t) => t.replace('ORGANIZER:mailto:noreply@booking.com\r\n', 'ORGANIZER:mailto:noreply@booking.com\r\nSTATUS:CANCELLED\r\n')],
  ['a new parameter', (t) => t.replace('DTSTART;VALUE=DATE:20260820', 'DTSTART:20260820')],
  ['an added VALARM', (t) => t.replace('END:VEVENT', 'BEGIN:VALARM\r\nTRIGGER:-PT1H\r\nEND:VALARM\r\nEND:VEVENT')],
];

for (const [what, change] of changes) {
  test(`entityHash moves for exactly one entity on ${what}`, async () => {
    const text = await readFile(new URL('booking-dtstamp-churn-t0.ics', feedsDir), 'utf8');
    const changed = change(text);
    assert.notEqual(changed, text);
    const before = hashes(text);
    const after = hashes(changed);
    assert.deepEqual(after.map(([id]) => id), before.map(([id]) => id));
    assert.equal(after.filter(([, h], i) => h !== before[i]![1]).length, 1);
  });
}

test('entityHash hashes VALARM children as sorted units', () => {
  const alarm = (trigger: string) => `BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:${trigger}\nEND:VALARM`;
  const cal = (alarms: string) => `BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\n${alarms}\nEND:VEVENT\nEND:VCALENDAR`;
  assert.deepEqual(hashes(cal(`${alarm('-PT5M')}\n${alarm('-PT1H')}`)), hashes(cal(`${alarm('-PT1H')}\n${alarm('-PT5M')}`)));
  assert.notDeepEqual(hashes(cal(`${alarm('-PT5M')}\n${alarm('-PT1H')}`)), hashes(cal(`${alarm('-PT5M')}\n${alarm('-PT2H')}`)));
});
