// A tombstone whose zone was never seen is written in UTC (src/ical/tombstone-zone.ts), reading its local
// time as RFC 5545 §3.3.5 does: a repeated time is its first occurrence, a skipped one uses the offset
// before the gap.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tombstoneInUtc } from '../../src/ical/tombstone-zone.ts';

const dtstart = (zone: string, local: string) => tombstoneInUtc(
  `BEGIN:VEVENT\r\nUID:x\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=${zone}:${local}\r\nSTATUS:DELETED\r\nEND:VEVENT\r\n`,
).match(/DTSTART[^\r]*/)?.[0];

const rows: [string, string, string, string][] = [
  ['an ordinary winter time in Rome', 'Europe/Rome', '20270110T150000', 'DTSTART:20270110T140000Z'],
  ['New York, the hour skipped in March: the offset before the gap', 'America/New_York', '20270314T023000',
    'DTSTART:20270314T073000Z'],
  ['New York, the hour repeated in November: its first occurrence (EDT)', 'America/New_York', '20271107T013000',
    'DTSTART:20271107T053000Z'],
  ['London, the hour repeated in October: its first occurrence (BST)', 'Europe/London', '20271031T013000',
    'DTSTART:20271031T003000Z'],
  ['London, the hour skipped in March: the offset before the gap (GMT)', 'Europe/London', '20270328T013000',
    'DTSTART:20270328T013000Z'],
];
for (const [name, zone, local, expected] of rows) {
  test(name, () => assert.equal(dtstart(zone, local), expected));
}
