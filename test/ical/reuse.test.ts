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

// The columns a memo holds for its blocks, cut to what they use: a re-read that took its blocks from the
// last read's must locate them exactly as a read from scratch does.
function columns(memo: ReturnType<typeof splitReusing>['memo']) {
  const blocks = [...memo.blocks.subarray(0, 5 * memo.count)];
  let used = 0;
  for (let i = 0; i < memo.count; i += 1) used = Math.max(used, (blocks[5 * i] ?? 0) + (blocks[5 * i + 1] ?? 0));
  return { blocks, segments: [...memo.segments.subarray(0, 2 * used)] };
}

// A calendar's components without their DTSTAMP lines.
function stampless(calendar: ReturnType<typeof splitCalendar>) {
  return calendar.components.map((c) => ({ ...c, lines: c.lines.filter((l) => l.name !== 'DTSTAMP') }));
}

// Each VEVENT block's text without its DTSTAMP lines (and their continuations), as reuse.ts compares them.
function blocksOf(text: string): string[] {
  return (text.match(/BEGIN:VEVENT\r\n[\s\S]*?END:VEVENT/g) ?? [])
    .map((b) => b.replaceAll(/(?<=\n)DTSTAMP[:;][^\r]*\r\n(?:[ \t][^\r]*\r\n)*/g, ''));
}

// A small deterministic generator (mulberry32): the same cases on every run.
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// How a block carries its DTSTAMP: the shapes exports use, and the odd ones a re-read must not mistake.
const stampShapes = [
  (s: string) => [`DTSTAMP:${s}`],
  (s: string) => [`DTSTAMP;VALUE=DATE-TIME:${s}`],
  (s: string) => [`DTSTAMP:${s.slice(0, 8)}`, ` ${s.slice(8)}`],
  (s: string) => [`DTSTAMP:${s}`, `DTSTAMP:${s}`],
  (_: string) => [],
  (s: string) => [`DTSTAMPX:${s}`],
];

test('splitReusing takes a block the last read had next exactly as a search would, whatever its DTSTAMP lines', () => {
  const next = random(7);
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)] as T;
  const block = (i: number, stamp: string[], where: number, summary: string, end: string) => {
    const lines = [`UID:u${i}`, 'DTSTART;VALUE=DATE:20260110', `SUMMARY:${summary}`];
    lines.splice(where, 0, ...stamp);
    return `BEGIN:VEVENT\r\n${lines.join('\r\n')}\r\n${end}\r\n`;
  };
  for (let round = 0; round < 300; round += 1) {
    const count = 1 + Math.floor(next() * 6);
    const shapes = Array.from({ length: count }, () => ({ shape: pick(stampShapes), where: Math.floor(next() * 4) }));
    type Block = { shape: (s: string) => string[]; where: number; summary: string; end: string };
    const text = (stamp: string, edit: (i: number) => Block) =>
      `BEGIN:VCALENDAR\r\nVERSION:2.0\r\n${Array.from({ length: count }, (_, i) => {
        const b = edit(i);
        return block(i, b.shape(stamp), b.where, b.summary, b.end);
      }).join('')}END:VCALENDAR\r\n`;
    const before = text('20260101T000000Z', (i) => ({ ...(shapes[i] as (typeof shapes)[number]), summary: 'Booked', end: 'END:VEVENT' }));
    // The re-read: each block keeps its DTSTAMP lines, changes their shape or place, or its text.
    const after = text('20260102T000000Z', (i) => {
      const kept = shapes[i] as (typeof shapes)[number];
      const roll = next();
      if (roll < 0.4) return { ...kept, summary: 'Booked', end: 'END:VEVENT' };
      if (roll < 0.6) return { shape: pick(stampShapes), where: kept.where, summary: 'Booked', end: 'END:VEVENT' };
      if (roll < 0.75) return { shape: kept.shape, where: Math.floor(next() * 4), summary: 'Booked', end: 'END:VEVENT' };
      if (roll < 0.9) return { ...kept, summary: 'Booked late', end: 'END:VEVENT' };
      return { ...kept, summary: 'Booked', end: pick(['END:VEVENTS', 'END:VEVENT;', 'END:VEVENT ']) };
    });
    const first = splitReusing(before, undefined);
    const again = splitReusing(after, first.memo);
    const expected = splitCalendar(after);
    if (/END:VEVENT[^\r]/.test(after)) {
      // Not the plain layout: split whole.
      assert.deepEqual(again.calendar, expected, after);
      assert.equal(again.reused + again.parsed, 0);
      continue;
    }
    // A block taken from the last read is its component, DTSTAMP lines and all: the rest is what a split gives.
    assert.deepEqual(stampless(again.calendar), stampless(expected), after);
    const changed = blocksOf(after).filter((b, i) => b !== blocksOf(before)[i]).length;
    assert.deepEqual([again.parsed, again.reused], [changed, count - changed], after);
    assert.deepEqual(columns(again.memo), columns(splitReusing(after, undefined).memo), after);
  }
});
