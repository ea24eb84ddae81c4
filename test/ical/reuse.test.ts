// splitReusing must give exactly what splitCalendar gives, for every fixture and every real export,
// with or without the last read's memo; and it must actually reuse on the plain layout.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeFeed } from '../../src/ical/decode.ts';
import { splitReusing } from '../../src/ical/reuse.ts';
import { splitCalendar } from '../../src/ical/split.ts';
import { feedsDir } from './feeds.ts';

const corpusDir = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const fixtures = readdirSync(feedsDir).filter((f) => f.endsWith('.ics')).map((f) => fileURLToPath(new URL(f, feedsDir)));
const corpus = existsSync(corpusDir)
  ? readdirSync(corpusDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ics')).map((f) => join(corpusDir, f))
  : [];

for (const file of [...fixtures, ...corpus].sort()) {
  test(`splitReusing equals splitCalendar: ${file.slice(file.lastIndexOf('/') + 1)}`, () => {
    const text = decodeFeed(readFileSync(file)).text;
    const expected = splitCalendar(text);
    const first = splitReusing(text, undefined);
    assert.deepEqual(first.calendar, expected);
    const again = splitReusing(text, first.memo);
    assert.deepEqual(again.calendar, expected);
    assert.equal(again.parsed, 0);
  });
}

const event = (uid: string, stamp: string, summary = 'Booked') =>
  `BEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:${stamp}\r\nDTSTART;VALUE=DATE:20260110\r\nSUMMARY:${summary}\r\n`
  + 'BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT1H\r\nEND:VALARM\r\nEND:VEVENT\r\n';
const feed = (stamp: string, changed = '') => 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n'
  + `${event('a', stamp)}${event('b', stamp, `Booked${changed}`)}${event('c', stamp)}X-WR-CALNAME:After\r\nEND:VCALENDAR\r\n`;

test('splitReusing parses only the blocks whose text changed, DTSTAMP aside', () => {
  const first = splitReusing(feed('20260101T000000Z'), undefined);
  assert.equal(first.parsed, 3);
  const churn = splitReusing(feed('20260102T000000Z'), first.memo);
  assert.deepEqual([churn.reused, churn.parsed], [3, 0]);
  const changed = splitReusing(feed('20260103T000000Z', ' late'), churn.memo);
  assert.deepEqual([changed.reused, changed.parsed], [2, 1]);
  assert.deepEqual(changed.calendar.properties.map((l) => l.name), ['VERSION', 'PRODID', 'X-WR-CALNAME']);
});

test('splitReusing hands anything but the plain layout to splitCalendar', () => {
  const plain = splitReusing(feed('20260101T000000Z'), undefined);
  for (const text of [
    feed('20260101T000000Z').toLowerCase(),
    feed('20260101T000000Z').replaceAll('\r\n', '\r'),
    feed('20260101T000000Z').replace('END:VEVENT\r\nBEGIN:VEVENT\r\nUID:b', 'BEGIN:VEVENT\r\nUID:b'),
    feed('20260101T000000Z').replace('END:VCALENDAR', ''),
  ]) {
    const result = splitReusing(text, undefined);
    assert.deepEqual(result.calendar, splitCalendar(text));
    assert.equal(result.parsed + result.reused, 0);
    // With the plain read's blocks at hand too: an unterminated block is none of them.
    const reread = splitReusing(text, plain.memo);
    assert.deepEqual(reread.calendar, splitCalendar(text));
    assert.equal(reread.parsed + reread.reused, 0);
  }
});

// The memo is searched near where the last read had each block, then (a reordered feed) by text.
const many = (uids: string[], stamp: string) => 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\n'
  + `${uids.map((uid) => event(uid, stamp)).join('')}END:VCALENDAR\r\n`;
const ids = Array.from({ length: 40 }, (_, i) => `e${i}`);

test('splitReusing finds blocks that moved: inserted, removed, reordered', () => {
  const first = splitReusing(many(ids, '20260101T000000Z'), undefined);
  const cases: [string[], number][] = [
    [[...ids.slice(0, 20), 'new', ...ids.slice(20)], 1],
    [[...ids.slice(0, 10), ...ids.slice(15)], 0],
    // Missed blocks before the feed counts as reordered are parsed again, never more than that.
    [[...ids].reverse(), 16],
  ];
  for (const [order, parsed] of cases) {
    const text = many(order, '20260101T000000Z');
    const again = splitReusing(text, first.memo);
    assert.deepEqual(again.calendar, splitCalendar(text));
    assert.deepEqual([again.parsed, again.reused], [parsed, order.length - parsed]);
  }
});
