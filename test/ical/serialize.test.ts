import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupEntities } from '../../src/ical/entities.ts';
import { foldLine, serializeCalendar, tombstone } from '../../src/ical/serialize.ts';
import { splitCalendar } from '../../src/ical/split.ts';
import { icalJsCounts } from './feeds.ts';

const octets = (s: string) => Buffer.byteLength(s, 'utf8');

test('foldLine leaves a line of exactly 75 octets alone', () => {
  const line = `SUMMARY:${'a'.repeat(67)}`;
  assert.equal(octets(line), 75);
  assert.equal(foldLine(line), line);
});

test('foldLine folds the 76th octet onto a continuation line starting with one space', () => {
  assert.equal(foldLine(`SUMMARY:${'a'.repeat(68)}`), `SUMMARY:${'a'.repeat(67)}\r\n a`);
});

test('foldLine never splits a UTF-8 sequence at the 75-octet boundary', () => {
  const line = `SUMMARY:${'a'.repeat(66)}€${'é'.repeat(60)}`;
  const physical = foldLine(line).split('\r\n');
  assert.equal(physical[0], `SUMMARY:${'a'.repeat(66)}`);
  assert.ok(physical.every((p) => octets(p) <= 75), physical.map(octets).join(','));
  assert.ok(physical.slice(1).every((p) => p.startsWith(' ') && !p.startsWith('  ')));
  assert.equal(physical.map((p, i) => (i === 0 ? p : p.slice(1))).join(''), line);
});

test('serializeCalendar writes CRLF, adds VERSION and PRODID, and keeps the first of repeated ones', () => {
  const cal = splitCalendar('BEGIN:VCALENDAR\nX-WR-CALNAME:a\nMETHOD:PUBLISH\nMETHOD:PUBLISH\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\nEND:VCALENDAR');
  assert.equal(serializeCalendar(cal), [
    'BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//icalpush//icalpush//EN', 'X-WR-CALNAME:a', 'METHOD:PUBLISH',
    'BEGIN:VEVENT', 'UID:a', 'END:VEVENT', 'END:VCALENDAR', '',
  ].join('\r\n'));
});

test('serializeCalendar writes every VTIMEZONE before the components', () => {
  const cal = splitCalendar('BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\nBEGIN:VTIMEZONE\nTZID:Z\nEND:VTIMEZONE\nEND:VCALENDAR');
  assert.match(serializeCalendar(cal), /END:VTIMEZONE\r\nBEGIN:VEVENT/);
});

test('tombstone keeps UID, the given DTSTAMP, the master DTSTART with its parameters, and STATUS:DELETED', () => {
  const text = 'BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:s\nRECURRENCE-ID;VALUE=DATE:20260226\nDTSTART;VALUE=DATE:20260227\nEND:VEVENT\nBEGIN:VEVENT\nUID:s\nDTSTART;VALUE=DATE:20260219\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR';
  const [entity] = groupEntities(splitCalendar(text).components);
  assert.deepEqual(tombstone(entity!, '20260301T120000Z'), {
    type: 'VEVENT',
    lines: [
      { name: 'UID', params: '', value: 's' },
      { name: 'DTSTAMP', params: '', value: '20260301T120000Z' },
      { name: 'DTSTART', params: ';VALUE=DATE', value: '20260219' },
      { name: 'STATUS', params: '', value: 'DELETED' },
    ],
    children: [],
  });
});

test('tombstone keeps the type of a VTODO entity', () => {
  const [entity] = groupEntities(splitCalendar('BEGIN:VCALENDAR\nBEGIN:VTODO\nUID:t\nDTSTART;TZID=Europe/Paris:20260101T090000\nEND:VTODO\nEND:VCALENDAR').components);
  const skeleton = tombstone(entity!, '20260301T120000Z');
  assert.equal(skeleton.type, 'VTODO');
  assert.deepEqual(skeleton.lines[2], { name: 'DTSTART', params: ';TZID=Europe/Paris', value: '20260101T090000' });
});

test('ical.js parses a calendar with long multi-byte lines and a tombstone', () => {
  const cal = splitCalendar(`BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nDTSTART:20260101T100000Z\nDESCRIPTION:${'Über die Brücke → '.repeat(20)}\nEND:VEVENT\nEND:VCALENDAR`);
  const [entity] = groupEntities(cal.components);
  const body = serializeCalendar({ ...cal, components: [...cal.components, tombstone(entity!, '20260101T000000Z')] });
  assert.deepEqual(icalJsCounts(body), { timezones: 0, components: 2 });
});
