import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupEntities } from '../../src/ical/entities.ts';
import { entityHash } from '../../src/ical/normalize.ts';
import { propertyValue, splitCalendar } from '../../src/ical/split.ts';

const calendar = (...components: string[]) => `BEGIN:VCALENDAR\n${components.join('\n')}\nEND:VCALENDAR\n`;
const vevent = (...lines: string[]) => `BEGIN:VEVENT\n${lines.join('\n')}\nEND:VEVENT`;
const entitiesOf = (text: string) => groupEntities(splitCalendar(text).components);

test('groupEntities puts a master and its overrides in one entity, master first', () => {
  const [entity, ...rest] = entitiesOf(calendar(
    vevent('UID:s', 'RECURRENCE-ID:20240312T140000Z', 'SUMMARY:moved'),
    vevent('UID:s', 'DTSTART:20240305T140000Z', 'RRULE:FREQ=WEEKLY', 'SUMMARY:master'),
  ));
  assert.equal(rest.length, 0);
  assert.deepEqual(entity!.components.map((c) => propertyValue(c, 'SUMMARY')), ['master', 'moved']);
});

test('groupEntities hashes the same whatever the order of master and overrides', () => {
  const master = vevent('UID:s', 'DTSTART:20240305T140000Z', 'RRULE:FREQ=WEEKLY');
  const a = vevent('UID:s', 'RECURRENCE-ID:20240312T140000Z', 'SUMMARY:a');
  const b = vevent('UID:s', 'RECURRENCE-ID:20240319T140000Z', 'SUMMARY:b');
  const one = entitiesOf(calendar(master, a, b))[0]!;
  const two = entitiesOf(calendar(b, a, master))[0]!;
  assert.equal(entityHash(one), entityHash(two));
});

test('groupEntities keeps the highest SEQUENCE of a duplicate', () => {
  const [entity] = entitiesOf(calendar(vevent('UID:d', 'SEQUENCE:2', 'SUMMARY:new'), vevent('UID:d', 'SEQUENCE:0', 'SUMMARY:old')));
  assert.deepEqual(entity!.components.map((c) => propertyValue(c, 'SUMMARY')), ['new']);
});

test('groupEntities keeps the later duplicate on a SEQUENCE tie', () => {
  const [entity] = entitiesOf(calendar(vevent('UID:d', 'SUMMARY:first'), vevent('UID:d', 'SEQUENCE:0', 'SUMMARY:later')));
  assert.deepEqual(entity!.components.map((c) => propertyValue(c, 'SUMMARY')), ['later']);
});

test('groupEntities keeps a VEVENT and a VTODO that share a UID', () => {
  const [entity] = entitiesOf(calendar(vevent('UID:x'), 'BEGIN:VTODO\nUID:x\nEND:VTODO'));
  assert.deepEqual(entity!.components.map((c) => c.type), ['VEVENT', 'VTODO']);
});

test('groupEntities compares RECURRENCE-ID by date when the master is all-day (Exchange 2010)', () => {
  const [entity] = entitiesOf(calendar(
    vevent('UID:e', 'DTSTART;VALUE=DATE:20260219', 'RRULE:FREQ=WEEKLY'),
    vevent('UID:e', 'RECURRENCE-ID;TZID=W. Europe Standard Time:20260226T000000', 'SEQUENCE:0', 'SUMMARY:first'),
    vevent('UID:e', 'RECURRENCE-ID;VALUE=DATE:20260226', 'SEQUENCE:1', 'SUMMARY:second'),
  ));
  assert.deepEqual(entity!.components.map((c) => propertyValue(c, 'SUMMARY')), [undefined, 'second']);
});

test('groupEntities keeps overrides with the same time in different TZIDs apart for a timed master', () => {
  const [entity] = entitiesOf(calendar(
    vevent('UID:t', 'DTSTART;TZID=Europe/Paris:20260219T100000', 'RRULE:FREQ=WEEKLY'),
    vevent('UID:t', 'RECURRENCE-ID;TZID=Europe/Paris:20260226T100000'),
    vevent('UID:t', 'RECURRENCE-ID;TZID=America/New_York:20260226T100000'),
  ));
  assert.equal(entity!.components.length, 3);
});

test('groupEntities gives a UID-less component a stable content identity', () => {
  const text = calendar(vevent('SUMMARY:no uid', 'DTSTAMP:20200101T000000Z'));
  const [first] = entitiesOf(text);
  const [again] = entitiesOf(text.replace('DTSTAMP:20200101T000000Z', 'DTSTAMP:20250101T000000Z'));
  assert.match(first!.id, /^content:[\w-]{43}$/);
  assert.equal(first!.uid, undefined);
  assert.equal(again!.id, first!.id);
});

test('groupEntities orders entities by first appearance', () => {
  assert.deepEqual(entitiesOf(calendar(vevent('UID:b'), vevent('UID:a'), vevent('UID:b', 'RECURRENCE-ID:20200101T000000Z'))).map((e) => e.id), ['b', 'a']);
});
