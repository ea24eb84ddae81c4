import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fingerprint, fingerprintAsync } from '../../src/feeds/fingerprint.ts';

const feed = (stamp: string, summary = 'Booked', eol = '\r\n') => Buffer.from([
  'BEGIN:VCALENDAR', 'VERSION:2.0', 'BEGIN:VEVENT', 'UID:a', `DTSTAMP:${stamp}`, 'DTSTART;VALUE=DATE:20260101',
  `SUMMARY:${summary}`, 'END:VEVENT', 'BEGIN:VEVENT', 'UID:b', `DTSTAMP;VALUE=DATE-TIME:${stamp}`,
  'DTSTART;VALUE=DATE:20260105', 'END:VEVENT', 'END:VCALENDAR', '',
].join(eol));

test('fingerprint: DTSTAMP churn gives the same fingerprint', () => {
  assert.equal(fingerprint(feed('20260101T000000Z')), fingerprint(feed('20260102T101010Z')));
});

test('fingerprint: any other change gives another fingerprint', () => {
  assert.notEqual(fingerprint(feed('20260101T000000Z')), fingerprint(feed('20260101T000000Z', 'Blocked')));
});

test('fingerprint: a folded DTSTAMP continuation is left out with its line', () => {
  const folded = (stamp: string) => Buffer.from(`BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTAMP:2026\n ${stamp}\nUID:a\nEND:VEVENT\nEND:VCALENDAR\n`);
  assert.equal(fingerprint(folded('0101T000000Z')), fingerprint(folded('0202T000000Z')));
});

test('fingerprint: a property merely starting with DTSTAMP is content', () => {
  const x = (value: string) => Buffer.from(`BEGIN:VEVENT\nDTSTAMPX:${value}\nEND:VEVENT\n`);
  assert.notEqual(fingerprint(x('1')), fingerprint(x('2')));
});

test('fingerprint: line ends count (a different body may be the same content, never the reverse)', () => {
  assert.notEqual(fingerprint(feed('20260101T000000Z', 'Booked', '\n')), fingerprint(feed('20260101T000000Z')));
});

test('fingerprintAsync gives fingerprint\'s answer for a body of several MiB, hashed a piece at a time', async () => {
  const many = Buffer.concat(Array.from({ length: 20_000 }, (_, i) => feed(`2026010${i % 9}T000000Z`, `s${i}`)));
  assert.ok(many.length > 3 * 1024 * 1024);
  assert.equal(await fingerprintAsync(many), fingerprint(many));
});

test('a hostile body (one DTSTAMP line of 20 MB, or nothing but DTSTAMP lines) is hashed in pieces, the event '
  + 'loop running between them', async () => {
  const long = Buffer.concat([Buffer.from('BEGIN:VCALENDAR\r\nDTSTAMP:'), Buffer.alloc(20 * 1024 * 1024, 0x41),
    Buffer.from('\r\nEND:VCALENDAR\r\n')]);
  const many = Buffer.from(`BEGIN:VCALENDAR\r\n${'DTSTAMP:20260101T000000Z\r\n'.repeat(800_000)}END:VCALENDAR\r\n`);
  // The long line is skipped by one native search (no bytes of it hashed); the many lines, a piece at a time.
  assert.equal(await fingerprintAsync(long), fingerprint(long));
  for (const body of [many]) {
    let turns = 0;
    let running = true;
    const count = () => {
      turns += 1;
      if (running) setImmediate(count);
    };
    setImmediate(count);
    const print = await fingerprintAsync(body);
    running = false;
    assert.equal(print, fingerprint(body));
    // 20 MB of skipped lines, counted in pieces of 256 KiB: the loop ran between them.
    assert.ok(turns >= 40, `${turns} turns of the event loop`);
  }
});

test('fingerprint: kept text longer than its scratch buffer, between DTSTAMP lines and after the last', async () => {
  const long = (stamp: string) => Buffer.from(`BEGIN:VCALENDAR\r\nX-A:${'a'.repeat(100_000)}\r\nDTSTAMP:${stamp}\r\n`
    + `X-B:${'b'.repeat(70_000)}\r\nDTSTAMP:${stamp}\r\nX-C:${'c'.repeat(200_000)}\r\nEND:VCALENDAR\r\n`);
  assert.equal(fingerprint(long('1')), fingerprint(long('22')));
  assert.equal(fingerprint(long('1')), await fingerprintAsync(long('1')));
  assert.notEqual(fingerprint(long('1')), fingerprint(Buffer.from(long('1').toString().replace('X-C:c', 'X-C:d'))));
});
