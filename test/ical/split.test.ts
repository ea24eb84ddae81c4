import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parameterValue, propertyLine, propertyValue, splitCalendar } from '../../src/ical/split.ts';

const event = (body: string) => `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n${body}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n`;

test('splitCalendar unfolds space and tab continuations across CRLF, LF and lone CR', () => {
  const cal = splitCalendar('BEGIN:VCALENDAR\nBEGIN:VEVENT\r\nSUMMARY:a\r\n b\n\tc\r d\rEND:VEVENT\nEND:VCALENDAR');
  assert.equal(propertyValue(cal.components[0]!, 'SUMMARY'), 'abcd');
  assert.equal(cal.complete, true);
  assert.equal(cal.skippedLines, 0);
});

test('splitCalendar finds the value colon after quoted parameter values', () => {
  const cal = splitCalendar(event('ATTENDEE;CN="Doe: John; Jr";ROLE=CHAIR:mailto:john@example.com'));
  const line = propertyLine(cal.components[0]!, 'ATTENDEE');
  assert.deepEqual(line, { name: 'ATTENDEE', params: ';CN="Doe: John; Jr";ROLE=CHAIR', value: 'mailto:john@example.com' });
  assert.equal(parameterValue(line.params, 'CN'), 'Doe: John; Jr');
  assert.equal(parameterValue(line.params, 'ROLE'), 'CHAIR');
});

test('splitCalendar upper-cases property names and keeps raw escaped values', () => {
  const cal = splitCalendar(event('summary;language=fr:Réservée\\, à confirmer\\nmerci'));
  assert.deepEqual(cal.components[0]!.lines[0], { name: 'SUMMARY', params: ';language=fr', value: 'Réservée\\, à confirmer\\nmerci' });
});

test('splitCalendar skips and counts blank lines and lines without a colon', () => {
  const cal = splitCalendar('BEGIN:VCALENDAR\n\nBEGIN:VEVENT\nUID:a\nX\nEND:VEVENT\n\nEND:VCALENDAR\n');
  assert.equal(cal.skippedLines, 3);
  assert.equal(cal.components.length, 1);
});

test('splitCalendar collects VTIMEZONE after the events into the frame', () => {
  const cal = splitCalendar('BEGIN:VCALENDAR\nPRODID:x\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\nBEGIN:VTIMEZONE\nTZID:Europe/Paris\nBEGIN:STANDARD\nTZOFFSETTO:+0100\nEND:STANDARD\nEND:VTIMEZONE\nX-AFTER:1\nEND:VCALENDAR');
  assert.equal(cal.timezones.length, 1);
  assert.equal(cal.timezones[0]!.children[0]!.type, 'STANDARD');
  assert.deepEqual(cal.properties.map((l) => l.name), ['PRODID', 'X-AFTER']);
});

test('splitCalendar keeps VALARM as a child of its event', () => {
  const cal = splitCalendar(event('UID:a\r\nBEGIN:VALARM\r\nTRIGGER:-PT5M\r\nEND:VALARM'));
  assert.deepEqual(cal.components[0]!.children.map((c) => c.type), ['VALARM']);
});

test('splitCalendar closes an unterminated event when the next one begins', () => {
  const cal = splitCalendar('BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nBEGIN:VALARM\nBEGIN:VEVENT\nUID:b\nEND:VEVENT\nEND:VCALENDAR');
  assert.deepEqual(cal.components.map((c) => propertyValue(c, 'UID')), ['a', 'b']);
  assert.equal(cal.complete, true);
});

test('splitCalendar closes what is open at END:VCALENDAR and skips a stray END', () => {
  const cal = splitCalendar('BEGIN:VCALENDAR\nEND:VTODO\nBEGIN:VEVENT\nUID:a\nBEGIN:VALARM\nEND:VCALENDAR');
  assert.equal(cal.components.length, 1);
  assert.equal(cal.components[0]!.children.length, 1);
  assert.equal(cal.skippedLines, 1);
  assert.equal(cal.complete, true);
});

test('splitCalendar reports a truncated feed as incomplete and keeps what it read', () => {
  const cal = splitCalendar('BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\nBEGIN:VEVENT\nUID:b\nDTSTART:2024');
  assert.equal(cal.complete, false);
  assert.equal(cal.components.length, 2);
});

test('splitCalendar ignores everything before BEGIN:VCALENDAR and after END:VCALENDAR', () => {
  const cal = splitCalendar('<html>error</html>\nBEGIN:VEVENT\nEND:VEVENT\nBEGIN:VCALENDAR\nEND:VCALENDAR\nBEGIN:VEVENT\nUID:z\nEND:VEVENT\n');
  assert.deepEqual(cal, { complete: true, properties: [], timezones: [], components: [], skippedLines: 0 });
});

test('splitCalendar finds nothing in a body without VCALENDAR', () => {
  assert.deepEqual(splitCalendar('{"code":500}'), { complete: false, properties: [], timezones: [], components: [], skippedLines: 0 });
});

test('splitCalendar skips a nested BEGIN:VCALENDAR and keeps the events after it', () => {
  const cal = splitCalendar('BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\nBEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:b\nEND:VEVENT\nEND:VCALENDAR');
  assert.deepEqual(cal.components.map((c) => propertyValue(c, 'UID')), ['a', 'b']);
  assert.equal(cal.skippedLines, 1);
});
